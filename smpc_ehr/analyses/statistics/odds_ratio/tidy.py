"""The odds ratio's tidy rows: the 2x2 counts (`group` exposure=1/0, `term`
outcome=1/0), missing, then the odds ratio with its 95% CI, z and p."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row, level, row

ARMS = (("exposed", "1"), ("unexposed", "0"))
OUTCOMES = (("outcome_1", "1"), ("outcome_0", "0"))


def tidy_odds_ratio(result: dict[str, Any]) -> list[Row]:
    exposure, outcome = result["exposure"], result["outcome"]
    rows = [
        row(
            "count",
            result["table"][arm][cell],
            group=level(exposure, e),
            term=level(outcome, o),
            suppressed=bool(result["suppressed"][arm][cell]),
        )
        for arm, e in ARMS
        for cell, o in OUTCOMES
    ]
    rows.append(count_row("missing", result.get("missing")))
    where = {"variable": exposure, "term": outcome}
    refused = result.get("estimate_refused")
    if refused:
        return [*rows, row("odds_ratio", None, suppressed=True, note=refused, **where)]
    method = str(result.get("method", ""))
    rows.append(row("odds_ratio", result.get("odds_ratio"), ci=result.get("ci95"), **where))
    rows.append(row("statistic", result.get("statistic"), note=method, **where))
    rows.append(row("p_value", result.get("p_value"), note=method, **where))
    return rows
