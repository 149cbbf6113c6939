"""Text formatting shared by the analyses' terminal renderers: aligned tables, counts
with "<t" for suppressed ones, estimates to 4 significant digits, p-values as R and
scipy print them, and the footer on missing values and the small-cell threshold.

The number formats every table keeps: counts with thousands separators (12,345;
`fmt_count`); a lone estimate to 4 significant digits (`fmt_num`, thousands separated);
the estimates of one column in one unit (a coefficient, a centroid coordinate, a mean
of one variable over groups) with one number of decimals, enough for 4 significant
digits of each, as R's format() prints a column (`fmt_column`); below 1e-3 or from 1e9
in scientific notation; p-values to 3 significant digits (`fmt_p`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Body = dict[str, Any]

P_FLOOR = 1e-16
"""p-values below this print as "< 1e-16" (beyond double precision near 1)."""
BAR_WIDTH = 40
"""Width in '#' of the largest released histogram bin."""
MOMENT_HEADER = ["n", "missing", "mean", "sd", "se"]


def count_text(cell: dict[str, Any], threshold: int) -> str:
    """A released count with thousands separators, or "suppressed (< t)"."""
    return f"suppressed (< {threshold})" if cell["suppressed"] else f"{cell['count']:,}"


def table(header: list[str], rows: list[list[str]], align: str = "") -> str:
    """A plain aligned text table; `align` has an 'l' or 'r' per column (default 'l')."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    sides = align.ljust(len(widths), "l")

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).rjust(w) if side == "r" else str(c).ljust(w)
            for c, w, side in zip(cells, widths, sides, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])


def fmt_count(n: int | None, threshold: int) -> str:
    """A released count with thousands separators; "<t" when suppressed (None)."""
    return f"<{threshold}" if n is None else f"{n:,}"


def fmt_num(x: float | None, digits: int = 4, grouping: bool = True) -> str:
    """An estimate to `digits` significant digits, in fixed point unless tiny or huge
    (thousands separated if `grouping`); "NA" when undefined."""
    if x is None or not math.isfinite(x):
        return "NA"
    if x == 0:
        return "0"
    rounded = float(f"{x:.{digits - 1}e}")  # so 9.9996 counts as magnitude 1
    magnitude = math.floor(math.log10(abs(rounded)))
    if magnitude < -3 or magnitude >= 9:
        return f"{x:.{digits - 1}e}"
    decimals = max(digits - 1 - magnitude, 0)
    return f"{rounded:,.{decimals}f}" if grouping else f"{rounded:.{decimals}f}"


def _fixed_point(x: float | None, digits: int) -> bool:
    """Whether `fmt_num` prints x in fixed point (0, or a magnitude from 1e-3 below 1e9)."""
    if x is None or not math.isfinite(x):
        return False
    if x == 0:
        return True
    magnitude = math.floor(math.log10(abs(float(f"{x:.{digits - 1}e}"))))
    return -3 <= magnitude < 9


def _decimals_needed(x: float, digits: int) -> int:
    """Decimals that show x to `digits` significant digits (as `fmt_num` does)."""
    text = fmt_num(x, digits, grouping=False)
    return len(text.split(".")[1]) if "." in text else 0


def fmt_column(values: Sequence[float | None], digits: int = 4, grouping: bool = True) -> list[str]:
    """Estimates of one unit (a table column) with one number of decimals: the most any
    of them needs for `digits` significant digits (as R's format() of a column), so the
    points line up and a lone value prints as `fmt_num` prints it; a value `fmt_num`
    prints in scientific notation keeps it, "NA" when undefined."""
    fixed = [x is not None and _fixed_point(x, digits) for x in values]
    decimals = max(
        (_decimals_needed(x, digits) for x, f in zip(values, fixed, strict=True) if f and x),
        default=0,
    )
    return [
        (f"{x:,.{decimals}f}" if grouping else f"{x:.{decimals}f}")
        if f and x is not None
        else fmt_num(x, digits, grouping)
        for x, f in zip(values, fixed, strict=True)
    ]


def fmt_p(p: float | None) -> str:
    """A p-value as R and scipy report it: 3 significant digits, or "< 1e-16"."""
    if p is None or not math.isfinite(p):
        return "NA"
    return f"< {P_FLOOR:g}" if p < P_FLOOR else f"{p:.3g}"


def p_clause(p: float | None) -> str:
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def ci_text(ci: Sequence[float] | None) -> str:
    if not ci:
        return "95% CI NA"
    return f"95% CI {fmt_num(ci[0])} to {fmt_num(ci[1])}"


def footer(body: Body, suppressed: bool) -> str:
    """How missing values were treated and the small-cell threshold."""
    lines = []
    if body.get("missing_values"):
        lines.append(f"missing values: {body['missing_values']}")
    if "threshold" in body:
        t = body["threshold"]
        counted = "a noisy count below" if isinstance(body.get("dp"), dict) else "fewer than"
        note = f"; <{t} = suppressed ({counted} {t} patients, not released)" if suppressed else ""
        lines.append(f"small-cell threshold: {t}{note}")
    return "\n".join(lines)


def moment_cells(cell: Body, t: int) -> list[str]:
    """n, missing, mean, sd and se of one released moments cell ("-" if suppressed)."""
    missing = fmt_count(cell.get("missing"), t)
    if cell.get("n") is None or cell.get("mean_suppressed"):
        return [fmt_count(cell.get("n"), t), missing, "-", "-", "-"]
    stats = [fmt_num(cell.get(k)) for k in ("mean", "sd", "se")]
    return [fmt_count(cell["n"], t), missing, *stats]


def moment_columns(cells: Sequence[Body], t: int) -> list[list[str]]:
    """`moment_cells` of cells of one variable (groups, strata): each of mean, sd and se
    with one number of decimals over the cells (`fmt_column`)."""
    shown = [c.get("n") is not None and not c.get("mean_suppressed") for c in cells]
    columns = {
        k: iter(fmt_column([c.get(k) for c, s in zip(cells, shown, strict=True) if s]))
        for k in ("mean", "sd", "se")
    }
    return [
        [*moment_cells(c, t)[:2], *(next(columns[k]) for k in ("mean", "sd", "se"))]
        if s
        else moment_cells(c, t)
        for c, s in zip(cells, shown, strict=True)
    ]


def moments_suppressed(cells: Sequence[Body]) -> bool:
    return any(c.get("n") is None or c.get("missing") is None for c in cells)


def binary_note(cells: Sequence[Body], t: int) -> str:
    """Why a released n has no mean (the binary rule), if some cell shows that."""
    if not any(c.get("mean_suppressed") for c in cells):
        return ""
    return f"-: a 0/1 variable with fewer than {t} ones or zeros (mean, sd, se not released)"


def sections(*parts: str) -> str:
    return "\n\n".join(p for p in parts if p)


def render_generic(body: Body) -> str:
    """Counts (optionally by strata) as a table; anything else as `key: value` lines."""
    threshold = body.get("threshold", 0)
    if "cells" in body:
        by = body["by"]
        rows = [[c[v] for v in by] + [count_text(c, threshold)] for c in body["cells"]]
        text = table([*by, "patients"], rows)
    elif "count" in body:
        text = f"patients: {count_text(body, threshold)}"
    else:
        text = "\n".join(f"{k}: {v}" for k, v in body.items() if k != "dp")
    if "threshold" in body:
        text += f"\nsmall-cell threshold: {threshold}"
    return text + dp_line(body)


def dp_line(body: Body) -> str:
    """The line under a differentially private result ("" for an exact one): its
    epsilon, delta and the noise's standard deviation, for reading the values (one
    figure, or one per group of released values)."""
    dp = body.get("dp")
    if not isinstance(dp, dict):
        return ""
    sd = dp["noise_sd"]
    if isinstance(sd, dict):
        spread = ", ".join(f"{name} {_sd_text(value)}" for name, value in sd.items())
        noise = f"noise sd: {spread}"
    else:
        noise = f"noise sd {_sd_text(sd)} per value"
    return (
        f"\ndifferentially private, epsilon = {dp['epsilon']:g} at delta = {dp['delta']:g}"
        f" ({noise}; {dp['mechanism']})"
    )


def _sd_text(sd: float | list[float]) -> str:
    if isinstance(sd, list):
        return f"{min(sd):.3g}..{max(sd):.3g}"
    return f"{sd:.3g}"
