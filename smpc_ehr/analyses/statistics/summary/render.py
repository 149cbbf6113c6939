"""The summary's terminal table: one row per variable (and stratum): n, missing, mean,
sd, se (the moment cells: `common.text.moment_cells`, shared with the t-test)."""

from __future__ import annotations

from smpc_ehr.analyses.common.text import (
    MOMENT_HEADER,
    Body,
    binary_note,
    dp_line,
    footer,
    moment_cells,
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
        rows = [[level, name, *moment_cells(cell, t)] for level, name, cell in pairs]
        text = table(header, rows, "llrrrrr")
    else:
        pairs = [("", name, cell) for name, cell in body["variables"].items()]
        rows = [[name, *moment_cells(cell, t)] for _, name, cell in pairs]
        text = table(["variable", *MOMENT_HEADER], rows, "lrrrrr")
    note = "sd: sample standard deviation (n - 1); se = sd / sqrt(n)"
    cells = [cell for _, _, cell in pairs]
    note = "\n".join(filter(None, [note, binary_note(cells, t), body.get("noise")]))
    return sections(text, note, footer(body, moments_suppressed(cells))) + dp_line(body)
