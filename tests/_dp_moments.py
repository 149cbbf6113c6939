"""Oracle for the differentially private summary, t-test and correlation: the pooled,
clipped plaintext's sums (numpy, independent of smpc_ehr) and guaranteed bounds on
what noisy sums can give.

A noisy statistic is f(noisy sums). With every noise within E of zero (a union bound:
each is Gaussian-like with the released sd, E = z sd with z for ALPHA over all noises
involved), the noisy sums lie in a box about the true ones, and f(box) is contained in
the interval that interval arithmetic gives for f: a check "released value in that
interval" fails falsely with probability at most ALPHA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from tests._stats_jobs import THRESHOLD

ALPHA = 1e-6
"""The false-failure rate of each check."""
FIXED_POINT = 1e-6
"""Beyond the noise: the fixed-point input rounding of every party's sums (the in-process
reference keeps 2^-32) and float roundings, far below this."""


def z_for(noises: int, alpha: float = ALPHA) -> float:
    """z such that `noises` Gaussian noises all lie within z sd with probability
    >= 1 - alpha (two-sided, union bound)."""
    return float(stats.norm.isf(alpha / (2 * noises)))


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float

    @staticmethod
    def around(value: float, width: float) -> Interval:
        return Interval(value - width, value + width)

    def __add__(self, other: Interval | float) -> Interval:
        o = _iv(other)
        return Interval(self.lo + o.lo, self.hi + o.hi)

    def __sub__(self, other: Interval | float) -> Interval:
        o = _iv(other)
        return Interval(self.lo - o.hi, self.hi - o.lo)

    def __mul__(self, other: Interval | float) -> Interval:
        o = _iv(other)
        ends = [self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi]
        return Interval(min(ends), max(ends))

    def __truediv__(self, other: Interval | float) -> Interval:
        o = _iv(other)
        assert o.lo > 0 or o.hi < 0, "division by an interval holding 0"
        return self * Interval(1 / o.hi, 1 / o.lo)

    def square(self) -> Interval:
        ends = sorted([self.lo * self.lo, self.hi * self.hi])
        return Interval(0.0 if self.lo <= 0 <= self.hi else ends[0], ends[1])

    def clamp(self, low: float, high: float) -> Interval:
        return Interval(min(max(self.lo, low), high), min(max(self.hi, low), high))

    def sqrt(self) -> Interval:
        return Interval(math.sqrt(max(self.lo, 0.0)), math.sqrt(max(self.hi, 0.0)))

    def holds(self, value: float, slack: float = 1e-9) -> bool:
        room = slack * (1 + abs(self.lo) + abs(self.hi))
        return self.lo - room <= value <= self.hi + room


def _iv(x: Interval | float) -> Interval:
    return x if isinstance(x, Interval) else Interval(float(x), float(x))


def units(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Values clipped to [low, high], centred at the midpoint, in half-widths."""
    return (np.clip(values, low, high) - (low + high) / 2) / ((high - low) / 2)


@dataclass(frozen=True)
class Box:
    """The noisy sums' box about the true ones: n, sums within E (n also rounded)."""

    n: Interval
    sums: dict[str, Interval]


def box(n: int, sums: dict[str, float], width: float, threshold: int) -> Box:
    """The box of a released cell: its noisy n also reached the threshold."""
    e = width + FIXED_POINT
    count = Interval(max(n - e - 0.5, threshold), n + e + 0.5)
    return Box(count, {k: Interval.around(v, e) for k, v in sums.items()})


def mean_interval(b: Box, low: float, high: float) -> Interval:
    """mean = c + a S/n, clamped to the bounds."""
    c, a = (low + high) / 2, (high - low) / 2
    return ((b.sums["s"] / b.n) * a + c).clamp(low, high)


def variance_interval(b: Box, low: float, high: float) -> Interval:
    """a^2 max(0, (S2 - S^2/n) / (n - 1))."""
    a = (high - low) / 2
    centred = (b.sums["ss"] - b.sums["s"].square() / b.n) / (b.n - 1)
    return Interval(max(centred.lo, 0.0), max(centred.hi, 0.0)) * (a * a)


def correlation_intervals(n: Interval, sums: dict[str, Interval], d: int) -> np.ndarray:
    """Per pair (i, j) the interval of r before projection, as an object array."""
    out = np.empty((d, d), dtype=object)
    centred = {}
    for i in range(d):
        for j in range(i, d):
            centred[i, j] = sums[f"s{i}{j}"] - sums[f"s{i}"] * sums[f"s{j}"] / n
    for i in range(d):
        for j in range(d):
            a, b = min(i, j), max(i, j)
            if a == b:
                out[i, j] = Interval(1.0, 1.0)
                continue
            var = (centred[a, a] * centred[b, b]).sqrt()
            out[i, j] = (centred[a, b] / var).clamp(-1.0, 1.0)
    return out


def pooled_sums(columns: Sequence[np.ndarray]) -> dict[str, float]:
    """Over the rows (complete cases) of the columns in units: n, S_i, S_ij (i <= j)."""
    out: dict[str, float] = {"n": float(len(columns[0]))}
    for i, x in enumerate(columns):
        out[f"s{i}"] = float(np.sum(x))
        for j in range(i, len(columns)):
            out[f"s{i}{j}"] = float(np.dot(x, columns[j]))
    return out


def check_cell(
    cell: dict[str, Any], values: pd.Series, bounds: tuple[float, float], sd: float
) -> None:
    """A released (or suppressed) noisy summary cell against its pooled column: n and
    missing within the noise (and rounding), mean and variance within what the noisy
    sums' box gives, sd and se their functions."""
    low, high = bounds
    known = values[~values.isna()].to_numpy(dtype=float)
    u = units(known, low, high)
    n, missing = len(u), int(values.isna().sum())
    e = z_for(4) * sd  # this cell's n, two sums and missing count
    if cell["n"] is None:
        assert cell["suppressed"] and cell["mean"] is None and cell["variance"] is None
        assert n < THRESHOLD + e + 1, "a cell this large is suppressed only by a huge noise"
        assert cell["missing"] is None
        return
    assert cell["suppressed"] is False and cell["mean_suppressed"] is False
    assert abs(cell["n"] - n) <= e + 0.5 and cell["n"] >= THRESHOLD
    if cell["missing"] is not None:
        assert abs(cell["missing"] - missing) <= e + 0.5 and cell["missing"] >= THRESHOLD
    b = box(n, {"s": float(u.sum()), "ss": float(u @ u)}, e, THRESHOLD)
    assert mean_interval(b, low, high).holds(cell["mean"]), (cell, known.mean())
    assert variance_interval(b, low, high).holds(cell["variance"]), cell
    assert math.isclose(cell["sd"], math.sqrt(cell["variance"]), rel_tol=1e-12)
    assert math.isclose(cell["se"], cell["sd"] / math.sqrt(cell["n"]), rel_tol=1e-12)
