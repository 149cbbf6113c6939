"""Division by secret counts without the reciprocal of a tiny number.

How the statistics divide by a number of patients, anything from 1 to 2^COUNT_BITS:
each column is scaled by the secret power of two that brings its count N into [1, 2]
(`pow2_normalize`), then 1/N is taken there by Newton's iteration
(`reciprocal_from_one_to_two`).
"""

from __future__ import annotations

import math

import numpy as np

from smpc_ehr.securemath.constants import COUNT_BITS, RECIPROCAL_STEPS
from smpc_ehr.securemath.ops import Secret, SecureOps


def fractions_of_total(ops: SecureOps, counts: Secret) -> Secret:
    """counts / (their sum over axis 0), for P x g whole numbers whose column sums are
    below 2^COUNT_BITS; 0 where a column sums to 0. Within 8 x `product_error`
    (`divide_by_counts`)."""
    parts = counts.shape[0]
    return divide_by_counts(ops, counts, ops.sum(counts, axis=0), parts)


def fractions_of_public_total(ops: SecureOps, counts: Secret, total: int) -> Secret:
    """counts / total for secret whole numbers counts (any shape) at most `total`, a
    public whole number below 2^COUNT_BITS (one the parties already know): two rounded
    products, no comparison. counts x (2^k / total) with 2^k / total in [1, 2), whose
    encoding on the grid is relatively exact to half a unit of the last place, then
    x 2^-k: within 2 x `product_error` plus half a unit relative."""
    if not 0 < total < 2**COUNT_BITS:
        raise ValueError(f"the public total must be from 1 to 2^{COUNT_BITS} - 1, not {total}")
    k = (total - 1).bit_length()  # 2^(k-1) < total <= 2^k
    scaled = ops.mul_public(counts, 2.0**k / total)  # at most 2^k <= 2^COUNT_BITS
    return ops.mul_pow2(scaled, np.full(counts.shape, k))


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


def bounded_comparands(ops: SecureOps, counts: Secret, low: int, high: int) -> Secret | None:
    """What `divide_by_bounded_counts` compares: count - start_i for its pieces' starts
    (pieces - 1 x g, whole numbers); their bits are [comparand >= 0], which a caller may
    compute in a batch of its own (`ops.ge_public(comparands, -0.5)`: exact for whole
    numbers) and pass in. None: the bounds leave one piece, nothing to compare."""
    starts = _octave_pieces(low, high, max(1, int(ops.comparisons_per_octave)))[0]
    if len(starts) == 1:
        return None
    bounds = np.asarray(starts[1:], float).reshape(-1, *((1,) * len(counts.shape)))
    return ops.add_public(ops.stack([counts] * len(bounds)), -bounds)


def divide_by_bounded_counts(
    ops: SecureOps,
    values: Secret,
    counts: Secret,
    rows: int,
    low: int,
    high: int,
    bits: Secret | None = None,
) -> Secret:
    """values / counts column by column (values R x g, R = `rows`; counts g whole
    numbers) for counts that lie in [low, high], public bounds with 1 <= low <= high
    < 2^COUNT_BITS (k-means: the small-cell threshold and N). Outside the bounds the
    result is unspecified: open it only where a check decided inside MPC guarantees them
    (k-means refuses a cluster below the threshold before opening its centroid). Within
    8 x `product_error` relative to the values' scale, plus at most one `product_error`
    left by the iteration (`newton_steps`), as `divide_by_counts`.

    Why, next to `divide_by_counts`: the public bounds leave
    floor(log2 high) - floor(log2 low) + 1 powers of two a count can have, so ONE batch
    of comparisons [count >= 2^(e + s/m)] (m = `ops.comparisons_per_octave`) picks both
    the power that brings the count into [1, 2) and a line that starts Newton's
    iteration on the count's 1/m-octave, closer to 1/a the larger m
    (`bounded_start_error`); the same round of products applies both, and only the
    Newton steps the backend's precision needs follow. No comparison is data-dependent
    in number or kind: the batch depends on the public bounds only. `bits`: the
    comparisons' results if the caller made them (`bounded_comparands`), in a batch
    with its own."""
    per_octave = max(1, int(ops.comparisons_per_octave))
    starts, exponents, lines = _octave_pieces(low, high, per_octave)
    stacked = ops.stack([counts, *(values[j] for j in range(rows))])  # (R + 1) x g
    tail = (1,) * len(counts.shape)
    distinct = sorted(set(exponents))
    level = {e: n for n, e in enumerate(distinct)}
    shifted = ops.mul_pow2(  # rows x 2^-e for every exponent a count may have
        ops.stack([stacked] * len(distinct)), np.asarray(distinct).reshape(-1, 1, *tail)
    )
    c0 = np.array([line[0] for line in lines])
    c1 = np.array([line[1] for line in lines])
    scaled = shifted[level[exponents[0]]]
    line: tuple[Secret, Secret] | None = None  # the count's line's (c0, c1), if secret
    if len(starts) > 1:
        # One batch: [count >= start_i] for every piece but the first (count >= low).
        if bits is None:
            bits = ops.ge_public(bounded_comparands(ops, counts, low, high), -0.5)
        # Telescoped: normalised rows = t_e(0) + sum_i bits_i (t_e(i) - t_e(i-1)), over
        # the pieces where the exponent changes; the line's coefficients alike, with
        # public differences (no product).
        change = [i for i in range(1, len(starts)) if exponents[i] != exponents[i - 1]]
        if change:
            steps = ops.stack(
                [
                    ops.sub(shifted[level[exponents[i]]], shifted[level[exponents[i - 1]]])
                    for i in change
                ]
            )
            chosen = ops.stack([ops.stack([bits[i - 1]] * (rows + 1)) for i in change])
            scaled = ops.add(scaled, ops.sum(ops.mul(chosen, steps), axis=0))
        weights = np.stack([np.diff(c0), np.diff(c1)], axis=1).reshape(-1, 2, *tail)
        pair = ops.weighted_sum(
            ops.stack([bits] * 2, axis=1),
            np.broadcast_to(weights, (len(starts) - 1, 2, *counts.shape)),
        )
        line = (ops.add_public(pair[0], float(c0[0])), ops.add_public(pair[1], float(c1[0])))
    a = scaled[0]  # the count times 2^-e, in its piece's [2^(s/m), 2^((s+1)/m))
    if line is None:  # one piece: a public line
        inverse = ops.add_public(ops.mul_public(a, -float(c1[0])), float(c0[0]))
    else:
        inverse = ops.sub(line[0], ops.mul(line[1], a))
    for _ in range(newton_steps(bounded_start_error(per_octave), ops.precision.product_error)):
        inverse = ops.sub(ops.add(inverse, inverse), ops.mul(inverse, ops.mul(a, inverse)))
    return ops.mul(scaled[1:], ops.stack([inverse] * rows))


def bounded_start_error(per_octave: int) -> float:
    """The largest |1 - a y0| of the minimax line y0 = c0 - c1 a for 1/a on an interval
    [L, L r], r = 2^(1/per_octave): (r - 1)^2 / (r^2 + 6 r + 1) (1/17 for an octave)."""
    r = 2.0 ** (1.0 / per_octave)
    return (r - 1.0) ** 2 / (r * r + 6.0 * r + 1.0)


def newton_steps(start_error: float, product_error: float) -> int:
    """How many Newton steps y <- y (2 - a y) (each squares the relative error) bring
    `start_error` to at most `product_error`."""
    steps, error = 0, start_error
    while error > product_error:
        steps, error = steps + 1, error * error
    return steps


def _octave_pieces(
    low: int, high: int, per_octave: int
) -> tuple[list[int], list[int], list[tuple[float, float]]]:
    """The pieces [start_i, start_(i+1)) of [low, high] that `divide_by_bounded_counts`
    tells apart: the whole numbers from 2^(e + s/m) on (s = 0..m-1), each with its
    exponent e and the minimax line (c0, c1) for 1/a on a = count 2^-e's range
    [2^(s/m), 2^((s+1)/m)]. The first piece starts at low."""
    if not 1 <= low <= high < 2**COUNT_BITS:
        raise ValueError(f"count bounds must satisfy 1 <= low <= high < 2^{COUNT_BITS}")
    first, last = low.bit_length() - 1, high.bit_length() - 1
    pieces: dict[int, tuple[int, tuple[float, float]]] = {}  # start -> (e, line); last wins
    for e in range(first, last + 1):
        for s in range(per_octave):
            begin = math.ceil(2.0 ** (e + s / per_octave))
            if begin <= high:
                pieces[max(begin, low)] = (e, _line(s, per_octave))
    starts = sorted(pieces)
    return starts, [pieces[b][0] for b in starts], [pieces[b][1] for b in starts]


def _line(s: int, per_octave: int) -> tuple[float, float]:
    """The minimax line c0 - c1 a for 1/a on [L, L r], L = 2^(s/m), r = 2^(1/m):
    c1 = 8 / (r^2 + 6 r + 1) / L^2, c0 = c1 (1 + r) L."""
    lo, r = 2.0 ** (s / per_octave), 2.0 ** (1.0 / per_octave)
    c1 = 8.0 / (r * r + 6.0 * r + 1.0) / (lo * lo)
    return c1 * (1.0 + r) * lo, c1
