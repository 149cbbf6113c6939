"""The summary's terminal table: one row per variable (and stratum): n, missing, mean,
sd, se; the moment cells are shared with the t-test's group table."""

from __future__ import annotations

from collections.abc import Sequence

from smpc_ehr.analyses.common.text import (
    MOMENT_HEADER,
    Body,
    fmt_count,
    fmt_num,
    footer,
    sections,
    table,
)


def moment_cells(cell: Body, t: int) -> list[str]:
    """n, missing, mean, sd and se of one released moments cell ("-" if suppressed)."""
    missing = fmt_count(cell.get("missing"), t)
    if cell.get("n") is None or cell.get("mean_suppressed"):
        return [fmt_count(cell.get("n"), t), missing, "-", "-", "-"]
    stats = [fmt_num(cell.get(k)) for k in ("mean", "sd", "se")]
    return [fmt_count(cell["n"], t), missing, *stats]


def moments_suppressed(cells: Sequence[Body]) -> bool:
    return any(c.get("n") is None or c.get("missing") is None for c in cells)


def binary_note(cells: Sequence[Body], t: int) -> str:
    """Why a released n has no mean (the binary rule), if some cell shows that."""
    if not any(c.get("mean_suppressed") for c in cells):
        return ""
    return f"-: a 0/1 variable with fewer than {t} ones or zeros (mean, sd, se not released)"


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
    note = "\n".join(filter(None, [note, binary_note(cells, t)]))
    return sections(text, note, footer(body, moments_suppressed(cells)))
