"""The group-comparison p-values of a Table 1, computed by the coordinator from released
values only (post-processing: they add nothing to what the table shows).

Continuous (mean (SD) rows): Welch's t-test for two groups (`ttest.welch`, as scipy's
ttest_ind(equal_var=False)) and the one-way ANOVA F test for more (as scipy's
f_oneway), from each group's n, mean and sample variance. Categorical: Pearson's
chi-square test of the groups x levels table without its missing row (as scipy's
chi2_contingency, no continuity correction). A test is given only when every group's
values it needs are released; median [IQR] rows get none (no rank test in this
version). Groups without patients, and levels no patient has, take no part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from smpc_ehr.analyses.common.moment_release import CellSummary
from smpc_ehr.analyses.common.welch import welch

WELCH = "Welch two-sample t-test"
ANOVA = "one-way ANOVA"
CHI2 = "Pearson chi-square test"


def continuous_test(groups: Sequence[tuple[int | None, float | None, float | None]]) -> dict:
    """The test of (n, mean, sample variance) per group, or a reason it is not given;
    groups known to be empty (n = 0) take no part."""
    groups = [g for g in groups if g[0] != 0]
    if len(groups) < 2:
        return {"p": None, "test": None, "why_no_test": "fewer than 2 groups have patients"}
    if any(n is None or mean is None or var is None for n, mean, var in groups):
        return {"p": None, "test": None, "why_no_test": "a group's mean or SD is not released"}
    if any((n or 0) < 2 for n, _, _ in groups):
        return {"p": None, "test": None, "why_no_test": "a group has fewer than 2 patients"}
    if len(groups) == 2:
        (n1, m1, v1), (n2, m2, v2) = groups
        try:
            result = welch(CellSummary(n1, None, m1, v1), CellSummary(n2, None, m2, v2))
        except ValueError as exc:
            return {"p": None, "test": None, "why_no_test": str(exc)}
        return {"p": result["p_value"], "test": WELCH, "test_statistic": result["statistic"]}
    return anova(groups)


def anova(groups: Sequence[tuple[Any, Any, Any]]) -> dict[str, Any]:
    """One-way ANOVA F test from group n, mean and sample variance (scipy's f_oneway)."""
    from scipy.stats import f

    total = sum(n for n, _, _ in groups)
    grand = sum(n * m for n, m, _ in groups) / total
    between = sum(n * (m - grand) ** 2 for n, m, _ in groups)
    within = sum((n - 1) * v for n, _, v in groups)
    df1, df2 = len(groups) - 1, total - len(groups)
    if within <= 0:
        return {"p": None, "test": None, "why_no_test": "no variance within the groups"}
    statistic = (between / df1) / (within / df2)
    return {"p": float(f.sf(statistic, df1, df2)), "test": ANOVA, "test_statistic": statistic}


def categorical_test(table: Sequence[Sequence[int | None]]) -> dict[str, Any]:
    """Chi-square test of a groups x levels table of released counts (None: hidden)."""
    from scipy.stats import chi2_contingency

    if any(n is None for row in table for n in row):
        return {"p": None, "test": None, "why_no_test": "a group's count of a level is hidden"}
    counts = np.array(table, dtype=float)
    counts = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]  # empty groups, levels
    if min(counts.shape) < 2:
        return {"p": None, "test": None, "why_no_test": "fewer than 2 groups or levels occur"}
    test = chi2_contingency(counts, correction=False)
    return {"p": float(test.pvalue), "test": CHI2, "test_statistic": float(test.statistic)}
