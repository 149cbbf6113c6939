"""Pooling local moments inside MPC: joint means, variances and covariances.

Each party reduces its own rows to local moments: per cell a count n_j, means and a
co-moment about its own means (a variance, or a covariance). Inside MPC these are
pooled as if the rows had been put together (Chan et al.'s parallel formulas):

    w_j  = n_j / N                                  (N = sum of n_j)
    mean = m_0 + sum_j w_j (m_j - m_0)
    C    = c_0 + sum_j w_j (c_j - c_0) + sum_j w_j (a_j - mean_a)(b_j - mean_b)

Why this shape, for fixed-point arithmetic (|values| < 2^31; CrypTen 2^-16 resolution):
- raw sums and sums of squares over millions of patients overflow; local means and
  centred co-moments stay at the scale of the data whatever the number of patients;
- the weights n_j / N need a division by N, which may be anything from 1 to 2^30:
  `securemath.division.fractions_of_total` does it without the reciprocal of a tiny number
  (see there and docs/backends.md);
- the error of the weights multiplies only differences from party 0's values (the
  anchor m_0, c_0), which are small, not the values themselves.

Stated precision (docs/statistics.md), with eps = 8 n e 2^-f for n parties, f
fractional bits (MPyC f = 32, CrypTen f = 16) and e the units a product's rounding
may be off (MPyC (C(n, t) + 1) / 2: 2 for 3 parties, 5.5 for 5; CrypTen's n is in
the 8 n already, e = 1): a pooled mean is within
eps (|mean| + sd) of the exact one, a (co)variance within eps (|mean_a| + sd_a)
(|mean_b| + sd_b), and a correlation within 2 eps (1 + max |mean| / sd)^2. Counts are
exact. Measured errors are far smaller (about 1e-11 and 1e-5 relative).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from smpc_ehr.errors import JointRefusal
from smpc_ehr.securemath.division import fractions_of_public_total, fractions_of_total
from smpc_ehr.securemath.ops import Secret, SecureOps


def party_arrays(ops: SecureOps, mine: np.ndarray) -> Secret:
    """Every party's array of one public shape, secret-shared and stacked (party axis 0)."""
    shape = tuple(mine.shape)
    return ops.stack(
        [
            ops.input_values(src, mine if src == ops.my_index else None, shape)
            for src in range(ops.n_parties)
        ]
    )


def pooled_weights(ops: SecureOps, counts: Secret) -> tuple[Secret, Secret]:
    """From every party's counts (P x g, integer-valued), the totals N (g) and the
    weights n_j / N (P x g, `securemath.division.fractions_of_total`); where N = 0 they are 0."""
    return ops.sum(counts, axis=0), fractions_of_total(ops, counts)


@dataclass(frozen=True)
class Pooled:
    """Pooled moments per cell: means of a and b, and their co-moment (population)."""

    mean_a: Secret
    mean_b: Secret
    comoment: Secret


def pool_moments(
    ops: SecureOps, weights: Secret, mean_a: Secret, mean_b: Secret | None, comoment: Secret
) -> Pooled:
    """Pool every party's local means and co-moments (all P x cells) with the weights.

    `mean_b` None means b is a (a variance); the pooled co-moment is the population
    one (divided by N), about the pooled means.
    """
    parties = ops.n_parties

    def spread(values: Secret) -> Secret:  # each party's difference from party 0
        return ops.stack([ops.sub(values[j], values[0]) for j in range(parties)])

    same = mean_b is None
    terms = [mean_a, comoment] if same else [mean_a, mean_b, comoment]
    weighted = ops.sum(
        ops.mul(ops.stack([weights] * len(terms)), ops.stack([spread(t) for t in terms])), axis=1
    )
    pooled = [ops.add(t[0], weighted[i]) for i, t in enumerate(terms)]
    pooled_a, pooled_c = pooled[0], pooled[-1]
    pooled_b = pooled_a if same else pooled[1]
    dev_a = ops.sub(mean_a, ops.stack([pooled_a] * parties))
    dev_b = dev_a if same else ops.sub(mean_b, ops.stack([pooled_b] * parties))
    between = ops.sum(ops.mul(weights, ops.mul(dev_a, dev_b)), axis=0)
    return Pooled(pooled_a, pooled_b, ops.add(pooled_c, between))


def pool_means(ops: SecureOps, weights: Secret, means: Secret) -> Secret:
    """Pooled means m_0 + sum_j w_j (m_j - m_0) from every party's local means (P x ...)
    and the weights n_j / N (P x the same shape); where N = 0 the result is m_0."""
    parties = ops.n_parties
    spread = ops.stack([ops.sub(means[j], means[0]) for j in range(parties)])
    return ops.add(means[0], ops.sum(ops.mul(weights, spread), axis=0))


def local_binary(values: np.ndarray) -> tuple[int, int]:
    """The binary rule's local inputs: [every non-missing value is 0 or 1] (1 also when
    there are none) and how many values are 1."""
    known = values[~np.isnan(values)]
    ones = int(np.count_nonzero(known == 1))
    return int(ones + np.count_nonzero(known == 0) == known.size), ones


def every_party_offset(ops: SecureOps, bits: Secret, threshold: int) -> Secret:
    """The sum of every party's 0/1 bits (P x cells) plus t - P: it reaches the
    threshold t exactly where every party's bit is 1, so it joins a batch of
    comparisons with t instead of a product of P bits."""
    return ops.add_public(ops.sum(bits, axis=0), float(threshold - ops.n_parties))


def binary_rule(
    ops: SecureOps, binary: Secret, ones: Secret, total: Secret, threshold: int
) -> Secret:
    """Per cell, the exact secret bit [not every party's values are 0/1, or the ones and
    the zeros both reach the threshold], from every party's `local_binary` inputs
    (P x cells each) and the joint count N (cells).

    Why: the mean of a 0/1 variable times N is its count of ones (and N minus that,
    of zeros), so a mean, variance or anything else that gives the proportion is
    released only where a count table would release both counts. Nothing is opened
    here: two batches of comparisons, whose results are exact 0/1 on both backends."""
    ones_total = ops.sum(ones, axis=0)
    every = every_party_offset(ops, binary, threshold)
    checks = ops.ge_public(ops.stack([every, ones_total, ops.sub(total, ones_total)]), threshold)
    not_binary = ops.add_public(ops.mul_public(checks[0], -2.0), 2.0)
    return ops.ge_public(ops.add(not_binary, ops.add(checks[1], checks[2])), 1.5)


def column_moments(x: np.ndarray) -> np.ndarray:
    """Count, means and population variances of the columns of a complete n x d array
    (3 x d; all 0 when n is 0)."""
    n, d = x.shape
    if n == 0:
        return np.zeros((3, d))
    return np.stack([np.full(d, float(n)), x.mean(axis=0), x.var(axis=0)])


async def reveal_standardisation(
    ops: SecureOps, x: np.ndarray, names: Sequence[str], min_total: int | None, shortfall: str
) -> tuple[int, np.ndarray, np.ndarray]:
    """N and the joint means and standard deviations of the columns of every party's
    complete rows x, pooled inside MPC and revealed to the parties (for analyses whose
    leakage allows it: the iterates modes). JointRefusal (decided on joint values: alike
    at every party, naming none), with nothing else opened, if N is
    below `min_total` (`shortfall` says what is short) or a column is constant. None:
    the caller has already made sure of N (e.g. `group_size.require_others_reach` on
    all rows, which implies N >= threshold), so no comparison is spent on it."""
    shared = party_arrays(ops, column_moments(x))  # P x 3 x d
    # The rows are complete, so every column has the party's one count. N is the
    # parties' to know: opened first, it makes the weights n_j / N two products by
    # public numbers instead of a secret division (its comparisons and Newton steps).
    d = x.shape[1]
    counts = shared[:, 0, 0:1]  # P x 1
    total = ops.sum(counts, axis=0)
    if min_total is not None and not (await ops.reveal(ops.ge_public(total, min_total)))[0]:
        raise JointRefusal(f"{shortfall}: nothing is released")
    n_total = round(float((await ops.reveal(total))[0]))
    if n_total < 1:
        raise JointRefusal(f"{shortfall}: there are no complete rows")
    weights = ops.concatenate([fractions_of_public_total(ops, counts, n_total)] * d, axis=1)
    pooled = pool_moments(ops, weights, shared[:, 1], None, shared[:, 2])
    opened = await ops.reveal(ops.stack([pooled.mean_a, pooled.comoment]))
    means, variances = opened[0], opened[1]
    # A constant column's pooled variance is 0 up to the roundings of the few products
    # per party that pool it (a product of exact zeros may round to a unit either way).
    resolved = 16 * ops.n_parties * ops.precision.product_error
    floor = resolved + (1e-9 * (1 + np.abs(means))) ** 2
    constant = [f for f, v, low in zip(names, variances, floor, strict=True) if v <= low]
    if constant:
        raise JointRefusal(
            f"feature(s) {', '.join(constant)} are constant over all patients (their pooled "
            f"variance is below {resolved:.1e}, what this backend's rounding can tell from 0)"
        )
    return n_total, means, np.sqrt(variances)


def local_moments(values: np.ndarray) -> tuple[int, float, float]:
    """Count, mean and population variance of the non-missing values (0, 0, 0 if none)."""
    missing = np.isnan(values)
    count = values.size - int(np.count_nonzero(missing))
    if count == 0:
        return 0, 0.0, 0.0
    deviations = np.where(missing, 0.0, values)
    mean = float(deviations.sum()) / count
    deviations -= mean
    deviations[missing] = 0.0
    return count, mean, float(np.dot(deviations, deviations)) / count
