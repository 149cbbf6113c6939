"""Noisy clipped moments: the differentially private path of the summary, the t-test
and the correlation (with `epsilon`; the exact path, `moment_release` and the
correlation's pooled moments, is untouched).

Units. Each value x of a numeric variable is clipped locally to its public bounds
[low, high] (`clipping`) and expressed as u = (x - c) / a, with c = (low + high) / 2
the midpoint and a = (high - low) / 2 the half-width, so |u| <= 1. Each party sums,
per cell, the count n, sum u and sum u^2 (the correlation also sum u_i u_j), and
inputs them secret-shared as fixed-point numbers. Every such sum is bounded by the
cell's count, so over fewer than 2^30 patients (`COUNT_BITS`) it stays in the
fixed-point range |v| < 2^31 of both backends; raw sums of squares in the value's own
units would not (300,000 patients times a squared half-width of 100^2 is 3e9).

Sensitivity. Adding or removing one patient changes, for each variable, either its
count by 1 and its two sums by at most 1 each (|u| <= 1), or its missing count by 1,
in the one cell (stratum) the patient is in. Rounding adds a slack `SLACK` to each
sum: the local sums are correctly rounded float sums (`math.fsum`: at most 2^-23
from the real sum below 2^30, before and after) and each party's input is rounded to
the fixed-point grid (2^-16 on CrypTen, 2^-32 on MPyC: at most one unit between the two
roundings); 2^-22 + 2^-16 < 2^-15 = SLACK. Counts are exact.

The noise (`noise.add_fixed_noise`, the distributed discrete Gaussian on the 2^-f
grid) is added to every total before anything is compared: the threshold test is on
the noisy count, and only the noisy statistics of cells that pass are opened.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common.cells import exact_int
from smpc_ehr.analyses.common.clipping import UnitMap, clip_bounds
from smpc_ehr.analyses.common.moment_release import CellSummary, stratum_masks
from smpc_ehr.analyses.common.moments import party_arrays
from smpc_ehr.analyses.common.noise import NoisyRelease, add_fixed_noise
from smpc_ehr.analyses.common.variables import numeric_values, select_cohort, value_limit
from smpc_ehr.data.records import PartyData
from smpc_ehr.securemath.ops import Secret, SecureOps

SLACK = 2.0**-15
"""The most rounding adds to a sum's sensitivity (module docstring)."""
SUMS_OUTPUTS = ("released", "missing_released", "n", "sum", "sum_sq", "missing")
"""The opened values per cell of the noisy summary (`sums_outputs`)."""
NOISE_NOTE = (
    "differentially private: n and missing are noisy counts; the other statistics come "
    "from noisy sums of the clipped values in half-widths from the bounds' midpoint (the "
    "noise sd below is per count and per such sum)"
)


Scale = UnitMap[float]
"""A variable's public midpoint c and half-width a: u = (clip(x) - c) / a."""


def scales(params: Params, names: Sequence[str]) -> list[Scale]:
    """Each variable's map from `bounds` (TemplateError if they are missing or wrong)."""
    return [UnitMap(low, high) for low, high in clip_bounds(params, names).values()]


# ----------------------------------------------------------------- summary and t-test


def stratified_sums(
    data: PartyData,
    params: Params,
    variables: Sequence[str],
    by: str | None,
    levels: Sequence[str] | None = None,
) -> np.ndarray:
    """This party's local inputs, shape (4, strata x variables): per cell the count n,
    sum u, sum u^2 of the clipped values (`UnitMap.to_unit`) and the missing count."""
    cohort = select_cohort(data, params)
    groups = stratum_masks(data, params, cohort, by, levels)
    units = [
        s.to_unit(numeric_values(data, name, cohort, value_limit(params)))
        for s, name in zip(scales(params, variables), variables, strict=True)
    ]
    out = np.zeros((4, len(groups), len(units)))
    for g, in_group in enumerate(groups):
        for v, column in enumerate(units):
            chosen = column if in_group is None else column[in_group]
            known = chosen[~np.isnan(chosen)]
            out[:, g, v] = (
                known.size,
                math.fsum(known),
                math.fsum(known * known),
                chosen.size - known.size,
            )
    return out.reshape(4, -1)


def sums_release(strata: int, variables: int) -> NoisyRelease:
    """The one noisy release of the summary's table (all of it: a patient is in one
    stratum): per variable, n, sum u and sum u^2 (1, 1 + SLACK, 1 + SLACK) or the
    missing count (1) change; the whole job's rho."""
    l2 = math.sqrt(variables * (1 + 2 * (1 + SLACK) ** 2))
    return NoisyRelease("moments", 4 * strata * variables, l2)


def sums_outputs(cells: int) -> tuple[Output, ...]:
    """Per cell, the bits [noisy n >= t] ("released") and [noisy missing >= t and
    released] ("missing_released"), then the first bit times the noisy n, sum u and
    sum u^2, and the second times the noisy missing count."""
    return tuple(Output(name, (cells,)) for name in SUMS_OUTPUTS)


def noisy_totals(
    ops: SecureOps, local: np.ndarray, params: Params, release: NoisyRelease
) -> Secret:
    """Every party's local sums, secret-shared, added up, plus the noise of `release`."""
    totals = ops.sum(party_arrays(ops, local), axis=0)
    return add_fixed_noise(ops, totals, params, release)


def sums_program(
    local: np.ndarray, params: Params, release: NoisyRelease, threshold: int
) -> NamedProgram:
    """Noise on every party's (4, cells) sums, then the small-cell test on the noisy
    counts and the masks of `sums_outputs` (the missing count, as in the exact path,
    only beside a released n: n + missing is the stratum's size)."""

    async def program(ops: SecureOps) -> NamedSecrets:
        totals = noisy_totals(ops, local, params, release)
        flags = ops.ge_public(ops.stack([totals[0], totals[3]]), threshold)
        released = flags[0]
        both = ops.ge_public(ops.add(released, flags[1]), 1.5)  # AND of exact bits
        masked = ops.mul(ops.stack([released, released, released, both]), totals)
        bits = {"released": released, "missing_released": both}
        return {**bits, **{name: masked[i] for i, name in enumerate(SUMS_OUTPUTS[2:])}}

    return program


def released_count(value: float) -> int:
    """A noisy count as released: rounded to an integer (post-processing)."""
    return round(float(value))


def moments_of(n: int, sum_u: float, sum_sq: float, scale: Scale) -> tuple[float, float | None]:
    """Mean and sample variance in the value's units from noisy n, sum u and sum u^2:
    mean = c + a sum/n, clamped to the bounds (the clipped values' mean lies there);
    variance = a^2 (sum_sq - sum^2/n) / (n - 1), at least 0 (None for n < 2)."""
    mean = min(max(scale.centre + scale.half * sum_u / n, scale.low), scale.high)
    if n < 2:
        return mean, None
    variance = scale.half**2 * max(0.0, (sum_sq - sum_u * sum_u / n) / (n - 1))
    return mean, variance


def mean_noise_variance(n: int, mean: float, scale: Scale, noise_sd: float) -> float:
    """The DP noise's variance in a mean from noisy sums, to first order (delta
    method): a^2 sd^2 (1 + ubar^2) / n^2, with ubar the mean in units and `noise_sd`
    each noisy total's noise sd (in units)."""
    ubar = (mean - scale.centre) / scale.half
    return scale.half**2 * noise_sd**2 * (1 + ubar * ubar) / (n * n)


def decode_sums(
    opened: Mapping[str, np.ndarray], cell_scales: Sequence[Scale]
) -> list[CellSummary]:
    """The per-cell summaries from what `sums_program` opened (one Scale per cell)."""
    bits = {name: [exact_int(v) for v in opened[name]] for name in SUMS_OUTPUTS[:2]}
    if any(f not in (0, 1) for flags in bits.values() for f in flags):
        raise ValueError("opened release bits are not 0/1")
    out = []
    for c, scale in enumerate(cell_scales):
        released, missing_released = bits["released"][c], bits["missing_released"][c]
        if missing_released > released:
            raise ValueError("opened release bits are inconsistent")
        missing = released_count(opened["missing"][c]) if missing_released else None
        if not released:
            out.append(CellSummary(None, missing, None, None))
            continue
        n = released_count(opened["n"][c])
        if n < 1:  # only with a threshold below 1
            out.append(CellSummary(n, missing, None, None))
            continue
        mean, variance = moments_of(n, float(opened["sum"][c]), float(opened["sum_sq"][c]), scale)
        out.append(CellSummary(n, missing, mean, variance))
    return out
