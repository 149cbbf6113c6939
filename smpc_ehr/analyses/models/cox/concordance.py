"""Harrell's concordance index C of the fitted model, from pooled counts: only C is
opened (to the coordinator).

A pair of patients (i, l) is comparable when i has the event at grid time t_i and l is
still followed after it (t_l > t_i, or t_l = t_i and l censored); it is concordant
when i's linear predictor is the larger, tied (counted 1/2) when they are equal. Each
party bins its patients' standardised linear predictors z'b at the final coefficients
(public to the parties) into public bins of width `WIDTH` on [-LIMIT, LIMIT] (two more
bins for the tails) and counts, per grid point j and bin b, its events e_jb, its
comparable later patients n_jb, and those in lower bins, below_jb = sum over b' < b of
n_jb' (`local_counts`). Inside MPC the counts are added and

    C = (sum e_jb (below_jb + n_jb / 2)) / (sum_j E_j N_j)

(E_j, N_j the sums over the bins): one batch of products and one secure reciprocal.
Stratified by hospital, pairs are compared within a hospital only (each has its own
baseline hazard): each party computes its own numerator and number of pairs, and only
these are added. The binning's approximation: pairs in one bin count as tied, so C is
within half the share of comparable pairs whose linear predictors differ by less than
WIDTH (hazards within about 2%) of the exact Harrell's C; pairs beyond +-LIMIT
(hazards 20 times the mean or a twentieth of it) share a tail bin likewise. Why not
finer: the counts per grid point and bin are the inputs and the products inside MPC
(300 bins x 121 grid points at most), which dominate the job's time.
"""

from __future__ import annotations

import numpy as np

from smpc_ehr.analyses.models.cox.local import CoxData
from smpc_ehr.securemath.division import pow2_normalize, reciprocal_from_one_to_two
from smpc_ehr.securemath.ops import Secret, SecureOps

WIDTH = 0.02
LIMIT = 3.0
BINS = round(2 * LIMIT / WIDTH) + 2
MAX_PAIRS = 2.0**29
"""C is computed only while D x N, a bound on the comparable pairs, is below this: the
pooled counts stay inside the fixed-point range (a public decision: the parties know
both, and the result releases both)."""
SKIPPED = -1.0
"""The public output in place of C when D x N is too large."""


def bins(eta: np.ndarray) -> np.ndarray:
    """Each linear predictor's public bin: 0 below -LIMIT, BINS - 1 from LIMIT on."""
    inner = np.floor((eta + LIMIT) / WIDTH).astype(np.int64) + 1
    return np.clip(inner, 0, BINS - 1)


def local_counts(cox: CoxData, eta: np.ndarray, grid: int) -> np.ndarray:
    """This party's counts per grid point j (2 x grid x (BINS + 1)): row 0 its events
    e_jb per bin and, in the last column, their total E_j; row 1 per bin the patients
    followed longer in lower bins plus half those in the same bin, below_jb + n_jb / 2,
    and in the last column all followed longer, N_j. Every term of C is then a product
    of row 0 and row 1 at the same place: sum over the bins of e_jb (below_jb + n_jb /
    2) is the numerator, E_j N_j the comparable pairs at j."""
    b = bins(eta)
    events = np.zeros((grid, BINS))
    np.add.at(events, (cox.time[cox.event], b[cox.event]), 1.0)
    at_risk = np.zeros((grid, BINS))
    np.add.at(at_risk, (cox.time, b), 1.0)
    at_risk = np.flip(np.cumsum(np.flip(at_risk, axis=0), axis=0), axis=0)  # time >= j
    later = at_risk - events  # time > j, or censored at j
    weight = np.cumsum(later, axis=1) - later / 2  # below + later / 2
    return np.stack(
        [
            np.column_stack([events, events.sum(axis=1)]),
            np.column_stack([weight, later.sum(axis=1)]),
        ]
    )


def pair_sums(products: np.ndarray) -> np.ndarray:
    """[concordant + tied / 2, comparable pairs] from the products of `local_counts`'
    two rows (grid x (BINS + 1)), in floats."""
    return np.array([float(products[:, :BINS].sum()), float(products[:, BINS].sum())])


def local_pairs(counts: np.ndarray) -> np.ndarray:
    """[concordant + tied / 2, comparable pairs] among one party's patients alone
    (stratified by hospital: each hospital's own pairs)."""
    return pair_sums(counts[0] * counts[1])


def pooled_pairs(ops: SecureOps, pooled: Secret, grid: int) -> Secret:
    """[numerator, comparable pairs] (2 x 1) from the pooled `local_counts`: the pairs
    span hospitals, so the products of the pooled counts are formed inside MPC (one
    batch of grid x (BINS + 1) products)."""
    products = ops.mul(pooled[0], pooled[1])
    numerator = ops.sum(ops.reshape(products[:, :BINS], (1, grid * BINS)), axis=1)
    pairs = ops.sum(ops.reshape(products[:, BINS:], (1, grid)), axis=1)
    return ops.stack([numerator, pairs])


def ratio(ops: SecureOps, pairs: Secret) -> Secret:
    """C = numerator / comparable pairs (shape (1,)), for pairs from 1 to 2^30 (one
    column: the normalisation by comparisons takes any values, not only whole ones)."""
    normal = pow2_normalize(ops, ops.stack([pairs[1], pairs[0]]))
    inverse = reciprocal_from_one_to_two(ops, normal[0])
    return ops.mul(normal[1], inverse)
