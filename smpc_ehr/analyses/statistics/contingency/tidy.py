"""The contingency table's tidy rows: per cell (`group` row=level, `term` col=level)
its count and expected count, the totals, missing, and the chi-square test."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row, hypothesis_rows, level, row


def tidy_contingency(result: dict[str, Any]) -> list[Row]:
    rows_, cols = result["row"], result["col"]
    expected = result.get("expected")
    out: list[Row] = []
    for i, r in enumerate(result["row_levels"]):
        for j, c in enumerate(result["col_levels"]):
            group, term = level(rows_, r), level(cols, c)
            hidden = bool(result["suppressed"][i][j])
            count = result["counts"][i][j]
            out.append(row("count", count, group=group, term=term, suppressed=hidden))
            if expected is not None:
                out.append(row("expected", expected[i][j], group=group, term=term))
    for key, name, levels in (
        ("row_totals", rows_, result["row_levels"]),
        ("col_totals", cols, result["col_levels"]),
    ):
        totals = result.get(key) or [None] * len(levels)
        for lv, n in zip(levels, totals, strict=True):
            out.append(count_row("total", n, group=level(name, lv)))
    out.append(count_row("n", result.get("n")))
    out.append(count_row("missing", result.get("missing")))
    out.extend(hypothesis_rows(result.get("test"), result.get("test_refused")))
    return out
