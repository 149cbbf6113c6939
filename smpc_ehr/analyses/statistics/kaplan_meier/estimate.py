"""Kaplan-Meier estimates and the log-rank test from numbers at risk and events on a
grid, in plain floats, as lifelines computes them (KaplanMeierFitter: Greenwood's
variance, log(-log) "exponential Greenwood" intervals; median_survival_times;
multivariate_logrank_test). Why here and not lifelines: the coordinator has only the
released counts, not durations, and lifelines is a test dependency only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05


@dataclass(frozen=True)
class Curve:
    """A released Kaplan-Meier curve: one value per released grid point."""

    survival: list[float]
    ci_low: list[float]
    ci_high: list[float]
    median: float | None
    median_ci: tuple[float | None, float | None]


def kaplan_meier(at_risk: Sequence[int], events: Sequence[int], alpha: float = ALPHA) -> Curve:
    """Survival prod(1 - d/n), its log(-log) confidence interval from Greenwood's sum
    of d / (n (n - d)), and the median (first grid point with survival <= 0.5; None
    if not reached on these points) with the medians of the interval's bounds."""
    n = np.asarray(at_risk, dtype=np.float64)
    d = np.asarray(events, dtype=np.float64)
    if not len(n):
        return Curve([], [], [], None, (None, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(1.0 - d / n)
        greenwood = np.cumsum(d / (n * (n - d)))
        z = stats.norm.ppf(1.0 - alpha / 2.0)
        v = np.log(survival)
        low = np.exp(-np.exp(np.log(-v) - z * np.sqrt(greenwood) / v))
        high = np.exp(-np.exp(np.log(-v) + z * np.sqrt(greenwood) / v))
    low = np.where(np.isnan(low), 1.0, low)  # lifelines fills undefined bounds with 1
    high = np.where(np.isnan(high), 1.0, high)
    return Curve(
        [float(s) for s in survival],
        [float(x) for x in low],
        [float(x) for x in high],
        _first_at_most(survival, 0.5),
        (_first_at_most(low, 0.5), _first_at_most(high, 0.5)),
    )


def _first_at_most(values: np.ndarray, q: float) -> float | None:
    """The first grid point (its index, as a time) where `values` <= q, else None."""
    hits = np.flatnonzero(values <= q)
    return float(hits[0]) if len(hits) else None


@dataclass(frozen=True)
class LogRank:
    chi2: float
    df: int
    p: float


def logrank_terms(at_risk: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Observed minus expected events of k groups (rows) over grid points (columns) and
    their hypergeometric covariance (k x k); points nobody is at risk at add nothing."""
    n = np.asarray(at_risk, dtype=np.float64)
    d = np.asarray(events, dtype=np.float64)
    k = n.shape[0]
    n_all, d_all = n.sum(axis=0), d.sum(axis=0)
    used = n_all > 0
    n, d, n_all, d_all = n[:, used], d[:, used], n_all[used], d_all[used]
    share = n / n_all
    observed_minus_expected = (d - share * d_all).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n_all > 1, d_all * (n_all - d_all) / (n_all - 1), 0.0)
    cov = np.einsum("t,it,jt->ij", factor, share, -share)
    cov[np.diag_indices(k)] += (factor * share).sum(axis=1)
    return observed_minus_expected, cov


def logrank(at_risk: np.ndarray, events: np.ndarray) -> LogRank | None:
    """The log-rank test of k groups (rows) over grid points (columns): chi2 on k - 1 df
    from `logrank_terms`; None with fewer than two groups or no events."""
    return stratified_logrank([(np.asarray(at_risk), np.asarray(events))])


def stratified_logrank(strata: list[tuple[np.ndarray, np.ndarray]]) -> LogRank | None:
    """The log-rank test stratified over (at_risk, events) pairs of one shape each (k
    groups x that stratum's grid points; a group absent from a stratum has zero rows):
    observed minus expected and covariance summed over strata, chi2 on (groups with
    anyone at risk) - 1 df; None with fewer than two such groups or no events."""
    terms = [logrank_terms(n, d) for n, d in strata]
    present = np.any([np.asarray(n).sum(axis=1) > 0 for n, _ in strata], axis=0)
    if int(present.sum()) < 2 or not sum(float(np.sum(d)) for _, d in strata):
        return None
    u = np.sum([t[0] for t in terms], axis=0)[present][:-1]
    cov = np.sum([t[1] for t in terms], axis=0)[np.ix_(present, present)][:-1, :-1]
    chi2 = float(u @ np.linalg.solve(cov, u))
    df = int(present.sum()) - 1
    return LogRank(chi2, df, float(stats.chi2.sf(chi2, df)))
