"""The quantiles' tidy rows: a `quantile` per q (`term` "q=0.5"; a quantile outside
the grid is empty with its note), then n and missing."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row, row


def tidy_quantiles(result: dict[str, Any]) -> list[Row]:
    variable = result["variable"]
    notes = result.get("notes") or [None] * len(result["q"])
    rows = [
        row(
            "quantile",
            value,
            variable=variable,
            term=f"q={q:g}",
            suppressed=bool(hidden),
            note=note or "",
        )
        for q, value, hidden, note in zip(
            result["q"], result["values"], result["suppressed"], notes, strict=True
        )
    ]
    rows.append(count_row("n", result.get("n"), variable=variable))
    rows.append(count_row("missing", result.get("missing"), variable=variable))
    return rows
