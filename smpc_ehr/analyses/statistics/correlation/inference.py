"""Confidence intervals and p-values of the released correlations, as a paper reports
them: the 95% CI by Fisher's z, tanh(atanh(r) -/+ 1.96 / sqrt(n - 3)), and the
two-sided p-value of the t statistic r sqrt((n - 2) / (1 - r^2)) on n - 2 degrees of
freedom (what scipy.stats.pearsonr gives). Functions of the released r and n only (the
complete-case n is the n of every pair): nothing more is released.

With epsilon they are not given: n and r carry noise that neither accounts for.
"""

from __future__ import annotations

import math
from typing import Any

from scipy import stats

Z975 = 1.959963984540054
NOT_WITH_EPSILON = (
    "no confidence interval or p-value with epsilon: they would not account for the noise"
)


def fisher_ci(r: float | None, n: int) -> list[float] | None:
    """The 95% CI of a correlation by Fisher's z; None if undefined (n <= 3, r absent
    or +-1)."""
    if r is None or n <= 3 or abs(r) >= 1:
        return None
    z, half = math.atanh(r), Z975 / math.sqrt(n - 3)
    return [math.tanh(z - half), math.tanh(z + half)]


def correlation_p(r: float | None, n: int) -> float | None:
    """Two-sided p-value of H0: rho = 0 (t on n - 2 df); 0 at r = +-1; None if undefined."""
    if r is None or n <= 2:
        return None
    if abs(r) >= 1:
        return 0.0
    t = r * math.sqrt((n - 2) / (1 - r * r))
    return float(2 * stats.t.sf(abs(t), n - 2))


def pair_inference(matrix: list[list[float | None]], n: int) -> dict[str, Any]:
    """`ci95` and `p_values` matrices for the off-diagonal pairs (None on the diagonal)."""
    d = len(matrix)
    return {
        "ci95": [
            [None if i == j else fisher_ci(matrix[i][j], n) for j in range(d)] for i in range(d)
        ],
        "p_values": [
            [None if i == j else correlation_p(matrix[i][j], n) for j in range(d)] for i in range(d)
        ],
        "ci95_method": "Fisher z",
    }
