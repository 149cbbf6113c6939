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
    released grid point, and the numbers at risk under the axis ("<T" where suppressed).
    With strata, one such panel per stratum (a stratum where nothing is released is
    named in a note instead), the groups in the same colours in every panel."""
    groups = result["groups"]
    horizon = max(len(g["time"]) for g in groups) - 1
    levels = list(dict.fromkeys(g["group"] for g in groups))
    colours = {level: f"C{i}" for i, level in enumerate(levels)}
    strata = list(dict.fromkeys(g.get("stratum") for g in groups))
    panels = [s for s in strata if any(_released(g["survival"]) for g in _of(groups, s))]
    empty = [s for s in strata if s not in panels]
    if not result.get("strata"):
        panels, empty = [None], []
    columns = 1 if len(panels) == 1 else 2
    height = 2.6 + 0.25 * len(levels)
    fig = _new_figure(
        7.0 if columns == 1 else 11.0, 2.0 + height * math.ceil(len(panels) / columns)
    )
    grid = fig.add_gridspec(math.ceil(len(panels) / columns), columns)
    for i, stratum in enumerate(panels):
        cell = grid[i // columns, i % columns].subgridspec(
            2, 1, height_ratios=[5.0, 0.6 + 0.35 * len(levels)]
        )
        ax = fig.add_subplot(cell[0])
        table = fig.add_subplot(cell[1], sharex=ax)
        _km_panel(ax, table, _of(groups, stratum), colours, horizon, result)
        if result.get("strata"):
            ax.set_title(f"{result['strata']} {stratum}", fontsize=9)
    event = (result.get("event") or "death_date").replace("_date", "")
    title = f"Kaplan-Meier: time to {event}, 95% CI (log-log)"
    logrank = result.get("logrank")
    if logrank:
        kind = f"stratified by {result['strata']}, " if result.get("strata") else ""
        title += f"\nlog-rank ({kind}chi2 = {logrank['chi2']:.2f}, df = {logrank['df']}, "
        title += f"p = {logrank['p']:.3g})"
    fig.suptitle(title, fontsize=10)
    notes = []
    threshold = result.get("threshold")
    if threshold is not None:
        notes.append(f"<{threshold}: suppressed (risk set below {threshold})")
    if empty:
        notes.append(f"{result['strata']} {', '.join(map(str, empty))}: nothing released")
    if notes:
        fig.text(0.99, 0.005, "; ".join(notes), ha="right", va="bottom", fontsize=7)
    return fig


def _of(groups: list[dict[str, Any]], stratum: Any) -> list[dict[str, Any]]:
    return [g for g in groups if g.get("stratum") == stratum]


def _km_panel(
    ax: Any,
    table: Any,
    groups: list[dict[str, Any]],
    colours: dict[Any, str],
    horizon: int,
    result: dict[str, Any],
) -> None:
    """One panel: the groups' released curves on `ax`, their numbers at risk on `table`."""
    for g in groups:
        shown = _released(g["survival"])
        if not shown:
            continue
        x, colour = g["time"][:shown], colours[g["group"]]
        label = f"{_group_name(g['group'])} (n = {g['at_risk'][0]:,})"
        ax.step(x, g["survival"][:shown], where="post", color=colour, label=label)
        ax.fill_between(
            x, g["ci_low"][:shown], g["ci_high"][:shown], step="post", color=colour, alpha=0.2
        )
    ax.set_xlim(0, horizon)
    ax.set_ylim(0.0, 1.02)
    ax.set_ylabel("survival probability")
    ax.grid(alpha=0.3)
    ax.tick_params(labelbottom=False)
    if any(_released(g["survival"]) for g in groups):
        ax.legend(loc="lower left", fontsize=8)
    times = _risk_times(horizon)
    ax.set_xticks(times)
    threshold = result.get("threshold")
    hidden = "" if threshold is None else f"<{threshold}"
    rows = [len(groups) - 1 - row for row in range(len(groups))]
    table.set_yticks(rows, [_group_name(g["group"]) for g in groups], fontsize=8)
    table.tick_params(axis="y", length=0, pad=24)  # clear of the numbers at 0
    for label, g in zip(table.get_yticklabels(), groups, strict=True):
        label.set_color(colours[g["group"]])
    for y, g in zip(rows, groups, strict=True):
        for t in times:
            n = g["at_risk"][t] if t < len(g["at_risk"]) else None
            table.text(t, y, hidden if n is None else f"{n:,}", ha="center", va="center",
                       fontsize=8)  # fmt: skip
    table.set_ylim(-0.6, len(groups) - 0.4)
    for side in ("left", "right", "top"):
        table.spines[side].set_visible(False)
    table.set_title("number at risk", fontsize=8, loc="left")
    unit = result.get("time_unit") or "month"
    table.set_xlabel(f"time since first diagnosis ({unit}s)")


def histogram_figure(result: dict[str, Any]) -> Figure:
    """Bars of the released counts over their bins; a suppressed bin has no bar, only
    "<T" at its foot."""
    edges, counts = result["edges"], result["counts"]
    fig = _new_figure(7.0, 4.2)
    ax = fig.subplots()
    for lo, hi, n in zip(edges, edges[1:], counts, strict=False):
        if n is None:
            ax.text((lo + hi) / 2, 0, f"<{result.get('threshold', '')}", ha="center",
                    va="bottom", fontsize=8)  # fmt: skip
        else:
            ax.bar(lo, n, width=hi - lo, align="edge", color="C0", edgecolor="white")
    ax.set_xlabel(result["variable"])
    ax.set_ylabel("patients")
    ax.set_xlim(edges[0], edges[-1])
    notes = [f"{name}: {result[name]:,}" for name in ("outside", "missing")
             if result.get(name) is not None]  # fmt: skip
    ax.set_title(f"Histogram of {result['variable']}" + (f" ({', '.join(notes)})" if notes
                 else ""), fontsize=10)  # fmt: skip
    ax.grid(axis="y", alpha=0.3)
    ax.yaxis.set_major_formatter("{x:,.0f}")
    return fig


def _roc_points(calibration: list[dict[str, Any]]) -> list[tuple[float, float]] | None:
    """(false, true positive rate) at the cut-offs 1.0, 0.9, ..., 0.0 from the released
    tenths of the score; None unless every tenth's rows and rate are released."""
    if any(b["n"] is None or b["observed_rate"] is None for b in calibration):
        return None
    events = [round(b["n"] * b["observed_rate"]) for b in calibration]
    others = [b["n"] - e for b, e in zip(calibration, events, strict=True)]
    positives, negatives = sum(events), sum(others)
    if not positives or not negatives:
        return None
    return [(sum(others[k:]) / negatives, sum(events[k:]) / positives)
            for k in range(len(calibration), -1, -1)]  # fmt: skip


def logistic_figure(result: dict[str, Any]) -> Figure:
    """ROC curve (at the released tenths of the score, with the AUC) and calibration
    plot (mean predicted against observed rate per released tenth) of the held-out
    evaluation."""
    evaluation = result.get("evaluation")
    if not evaluation:
        raise ConfigError(
            "--plot: this logistic regression has no held-out evaluation to draw (run it "
            "with --set test_fraction=0.3, say)"
        )
    calibration = evaluation["calibration"]
    fig = _new_figure(9.0, 5.0)
    roc, cal = fig.subplots(1, 2)
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    points = _roc_points(calibration)
    auc = evaluation.get("auc")
    label = "AUC " + ("suppressed" if auc is None else f"{auc:.3f}")
    if points:
        roc.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label)
    else:
        roc.text(0.5, 0.55, "no ROC curve: tenths of the score\nare suppressed (fewer than the\n"
                 "threshold), so the rates at the\ncut-offs are not released", ha="center",
                 va="center", fontsize=8, color="grey")  # fmt: skip
    confusion = evaluation.get("confusion")
    if confusion and None not in confusion[0] + confusion[1]:
        (tn, fp), (fn, tp) = confusion
        if tp + fn and tn + fp:
            roc.plot([fp / (tn + fp)], [tp / (tp + fn)], "s", color="C3",
                     label="cut-off 0.5")  # fmt: skip
    roc.set_xlabel("false positive rate (1 - specificity)")
    roc.set_ylabel("true positive rate (sensitivity)")
    roc.set_title("ROC (held-out rows)" + ("" if points else f"; {label}"), fontsize=10)
    roc.set_xlim(0, 1)
    roc.set_ylim(0, 1)
    roc.set_box_aspect(1)
    if roc.get_legend_handles_labels()[0]:
        roc.legend(loc="lower right", fontsize=8)
    cal.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="ideal")
    shown = [b for b in calibration if b["mean_predicted"] is not None
             and b["observed_rate"] is not None]  # fmt: skip
    if shown:
        cal.plot([b["mean_predicted"] for b in shown], [b["observed_rate"] for b in shown],
                 marker="o", label="tenths of the score")  # fmt: skip
    hidden = len(calibration) - len(shown)
    cal.set_title("Calibration" + (f" ({hidden} tenth(s) suppressed)" if hidden else ""),
                  fontsize=10)  # fmt: skip
    cal.set_xlabel("mean predicted probability")
    cal.set_ylabel("observed event rate")
    cal.set_xlim(0, 1)
    cal.set_ylim(0, 1)
    cal.set_box_aspect(1)
    cal.legend(loc="upper left", fontsize=8)
    return fig


def kmeans_figure(result: dict[str, Any]) -> Figure:
    """Centroid profiles: one panel per feature (their own units), a bar per released
    cluster; a suppressed cluster has no bar."""
    features, centroids, sizes = result["features"], result["centroids"], result["sizes"]
    columns = min(len(features), 4)
    rows = math.ceil(len(features) / columns)
    fig = _new_figure(2.6 * columns + 0.6, 2.8 * rows + 0.4)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    names = [f"{c}\n(n={n:,})" if n is not None else f"{c}\n(<{result.get('threshold', '')})"
             for c, n in enumerate(sizes)]  # fmt: skip
    for j, (ax, feature) in enumerate(zip(axes, features, strict=False)):
        for c, centroid in enumerate(centroids):
            if centroid is not None:
                ax.bar(c, centroid[j], color=f"C{c}")
        ax.set_xticks(range(len(centroids)), names, fontsize=7)
        ax.set_title(feature, fontsize=9)
        ax.axhline(0, color="grey", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(features) :]:
        ax.set_visible(False)
    fig.supxlabel("cluster", fontsize=9)
    fig.suptitle(f"k-means centroids (k = {len(centroids)}), by feature", fontsize=10)
    return fig


PLOTTERS: dict[str, Callable[[dict[str, Any]], Figure]] = {
    "kaplan_meier": kaplan_meier_figure,
    "histogram": histogram_figure,
    "logistic_regression": logistic_figure,
    "kmeans": kmeans_figure,
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
