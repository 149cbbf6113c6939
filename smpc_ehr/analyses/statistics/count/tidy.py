"""The count's tidy rows: one `count` row per cell (its stratum in `group`), and the
deduplicated count's `shared` row."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row, level


def tidy_count(result: dict[str, Any]) -> list[Row]:
    by = result.get("by") or []
    cells = result["cells"] if by else [result]
    rows = [
        count_row("count", cell["count"], group="; ".join(level(b, cell[b]) for b in by))
        for cell in cells
    ]
    if result.get("dedup"):
        rows.append(
            count_row("shared", result.get("shared"), note="seen at more than one hospital")
        )
    return rows
