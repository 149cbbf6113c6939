"""`smpc-ehr run --plot FILE.png`: a released result drawn with matplotlib (headless, the
Agg backend), for a paper's figure.

    from smpc_ehr.cli.plot import figure, write_plot
    fig = figure(result.result, "kaplan_meier")   # a matplotlib Figure, to adjust
    write_plot(result, "km.png")                   # or straight to a PNG

One function per analysis kind (`PLOTTERS`). Only released values are drawn: a
suppressed (null) point is never drawn, and the numbers at risk or counts it hides are
shown as "<T" (T the result's threshold). matplotlib is an optional dependency
(`pip install 'smpc-ehr[plots]'`), imported only here and only when a plot is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smpc_ehr.client import JobResult
from smpc_ehr.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 150
TICKS = 6
"""About this many time points in the numbers-at-risk table."""


def _new_figure(width: float, height: float) -> Figure:
    """A figure that needs no display (Agg), or a clear error without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError(
            "--plot needs matplotlib: pip install 'smpc-ehr[plots]' (or matplotlib>=3.8)"
        ) from None
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _released(values: Sequence[Any]) -> int:
    """The length of the released prefix (up to the first null)."""
    return next((i for i, v in enumerate(values) if v is None), len(values))


def _group_name(group: Any) -> str:
    return "all" if group is None else str(group)


def _risk_times(horizon: int) -> list[int]:
    """Grid points for the numbers-at-risk table: 0, a round step, ..., up to horizon."""
    step = max(1, math.ceil(horizon / (TICKS - 1)))
    for nice in (1, 2, 5, 10, 12, 20, 25, 50, 100):
        if nice >= step:
            step = nice
            break
    return list(range(0, horizon + 1, step))


def kaplan_meier_figure(result: dict[str, Any]) -> Figure:
    """Step curves per group with shaded 95% intervals, up to each group's last
    released grid point, and the numbers at risk under the axis ("<T" where suppressed)."""
    groups = result["groups"]
    threshold = result.get("threshold")
    unit = result.get("time_unit") or "month"
    horizon = max(len(g["time"]) for g in groups) - 1
    fig = _new_figure(7.0, 4.6 + 0.25 * len(groups))
    ax, table = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [5.0, 0.6 + 0.35 * len(groups)]}
    )
    colours = [f"C{i}" for i in range(len(groups))]
    for g, colour in zip(groups, colours, strict=True):
        shown = _released(g["survival"])
        if not shown:
            continue
        x = g["time"][:shown]
        label = f"{_group_name(g['group'])} (n = {g['at_risk'][0]:,})"
        ax.step(x, g["survival"][:shown], where="post", color=colour, label=label)
        ax.fill_between(
            x, g["ci_low"][:shown], g["ci_high"][:shown], step="post", color=colour, alpha=0.2
        )
    ax.set_xlim(0, horizon)
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("survival probability")
    ax.grid(alpha=0.3)
    event = (result.get("event") or "death_date").replace("_date", "")
    title = f"Kaplan-Meier: time to {event}, 95% CI (log-log)"
    logrank = result.get("logrank")
    if logrank:
        title += f"\nlog-rank chi2 = {logrank['chi2']:.2f}, df = {logrank['df']}, "
        title += f"p = {logrank['p']:.3g}"
    ax.set_title(title, fontsize=10)
    if any(_released(g["survival"]) for g in groups):
        ax.legend(loc="lower left", fontsize=8)
    times = _risk_times(horizon)
    ax.set_xticks(times)
    hidden = "" if threshold is None else f"<{threshold}"
    rows = [len(groups) - 1 - row for row in range(len(groups))]
    table.set_yticks(rows, [_group_name(g["group"]) for g in groups], fontsize=8)
    table.tick_params(axis="y", length=0, pad=24)  # clear of the numbers at 0
    for label, colour in zip(table.get_yticklabels(), colours, strict=True):
        label.set_color(colour)
    for y, g in zip(rows, groups, strict=True):
        for t in times:
            n = g["at_risk"][t] if t < len(g["at_risk"]) else None
            table.text(t, y, hidden if n is None else f"{n:,}", ha="center", va="center",
                       fontsize=8)  # fmt: skip
    table.set_ylim(-0.6, len(groups) - 0.4)
    for side in ("left", "right", "top"):
        table.spines[side].set_visible(False)
    table.set_title("number at risk", fontsize=8, loc="left")
    table.set_xlabel(f"time since first diagnosis ({unit}s)")
    if hidden:
        fig.text(0.99, 0.005, f"{hidden}: suppressed (risk set below {threshold})",
                 ha="right", va="bottom", fontsize=7)  # fmt: skip
    return fig


PLOTTERS: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "kaplan_meier": kaplan_meier_figure,
}


def figure(body: dict[str, Any], analysis: str) -> Figure:
    """The analysis's figure of a released result body."""
    return _plotter(analysis)(body)


def _plotter(analysis: str) -> Callable[[dict[str, Any]], Figure]:
    plotter = PLOTTERS.get(analysis)
    if plotter is None:
        kinds = ", ".join(sorted(PLOTTERS))
        raise ConfigError(
            f"--plot: no plot for the analysis {analysis!r} (plots exist for: {kinds}); "
            "nothing was run"
        )
    return plotter


def write_plot(result: JobResult, path: str | Path, analysis: str | None = None) -> None:
    """Draw the result (`analysis` defaults to the one the result names) as a PNG."""
    fig = figure(result.result, analysis or result.analysis)
    fig.savefig(Path(path), format="png")


def check_plot(analysis: str) -> None:
    """Before the job runs: --plot has a figure for this analysis and matplotlib is
    installed (else a clear error, and no job)."""
    _plotter(analysis)
    _new_figure(1.0, 1.0)
