"""The histogram's tidy rows: a `count` per bin (`term` "[low, high)", the last bin
closed), then the counts outside the edges and missing."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row


def tidy_histogram(result: dict[str, Any]) -> list[Row]:
    variable = result["variable"]
    edges = result["edges"]
    last = len(result["counts"]) - 1
    rows = [
        count_row(
            "count",
            n,
            variable=variable,
            term=f"[{edges[i]:g}, {edges[i + 1]:g}{']' if i == last else ')'}",
        )
        for i, n in enumerate(result["counts"])
    ]
    outside = f"outside [{edges[0]:g}, {edges[-1]:g}]"
    rows.append(count_row("count", result.get("outside"), variable=variable, term=outside))
    rows.append(count_row("missing", result.get("missing"), variable=variable))
    return rows
