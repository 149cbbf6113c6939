"""What the full-MPC modes share: every party's rows secret-shared (padded, so only a
rounded row count leaks), and the features' joint moments and scales kept secret.

Why here: the full modes of the logistic regression and of k-means both need rows
inside MPC and a scaling of each feature without revealing any mean or standard
deviation; a scale is a secret power of two 2^-e (found by one batch of comparisons
of the joint variance with 4^e), so it costs no secret division or square root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.moments import column_moments, party_arrays, pool_moments, pooled_weights
from smpc_ehr.backends.base import Secret, SecureOps, all_of
from smpc_ehr.errors import DataError

PAD_ROWS = 100
"""Each party's rows are padded to a multiple of this: the others learn only that."""
MIN_SCALE_EXPONENT = -6
"""A feature whose joint variance is below 4^-6 (sd below 1/64 of its unit) is refused
as (nearly) constant; rescale it."""
MAX_SCALE_EXPONENT = 13
"""Values are below 2^14 in magnitude, so variances are below 4^14."""


def padded(rows: int) -> int:
    """Rows rounded up to a multiple of PAD_ROWS (0 stays 0)."""
    return -(-rows // PAD_ROWS) * PAD_ROWS


async def padded_sizes(ops: SecureOps, row_counts: Sequence[int]) -> np.ndarray:
    """Every party's padded row counts (P x len(row_counts)), opened to the parties:
    they are the public shapes of what each party shares."""
    mine = np.array([padded(n) for n in row_counts], dtype=float)
    return np.rint(await ops.reveal(party_arrays(ops, mine))).astype(int)


def share_rows(
    ops: SecureOps, x: np.ndarray, extra: np.ndarray, sizes: np.ndarray
) -> tuple[Secret, Secret]:
    """Every party's rows, zero-padded to its public size and secret-shared, stacked in
    party order: features (M x d) and [extra | w] (M x (e + 1)), where w is 1 for a
    real row and 0 for padding; M = the sum of `sizes`."""
    n, d = x.shape
    width = extra.shape[1] + 1
    rows = int(sizes[ops.my_index])
    features, labels = np.zeros((rows, d)), np.zeros((rows, width))
    features[:n], labels[:n, :-1], labels[:n, -1] = x, extra, 1.0
    shared_features, shared_labels = [], []
    for src, count in enumerate(sizes):
        if count == 0:
            continue
        own = src == ops.my_index
        shared_features.append(ops.input_values(src, features if own else None, (int(count), d)))
        shared_labels.append(ops.input_values(src, labels if own else None, (int(count), width)))
    return ops.concatenate(shared_features), ops.concatenate(shared_labels)


@dataclass(frozen=True)
class SecretScaling:
    """The joint N (1), means (d), population variances (d), and per feature the
    secret power of two scale = 2^-e with 4^e <= variance < 4^(e+1), and e itself."""

    total: Secret
    means: Secret
    variances: Secret
    scales: Secret
    exponents: Secret


async def secret_scaling(
    ops: SecureOps, x: np.ndarray, names: Sequence[str], min_total: int, shortfall: str
) -> SecretScaling:
    """Pool every party's column moments of x inside MPC and find the scales, opening
    only [N >= min_total] (DataError with `shortfall` if not) and, per feature,
    [variance >= 4^MIN_SCALE_EXPONENT] (DataError naming the constant features)."""
    d = x.shape[1]
    shared = party_arrays(ops, column_moments(x))
    total, weights = pooled_weights(ops, shared[:, 0])
    pooled = pool_moments(ops, weights, shared[:, 1], None, shared[:, 2])
    exponents = np.arange(MIN_SCALE_EXPONENT, MAX_SCALE_EXPONENT + 1)
    rows = len(exponents)
    levels = np.broadcast_to((4.0**exponents)[:, None], (rows, d))
    steps = ops.add_public(ops.stack([pooled.comoment] * rows), -levels)
    compared = ops.concatenate(
        [ops.add_public(total[0:1], -float(min_total)), ops.reshape(steps, (rows * d,))]
    )
    bits = ops.ge_public(compared, 0.0)  # one batch
    if not (await ops.reveal(bits[0:1]))[0]:
        raise DataError(f"{shortfall}: nothing is released")
    varies = await ops.reveal(bits[1 : 1 + d])
    constant = [name for name, bit in zip(names, varies, strict=True) if bit < 0.5]
    if constant:
        raise DataError(
            f"feature(s) {', '.join(constant)} are (nearly) constant over all patients "
            f"(standard deviation below 2^{MIN_SCALE_EXPONENT})"
        )
    above = ops.reshape(bits[1:], (rows, d))[1:]  # [var >= 4^e], e > MIN
    # s = 2^-e telescopes: 2^-MIN + sum over passed levels of (2^-e - 2^-(e-1)).
    drops = np.broadcast_to(-(2.0 ** -exponents[1:].astype(float))[:, None], (rows - 1, d))
    scales = ops.add_public(ops.sum(ops.mul_public(above, drops), axis=0), 2.0**-MIN_SCALE_EXPONENT)
    exponent = ops.add_public(ops.sum(above, axis=0), float(MIN_SCALE_EXPONENT))
    return SecretScaling(total[0:1], pooled.mean_a, pooled.comoment, scales, exponent)


def total_of(ops: SecureOps, vector: Secret, length: int) -> Secret:
    """The sum of a secret vector as a 1-element array (not an MPyC scalar)."""
    return ops.sum(ops.reshape(vector, (length, 1)), axis=0)


SAFE_SQUARE = 64.0
"""Values squared in a norm test stay at most this in magnitude: CrypTen truncates a
product wrongly with probability about |product| / 2^32 (beaver.wraps: |x| / Q at
scale 2^32 in Z_2^64), which for 64^2 is 1e-6 per element; for 6,400^2 it was 1 %."""


def norm_excess(
    ops: SecureOps, vector: Secret, length: int, limit: float, magnify: float, floor: float
) -> Secret:
    """Two secret differences (2) whose comparisons with 0, OR-ed (`either`), give
    [||vector|| > limit], right both for large and for tiny norms.

    Why two: near the limit the squares' roundings (2^-16 each) must stay far below
    limit^2, so the vector is magnified by the whole number `magnify` first (exact); but
    large magnified values would be truncated wrongly (SAFE_SQUARE). So a coarse test on
    the vector as it is, ||v||^2 - max(limit, floor)^2, decides the norms at or above
    `floor`, and the magnified one those below, where every magnified element is below
    floor x magnify <= SAFE_SQUARE. The caller picks `floor` with floor^2 far above
    length x 2^-16, and batches the comparisons with its others. A limit of 0 is the
    caller's to handle (any move counts)."""
    if magnify * floor > SAFE_SQUARE or magnify != round(magnify) or limit <= 0:
        raise ValueError("need limit > 0 and a whole magnify with magnify x floor <= SAFE_SQUARE")
    magnified = ops.mul_public(vector, magnify)
    squares = ops.mul(ops.stack([vector, magnified]), ops.stack([vector, magnified]))
    sums = ops.sum(ops.reshape(squares, (2, length)), axis=1)
    return ops.add_public(sums, -np.array([max(limit, floor) ** 2, (limit * magnify) ** 2]))


def either(ops: SecureOps, bits: Secret) -> Secret:
    """a OR b for two secret bits (2) as 1 element: 1 - (1 - a)(1 - b), one product."""
    not_bits = ops.add_public(ops.mul_public(bits, -1.0), 1.0)
    return ops.add_public(ops.mul_public(all_of(ops, ops.reshape(not_bits, (2, 1))), -1.0), 1.0)
