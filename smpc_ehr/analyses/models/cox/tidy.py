"""The Cox regression's tidy rows: per model term (`term`) its coefficient (`estimate`,
log hazard ratio), `std_error`, `hazard_ratio` with its 95% CI, `z` and `p_value`; then
the fit's n, events, iterations, convergence and concordance (Harrell's C; null
when not computed, the reason in the note); reference levels in the notes of
their variable's terms."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row, row


def tidy_cox(result: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    references = result.get("reference_levels") or {}
    for term, beta in result["coefficients"].items():
        variable = term.split("=", 1)[0] if "=" in term else ""
        note = f"reference {variable}={references[variable]}" if variable in references else ""
        rows.append(row("estimate", beta, term=term, note=note))
        rows.append(row("std_error", result["std_errors"][term], term=term))
        ci = result["ci95"][term]
        rows.append(row("hazard_ratio", result["hazard_ratios"][term], term=term, ci=ci))
        rows.append(row("z", result["z"][term], term=term))
        rows.append(row("p_value", result["p_values"][term], term=term))
    rows.append(count_row("n", result.get("n")))
    rows.append(count_row("events", result.get("events")))
    rows.append(count_row("left_out", result.get("left_out")))
    rows.append(row("iterations", result.get("iterations")))
    rows.append(row("converged", int(bool(result.get("converged")))))
    note = str(result.get("concordance_note") or "")
    rows.append(row("concordance", result.get("concordance"), note=note))
    return rows
