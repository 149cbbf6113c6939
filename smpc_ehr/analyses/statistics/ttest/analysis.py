"""Welch two-sample t-test of a numeric variable between two groups, across hospitals.

How it runs: the released moments of the joint summary (`common.moment_release`)
with one variable and two strata, the group's two levels (for sex: F and M). Each
group's n, mean and variance are pooled inside MPC and released only if n reaches the
small-cell threshold (decided inside MPC). From the two released groups the
coordinator computes, in the clear, Welch's t = (mean_2 - mean_1) / sqrt(v_1/n_1 +
v_2/n_2), the Welch-Satterthwaite degrees of freedom, the two-sided p-value and the
95% confidence interval of the difference: as scipy.stats.ttest_ind(second, first,
equal_var=False).

With `epsilon` (differential privacy): the summary's noisy path (`common.noisy_moments`)
with the same one variable and two strata: each group's noisy count, sum u and sum u^2
of the clipped, centred and scaled values (one release for both groups: a patient is
in one group), suppressed on the noisy count. Welch's test is computed from the noisy
group means and variances, with the noise's own variance in the mean of each group
(`noisy_moments.mean_noise_variance`: a^2 s^2 (1 + ubar^2) / n^2, the delta method,
s the released noise sd) added to the squared standard error and counted as known
(no degrees of freedom) in the Welch-Satterthwaite formula. The noise in the variances
is not carried (at the sizes a test needs it is small beside the sampling error).

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, NamedProgram, Output, Params
from smpc_ehr.analyses.common import pushdown
from smpc_ehr.analyses.common.moment_release import (
    BINARY_RULE,
    MISSING_RULE,
    CellSummary,
    decode_moments,
    moments_outputs,
    moments_program,
    stratified_moments,
)
from smpc_ehr.analyses.common.noise import NoisyRelease, requested_epsilon
from smpc_ehr.analyses.common.noisy_moments import (
    NOISE_NOTE,
    Scale,
    decode_sums,
    mean_noise_variance,
    scales,
    stratified_sums,
    sums_outputs,
    sums_program,
    sums_release,
)
from smpc_ehr.analyses.common.tidy import Row
from smpc_ehr.analyses.common.variables import category_levels, cohort_filter
from smpc_ehr.analyses.common.welch import welch
from smpc_ehr.analyses.statistics.ttest.render import render_ttest
from smpc_ehr.analyses.statistics.ttest.tidy import tidy_ttest
from smpc_ehr.data.records import PartyData
from smpc_ehr.data.relations import SqlSnapshot
from smpc_ehr.errors import TemplateError

METHOD = "Welch two-sample t-test (unequal variances), two-sided"


def group_levels(group: str, params: Params) -> tuple[str, str]:
    """The two levels compared, in order (the difference is second minus first)."""
    levels = category_levels(group, params)
    if group == "sex":
        return ("F", "M")
    if len(levels) != 2:
        raise TemplateError(
            f"group {group!r} has {len(levels)} levels; a t-test compares two (use "
            "condition, a 0/1 column or sex)"
        )
    return (levels[0], levels[1])


class TTestAnalysis(Analysis):
    """Welch's two-sample t-test between the two levels of a group variable."""

    name = "ttest"

    def validate(self, params: Params) -> None:
        cohort_filter(params)
        group_levels(params["group"], params)
        if requested_epsilon(params) is not None:
            scales(params, [params["variable"]])

    def local_input(self, data: PartyData, params: Params) -> np.ndarray:
        levels = group_levels(params["group"], params)
        local = stratified_moments if requested_epsilon(params) is None else stratified_sums
        return local(data, params, [params["variable"]], params["group"], levels)

    def local_input_sql(self, snapshot: SqlSnapshot, params: Params) -> np.ndarray | None:
        if requested_epsilon(params) is not None:  # clipped sums: not pushed down
            return None
        levels = group_levels(params["group"], params)
        return pushdown.stratified_moments(
            snapshot, params, [params["variable"]], params["group"], levels
        )

    def outputs(self, params: Params) -> tuple[Output, ...]:
        dp = requested_epsilon(params) is not None
        return sums_outputs(2) if dp else moments_outputs(2)  # the two groups

    def noisy_releases(self, params: Params) -> tuple[NoisyRelease, ...]:
        return (sums_release(2, 1),)

    def secure_program(self, local: np.ndarray, params: Params, threshold: int) -> NamedProgram:
        if requested_epsilon(params) is None:
            return moments_program(local, threshold)
        (release,) = self.noisy_releases(params)
        return sums_program(local, params, release, threshold)

    def render(self, result: dict[str, Any]) -> str:
        return render_ttest(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_ttest(result)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        levels = group_levels(params["group"], params)
        dp = requested_epsilon(params) is not None
        if dp:
            first, second = decode_sums(opened, scales(params, [params["variable"]]) * 2)
        else:
            first, second = decode_moments(opened)
        result: dict[str, Any] = {
            "variable": params["variable"],
            "group": params["group"],
            "levels": list(levels),
            "groups": {levels[0]: first.as_json(), levels[1]: second.as_json()},
            "method": METHOD,
            "estimate_is": f"mean({levels[1]}) - mean({levels[0]})",
            "statistic": None,
            "df": None,
            "p_value": None,
            "estimate": None,
            "ci95": None,
            "test_refused": None,
            "missing_values": MISSING_RULE,
            **(
                {"noise": NOISE_NOTE, "noise_variance": None}
                if dp
                else {"binary_rule": BINARY_RULE}
            ),
            "threshold": threshold,
        }
        small = [lvl for lvl, g in zip(levels, (first, second), strict=True) if g.n is None]
        if small:
            result["test_refused"] = (
                f"group(s) {', '.join(small)} have fewer than {threshold} patients with a "
                "value: the test would disclose them"
            )
        elif first.few_ones_or_zeros or second.few_ones_or_zeros:
            result["test_refused"] = (
                f"{params['variable']!r} is a 0/1 variable with fewer than {threshold} ones "
                "or zeros in a group: its mean would disclose that count"
            )
        elif (first.n or 0) < 2 or (second.n or 0) < 2:
            result["test_refused"] = "each group needs at least 2 patients"
        elif not dp:  # a DP test needs the noise's sd: `release` computes it
            try:
                result.update(welch(first, second))
            except ValueError as exc:
                result["test_refused"] = str(exc)
        return result

    def with_noise(self, result: dict[str, Any], params: Params) -> None:
        """Welch's test with the released noise's variance in each group's mean
        (`dp_welch`)."""
        if result["test_refused"] is None:
            scale = scales(params, [params["variable"]])[0]
            groups = [result["groups"][level] for level in result["levels"]]
            try:
                result.update(dp_welch(groups, scale, result["dp"]["noise_sd"]))
            except ValueError as exc:
                result["test_refused"] = str(exc)


def dp_welch(groups: Sequence[dict[str, Any]], scale: Scale, noise_sd: float) -> dict[str, Any]:
    """Welch's test from two released noisy groups (as_json cells), with the DP noise's
    variance in each mean added to the squared standard error (`welch`'s `noise`)."""
    cells = [CellSummary(g["n"], g["missing"], g["mean"], g["variance"]) for g in groups]
    noise = sum(mean_noise_variance(c.n or 0, c.mean or 0.0, scale, noise_sd) for c in cells)
    method = f"{METHOD}; its standard error includes the noise's variance"
    return {**welch(cells[0], cells[1], noise), "noise_variance": noise, "method": method}
