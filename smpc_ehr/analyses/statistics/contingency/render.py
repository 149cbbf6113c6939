"""The contingency table as printed: counts with totals when released, then the test."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    Body,
    dp_line,
    fmt_count,
    fmt_num,
    footer,
    p_clause,
    sections,
    table,
)


def _chi_square_line(body: Body) -> str:
    if body.get("test_refused"):
        return f"test refused: {body['test_refused']}"
    test = body.get("test")
    if not test:
        return ""
    line = (
        f"chi-square = {fmt_num(test['statistic'])}, df = {test['df']}, "
        f"{p_clause(test['p_value'])} ({test.get('method', 'chi-square test')})"
    )
    expected = [e for row in body.get("expected") or [] for e in row]
    if expected and min(expected) < 5:
        line += (
            f"\nwarning: smallest expected count {fmt_num(min(expected), 3)} < 5: "
            "the chi-square approximation may be poor"
        )
    return line


def render_contingency(body: Body) -> str:
    """The cross table, with row and column totals when released, then the test."""
    t = body["threshold"]
    counts, row_totals, col_totals = body["counts"], body.get("row_totals"), body.get("col_totals")
    header = [f"{body['row']} \\ {body['col']}", *body["col_levels"]]
    rows = [
        [level, *(fmt_count(n, t) for n in line)]
        for level, line in zip(body["row_levels"], counts, strict=True)
    ]
    if row_totals is not None and col_totals is not None:
        header.append("total")
        for row, total in zip(rows, row_totals, strict=True):
            row.append(fmt_count(total, t))
        rows.append(["total", *(fmt_count(n, t) for n in col_totals), fmt_count(body["n"], t)])
    text = table(header, rows, "l" + "r" * (len(header) - 1))
    missing = f"missing: {fmt_count(body.get('missing'), t)}"
    suppressed = any(n is None for line in counts for n in line) or body.get("missing") is None
    test = _chi_square_line(body)
    if body.get("dp_note"):
        test += f"\nnote: {body['dp_note']}"
    return sections(text, missing, test, footer(body, suppressed)) + dp_line(body)
