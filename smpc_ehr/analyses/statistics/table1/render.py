"""The Table 1 as a paper prints it: a row per statistic, a column per group and the
overall one, fixed decimals per variable, thousands separators and "<T" for hidden
counts (T the federation's small-cell threshold)."""

from __future__ import annotations

from typing import Any

from smpc_ehr.analyses.common.text import Body, fmt_count, fmt_p, footer, sections, table

HIDDEN = "-"
"""A statistic not released (its column's patients with a value are hidden or few)."""


def _number(x: Any, decimals: int) -> str:
    if isinstance(x, str):  # a quartile beyond the grid: "below" or "above"
        return x
    return f"{x:,.{decimals}f}"


def cell_text(row: dict[str, Any], cell: dict[str, Any] | int | None, t: int) -> str:
    """One cell of a row, as printed."""
    stat = row["statistic"]
    if stat == "n":
        return fmt_count(cell if isinstance(cell, int) else None, t)
    assert isinstance(cell, dict)
    d = row.get("decimals", 1)
    if stat == "mean (SD)":
        if cell["mean"] is None or cell["sd"] is None:
            return HIDDEN
        return f"{_number(cell['mean'], d)} ({_number(cell['sd'], d)})"
    if stat == "median [IQR]":
        if cell["median"] is None or cell["q1"] is None or cell["q3"] is None:
            return HIDDEN
        return f"{_number(cell['median'], d)} [{_number(cell['q1'], d)}, {_number(cell['q3'], d)}]"
    if cell["n"] is None:
        return fmt_count(None, t)
    percent = "" if cell["percent"] is None else f" ({cell['percent']:.1f})"
    return f"{fmt_count(cell['n'], t)}{percent}"


def _label(row: dict[str, Any]) -> str:
    if row["variable"] == "n":
        return "n"
    if row["level"] is None:
        return f"{row['variable']}, {row['statistic']}"
    return f"  {row['level']}"


def render_table1(body: Body) -> str:
    """The table, then its notes: tests, left-out patients, suppression, threshold."""
    t = body["threshold"]
    grouped = body.get("group") is not None
    header = ["", *(c["label"] for c in body["columns"])] + (["p"] if grouped else [])
    lines = []
    hidden = False
    for row in body["rows"]:
        cells = row.get("cells")
        texts = [cell_text(row, c, t) for c in cells] if cells else [""] * len(body["columns"])
        hidden = hidden or any(x.startswith("<") for x in texts)
        p = ""
        if grouped and row["level"] is None and row["variable"] != "n":
            p = fmt_p(row.get("p")) if row.get("p") is not None else "-"
        lines.append([_label(row), *texts] + ([p] if grouped else []))
    width = len(header)
    text = table(header, lines, "l" + "r" * (width - 1))
    notes = []
    if grouped:
        notes.append(
            f"groups: {body['group']}; left out (no group level): "
            f"{fmt_count(body.get('left_out'), t)}"
        )
        tests = sorted({r["test"] for r in body["rows"] if r.get("test")})
        if tests:
            notes.append(
                f"p: {', '.join(tests)}; -: no test (a value it needs is hidden; none for medians)"
            )
    notes.append(f"{HIDDEN}: not released (patients with a value hidden or too few)")
    notes.append(f"suppression: {body['suppression']}")
    return sections(text, "\n".join(notes), footer(body, hidden))
