"""One Lloyd step of the k-means iterates modes, at every party: the local part (each
row to its nearest public centroid, per-cluster counts and sums, by numpy's fast
kernels) and the pooled part inside MPC, which opens the next centroids to the parties.

- `Step` (mode "iterates", the default): the joint cluster means are computed inside
  MPC, dividing by the secret cluster sizes, and only the means are opened;
- `PooledStep` (mode "pooled"): the joint per-cluster counts and sums are opened and
  every party divides in plaintext (the joint cluster sizes of every step are revealed
  to the hospitals: the mode's added leakage, stated in the template).

Both decide the group-size rule inside MPC first (every cluster holds at least the
threshold of other hospitals' patients, `group_size`) and open its one bit before
anything else; a refusal names no cluster and no hospital.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import sparse

from smpc_ehr.analyses.common.group_size import others_reach, others_remaining, require_all
from smpc_ehr.analyses.common.moments import party_arrays, pool_means, pooled_weights
from smpc_ehr.analyses.common.variables import MAX_ABS_VALUE
from smpc_ehr.analyses.models.kmeans.data import refusal
from smpc_ehr.errors import JointRefusal
from smpc_ehr.securemath.boolean import all_of
from smpc_ehr.securemath.division import bounded_comparands, divide_by_bounded_counts
from smpc_ehr.securemath.ops import Secret, SecureOps


def cluster_moments(z: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: this party's count (k) and the mean of its rows (k x d; a mean of no
    rows is 0)."""
    counts, sums = cluster_sums(z, labels, k)
    return counts, sums / np.maximum(counts, 1.0)[:, None]


def cluster_sums(z: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: this party's count (k) and the sum of its rows (k x d), by one
    sparse one-hot product (numpy's `add.at` is some 20 times slower)."""
    counts = np.bincount(labels, minlength=k).astype(float)
    one_hot = sparse.csr_matrix(
        (np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(k, len(labels))
    )
    return counts, np.asarray(one_hot @ z)


def nearest_labels(z: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Each row's nearest centroid (ties to the lower index), by scikit-learn's Lloyd
    kernel's arithmetic: argmin of |c|^2 - 2 z.c, the row's own |z|^2 left out (it
    does not change the order); some 8 times faster than `data.nearest`, which also
    gives the distances."""
    return np.argmin((centroids * centroids).sum(axis=1) - 2.0 * (z @ centroids.T), axis=1)


def checked_weights(
    ops: SecureOps, counts: Secret, threshold: int, n_total: int
) -> tuple[Secret, Secret]:
    """The step's group-size rule as secret bits (coalitions x k: the other hospitals'
    patients in the cluster reach the threshold, `group_size.others_remaining`) and
    each party's share n_jc / N_c of each cluster (P x k), their comparisons in ONE batch.

    Why the division may assume N_c in [threshold, N] (N public): a cluster's weights
    are opened (in its centroid) only once the rule's bit has shown that it holds at
    least the threshold of other hospitals' patients, and no cluster exceeds N; so
    `divide_by_bounded_counts` compares with public powers of two in those bounds only
    and runs fewer Newton steps. Outside them its result is garbage that is never
    opened."""
    remaining = others_remaining(ops, counts)  # coalitions x k
    if threshold < 1:  # an empty cluster would pass the rule: the general division
        return ops.ge_public(remaining, threshold), pooled_weights(ops, counts)[1]
    totals = ops.sum(counts, axis=0)
    low = min(threshold, max(n_total, 1))
    high = max(n_total, low)
    comparands = bounded_comparands(ops, totals, low, high)
    cells = int(np.prod(remaining.shape))
    parts = [ops.reshape(ops.add_public(remaining, -float(threshold)), (cells,))]
    if comparands is not None:
        parts.append(ops.reshape(comparands, (int(np.prod(comparands.shape)),)))
    bits = ops.ge_public(ops.concatenate(parts), -0.5)  # whole numbers: [x >= 0]
    rule = ops.reshape(bits[:cells], tuple(remaining.shape))
    pieces = None if comparands is None else ops.reshape(bits[cells:], tuple(comparands.shape))
    weights = divide_by_bounded_counts(ops, counts, totals, ops.n_parties, low, high, pieces)
    return rule, weights


class Step:
    """Mode "iterates": the next centroids are the joint cluster means, divided inside
    MPC (`checked_weights`, `moments.pool_means`); only they are opened."""

    def __init__(self, ops: SecureOps, z: np.ndarray, k: int, threshold: int, n_total: int) -> None:
        self.ops, self.z, self.k, self.threshold, self.n_total = ops, z, k, threshold, n_total

    async def centroids(
        self, labels: np.ndarray, previous: np.ndarray | None
    ) -> tuple[np.ndarray, bool]:
        """The joint mean of each cluster's rows (k x d), opened to the parties only if
        every cluster holds at least the threshold of patients of the other hospitals
        (else `JointRefusal`), and whether no patient anywhere has a label other than
        `previous` (None: there were none)."""
        ops, k, d = self.ops, self.k, self.z.shape[1]
        counts, local_means = cluster_moments(self.z, labels, k)
        shared = party_arrays(ops, counts)  # P x k
        rule, weights = checked_weights(ops, shared, self.threshold, self.n_total)
        stacked = ops.stack([weights] * d, axis=2)  # P x k x d
        pooled = pool_means(ops, stacked, party_arrays(ops, local_means))
        parts = [ops.reshape(pooled, (k * d,)), *unchanged(ops, labels, previous)]
        # The rule's comparisons are in the division's batch; its bit is opened first,
        # and the means only if it is 1.
        await require_all(ops, rule, self.threshold, refusal(k, self.threshold, False))
        opened = await ops.reveal(ops.concatenate(parts))
        stable = previous is not None and bool(opened[-1] > 0.5)
        return opened[: k * d].reshape(k, d), stable


class PooledStep(Step):
    """Mode "pooled": the joint per-cluster counts N_c and sums S_c are opened to the
    parties (after the group-size rule's bit), each party divides S_c / N_c itself. No
    secret division: per step one batch of the rule's comparisons, its AND and two
    openings.

    The sums enter MPC divided by the public power of two 2^`shift` that keeps them
    below 2^30 whatever the data (`sums_shift`), and are multiplied back when opened."""

    def __init__(
        self,
        ops: SecureOps,
        z: np.ndarray,
        k: int,
        threshold: int,
        n_total: int,
        standardized: bool,
    ) -> None:
        super().__init__(ops, z, k, threshold, n_total)
        self.shift = sums_shift(n_total, standardized)

    async def centroids(
        self, labels: np.ndarray, previous: np.ndarray | None
    ) -> tuple[np.ndarray, bool]:
        ops, k, d = self.ops, self.k, self.z.shape[1]
        counts, sums = cluster_sums(self.z, labels, k)
        shared = party_arrays(ops, counts)  # P x k
        rule = others_reach(ops, shared, self.threshold)
        pooled = ops.sum(party_arrays(ops, np.ldexp(sums, -self.shift)), axis=0)  # k x d
        parts = [ops.sum(shared, axis=0), ops.reshape(pooled, (k * d,))]
        parts += unchanged(ops, labels, previous)
        await require_all(ops, rule, self.threshold, refusal(k, self.threshold, False))
        opened = await ops.reveal(ops.concatenate(parts))
        sizes = np.rint(opened[:k])
        if (sizes < 1).any():  # only with a threshold of 0: the rule passed an empty one
            raise JointRefusal(f"{refusal(k, self.threshold, False)}: a cluster is empty")
        totals = np.ldexp(opened[k : k + k * d].reshape(k, d), self.shift)
        stable = previous is not None and bool(opened[-1] > 0.5)
        return totals / sizes[:, None], stable


def sums_shift(n_total: int, standardized: bool) -> int:
    """The public s for which every pooled sum / 2^s stays below 2^30 (the backends'
    fixed point holds 2^31): |S_c| <= N max|z|, and max|z| <= sqrt(N) for features
    standardised with their own (population) standard deviations, else below
    `MAX_ABS_VALUE`. 0 up to N of about a million standardised patients."""
    largest = math.sqrt(max(n_total, 1)) * 1.01 if standardized else MAX_ABS_VALUE
    return max(0, math.ceil(math.log2(max(n_total, 1) * largest)) - 30)


def unchanged(ops: SecureOps, labels: np.ndarray, previous: np.ndarray | None) -> list[Secret]:
    """[the AND of every party's bit "my labels stayed"] (one secret), or nothing when
    there were no previous labels."""
    if previous is None:
        return []
    same = float(np.array_equal(labels, previous))
    return [all_of(ops, party_arrays(ops, np.array([same])))]
