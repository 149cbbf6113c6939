"""Joint summary of numeric variables ("Table 1"): n, missing, mean, variance, sd, se,
optionally per level of a categorical variable.

How it runs: each party, over its own cohort, computes per (stratum, variable) cell
its local count of patients with a value, their mean, their variance about that mean
(population form) and its count of missing values (`stratified_moments`). These are
secret-shared as fixed-point numbers and pooled inside MPC (`moments`): the division
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

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common.cells import exact_int
from smpc_ehr.analyses.common.moments import (
    binary_rule,
    local_binary,
    local_moments,
    party_arrays,
    pool_moments,
    pooled_weights,
)
from smpc_ehr.analyses.common.variables import (
    category_index,
    category_levels,
    cohort_filter,
    numeric_values,
    select_cohort,
)
from smpc_ehr.analyses.statistics.summary.render import render_summary
from smpc_ehr.data.records import PartyData
from smpc_ehr.securemath.ops import SecureOps

MISSING_RULE = "excluded variable by variable (available-case)"
BINARY_RULE = (
    "a 0/1 variable's mean, variance, sd and se are released only if both its ones and "
    "its zeros reach the threshold (otherwise mean_suppressed, with n still shown)"
)
MOMENTS_OUTPUTS = ("released", "missing_released", "shown", "n", "missing", "mean", "variance")
"""The opened values per cell, by name (`moments_outputs`)."""
_FIELDS = 6
"""Local inputs per cell: count, mean, population variance, missing count, and the
binary rule's two (`moments.local_binary`: all values 0/1, count of ones)."""


def stratified_moments(
    data: PartyData,
    params: Params,
    variables: Sequence[str],
    by: str | None,
    levels: Sequence[str] | None = None,
) -> np.ndarray:
    """This party's local inputs, shape (6, strata x variables): count, mean,
    population variance, missing count, [all values 0/1] and count of ones of each
    variable in each stratum (`levels` of `by`, default all of them; one stratum,
    everyone, without `by`)."""
    cohort = select_cohort(data, params)
    groups: list[np.ndarray | None]
    if by is None:
        groups = [None]  # one stratum: everyone
    else:
        index = category_index(data, by, cohort, params)
        all_levels = category_levels(by, params)
        groups = [index == all_levels.index(level) for level in (levels or all_levels)]
    columns = [numeric_values(data, name, cohort) for name in variables]
    out = np.zeros((_FIELDS, len(groups), len(columns)))
    for s, in_group in enumerate(groups):
        for v, values in enumerate(columns):
            chosen = values if in_group is None else values[in_group]
            count, mean, variance = local_moments(chosen)
            out[:, s, v] = (count, mean, variance, chosen.size - count, *local_binary(chosen))
    return out.reshape(_FIELDS, -1)


def moments_outputs(cells: int) -> tuple[Output, ...]:
    """Per cell, the bits [N >= t] ("released"), [missing >= t and N >= t]
    ("missing_released") and [N >= t and the binary rule holds] ("shown"), then the
    first bit x N ("n"), the second x missing ("missing"), the third x the pooled mean
    ("mean") and x the pooled population variance ("variance")."""
    return tuple(Output(name, (cells,)) for name in MOMENTS_OUTPUTS)


def moments_program(local: np.ndarray, threshold: int) -> NamedProgram:
    """Pool every party's (6, cells) local inputs into `moments_outputs`
    (the binary rule: `moments.binary_rule`)."""

    async def program(ops: SecureOps) -> NamedSecrets:
        shared = party_arrays(ops, local)  # P x 6 x cells
        counts, means, variances, missing, binary, ones = (shared[:, i] for i in range(_FIELDS))
        total, weights = pooled_weights(ops, counts)
        pooled = pool_moments(ops, weights, means, None, variances)
        total_missing = ops.sum(missing, axis=0)
        flags = ops.ge_public(ops.stack([total, total_missing]), threshold)  # one batch
        released = flags[0]
        rule = binary_rule(ops, binary, ones, total, threshold)
        # ANDs of exact bits, exact: the mean under the binary rule; the missing count
        # only with N (N + missing is the stratum's size, which another variable's
        # released N and missing give: a missing count beside a hidden N would give N).
        both = ops.ge_public(
            ops.add(ops.stack([released, released]), ops.stack([rule, flags[1]])), 1.5
        )
        shown, released_missing = both[0], both[1]
        bits = [released, released_missing, shown, shown]
        values = [total, total_missing, pooled.mean_a, pooled.comoment]
        masked = ops.mul(ops.stack(bits), ops.stack(values))  # one batch of products
        bits_out = {"released": released, "missing_released": released_missing, "shown": shown}
        return {**bits_out, **{name: masked[i] for i, name in enumerate(MOMENTS_OUTPUTS[3:])}}

    return program


@dataclass(frozen=True)
class CellSummary:
    """The released statistics of one variable in one stratum (None: suppressed; a
    mean and variance are also None, with `few_ones_or_zeros`, where the binary rule
    withholds them although n is released)."""

    n: int | None
    missing: int | None
    mean: float | None
    variance: float | None
    few_ones_or_zeros: bool = False

    @property
    def sd(self) -> float | None:
        return None if self.variance is None else math.sqrt(self.variance)

    @property
    def se(self) -> float | None:
        sd = self.sd
        return None if sd is None or not self.n else sd / math.sqrt(self.n)

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "missing": self.missing,
            "mean": self.mean,
            "variance": self.variance,
            "sd": self.sd,
            "se": self.se,
            "suppressed": self.n is None,
            "mean_suppressed": self.few_ones_or_zeros,
        }


def decode_moments(opened: dict[str, np.ndarray]) -> list[CellSummary]:
    """The per-cell summaries from what `moments_program` opened."""
    bits = {name: [exact_int(v) for v in opened[name]] for name in MOMENTS_OUTPUTS[:3]}
    if any(f not in (0, 1) for flags in bits.values() for f in flags):
        raise ValueError("opened release bits are not 0/1")
    out = []
    for c, (released, missing_released, shown) in enumerate(zip(*bits.values(), strict=True)):
        if shown > released:
            raise ValueError("opened release bits are inconsistent")
        n = exact_int(opened["n"][c]) if released else None
        missing = exact_int(opened["missing"][c]) if missing_released else None
        mean = variance = None
        if shown and n is not None:
            mean = float(opened["mean"][c])
            # Sample variance from the population one; a tiny negative from rounding is 0.
            variance = max(0.0, float(opened["variance"][c])) * n / (n - 1) if n > 1 else None
        out.append(CellSummary(n, missing, mean, variance, bool(released and not shown)))
    return out


class SummaryAnalysis(Analysis):
    """n, missing, mean, variance, sd, se per numeric variable (and stratum)."""

    name = "summary"

    def validate(self, params: Params) -> None:
        cohort_filter(params)
        if params.get("by"):
            category_levels(params["by"], params)

    def local_input(self, data: PartyData, params: Params) -> np.ndarray:
        return stratified_moments(data, params, params["variables"], params.get("by"))

    def outputs(self, params: Params) -> tuple[Output, ...]:
        by = params.get("by")
        strata = len(category_levels(by, params)) if by else 1
        return moments_outputs(strata * len(params["variables"]))

    def secure_program(self, local: np.ndarray, params: Params, threshold: int) -> NamedProgram:
        return moments_program(local, threshold)

    def render(self, result: dict[str, Any]) -> str:
        return render_summary(result)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        variables = list(params["variables"])
        by = params.get("by")
        levels = category_levels(by, params) if by else ("",)
        cells = decode_moments(opened)
        blocks = [
            {name: cells[s * len(variables) + v].as_json() for v, name in enumerate(variables)}
            for s in range(len(levels))
        ]
        common = {
            "missing_values": MISSING_RULE,
            "binary_rule": BINARY_RULE,
            "threshold": threshold,
        }
        if not by:
            return {"variables": blocks[0], **common}
        strata = {level: {"variables": block} for level, block in zip(levels, blocks, strict=True)}
        return {"by": by, "strata": strata, **common}
