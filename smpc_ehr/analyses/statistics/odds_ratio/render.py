"""The odds ratio's terminal table: the 2x2 table, then OR (95% CI), z and p."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    Body,
    ci_text,
    dp_line,
    fmt_count,
    fmt_num,
    footer,
    p_clause,
    sections,
    table,
)


def render_odds_ratio(body: Body) -> str:
    """The 2x2 table of exposure x outcome, then OR (95% CI), z and p."""
    t = body["threshold"]
    exposure, outcome, cells = body["exposure"], body["outcome"], body["table"]
    header = ["", f"{outcome} = 1", f"{outcome} = 0"]
    rows = [
        [f"{exposure} = {flag}", fmt_count(line["outcome_1"], t), fmt_count(line["outcome_0"], t)]
        for flag, line in (("1", cells["exposed"]), ("0", cells["unexposed"]))
    ]
    text = table(header, rows, "lrr")
    missing = f"missing: {fmt_count(body.get('missing'), t)}"
    if body.get("estimate_refused"):
        estimate = f"odds ratio refused: {body['estimate_refused']}"
    else:
        estimate = (
            f"odds ratio = {fmt_num(body['odds_ratio'])} ({ci_text(body['ci95'])}), "
            f"z = {fmt_num(body['statistic'])}, {p_clause(body['p_value'])}\n"
            f"method: {body.get('method', '')}"
        )
    released = [n for line in cells.values() for n in line.values()] + [body.get("missing")]
    return sections(text, missing, estimate, footer(body, None in released)) + dp_line(body)
