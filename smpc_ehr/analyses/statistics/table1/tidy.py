"""The Table 1's tidy rows: per column (`group` group=level, "" for overall) and row
(`variable`, `term` the level) its statistics, and per variable its p-value."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.tidy import Row, count_row, level, row

_STATS = {"mean (SD)": ("mean", "sd"), "median [IQR]": ("median", "q1", "q3")}


def tidy_table1(result: dict[str, Any]) -> list[Row]:
    name = str(result.get("group") or "")
    groups = ["" if c["group"] is None else level(name, c["group"]) for c in result["columns"]]
    out: list[Row] = []
    for r in result["rows"]:
        variable = "" if r["variable"] == "n" else r["variable"]
        term = r["level"] or ""
        for group, cell in zip(groups, r.get("cells") or [], strict=False):
            if r["statistic"] == "n":
                out.append(count_row("n", cell, group=group))
            elif r["statistic"] in _STATS:
                for stat in _STATS[r["statistic"]]:
                    value = cell[stat]
                    note = value if isinstance(value, str) else ""
                    value = None if isinstance(value, str) else value
                    out.append(
                        row(stat, value, group=group, variable=variable,
                            suppressed=value is None and not note, note=note)
                    )  # fmt: skip
            else:
                out.append(count_row("count", cell["n"], group=group, variable=variable, term=term))
                out.append(
                    row("percent", cell["percent"], group=group, variable=variable, term=term,
                        suppressed=cell["n"] is None)
                )  # fmt: skip
        if name and r["level"] is None and variable:
            note = r.get("test") or r.get("why_no_test") or ""
            out.append(
                row(
                    "p_value",
                    r.get("p"),
                    variable=variable,
                    note=note,
                    suppressed=None if r.get("p") is None else False,
                )
            )
    if name:
        out.append(count_row("left_out", result.get("left_out")))
    return out
