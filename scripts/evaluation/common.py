"""What the report's sections share: sizes, a job's released cost, a timed plaintext run,
slopes on log-log axes and the figures' look (matplotlib, Agg, PNG)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from evaluation.section import Size, Table

T = TypeVar("T")


def by_size(size: Size, tiny: T, quick: T, full: T) -> T:
    """The value of a setting at `size`."""
    return {"tiny": tiny, "quick": quick, "full": full}[size]


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Seconds `fn()` took (perf_counter) and what it returned."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def best_of(fn: Callable[[], Any], repeats: int = 3) -> float:
    """The shortest of `repeats` runs of a plaintext baseline (seconds), on one thread
    (as each MPC party computes; on a shared machine OpenMP threads waiting for one
    another made scikit-learn's KMeans 100 times slower at times): its first run pays
    one-off imports and caches, which the MPC side paid at `local up`."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        fn()
        return min(timed(fn)[0] for _ in range(repeats))


def cost_figures(cost: dict[str, Any] | None) -> dict[str, int | None]:
    """A job's released cost as hops and the most messages and bytes any party sent
    (None where the analysis does not release them)."""
    cost = cost or {}

    def most(value: Any) -> int | None:
        if isinstance(value, dict):
            return max((int(v) for v in value.values()), default=None)
        return None if value is None else int(value)

    hops = cost.get("hops")
    return {
        "hops": None if hops is None else int(hops),
        "messages_per_party": most(cost.get("messages")),
        "bytes_per_party": most(cost.get("bytes_sent")),
    }


def loglog_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The least-squares slope of log(y) on log(x) (None with fewer than two positive
    points or one x): y ~ x^slope."""
    pts = [(x, y) for x, y in zip(xs, ys, strict=True) if x and y and x > 0 and y > 0]
    if len(pts) < 2 or len({p[0] for p in pts}) < 2:
        return None
    lx = np.log([p[0] for p in pts])
    ly = np.log([p[1] for p in pts])
    return round(float(np.polyfit(lx, ly, 1)[0]), 3) + 0.0  # + 0.0: no "-0.0"


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.grid": True, "grid.alpha": 0.3})
    return plt


def label_log_axes(ax: Any) -> None:
    """Log-scaled axes labelled at 1, 2 and 5 times powers of ten, as plain numbers, so
    that a range of less than a decade still shows its values."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() != "log":
            continue
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.6g}"))
        axis.set_minor_formatter(NullFormatter())


def save(fig: Any, out: Path, name: str) -> str:
    """Write `fig` as out/name (PNG, 110 dpi) and close it; the path relative to out."""
    fig.tight_layout()
    fig.savefig(out / name, dpi=110, format="png")
    pyplot().close(fig)
    return name


def finite(value: float | None) -> float | None:
    """A float for a table, None if it is missing or not finite."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def keyed_table(
    caption: str, columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]], note: str
) -> Table:
    """A Table of `rows` (dicts) by (header, key) columns."""
    return Table(caption, [c[0] for c in columns], [[r[c[1]] for c in columns] for r in rows], note)
