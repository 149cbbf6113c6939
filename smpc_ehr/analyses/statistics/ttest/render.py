"""The t-test's terminal table: the two groups' moments, then t, df, p and the
difference."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    MOMENT_HEADER,
    Body,
    binary_note,
    ci_text,
    dp_line,
    fmt_num,
    footer,
    moment_columns,
    moments_suppressed,
    p_clause,
    sections,
    table,
)


def render_ttest(body: Body) -> str:
    """A group table (n, missing, mean, sd, se), then t, df, p and the difference."""
    t = body["threshold"]
    groups = body["groups"]
    columns = moment_columns([groups[level] for level in body["levels"]], t)
    rows = [[level, *cells] for level, cells in zip(body["levels"], columns, strict=True)]
    head = f"{body['variable']} by {body['group']}"
    text = head + "\n" + table([body["group"], *MOMENT_HEADER], rows, "lrrrrr")
    if body.get("test_refused"):
        test = f"test refused: {body['test_refused']}"
    else:
        test = (
            f"{body.get('method', 't-test')}\n"
            f"t = {fmt_num(body['statistic'])}, df = {fmt_num(body['df'])}, "
            f"{p_clause(body['p_value'])}\n"
            f"{body.get('estimate_is', 'difference')} = {fmt_num(body['estimate'])} "
            f"({ci_text(body['ci95'])})"
        )
    cells = [groups[level] for level in body["levels"]]
    text = "\n".join(filter(None, [text, binary_note(cells, t), body.get("noise")]))
    return sections(text, test, footer(body, moments_suppressed(cells))) + dp_line(body)
