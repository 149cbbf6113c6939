"""Quantiles of a numeric variable over the joint cohort, to a stated resolution,
revealing only the quantiles themselves (rounded up to a public grid).

How it runs: the template fixes a public grid g_k = low + k * step, k = 0..B
(B = (high - low) / step, at most MAX_BINS). Each party, in plaintext on its own
cohort (the joint count's cohort parameters; missing values left out and counted),
counts its values n and, for every grid point, cum_k = #(x <= g_k) (a value exactly on a grid
point belongs to that point). Inside MPC, with N = sum of the n and C_k = sum of the
cum_k over the parties, and q_i = p_i / 10000 (q has at most 4 decimals, so p_i is
an integer and every comparison is exact on secret integers), for each q_i:

    bit_{i,k} = [10000 * C_k < p_i * N]     (k = 0..B)
    index_i   = sum_k bit_{i,k}              (in 0..B+1)

Because C_k does not decrease with k, g_{index_i} is the smallest grid point g with
#(x <= g) >= q_i * N: numpy's quantile with method="inverted_cdf", rounded up to the
grid (so it is within one step of the exact quantile of the pooled data). Index 0
means the quantile is at or below `low`, index B+1 that it is above `high`.
The bits are 1...1 0...0, so index_i is found without comparing at every grid point:
the points are laid out in S x S blocks (S = ceil(sqrt(B + 1))); comparisons at the
last point of each block find the block of the crossing (a secret one-hot vector),
one secret matrix product picks that block's values, and comparing those gives the
position inside it. That is 2 S comparisons per q instead of B + 1, and every
intermediate stays secret.
The products with the public constants 10000 and p_i are linear, so each party forms
p_i * n - 10000 * cum_k (and min(p_i, 10000 - p_i) * n) from its own counts and
secret-shares those integers; their sums inside MPC are exactly the values above.

Disclosure control, inside MPC: quantile i is released only if
min(p_i, 10000 - p_i) * N >= 10000 * threshold, i.e. at least `threshold` patients
lie on each side of it (q_i * N >= threshold and (1 - q_i) * N >= threshold). So
no released quantile sits at or next to one patient's extreme value: there is no
minimum or maximum in disguise (q = 0.01 over 50 patients is suppressed). The same
rule covers a 0/1 variable, whose quantile is 0 or 1 (the zeros reach q N, or the
ones exceed (1 - q) N): a released quantile bounds each count only by a number of at
least the threshold, so even many q's pin down no count of ones or zeros below it
(unlike a mean with N: `summary`'s binary rule). N and the
missing count are each released only if at least the threshold. The coordinator
opens, per q, the bit `released` and released * index, and for N and the missing
count their bits and the bits times the counts: a suppressed quantile's index (or a
suppressed count) is never revealed, not even as shares that could be recombined
(its opened product is 0).

Why a search inside MPC rather than an interactive bisection:
a bisection opens one comparison per step, and its path (which half holds the
quantile, step after step) is a function of the quantile itself, so revealing only
the quantile, as here, is at least as private as any bisection to the same
resolution. It also needs two rounds of comparisons instead of log2(B) rounds each
with a recount by every party.

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common.cells import (
    NoisyCellsAnalysis,
    Perturb,
    cell_noise,
    cell_release,
    exact_int,
)
from smpc_ehr.analyses.common.grid import block_size, crossing_indices, grid
from smpc_ehr.analyses.common.noise import NoisyRelease, requested_epsilon
from smpc_ehr.analyses.common.tidy import Row
from smpc_ehr.analyses.common.variables import (
    cohort_filter,
    numeric_values,
    select_cohort,
    value_limit,
)
from smpc_ehr.analyses.statistics.quantiles.render import render_quantiles
from smpc_ehr.analyses.statistics.quantiles.tidy import tidy_quantiles
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError
from smpc_ehr.securemath.ops import Secret, SecureOps

SCALE = 10_000
"""q is given to 4 decimals: q * SCALE is an integer p, and comparisons are exact."""
QUANTILE_BITS = 48
"""Secret integers of 48 bits: SCALE * N stays below 2^47 for N up to 10^10."""
MAX_QS = 9
Q_MIN, Q_MAX = 0.01, 0.99
METHOD = (
    "smallest grid point g with #(x <= g) >= q*n "
    "(numpy 'inverted_cdf' on a grid of step `resolution`)"
)
DP_METHOD = (
    "differentially private: the smallest grid point g at which the increasing "
    "rearrangement of the noisy counts #(x <= g) reaches q*n~, n~ the sum of the noisy "
    "grid cells (the quantile of the noisy histogram on a grid of step `resolution`)"
)
BELOW_RANGE = "below_range"
ABOVE_RANGE = "above_range"


def scaled_qs(params: Params) -> list[int]:
    """p_i = q_i * SCALE, integers; TemplateError for a q outside the rules."""
    qs = list(params["q"])
    if not 1 <= len(qs) <= MAX_QS:
        raise TemplateError(f"q needs 1 to {MAX_QS} values, got {len(qs)}")
    scaled = []
    for q in qs:
        if not Q_MIN <= q <= Q_MAX:
            raise TemplateError(f"q = {q:g} is outside {Q_MIN}..{Q_MAX}")
        p = round(q * SCALE)
        if abs(q * SCALE - p) > 1e-6:
            raise TemplateError(f"q = {q!r} has more than 4 decimals; round it to 4 at most")
        scaled.append(p)
    return scaled


def quantiles_outputs(qs: int) -> tuple[Output, ...]:
    """Per q the bit "released" and released * index ("indices"), then for N and the
    missing count M the bits [. >= threshold] ("counts_released") and each bit times
    its count ("counts")."""
    return (
        Output("released", (qs,)),
        Output("indices", (qs,)),
        Output("counts_released", (2,)),
        Output("counts", (2,)),
    )


def quantiles_program(local: Sequence[int], scaled: Sequence[int], threshold: int) -> NamedProgram:
    """The secure program: this party's [n, missing, cum_0..cum_B] in,
    `quantiles_outputs` out.

    The crossing is found in two steps over an S x S layout of the grid points: the
    comparisons at the last point of each block of S find the block (kept secret, as a
    one-hot vector), one secret matrix product picks that block's values, and their
    comparisons give the position inside it: 2 S comparisons per q instead of B + 1.
    """
    n, missing, cum = int(local[0]), int(local[1]), [int(c) for c in local[2:]]
    side = block_size(len(cum) - 1)
    # Grid points beyond B (padding to S x S) hold every value: their bit is 0.
    cum += [n] * (side * side - len(cum))
    # Public integer constants times this party's counts: linear, so formed here and
    # summed inside MPC into p_i * N - SCALE * C_k and min(p_i, SCALE - p_i) * N.
    differences = [[p * n - SCALE * c for c in cum] for p in scaled]
    margins = [min(p, SCALE - p) * n for p in scaled]

    async def program(ops: SecureOps) -> NamedSecrets:
        def joint(values: Sequence[int]) -> Secret:
            return ops.sum_vectors(ops.input_ints(list(values), QUANTILE_BITS))

        # below[k] = [SCALE * C_k < p_i * N] = [p_i * N - SCALE * C_k >= 1], 1...1 0...0
        blocks = [ops.reshape(joint(d), (side, side)) for d in differences]
        index = crossing_indices(ops, blocks)
        return released_quantiles(ops, index, joint(margins), joint([n, missing]), threshold)

    return program


def released_quantiles(
    ops: SecureOps, index: Secret, margins: Secret, counts: Secret, threshold: int
) -> NamedSecrets:
    """The outputs from the secret grid indices, the margins min(p_i, SCALE - p_i) * N
    and the counts [N, missing]: a quantile only with `threshold` patients either side,
    a count only if it reaches the threshold."""
    released = ops.ge_public(margins, SCALE * threshold)
    counts_released = ops.ge_public(counts, threshold)
    return {
        "released": released,
        "indices": ops.mul(released, index),
        "counts_released": counts_released,
        "counts": ops.mul(counts_released, counts),
    }


def grid_cells(local: Sequence[int]) -> list[int]:
    """This party's [n, missing, cum_0..cum_B] as the cells a patient is in: the grid
    cells (-inf, g_0], (g_0, g_1], ..., (g_(B-1), g_B], (g_B, inf), then missing."""
    n, missing, cum = int(local[0]), int(local[1]), [int(c) for c in local[2:]]
    return [cum[0], *(b - a for a, b in pairwise(cum)), n - cum[-1], missing]


def prefix_sums(ops: SecureOps, values: Secret) -> Secret:
    """The running sums of a secret vector (log2 of its length additions of shifted
    copies; linear, no communication)."""
    size = values.shape[0]
    shift = 1
    while shift < size:
        head = ops.mul_public(values[:shift], 0)
        values = ops.add(values, ops.concatenate([head, values[: size - shift]]))
        shift *= 2
    return values


def noisy_quantiles_program(
    local: Sequence[int],
    scaled: Sequence[int],
    threshold: int,
    perturb: Perturb,
) -> NamedProgram:
    """The differentially private program: this party's [n, missing, cum_0..cum_B] in
    (as `grid_cells`), `quantiles_outputs` out, everything computed from the noisy
    cells that `perturb` returns.

    C~_k = noisy cells summed up to grid point k, N~ = all noisy grid cells; index_i =
    #{k: SCALE C~_k < p_i N~}, a comparison at every grid point (the noisy C~ need not
    increase, so the two-step search does not apply): the smallest grid point at which
    the increasing rearrangement of C~ reaches q_i N~.
    """
    cells = grid_cells(local)
    points = len(cells) - 2  # B + 1 grid points; cells B + 2 (grid) + 1 (missing)

    async def program(ops: SecureOps) -> NamedSecrets:
        noisy = perturb(ops, ops.sum_vectors(ops.input_ints(cells, QUANTILE_BITS)))
        cum = prefix_sums(ops, noisy[: points + 1])
        n = cum[points : points + 1]
        at_points = ops.mul_public(cum[:points], SCALE)
        # below[i, k] = [p_i N~ - SCALE C~_k >= 1]
        differences = [ops.sub(ops.mul_public(n, np.full(points, p)), at_points) for p in scaled]
        index = ops.sum(ops.ge_public(ops.stack(differences), 1), axis=1)
        margins = ops.mul_public(n, np.array([min(p, SCALE - p) for p in scaled]))
        counts = ops.concatenate([n, noisy[points + 1 :]])
        return released_quantiles(ops, index, margins, counts, threshold)

    return program


class QuantilesAnalysis(NoisyCellsAnalysis):
    """Quantiles on a public grid, each released only with `threshold` patients either side."""

    name = "quantiles"
    bits = QUANTILE_BITS

    def validate(self, params: Params) -> None:
        cohort_filter(params)
        grid(params)
        scaled_qs(params)

    def local_input(self, data: PartyData, params: Params) -> list[int]:
        g = grid(params)
        cohort = select_cohort(data, params)
        values = numeric_values(data, params["variable"], cohort, value_limit(params))
        known = values[~np.isnan(values)]
        per_bin = np.bincount(g.bin_numbers(known), minlength=g.bins + 2)
        cum = np.cumsum(per_bin)[: g.bins + 1]
        return [len(known), len(values) - len(known), *(int(c) for c in cum)]

    def outputs(self, params: Params) -> tuple[Output, ...]:
        return quantiles_outputs(len(scaled_qs(params)))

    def noisy_releases(self, params: Params) -> tuple[NoisyRelease, ...]:
        return (cell_release(grid(params).bins + 3),)  # B + 2 grid cells, then missing

    def secure_program(self, local: list[int], params: Params, threshold: int) -> NamedProgram:
        g, scaled = grid(params), scaled_qs(params)
        if len(local) != g.bins + 3:
            raise ValueError(f"expected {g.bins + 3} local counts, got {len(local)}")
        if requested_epsilon(params) is None:
            return quantiles_program(local, scaled, threshold)
        (release,) = self.noisy_releases(params)
        noisy = cell_noise(params, release, QUANTILE_BITS)
        return noisy_quantiles_program(local, scaled, threshold, noisy)

    def with_cell_noise(self, result: dict[str, Any], params: Params, variance: float) -> None:
        """A noisy n (the sum of the B + 2 noisy grid cells) carries its own noise sd,
        sqrt(B + 2) times each cell's."""
        result["n_noise_sd"] = math.sqrt((grid(params).bins + 2) * variance)

    def render(self, result: dict[str, Any]) -> str:
        return render_quantiles(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_quantiles(result)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        g, scaled = grid(params), scaled_qs(params)
        exact = {name: [exact_int(v) for v in values] for name, values in opened.items()}
        bits, indices = exact["released"], exact["indices"]
        (n_bit, missing_bit), (n_masked, missing_masked) = exact["counts_released"], exact["counts"]
        pairs = list(zip(bits, indices, strict=True))
        if (
            any(b not in (0, 1) for b in (n_bit, missing_bit))
            or (n_bit == 0 and n_masked != 0)
            or (missing_bit == 0 and missing_masked != 0)
            or min(n_masked, missing_masked) < 0
            or any(b not in (0, 1) or not 0 <= k <= g.bins + 1 or (b == 0 and k) for b, k in pairs)
            or (any(bits) and not n_bit)
        ):
            raise ValueError("opened quantile outputs are inconsistent")
        values: list[float | None] = []
        notes: list[str | None] = []
        for bit, k in pairs:
            value: float | None = None
            note: str | None = None
            if bit and k == 0:
                note = (
                    f"{BELOW_RANGE}: the quantile is at or below low = {g.low:g}; "
                    "lower `low` to see it"
                )
            elif bit and k == g.bins + 1:
                note = (
                    f"{ABOVE_RANGE}: the quantile is above high = {g.high:g}; "
                    "raise `high` to see it"
                )
            elif bit:
                value = g.point(k)
            values.append(value)
            notes.append(note)
        return {
            "variable": params["variable"],
            "q": [p / SCALE for p in scaled],
            "values": values,
            "suppressed": [not b for b in bits],
            "notes": notes,
            "n": n_masked if n_bit else None,
            "missing": missing_masked if missing_bit else None,
            "resolution": g.step,
            "range": [g.low, g.high],
            "method": METHOD if requested_epsilon(params) is None else DP_METHOD,
            "missing_values": "excluded; their count is missing",
            "threshold": threshold,
        }
