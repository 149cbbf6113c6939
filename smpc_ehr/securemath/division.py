"""Division by secret counts without the reciprocal of a tiny number.

How the statistics divide by a number of patients, anything from 1 to 2^COUNT_BITS:
each column is scaled by the secret power of two that brings its count N into [1, 2]
(`pow2_normalize`), then 1/N is taken there by Newton's iteration
(`reciprocal_from_one_to_two`).
"""

from __future__ import annotations

import numpy as np

from smpc_ehr.securemath.constants import COUNT_BITS, RECIPROCAL_STEPS
from smpc_ehr.securemath.ops import Secret, SecureOps


def fractions_of_total(ops: SecureOps, counts: Secret) -> Secret:
    """counts / (their sum over axis 0), for P x g whole numbers whose column sums are
    below 2^COUNT_BITS; 0 where a column sums to 0. Within 8 x `product_error`
    (`divide_by_counts`)."""
    parts = counts.shape[0]
    return divide_by_counts(ops, counts, ops.sum(counts, axis=0), parts)


def divide_by_counts(ops: SecureOps, values: Secret, counts: Secret, rows: int) -> Secret:
    """values / counts column by column, for values R x g (R = `rows`) and whole
    numbers counts (g) below 2^COUNT_BITS, each value at most its count in magnitude
    times 2^14; 0 where a count is 0. Within 8 x `product_error` relative to the
    values' scale.

    Each column is scaled by the secret power of two that brings its count N into
    [1, 2] (`pow2_normalize`), then 1/N is taken there (`reciprocal_from_one_to_two`).
    """
    scaled = pow2_normalize(ops, ops.stack([counts, *(values[j] for j in range(rows))]))
    inverse = reciprocal_from_one_to_two(ops, scaled[0])
    return ops.mul(scaled[1:], ops.stack([inverse] * rows))


def reciprocal_from_one_to_two(ops: SecureOps, a: Secret) -> Secret:
    """1 / a for a in [1, 2] by Newton's iteration from the minimax line 24/17 - 8/17 a
    (relative error at most 1/17, squared by each of RECIPROCAL_STEPS steps, so below
    1.4e-10 after 3; each step corrects the roundings of the last, leaving a few
    `product_error`). An a of 0 gives a finite value (24/17 ...) that callers multiply
    by 0."""
    inverse = ops.add_public(ops.mul_public(a, -8 / 17), 24 / 17)
    for _ in range(RECIPROCAL_STEPS):  # y <- y (2 - a y) = 2y - y (a y)
        inverse = ops.sub(ops.add(inverse, inverse), ops.mul(inverse, ops.mul(a, inverse)))
    return inverse


def pow2_normalize(ops: SecureOps, rows: Secret) -> Secret:
    """Each column of `rows` (R x g, whole numbers, row 0 below 2^COUNT_BITS) times
    2^-e, e = floor(log2 rows[0]) (0 where rows[0] is 0): row 0 lands in [1, 2]
    (up to one truncation, one `product_error`) and ratios between rows are kept.

    A backend with a faster way gives it through `SecureOps.pow2_normalize`; otherwise
    e comes from one batch of comparisons [rows[0] 2^-k >= 1], k = 0..COUNT_BITS, and
    rows 2^-e is assembled from the truncations t_k = rows 2^-k as
    b_0 t_0 + sum_k b_k (t_k - t_(k-1)), which telescopes to t_e: no secret shift
    is needed. A batch of comparisons costs the rounds of one.
    """
    own = ops.pow2_normalize(rows)
    if own is not None:
        return own
    depth = COUNT_BITS + 1
    shifted = ops.mul_pow2(
        ops.stack([rows] * depth), np.arange(depth).reshape(-1, *([1] * len(rows.shape)))
    )
    at_least = ops.ge_public(shifted[:, 0], 1.0)  # (K + 1) x g: [rows[0] >= 2^k]
    steps = ops.stack([shifted[0], *(ops.sub(shifted[k], shifted[k - 1]) for k in range(1, depth))])
    bits = ops.stack([at_least] * rows.shape[0], axis=1)
    return ops.sum(ops.mul(bits, steps), axis=0)
