"""What the full-MPC modes share: every party's rows secret-shared (padded, so only a
rounded row count leaks), each feature brought to a public scale near its joint
standard deviation, and the features' joint means and variances kept secret.

Why here: the full modes of the logistic regression and of k-means both need rows
inside MPC and each feature scaled so that CrypTen's fixed point (16 fractional bits;
a product truncates wrongly with probability about |product| / 2^32) holds it at full
precision, whatever its units: a fraction with standard deviation 1e-4 as well as
counts per microlitre around 3e5. A scale taken from the raw magnitude loses
precision when |mean| is much larger than the standard deviation, and one taken from
the standard deviation needs the standard deviation, so the scale is found in three
rounds, each opening only a power of two per feature to the parties:

1. Magnitude. Each party inputs, per feature, the bits [max |x| >= 2^L] of its own
   rows for L = -40..40 (its own plaintext comparisons); inside MPC their OR over
   the parties (a sum compared with 1/2) gives the exponent E with max |x| < 2^E over
   all patients, opened with [N >= min_total] from the same batch of comparisons
   (the N bit first: if it fails, nothing else is opened).
2. Coarse spread. Each party scales its values by the public 2^(8 - E) (|x| < 2^8, so
   variances stay below 2^16 and the pooling's products below 2^16), the local counts,
   means and variances are pooled inside MPC (`moments`), and one batch of
   comparisons of the joint variance with 4^l gives [variance >= 4^-6] (opened: a
   feature below, with standard deviation under about 2^-14 of its largest
   magnitude, is refused as (nearly) constant) and the coarse exponent e0 of the
   standard deviation (opened), within one power of two of the exact one.
3. Fine spread. Scaled by the public 2^-e0 the standard deviation is near 1, so the
   pooled means and variances are now resolved to about 2^-16 of a standard
   deviation; a batch of 4 comparisons per feature corrects e0 by -2..2 to e with
   4^e <= variance < 4^(e + 1) (opened).

Then every party inputs its rows times the public 2^-e (exact in float64), and the
joint means (in units of 2^e) and variances (in units of 4^e: in [1, 4)) stay secret.

Leakage, plainly: to the parties, per feature, E (the power of two just above the
largest |value| of any patient of any hospital: a property of one patient, coarse)
and e (the joint standard deviation within a factor of two), besides [N >= min_total]
and which features are (nearly) constant; nothing per hospital. The analyses say what
they release to the coordinator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.common.moments import (
    column_moments,
    party_arrays,
    pool_moments,
    pooled_weights,
)
from smpc_ehr.analyses.common.variables import FULL_MODE_MAX_ABS
from smpc_ehr.errors import JointRefusal
from smpc_ehr.securemath.boolean import all_of
from smpc_ehr.securemath.ops import Secret, SecureOps

PAD_ROWS = 100
"""Each party's rows are padded to a multiple of this: the others learn only that."""
MAGNITUDE_EXPONENTS = np.arange(-40, 41)  # 2^40 = FULL_MODE_MAX_ABS
"""Round 1's levels L of [max |x| >= 2^L]: magnitudes from 2^-40 to FULL_MODE_MAX_ABS (`variables`:
larger values are refused when the data are read)."""
COARSE_BITS = 8
"""Round 2 scales every feature below 2^COARSE_BITS in magnitude."""
COARSE_MIN = -6
"""Round 2 resolves variances from 4^COARSE_MIN up (its pooling rounds to a few units
of 2^-16, under a quarter of 4^-6): a feature below is refused as constant, which is a
standard deviation below 2^(E - 14), i.e. below 2^-14 to 2^-13 of its largest
magnitude."""
FINE_LEVELS = np.array([-1, 0, 1, 2])
"""Round 3 compares the variance (about 1) with 4^l for these l: e = e0 + (passed - 2)."""


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
class Scaling:
    """Per feature the public exponent e (4^e <= joint variance < 4^(e + 1)); the
    secret joint N (1), means in units of 2^e (d) and variances in units of 4^e, in
    [1, 4) (d)."""

    exponents: np.ndarray
    total: Secret
    means: Secret
    variances: Secret

    def scaled(self, x: np.ndarray) -> np.ndarray:
        """Plaintext values (n x d, original units) in units of 2^e: exact in float64."""
        return np.ldexp(x, -self.exponents)


def _pooled(ops: SecureOps, values: np.ndarray) -> tuple[Secret, Secret, Secret]:
    """The joint N (1), means and population variances (d) of every party's columns."""
    shared = party_arrays(ops, column_moments(values))
    total, weights = pooled_weights(ops, shared[:, 0])
    pooled = pool_moments(ops, weights, shared[:, 1], None, shared[:, 2])
    return total[0:1], pooled.mean_a, pooled.comoment


def _reaches_powers_of_four(ops: SecureOps, variances: Secret, levels: np.ndarray) -> Secret:
    """The bits [variance >= 4^l] (len(levels) x d), one batch of comparisons."""
    d = variances.shape[0]
    bounds = np.broadcast_to(np.ldexp(1.0, 2 * levels)[:, None], (len(levels), d))
    return ops.ge_public(ops.add_public(ops.stack([variances] * len(levels)), -bounds), 0.0)


async def _count_passed(ops: SecureOps, bits: Secret, levels: int, d: int) -> np.ndarray:
    """Per feature, how many of its levels' comparison bits (levels x d) are 1, opened."""
    return np.rint(await ops.reveal(ops.sum(ops.reshape(bits, (levels, d)), axis=0))).astype(int)


async def secret_scaling(
    ops: SecureOps, x: np.ndarray, names: Sequence[str], min_total: int, shortfall: str
) -> Scaling:
    """The public scales and secret joint moments of the columns of x, in the module
    docstring's three rounds, opening only [N >= min_total] (JointRefusal with
    `shortfall` if not), which features are constant (JointRefusal naming them) and
    per feature the exponents E and e."""
    n, d = x.shape
    levels = len(MAGNITUDE_EXPONENTS)
    largest = np.abs(x).max(axis=0) if n else np.zeros(d)
    if not np.all(largest < FULL_MODE_MAX_ABS):  # the data checks stop this earlier
        raise ValueError(f"values must be below {FULL_MODE_MAX_ABS:g} in magnitude")
    reaches = largest[None, :] >= np.ldexp(1.0, MAGNITUDE_EXPONENTS)[:, None]  # levels x d
    mine = np.concatenate([[float(n)], reaches.ravel().astype(float)])
    sums = ops.sum(party_arrays(ops, mine), axis=0)
    bounds = np.r_[float(min_total), np.full(levels * d, 0.5)]  # [N >= min_total], ORs
    bits = ops.ge_public(ops.add_public(sums, -bounds), 0.0)  # one batch
    if not (await ops.reveal(bits[0:1]))[0] > 0.5:
        raise JointRefusal(f"{shortfall}: nothing is released")
    magnitude = int(MAGNITUDE_EXPONENTS[0]) + await _count_passed(ops, bits[1:], levels, d)

    coarse = np.arange(COARSE_MIN, COARSE_BITS)
    _, _, variances = _pooled(ops, np.ldexp(x, COARSE_BITS - magnitude))
    above = _reaches_powers_of_four(ops, variances, coarse)
    varies = await ops.reveal(above[0])
    constant = [name for name, bit in zip(names, varies, strict=True) if bit < 0.5]
    if constant:
        raise JointRefusal(
            f"feature(s) {', '.join(constant)} are (nearly) constant over all patients "
            "(standard deviation below 2^-13 of the largest magnitude); subtract a "
            "constant or rescale"
        )
    rough = COARSE_MIN - 1 + await _count_passed(ops, above, len(coarse), d)
    rough = rough + magnitude - COARSE_BITS  # 4^rough <= variance, within a power of two

    total, means, variances = _pooled(ops, np.ldexp(x, -rough))
    passed = _reaches_powers_of_four(ops, variances, FINE_LEVELS)
    shift = await _count_passed(ops, passed, len(FINE_LEVELS), d) - 2
    if np.any(shift != 0):  # means x 2^-shift, variances x 4^-shift (into [1, 4))
        means = ops.mul_public(means, np.ldexp(1.0, -shift))
        variances = ops.mul_public(variances, np.ldexp(1.0, -2 * shift))
    return Scaling(rough + shift, total, means, variances)


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
