"""Confidence intervals of the privacy sections, one function per kind, so that each
table can say which one it prints: a t-interval for the mean of repeated runs, the
exact Clopper-Pearson interval for a success rate, a percentile bootstrap for an
attack advantage (a difference of two rates measured on the same split)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95


def mean_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float, float]:
    """The mean of repeated runs and its Student-t interval (the band of the utility
    curves): the runs are independent draws of the noise, so the mean is close to normal."""
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, mean, mean
    half = float(stats.t.ppf((1 + level) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def clopper_pearson(successes: int, trials: int, level: float = LEVEL) -> tuple[float, float]:
    """The exact (Clopper-Pearson) two-sided interval of a binomial proportion."""
    if trials <= 0:
        raise ValueError("a proportion needs at least one trial")
    interval = stats.binomtest(successes, trials).proportion_ci(level, method="exact")
    return float(interval.low), float(interval.high)


def bootstrap_interval(
    resampled: Callable[[], float], resamples: int = 1000, level: float = LEVEL
) -> tuple[float, float]:
    """Percentile bootstrap: `resampled()` computes the statistic on one resample of the
    independent units (drawn with replacement by the caller, who says what a unit is)."""
    draws = [resampled() for _ in range(resamples)]
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)
