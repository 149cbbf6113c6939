"""The logistic regression's tidy rows: per model term (`term`) its coefficient
(`estimate`, log odds), `std_error`, `odds_ratio` with its 95% CI and `p_value`; the
fit's n and iterations; the model summary (events, left_out, log-likelihoods, the LR
test, pseudo-R2, AIC, BIC); and the held-out evaluation (accuracy, AUC, the confusion
matrix as `group` observed=0/1 by `term` predicted=0/1, calibration per tenth)."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row, row
from smpc_ehr.analyses.models.logistic.summary import SUMMARY_KEYS


def tidy_logistic(result: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    on_or_scale = result.get("ci95_scale", "odds ratio") == "odds ratio"
    for term, beta in result["coefficients"].items():
        ci = (result.get("ci95") or {}).get(term)
        rows.append(row("estimate", beta, term=term, ci=None if on_or_scale else ci))
        rows.append(row("std_error", (result.get("std_errors") or {}).get(term), term=term))
        odds = (result.get("odds_ratios") or {}).get(term)
        rows.append(row("odds_ratio", odds, term=term, ci=ci if on_or_scale else None))
        rows.append(row("p_value", (result.get("p_values") or {}).get(term), term=term))
    rows.append(count_row("n", result.get("n")))
    rows.append(row("iterations", result.get("iterations")))
    rows.append(row("converged", int(bool(result.get("converged")))))
    if "events" in result:
        rows.extend(summary_rows(result))
    if result.get("evaluation"):
        rows.extend(evaluation_rows(result["evaluation"]))
    return rows


def summary_rows(result: dict[str, Any]) -> list[Row]:
    """The model summary (summary.py): events, left out (null if suppressed), the
    log-likelihoods, the LR test, pseudo-R2, AIC and BIC; a value not released (mode
    "full", epsilon) is null, not suppressed, with the reason as its note."""
    note = result.get("summary_note") or ""
    private = bool(result.get("dp"))
    rows = [row("events", result.get("events"), note=note if private else "")]
    if private:
        rows.append(row("left_out", None, note=note))
    else:
        rows.append(count_row("left_out", result.get("left_out")))
    for statistic in SUMMARY_KEYS:
        value = result.get(statistic)
        rows.append(row(statistic, value, note=note if value is None else ""))
    return rows


def evaluation_rows(evaluation: dict[str, Any]) -> list[Row]:
    """The held-out evaluation; a null count is a suppressed one (common/evaluation)."""
    n, auc = evaluation.get("n"), evaluation.get("auc")
    rows = [
        count_row("n", n, variable="evaluation"),
        row("accuracy", evaluation.get("accuracy"), variable="evaluation", suppressed=n is None),
        row("auc", auc, variable="evaluation", suppressed=auc is None),
    ]
    for observed, line in enumerate(evaluation.get("confusion") or []):
        for predicted, n in enumerate(line):
            group, term = f"observed={observed}", f"predicted={predicted}"
            rows.append(count_row("count", n, group=group, term=term, variable="evaluation"))
    for tenth in evaluation.get("calibration") or []:
        low, high = tenth["bin"]
        term = f"[{low:g}, {high:g}{']' if high >= 1 else ')'}"
        hidden = tenth["n"] is None
        rows.append(count_row("n", tenth["n"], term=term, variable="calibration"))
        for stat in ("mean_predicted", "observed_rate"):
            value = tenth.get(stat)
            # null: a suppressed count, or undefined in an empty tenth
            withheld = value is None and (hidden or (stat == "observed_rate" and tenth["n"] != 0))
            rows.append(row(stat, value, term=term, variable="calibration", suppressed=withheld))
    return rows
