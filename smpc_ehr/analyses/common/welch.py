"""Welch's two-sample t-test from two released group summaries (n, mean, sample
variance), as scipy.stats.ttest_ind(second, first, equal_var=False): shared by the
t-test and the Table 1's p-values, both computed in the clear from released values."""

from __future__ import annotations

import math
from typing import Any

from scipy import stats

from smpc_ehr.analyses.common.moment_release import CellSummary

Z95 = 0.975
"""Upper tail point of a two-sided 95% interval."""


def welch(first: CellSummary, second: CellSummary, noise: float = 0.0) -> dict[str, Any]:
    """Welch's test from two released group summaries (as scipy's ttest_ind); `noise`,
    a known variance of the difference beyond the sampling one (DP noise), is added to
    the squared standard error and carries no degrees of freedom."""
    assert first.n and second.n and first.mean is not None and second.mean is not None
    v1 = (first.variance or 0.0) / first.n
    v2 = (second.variance or 0.0) / second.n
    diff = second.mean - first.mean
    se = math.sqrt(v1 + v2 + noise)
    if se == 0.0:
        raise ValueError("both groups have zero variance: the t statistic is undefined")
    sampling = v1**2 / (first.n - 1) + v2**2 / (second.n - 1)
    df = (v1 + v2 + noise) ** 2 / sampling if sampling > 0 else math.inf
    t = diff / se
    half = float(stats.t.ppf(Z95, df)) * se
    return {
        "statistic": t,
        "df": df,
        "p_value": float(2 * stats.t.sf(abs(t), df)),
        "estimate": diff,
        "ci95": [diff - half, diff + half],
    }
