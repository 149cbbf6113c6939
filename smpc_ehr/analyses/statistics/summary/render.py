"""The summary's terminal table: one row per variable (and stratum): n, missing, mean,
sd, se (the moment cells: `common.text.moment_cells`, shared with the t-test); a
variable's strata show its mean, sd and se with one number of decimals each."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    MOMENT_HEADER,
    Body,
    binary_note,
    dp_line,
    footer,
    moment_cells,
    moment_columns,
    moments_suppressed,
    sections,
    table,
)


def render_summary(body: Body) -> str:
    """One row per variable (and per stratum of `by`): n, missing, mean, sd, se."""
    t = body["threshold"]
    if "strata" in body:
        pairs = [
            (level, name, cell)
            for level, stratum in body["strata"].items()
            for name, cell in stratum["variables"].items()
        ]
        header = [body["by"], "variable", *MOMENT_HEADER]
        # one variable's strata share their decimals (its unit); variables keep their own
        formatted: dict[int, list[str]] = {}
        for variable in dict.fromkeys(name for _, name, _ in pairs):
            at = [i for i, (_, name, _) in enumerate(pairs) if name == variable]
            cells_of = moment_columns([pairs[i][2] for i in at], t)
            formatted.update(zip(at, cells_of, strict=True))
        rows = [[level, name, *formatted[i]] for i, (level, name, _) in enumerate(pairs)]
        text = table(header, rows, "llrrrrr")
    else:
        pairs = [("", name, cell) for name, cell in body["variables"].items()]
        rows = [[name, *moment_cells(cell, t)] for _, name, cell in pairs]
        text = table(["variable", *MOMENT_HEADER], rows, "lrrrrr")
    note = "sd: sample standard deviation (n - 1); se = sd / sqrt(n)"
    cells = [cell for _, _, cell in pairs]
    note = "\n".join(filter(None, [note, binary_note(cells, t), body.get("noise")]))
    return sections(text, note, footer(body, moments_suppressed(cells))) + dp_line(body)
