"""Released counts: a table of joint counts, each cell compared with the small-cell
threshold inside MPC and opened only if it reaches it.

Shared by every analysis that releases counts (the joint count, histograms,
contingency tables, odds ratios). Each party inputs its vector of cell counts (the
layout is public); inside MPC the vectors are summed, each total t is compared with
the threshold, and the coordinator may open only the bit [t >= threshold] and the
product of that bit with t. A suppressed cell's value is therefore never revealed,
not even as shares that could be recombined (its opened product is 0).

With `epsilon` (differential privacy, common/noise.py), every cell of the vector gets
distributed discrete Gaussian noise inside MPC before the threshold test
(`noisy_counts_program`), so only noisy totals are compared and opened. A patient is
counted at one hospital and in one cell of the layout (the cells partition the
cohort: strata, bins, table cells, the missing cell), so one patient changes one cell
by 1: the L2 sensitivity of the whole vector is 1 (`cell_release`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common.noise import NoisyRelease, add_int_noise
from smpc_ehr.securemath.boolean import all_of
from smpc_ehr.securemath.constants import COUNT_INPUT_BITS
from smpc_ehr.securemath.ops import Secret, SecureOps


def released_counts_outputs(cells: int) -> tuple[Output, ...]:
    """Per cell, the bit [total >= threshold] ("released") and bit * total ("counts")."""
    return (Output("released", (cells,)), Output("counts", (cells,)))


Perturb = Callable[[SecureOps, Secret], Secret]
"""A step between summing and comparing: the totals in, (noisy) totals out."""


def released_counts_program(
    local: Sequence[int], threshold: int, perturb: Perturb | None = None
) -> NamedProgram:
    """The secure program: this party's cell counts in, per cell (bit, bit * total) out;
    `perturb` (noise for differential privacy) applies to the totals before the
    threshold test, so only perturbed totals are compared and opened."""

    async def program(ops: SecureOps) -> NamedSecrets:
        totals = ops.sum_vectors(ops.input_ints(list(local), COUNT_INPUT_BITS))
        if perturb is not None:
            totals = perturb(ops, totals)
        released = ops.ge_public(totals, threshold)
        return {"released": released, "counts": ops.mul(released, totals)}

    return program


CELL_SENSITIVITY = 1
"""L2 sensitivity of a vector of cells partitioning the cohort: one patient, one
hospital, one cell."""


def cell_release(cells: int) -> NoisyRelease:
    """The one noisy release of a vector of `cells` cell counts (the whole rho)."""
    return NoisyRelease("counts", cells, CELL_SENSITIVITY)


def cell_noise(params: Params, release: NoisyRelease, bits: int = COUNT_INPUT_BITS) -> Perturb:
    """Secret cell totals (`bits`-bit integers) plus `release`'s integer noise (none for
    an exact run)."""

    def noisy(ops: SecureOps, totals: Secret) -> Secret:
        return add_int_noise(ops, totals, params, release, bits)

    return noisy


def noisy_counts_program(
    local: Sequence[int], params: Params, threshold: int, release: NoisyRelease
) -> NamedProgram:
    """`released_counts_program` with `release`'s noise added to the totals inside MPC
    before the threshold test (none for an exact run: the program is the exact one)."""
    return released_counts_program(local, threshold, cell_noise(params, release))


def noise_variance(result: dict[str, Any]) -> float:
    """The noise variance of each released cell of a finished `release` (0 if exact)."""
    dp = result.get("dp")
    return 0.0 if dp is None else float(dp["noise_sd"]) ** 2


class NoisyCellsAnalysis(Analysis):
    """An analysis releasing noisy cells whose estimates need each cell's noise
    variance, which depends on the job's setting (backend, parties) and so is known only
    at `release`, after `finalize`: `with_cell_noise` completes the result then."""

    def with_noise(self, result: dict[str, Any], params: Params) -> None:
        variance = noise_variance(result)
        if variance:
            self.with_cell_noise(result, params, variance)

    def with_cell_noise(self, result: dict[str, Any], params: Params, variance: float) -> None:
        """Adjust a differentially private result in place, given each cell's noise
        variance (default: nothing to adjust)."""
        del result, params, variance


def decode_released(opened: dict[str, np.ndarray]) -> list[int | None]:
    """Per cell, the released total or None (suppressed), from what the program opened."""
    bits = [exact_int(v) for v in opened["released"]]
    masked_totals = [exact_int(v) for v in opened["counts"]]
    result: list[int | None] = []
    for bit, masked in zip(bits, masked_totals, strict=True):
        if bit not in (0, 1) or (bit == 0 and masked != 0) or masked < 0:
            raise ValueError("opened count outputs are inconsistent")
        result.append(masked if bit else None)
    return result


def exact_int(value: float) -> int:
    """An opened count as an integer; fixed-point backends are off by at most 2^-16."""
    nearest = round(value)
    if abs(value - nearest) > 0.01:
        raise ValueError(f"an opened count output ({value}) is not an integer")
    return int(nearest)


def first_smallest(ops: SecureOps, values: Secret, eligible: Secret | None = None) -> Secret:
    """The secret one-hot (len(values)) of the first smallest of `values` among those
    whose `eligible` bit is 1 (None: all; all zeros if none is): one batch of
    comparisons [v_b < v_a] for the pairs a < b, then products only."""
    count = values.shape[0]
    pairs = [(a, b) for a in range(count) for b in range(a + 1, count)]
    later_smaller = ops.lt(
        ops.stack([values[b : b + 1] for _, b in pairs]),
        ops.stack([values[a : a + 1] for a, _ in pairs]),
    )  # pairs x 1
    ones = ops.add_public(ops.mul_public(later_smaller, 0.0), 1.0)
    earlier_wins = ops.sub(ones, later_smaller)  # [v_a <= v_b]: ties to the lower index
    winners = ops.concatenate([earlier_wins, later_smaller])  # 2 pairs x 1: a's, then b's
    if eligible is not None:  # c also beats c' if c' is not eligible: 1 - e_c' (1 - win)
        opponents = [b for _, b in pairs] + [a for a, _ in pairs]
        barred = ops.stack([eligible[o : o + 1] for o in opponents])
        losses = ops.sub(ops.concatenate([ones, ones]), winners)
        winners = ops.sub(ops.concatenate([ones, ones]), ops.mul(barred, losses))
    beats: list[list[Secret]] = [[] for _ in range(count)]
    for i, (a, b) in enumerate(pairs):
        beats[a].append(winners[i])
        beats[b].append(winners[len(pairs) + i])
    if eligible is not None:
        for c in range(count):
            beats[c].append(eligible[c : c + 1])
    columns = [ops.concatenate(bits) for bits in beats]  # each (count - 1 [+ 1],)
    return all_of(ops, ops.stack(columns, axis=1))


def complementary(ops: SecureOps, shown: Secret, values: Secret) -> tuple[Secret, Secret]:
    """Complementary suppression of one partition (cells that add up to a total someone
    may know): if any cell is hidden (`shown` bit 0), the smallest shown one is hidden
    too, so the hidden cells together hold at least the threshold and none of them is
    the total minus the shown ones. Returns the new bits (exact only up to CrypTen's
    product rounding: callers pass them through `ops.exact_bits` before masking) and the secret bit
    [no cell was hidden]."""
    g = values.shape[0]
    whole = all_of(ops, ops.reshape(shown, (g, 1)))  # (1,)
    smallest = first_smallest(ops, values, shown)
    some_hidden = ops.reshape(
        ops.stack([ops.add_public(ops.mul_public(whole, -1.0), 1.0)] * g), (g,)
    )
    return ops.sub(shown, ops.mul(some_hidden, smallest)), whole
