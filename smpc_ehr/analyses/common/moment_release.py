"""The released moments of numeric variables per cell (stratum x variable): the local
inputs, the MPC program that pools them and applies the small-cell and binary rules,
and the decoder of what it opens. Shared by the summary and the t-test, which release
exactly these cells.

How it runs: each party, over its own cohort, computes per cell its local count of
patients with a value, their mean, their variance about that mean (population form),
its count of missing values and the binary rule's two inputs (`stratified_moments`).
These are pooled inside MPC (`moments_program`); the coordinator may open only the
bits of `moments_outputs` and their products with the pooled values, so a cell below
the threshold opens as zeros (`decode_moments`). What that leaks is stated in each
analysis package's docstring.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Output, Params
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
    Cohort,
    category_index,
    category_levels,
    numeric_values,
    select_cohort,
)
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
    groups = stratum_masks(data, params, cohort, by, levels)
    columns = [numeric_values(data, name, cohort) for name in variables]
    out = np.zeros((_FIELDS, len(groups), len(columns)))
    for s, in_group in enumerate(groups):
        for v, values in enumerate(columns):
            chosen = values if in_group is None else values[in_group]
            count, mean, variance = local_moments(chosen)
            out[:, s, v] = (count, mean, variance, chosen.size - count, *local_binary(chosen))
    return out.reshape(_FIELDS, -1)


def stratum_masks(
    data: PartyData,
    params: Params,
    cohort: Cohort,
    by: str | None,
    levels: Sequence[str] | None = None,
) -> list[np.ndarray | None]:
    """Per stratum, the mask of the cohort's patients in it (`levels` of `by`, default
    all of them; one stratum, None for everyone, without `by`). The strata are disjoint:
    a patient is in at most one."""
    if by is None:
        return [None]
    index = category_index(data, by, cohort, params)
    all_levels = category_levels(by, params)
    return [index == all_levels.index(level) for level in (levels or all_levels)]


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
