"""A public grid for quantiles and the secure search for where cumulative counts cross
a fraction of n on it, without opening anything but the crossing's index. Shared by
the quantiles analysis and the Table 1's medians and quartiles.

The grid is g_k = low + k * step, k = 0..B (B = (high - low) / step, at most
MAX_BINS). Its points are laid out S x S (S = ceil(sqrt(B + 1)), `block_size`): the
comparisons at the last point of each row find the row of the crossing, as a secret
one-hot vector; one matrix product picks that row, and its comparisons give the
position inside it (`crossing_indices`): 2 S comparisons instead of B + 1, and every
intermediate stays secret.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from smpc_ehr.errors import TemplateError
from smpc_ehr.securemath.ops import Secret, SecureOps

MAX_BINS = 2000
"""At most this many grid steps (B + 1 comparisons per q)."""
ON_POINT = 1e-9
"""A value within this many steps above a grid point counts as on it (float noise)."""


@dataclass(frozen=True)
class Grid:
    """The public grid g_k = low + k * step, k = 0..bins."""

    low: float
    high: float
    step: float
    bins: int
    decimals: int
    """Decimals to which grid points are rounded when released."""

    def point(self, k: int) -> float:
        return round(self.low + k * self.step, self.decimals)

    def bin_numbers(self, values: np.ndarray) -> np.ndarray:
        """Each value's smallest grid index k with value <= g_k, clipped to 0..bins+1
        (bins+1: above `high`)."""
        k = np.ceil((values - self.low) / self.step - ON_POINT)
        return np.clip(k, 0, self.bins + 1).astype(np.int64)


def _decimals(value: float) -> int:
    """The fewest decimals (up to 10) that write `value` exactly (up to float noise)."""
    for d in range(11):
        if abs(round(value, d) - value) <= 1e-9 * max(1.0, abs(value)):
            return d
    return 10


def grid(params: Mapping[str, Any]) -> Grid:
    """The grid the parameters describe; TemplateError says what to change."""
    low, high, step = float(params["low"]), float(params["high"]), float(params["step"])
    if not low < high:
        raise TemplateError(f"low ({low:g}) must be less than high ({high:g})")
    if not step > 0:
        raise TemplateError(f"step ({step:g}) must be positive")
    width = high - low
    bins = round(width / step)
    if bins < 1 or abs(bins * step - width) >= 1e-9 * max(1.0, abs(width)):
        raise TemplateError(
            f"high - low ({width:g}) must be a whole number of steps of {step:g}; "
            "change low, high or step so that (high - low) / step is an integer"
        )
    if bins > MAX_BINS:
        raise TemplateError(
            f"(high - low) / step = {bins} grid steps, more than {MAX_BINS}; use a larger "
            f"step (at least {width / MAX_BINS:g}) or a narrower range low..high"
        )
    return Grid(low, high, step, bins, max(_decimals(step), _decimals(low)))


def block_size(bins: int) -> int:
    """Side S of the S x S layout of the B + 1 grid points (S = ceil(sqrt(B + 1)))."""
    return math.isqrt(bins) + 1


def crossing_indices(ops: SecureOps, blocks: Sequence[Secret], one: float = 1) -> Secret:
    """Per S x S block of secret whole numbers (grid points row-major, their bits
    [v >= 1] running 1...1 0...0), the secret number of points with v >= 1: the
    comparisons at the last point of each row find the row of the crossing (a secret
    one-hot vector), one matrix product picks that row, and its comparisons give the
    position inside it (2 S comparisons per block instead of S^2). The quantiles
    analysis runs it on secret integers; the Table 1 on fixed-point counts, comparing
    with `one` = 1/2: a picked value (a product) may be off by a unit of the last place
    on CrypTen, so 1 would be compared at its rounding edge."""
    side = blocks[0].shape[0]
    coarse = ops.ge_public(ops.stack([block[:, side - 1] for block in blocks]), one)
    # One-hot of the block holding the crossing: h_0 = 1 - c_0, h_j = c_(j-1) - c_j.
    first = ops.add_public(ops.mul_public(coarse[:, 0:1], -1), 1)
    onehot = ops.stack(
        [first[:, 0], *(ops.sub(coarse[:, j - 1], coarse[:, j]) for j in range(1, side))],
        axis=1,
    )
    picked = [
        ops.matmul(ops.reshape(onehot[i], (1, side)), block) for i, block in enumerate(blocks)
    ]
    fine = ops.ge_public(ops.stack([row[0] for row in picked]), one)
    return ops.add(ops.mul_public(ops.sum(coarse, axis=1), side), ops.sum(fine, axis=1))
