"""k-means clustering, mode "full": the patients' features are secret-shared and
Lloyd's algorithm runs entirely inside MPC (CrypTen); only the final clustering is
opened, to the coordinator.

How it runs:
1. Each party pads its complete rows to a multiple of PAD_ROWS (`secret_rows`); the
   padded sizes are opened to the parties.
2. Standardisation (`secret_rows.secret_scaling`): per feature, the power of two just
   above the largest |value| and the one within a factor of two of the joint standard
   deviation (2^e) are opened to the parties, with [N >= k x threshold] and which
   features are (nearly) constant. Each party inputs its rows times 2^-e, so the joint
   variance lies in [1, 4), where `inverse_sqrt` converges; z = w (x 2^-e - mean) / sd,
   with w = 0 on padding rows, which so add nothing.
3. Start: the given `init` (standardised inside MPC), or per restart the joint means of
   a random partition (one-hot labels from the seed, shared with the rows).
4. Lloyd step, all inside MPC: the nearest centroid of every row (`nearest_onehot`, a
   tournament of comparisons), per cluster the count and the sum of the rows, divided
   by the count (`divide_by_small_counts`); a cluster left empty keeps its centroid.
   One bit is opened to the parties after each step: whether to stop (the centroids
   moved by at most `tol`, or no patient changed cluster).
5. Restarts: the joint inertias are compared inside MPC and the best clustering is
   selected by secret bits; nothing about the others is opened.
6. Opened to the coordinator by the rule of release.py (decided inside MPC): as in the
   iterates mode without profiles, the centroids in units of 2^e with the public
   exponents e (`KMeansAnalysis.outputs`), and how often a cluster was empty.

Cost: per step and row, k - 1 secret comparisons and about 2 k d products; meant for a
few thousand patients per hospital (MAX_ROWS).

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Params
from smpc_ehr.analyses.common.moments import party_arrays
from smpc_ehr.analyses.common.secret_rows import (
    Scaling,
    either,
    norm_excess,
    padded_sizes,
    secret_scaling,
    share_rows,
    total_of,
)
from smpc_ehr.analyses.models.kmeans.data import Rows, initial_centroids, shortfall
from smpc_ehr.analyses.models.kmeans.release import released_clustering
from smpc_ehr.errors import JointRefusal
from smpc_ehr.securemath import roots
from smpc_ehr.securemath.boolean import all_of
from smpc_ehr.securemath.division import reciprocal_from_one_to_two
from smpc_ehr.securemath.ops import Secret, SecureOps, public_values

MOVE_UNITS = 16.0
MOVE_MAGNIFY = 256.0
MOVE_FLOOR = 0.25
"""The convergence test (`secret_rows.norm_excess`) on the centroids' moves in units of
1/16 sd: moves of 1/64 sd or more by their squares as they are, smaller ones
magnified 256 times more, so that tol^2 (1e-8 for tol 1e-4) stands far above the
squares' roundings (2^-16 each) and no large move is squared magnified."""
MAX_ROWS = 2**16
"""Cluster sizes stay below 2^16, so the division by them is exact up to one rounding
(`divide_by_small_counts`); full mode is for a few thousand patients per hospital."""


def inverse_sqrt(ops: SecureOps, v: Secret) -> Secret:
    """1 / sqrt(v) for secret v in [1, 4) (`securemath.roots`, from ONE_TO_FOUR)."""
    return roots.inverse_sqrt(ops, v, roots.ONE_TO_FOUR)


def divide_by_small_counts(ops: SecureOps, sums: Secret, counts: Secret, bound: int) -> Secret:
    """sums (k x d) / counts (k) for whole-number counts up to `bound` < 2^16 (0 gives 0).

    Why not `divide_by_counts`: it brings the sums down by a secret power of two as a
    sum of truncations, one per bit of the count, whose roundings add up to about 1e-3
    of a mean on CrypTen. Counts below 2^16 allow the exact factor p = 2^-e instead,
    assembled from the comparison bits [count >= 2^j] with public weights (no
    rounding); then sums p and counts p (in [1, 2)) are one rounding each, and 1 over
    the latter is `securemath.division.reciprocal_from_one_to_two`."""
    k = counts.shape[0]
    levels = np.arange(1, max(1, int(bound).bit_length()))
    above = ops.ge_public(
        ops.add_public(
            ops.stack([counts] * len(levels)),
            -np.broadcast_to((2.0**levels)[:, None], (len(levels), k)),
        ),
        0.0,
    )  # [count >= 2^j], j = 1..
    # p = 2^-e = 1 - sum over passed levels j of 2^-j (the steps 2^-j - 2^-(j-1) = -2^-j)
    factor = ops.add_public(
        ops.weighted_sum(above, np.broadcast_to(-(2.0**-levels)[:, None], (len(levels), k))), 1.0
    )
    scaled = ops.mul(counts, factor)  # in [1, 2), or 0
    inverse = reciprocal_from_one_to_two(ops, scaled)
    return ops.mul(ops.mul(sums, ops.reshape(factor, (k, 1))), ops.reshape(inverse, (k, 1)))


def nearest_onehot(ops: SecureOps, scores: Secret, rows: int, k: int) -> Secret:
    """For scores (rows x k), each row's one-hot argmin (rows x k, 0/1; ties to the
    lower index) by a tournament: round by round, neighbours are compared in one batch
    and the winner's score and one-hot carried on (k - 1 comparisons per row)."""
    zero = ops.mul_public(scores, 0.0)
    by_cluster = ops.transpose(scores)  # k x rows
    values = [by_cluster[c] for c in range(k)]
    hots = [ops.add_public(zero, np.broadcast_to(np.eye(k)[c], (rows, k))) for c in range(k)]
    while len(values) > 1:
        pairs = len(values) // 2
        left, right = ops.stack(values[0 : 2 * pairs : 2]), ops.stack(values[1 : 2 * pairs : 2])
        wins = ops.ge_public(ops.sub(right, left), 0.0)  # [left <= right], pairs x rows
        carried = ops.add(right, ops.mul(wins, ops.sub(left, right)))
        hot_left = ops.stack(hots[0 : 2 * pairs : 2])
        hot_right = ops.stack(hots[1 : 2 * pairs : 2])  # pairs x rows x k
        chosen = ops.add(
            hot_right, ops.mul(ops.stack([wins] * k, axis=2), ops.sub(hot_left, hot_right))
        )
        values = [carried[p] for p in range(pairs)] + values[2 * pairs :]
        hots = [chosen[p] for p in range(pairs)] + hots[2 * pairs :]
    return hots[0]


def kmeans_full_program(rows: Rows, params: Params, threshold: int) -> NamedProgram:
    """The full-MPC clustering (see the module docstring); opens the outputs of the
    iterates mode without profiles, and the exponents (`KMeansAnalysis.outputs`)."""
    features = list(params["features"])
    d, k = len(features), int(params["k"])
    max_iter, tol, restarts = int(params["max_iter"]), float(params["tol"]), int(params["n_init"])
    explicit = initial_centroids(params, d)

    async def program(ops: SecureOps) -> NamedSecrets:
        starts = 1 if explicit is not None else restarts
        n = len(rows.x)
        sizes = await padded_sizes(ops, [n])
        m = int(sizes.sum())
        if m >= MAX_ROWS:
            raise JointRefusal(
                f"mode 'full' takes fewer than {MAX_ROWS:,} rows in all ({m:,} after "
                "padding); use mode 'iterates' for larger cohorts"
            )
        scaling = await secret_scaling(
            ops, rows.x, features, k * threshold, shortfall(k, threshold)
        )
        # Values in units of the public 2^e have variance v in [1, 4): sd = v / sqrt(v),
        # each product with a result of order 1, so its rounding (2^-16) is relative 1e-5.
        root = inverse_sqrt(ops, scaling.variances)  # 1 / sd
        sd = ops.mul(scaling.variances, root)

        def standardise(values: Secret) -> Secret:
            """(values - mean) / sd, row by row, for values in units of 2^e (the
            centring exact)."""
            centred = ops.sub(values, ops.reshape(scaling.means, (1, d)))
            return ops.mul(centred, ops.reshape(root, (1, d)))

        labels = np.zeros((n, k * starts))
        for r in range(starts):
            draw = np.random.default_rng([int(params["seed"]), r, ops.my_index])
            labels[np.arange(n), r * k + draw.integers(0, k, n)] = 1.0
        x, extra = share_rows(ops, scaling.scaled(rows.x), labels, sizes[:, 0])
        w = extra[:, k * starts : k * starts + 1]
        # Standardised first, then w (0 on padding): each rounding is absolute on z (~1).
        z = ops.mul(standardise(x), w)

        def centroids_of(hot: Secret) -> tuple[Secret, Secret]:
            """Per cluster of a rows x k one-hot: the count of real rows (hot' w) and the
            mean (k x d; padding rows of z are 0)."""
            hot_t = ops.transpose(hot)
            counts = ops.reshape(ops.matmul(hot_t, w), (k,))
            return counts, divide_by_small_counts(ops, ops.matmul(hot_t, z), counts, m)

        async def lloyd(
            centroids: Secret, previous: Secret | None
        ) -> tuple[Secret, Secret, Secret, int, bool]:
            """Lloyd steps from `centroids` (and the one-hot `previous` assignment the
            start came from, or None)."""
            empties = ops.mul_public(ops.sum(centroids, axis=1), 0.0)  # k zeros
            iterations, converged = 0, False
            counts = empties
            while iterations < max_iter:
                iterations += 1
                norms = ops.sum(ops.mul(centroids, centroids), axis=1)  # k
                scores = ops.add(
                    ops.mul_public(ops.matmul(z, ops.transpose(centroids)), -2.0),
                    ops.reshape(norms, (1, k)),
                )
                hot = nearest_onehot(ops, scores, m, k)
                counts, means = centroids_of(hot)
                filled = ops.reshape(ops.ge_public(counts, 0.5), (k, 1))
                updated = ops.add(centroids, ops.mul(filled, ops.sub(means, centroids)))
                empties = ops.add(
                    empties, ops.add_public(ops.mul_public(ops.reshape(filled, (k,)), -1.0), 1.0)
                )
                move = ops.mul_public(ops.sub(updated, centroids), MOVE_UNITS)  # exact
                centroids = updated
                checks = []  # to compare with 0 in one batch
                if tol > 0:  # [moved by more than tol], two tests (`norm_excess`)
                    limit = tol * MOVE_UNITS
                    checks.append(norm_excess(ops, move, k * d, limit, MOVE_MAGNIFY, MOVE_FLOOR))
                if previous is not None:  # patients whose cluster changed: N - sum kept
                    kept = ops.matmul(ops.transpose(ops.mul(hot, previous)), w)  # k x 1
                    changed = ops.sub(scaling.total, total_of(ops, kept, k))
                    checks.append(ops.add_public(changed, -0.5))
                previous = hot
                going_on = 1.0
                if checks:
                    bits = ops.ge_public(ops.concatenate(checks), 0.0)
                    if tol > 0:
                        bits = ops.concatenate([either(ops, bits[0:2]), bits[2:]])
                    # One bit opened: [moved by more than tol] AND [some patient changed].
                    count = bits.shape[0]
                    (going_on,) = await ops.reveal(all_of(ops, ops.reshape(bits, (count, 1))))
                ops.progress("lloyd", iterations, max_iter, "inside MPC")
                if going_on < 0.5:
                    converged = True
                    break
            return centroids, counts, empties, iterations, converged

        runs: list[tuple[Secret, Secret, Secret, int, bool]] = []
        for r in range(starts):
            if explicit is not None:  # (init - mean) / sd, inside MPC
                start = standardise(public_values(ops, _init_in_units(explicit, scaling)))
                runs.append(await lloyd(start, None))
            else:
                partition = extra[:, r * k : (r + 1) * k]
                runs.append(await lloyd(centroids_of(partition)[1], partition))
        squares = total_of(ops, ops.mul(z, z), m * d)  # the sum of w ||z||^2
        inertias = [  # within-cluster sum of squares: sum ||z||^2 - sum_c n_c ||c_c||^2
            ops.sub(
                squares, total_of(ops, ops.mul(run[1], ops.sum(ops.mul(run[0], run[0]), axis=1)), k)
            )
            for run in runs
        ]
        steps = np.array([[run[3], float(run[4])] for run in runs])  # public per restart
        if starts == 1:
            centroids, counts, empties, inertia = runs[0][0], runs[0][1], runs[0][2], inertias[0]
            chosen_steps = public_values(ops, steps[0])
        else:  # the smallest inertia, chosen by secret bits: nothing about it is opened
            scores = ops.reshape(ops.concatenate(inertias), (1, starts))
            pick = ops.reshape(nearest_onehot(ops, scores, 1, starts), (starts,))

            def select(values: list[Secret]) -> Secret:
                stacked = ops.stack(values)
                shape = (starts, *([1] * (len(stacked.shape) - 1)))
                return ops.sum(ops.mul(ops.reshape(pick, shape), stacked), axis=0)

            centroids = select([run[0] for run in runs])
            counts = select([run[1] for run in runs])
            empties = select([run[2] for run in runs])
            inertia = select(inertias)
            chosen_steps = select([public_values(ops, row) for row in steps])
        # Opened as inertia / 2^e with 2^e >= m (below d, as the iterates mode's inertia / N):
        # a power of two divides exactly; 1 / m on the fixed-point grid would not (1 / 3400
        # is 19.3 units of 2^-16, rounded to 19: 1.4 % off).
        inertia_exponent = max(0, (m - 1).bit_length())
        # In units of 2^e (the coordinator multiplies by the public 2^e, appended last):
        # in original units the 2^-16 grid would be too coarse for a feature with a small
        # standard deviation.
        original = ops.add(
            ops.mul(centroids, ops.reshape(sd, (1, d))), ops.reshape(scaling.means, (1, d))
        )
        missing = ops.sum(party_arrays(ops, np.array([float(rows.missing)])), axis=0)
        scale = public_values(ops, np.array([2.0**inertia_exponent]))
        overall = ops.concatenate(
            [
                scaling.total,
                ops.mul_pow2(inertia, np.array(inertia_exponent)),
                scale,
                total_of(ops, empties, k),
            ]
        )
        released = released_clustering(ops, threshold, counts, missing, overall, original)
        # The centroids open in units of 2^e: with the public exponents (`finalize`).
        exponents = public_values(ops, scaling.exponents.astype(float))
        steps_taken = {"iterations": chosen_steps[0:1], "converged": chosen_steps[1:2]}
        return {**steps_taken, **released, "exponents": exponents}

    return program


INIT_LIMIT = 2.0**20
"""Explicit initial centroids farther than this from 0 in units of 2^e (over 2^19
standard deviations) are refused: the fixed point could not hold them."""


def _init_in_units(init: np.ndarray, scaling: Scaling) -> np.ndarray:
    """The explicit initial centroids in units of 2^e; JointRefusal (every party
    decides the same) if they lie absurdly far out."""
    scaled = scaling.scaled(init)
    if not np.all(np.abs(scaled) < INIT_LIMIT):
        raise JointRefusal(
            "init lies far outside the features' range (over 2^19 standard deviations): "
            "give initial centroids in the features' own units"
        )
    return scaled
