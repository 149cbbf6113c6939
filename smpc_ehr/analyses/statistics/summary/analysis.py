"""Joint summary of numeric variables ("Table 1"): n, missing, mean, variance, sd, se,
optionally per level of a categorical variable.

How it runs: each party, over its own cohort, computes per (stratum, variable) cell
its local count of patients with a value, their mean, their variance about that mean
(population form) and its count of missing values (`common.moment_release`). These
are secret-shared as fixed-point numbers and pooled inside MPC (`moments`): the division
by the joint count happens there. Per cell, the count N is compared with the
small-cell threshold inside MPC; the coordinator may open only the bit [N >= t] and
the products of that bit with N, the pooled mean and the pooled (population)
variance, so a cell below the threshold opens as zeros. The missing count has its
own bit, ANDed with N's: N + missing is the stratum's size, which another variable's
released N and missing give, so a missing count beside a hidden N would give N.
The binary rule (`moments.binary_rule`): each party also inputs, per cell,
the secret bit "my values here are all 0 or 1" and its count of ones; where every
party's bit is 1, N x mean would be the count of ones (and N minus it, of zeros), so
the mean and variance are opened (times a third bit) only if both counts reach the
threshold; the bits are ANDed and compared inside MPC, and none of them is opened
beyond that third bit. The coordinator then derives the sample variance N/(N-1) x the population
one, sd = sqrt(variance) and se = sd / sqrt(N): exact functions of released values,
computed in the clear because a fixed-point square root would only add error.
Missing values are left out variable by variable (available-case).

With `epsilon` (differential privacy, `common.noisy_moments`): each party clips each
value to the variable's `bounds`, centres it at their midpoint and divides it by
their half-width (u in [-1, 1]); per cell it inputs its count, sum u, sum u^2 and
missing count. Inside MPC these are added up and the noise of one release for the
whole table is added (a patient is in one stratum: L2 sensitivity
sqrt(d (1 + 2 (1 + 2^-15)^2)) for d variables, in units of u); the noisy count is
compared with the threshold, and only the noisy sums of cells that pass are opened
(the missing count beside a released n, as above). The binary rule is not applied:
nothing exact is opened, and a 0/1 variable's noisy mean is a noisy count. The
coordinator computes mean = c + a sum/n (clamped to the bounds) and the sample variance
a^2 (sum_sq - sum^2/n)/(n - 1) (at least 0) from the noisy values.

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, NamedProgram, Output, Params
from smpc_ehr.analyses.common import pushdown
from smpc_ehr.analyses.common.moment_release import (
    BINARY_RULE,
    MISSING_RULE,
    decode_moments,
    moments_outputs,
    moments_program,
    stratified_moments,
)
from smpc_ehr.analyses.common.noise import NoisyRelease, requested_epsilon
from smpc_ehr.analyses.common.noisy_moments import (
    NOISE_NOTE,
    decode_sums,
    scales,
    stratified_sums,
    sums_outputs,
    sums_program,
    sums_release,
)
from smpc_ehr.analyses.common.tidy import Row
from smpc_ehr.analyses.common.variables import category_levels, cohort_filter
from smpc_ehr.analyses.statistics.summary.render import render_summary
from smpc_ehr.analyses.statistics.summary.tidy import tidy_summary
from smpc_ehr.data.records import PartyData
from smpc_ehr.data.relations import SqlSnapshot


class SummaryAnalysis(Analysis):
    """n, missing, mean, variance, sd, se per numeric variable (and stratum)."""

    name = "summary"

    def validate(self, params: Params) -> None:
        cohort_filter(params)
        if params.get("by"):
            category_levels(params["by"], params)
        if requested_epsilon(params) is not None:
            scales(params, params["variables"])

    def local_input(self, data: PartyData, params: Params) -> np.ndarray:
        local = stratified_moments if requested_epsilon(params) is None else stratified_sums
        return local(data, params, params["variables"], params.get("by"))

    def local_input_sql(self, snapshot: SqlSnapshot, params: Params) -> np.ndarray | None:
        if requested_epsilon(params) is not None:  # clipped sums: not pushed down
            return None
        return pushdown.stratified_moments(snapshot, params, params["variables"], params.get("by"))

    def outputs(self, params: Params) -> tuple[Output, ...]:
        cells = _strata(params) * len(params["variables"])
        dp = requested_epsilon(params) is not None
        return sums_outputs(cells) if dp else moments_outputs(cells)

    def noisy_releases(self, params: Params) -> tuple[NoisyRelease, ...]:
        return (sums_release(_strata(params), len(params["variables"])),)

    def secure_program(self, local: np.ndarray, params: Params, threshold: int) -> NamedProgram:
        if requested_epsilon(params) is None:
            return moments_program(local, threshold)
        (release,) = self.noisy_releases(params)
        return sums_program(local, params, release, threshold)

    def render(self, result: dict[str, Any]) -> str:
        return render_summary(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_summary(result)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        variables = list(params["variables"])
        by = params.get("by")
        levels = category_levels(by, params) if by else ("",)
        if requested_epsilon(params) is None:
            cells = decode_moments(opened)
            rules = {"missing_values": MISSING_RULE, "binary_rule": BINARY_RULE}
        else:
            cells = decode_sums(opened, scales(params, variables) * len(levels))
            rules = {"missing_values": MISSING_RULE, "noise": NOISE_NOTE}
        blocks = [
            {name: cells[s * len(variables) + v].as_json() for v, name in enumerate(variables)}
            for s in range(len(levels))
        ]
        common = {**rules, "threshold": threshold}
        if not by:
            return {"variables": blocks[0], **common}
        strata = {level: {"variables": block} for level, block in zip(levels, blocks, strict=True)}
        return {"by": by, "strata": strata, **common}


def _strata(params: Params) -> int:
    by = params.get("by")
    return len(category_levels(by, params)) if by else 1
