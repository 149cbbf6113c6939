"""Joint k-means clustering of patients, "iterates" mode: Lloyd's algorithm where the
parties learn each iterate of the centroids and nothing else.

How it runs (each party on its own complete cases of the features, in plaintext where
it says "locally"):
1. Scale. Inside MPC: N and, with `standardize` (default), the features' joint means
   and standard deviations (`moments.reveal_standardisation`), revealed to the parties;
   the job fails, releasing nothing, if N < k x the small-cell threshold (some cluster
   would have to be suppressed) or a feature is constant. Without `standardize` the
   features are clustered in their own units (means 0, sds 1 are used).
2. Start. With `init`, the given centroids (original units). Otherwise, for restart r,
   each party gives each of its rows a random cluster (numpy's generator from
   [seed, r, party]); the first centroids are the joint means of those groups.
3. Lloyd steps. Locally: each row goes to its nearest centroid; per cluster the count
   and the mean of its rows. Inside MPC: the counts and means are pooled into the
   joint cluster means (`moments.pool_means`, the division by the joint counts done
   by `fractions_of_total`). Opened to the parties: the new centroids and per cluster
   the sum of its weights n_j / N, 1 or (for an empty cluster) 0, up to rounding
   noise of about 1e-4: which clusters are empty, without a comparison. An empty
   cluster is re-seeded, deterministically, at the midpoint of the two centroids
   farthest apart (and the result says so). Also opened, with the centroids: whether
   no patient anywhere changed cluster in the step (each party inputs whether its own
   labels stayed the same; the product of those bits, no comparison). Stop when none
   did (as scikit-learn's strict convergence: the centroids are then exactly the
   cluster means, whatever the backend's rounding noise in their moves) or when the
   centroids move by at most `tol` in total (the square root of the sum of squared
   moves, in the clustered units), or after `max_iter` steps.
4. With `n_init` restarts, each restart's joint inertia (the sum of the squared
   distances of the rows to their centroids) is pooled inside MPC, and the index of
   the smallest is opened to the parties (one batch of comparisons): the winner.
5. Released to the coordinator, for the winner: the centroids (original units), N,
   each cluster's size (suppressed below the threshold, decided inside MPC), the joint
   inertia, the iteration count and convergence flag, and per cluster the means of the
   `profile` variables (each released only where at least the threshold of the
   cluster's patients have it).

Leakage, plainly:
- each party learns: N, the features' joint means and standard deviations (with
  `standardize`), every iterate of the centroids of every restart, which clusters were
  empty when, after each step whether any patient changed cluster, and which restart
  won; never another party's counts, sums or rows, nor
  a cluster's joint size or inertia. Each party may keep its own patients' cluster
  labels (it computes them itself); they are never sent.
- the coordinator (and the analyst) learns: the final centroids, N, the clusters'
  sizes of at least the threshold (which are suppressed), the joint inertia, the
  iteration count and the profile means behind at least the threshold of patients;
  nothing per hospital.
- if the job fails (too few patients, a constant feature) nothing is released to the
  coordinator; the parties may have learned iterates so far.
Not covered: what the iterates reveal about the joint data beyond the final
centroids (a deterministic function of the pooled data and the seed, like the
centroids), and what releases reveal in combination.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, Params
from smpc_ehr.analyses.cells import exact_int
from smpc_ehr.analyses.kmeans_data import Rows, initial_centroids, local_rows, shortfall
from smpc_ehr.analyses.kmeans_full import kmeans_full_program
from smpc_ehr.analyses.moments import (
    party_arrays,
    pool_means,
    pooled_weights,
    reveal_standardisation,
)
from smpc_ehr.analyses.variables import cohort_filter
from smpc_ehr.backends.base import Secret, SecureOps, SecureProgram, all_of, public_values
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError

MODES = ("iterates", "full")


def nearest(z: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest centroid (ties to the lower index, as scikit-learn) and its
    squared distance to it."""
    distances = (
        (z * z).sum(axis=1)[:, None] - 2 * z @ centroids.T + (centroids * centroids).sum(axis=1)
    )
    labels = np.argmin(distances, axis=1)
    return labels, np.maximum(distances[np.arange(len(z)), labels], 0.0)


def cluster_moments(z: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per cluster: this party's count (k) and the mean of its rows (k x d; a mean of no
    rows is 0)."""
    counts = np.bincount(labels, minlength=k).astype(float)
    sums = np.zeros((k, z.shape[1]))
    np.add.at(sums, labels, z)
    return counts, sums / np.maximum(counts, 1.0)[:, None]


def reseed(centroids: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """Empty clusters' centroids moved, one after another, to the midpoint of the two
    centroids farthest apart: deterministic, and computed from the public iterate."""
    result = centroids.copy()
    for c in np.flatnonzero(empty):
        others = np.delete(np.arange(len(result)), c)
        pts = result[others]
        gaps = ((pts[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
        i, j = np.unravel_index(np.argmax(gaps), gaps.shape)
        result[c] = (pts[i] + pts[j]) / 2
    return result


class _Fit:
    """One restart's state at every party: the public centroids (clustered units) and
    this party's own labels."""

    def __init__(self, centroids: np.ndarray) -> None:
        self.centroids = centroids
        self.labels: np.ndarray | None = None
        """This party's rows' clusters in the last step (or the starting partition)."""
        self.iterations = 0
        self.converged = False
        self.reseeded: list[tuple[int, int]] = []


def kmeans_program(rows: Rows, params: Params, threshold: int) -> SecureProgram:
    """The iterates-mode clustering (see the module docstring); opens to the coordinator
    what `_outputs` says, in the layout `KMeansAnalysis.finalize` reads."""
    features = list(params["features"])
    d, k = len(features), int(params["k"])
    max_iter, tol, restarts = int(params["max_iter"]), float(params["tol"]), int(params["n_init"])
    standardize = params["standardize"] == "yes"
    explicit = initial_centroids(params, d)

    async def program(ops: SecureOps) -> list[Secret]:
        n_total, means, sds = await reveal_standardisation(
            ops,
            rows.x,
            features,
            k * threshold,
            shortfall(k, threshold),
        )
        if not standardize:
            means, sds = np.zeros(d), np.ones(d)
        z = (rows.x - means) / sds

        async def joint_means(
            labels: np.ndarray, previous: np.ndarray | None
        ) -> tuple[np.ndarray, np.ndarray, bool]:
            """The joint mean of each cluster's rows (opened to the parties), which
            clusters are empty (k), and whether no patient anywhere has a label other
            than `previous` (None: there were none)."""
            counts, local_means = cluster_moments(z, labels, k)
            _, weights = pooled_weights(ops, party_arrays(ops, counts))  # P x k
            stacked = ops.stack([weights] * d, axis=2)  # P x k x d
            pooled = pool_means(ops, stacked, party_arrays(ops, local_means))
            # The weights n_j / N of a cluster add up to 1, or to 0 if it is empty: opened
            # with the centroids, they say which clusters are empty without a comparison.
            filled = ops.sum(weights, axis=0)
            parts = [ops.reshape(pooled, (k * d,)), filled]
            if previous is not None:  # the AND of every party's "my labels stayed"
                same = float(np.array_equal(labels, previous))
                parts.append(all_of(ops, party_arrays(ops, np.array([same]))))
            opened = await ops.reveal(ops.concatenate(parts))
            stable = previous is not None and bool(opened[-1] > 0.5)
            return opened[: k * d].reshape(k, d), opened[k * d : k * d + k] < 0.5, stable

        async def run(fit: _Fit) -> _Fit:
            while fit.iterations < max_iter:
                fit.iterations += 1
                labels, _ = nearest(z, fit.centroids)
                centroids, empty, stable = await joint_means(labels, fit.labels)
                fit.labels = labels
                if empty.any():
                    centroids = reseed(centroids, empty)
                    fit.reseeded += [(fit.iterations, int(c)) for c in np.flatnonzero(empty)]
                shift = float(np.sqrt(((centroids - fit.centroids) ** 2).sum()))
                fit.centroids = centroids
                ops.progress("lloyd", fit.iterations, max_iter, f"centroids moved {shift:.2g}")
                if (stable or shift <= tol) and not empty.any():
                    fit.converged = True
                    break
            return fit

        fits = []
        for restart in range(1 if explicit is not None else restarts):
            if explicit is not None:
                fit = _Fit((explicit - means) / sds)
            else:
                draw = np.random.default_rng([int(params["seed"]), restart, ops.my_index])
                partition = draw.integers(0, k, len(z))
                start, empty, _ = await joint_means(partition, None)
                fit = _Fit(reseed(start, empty) if empty.any() else start)
                fit.labels = partition
            fits.append(await run(fit))
        winner = 0
        if len(fits) > 1:
            inertias = [nearest(z, f.centroids)[1].sum() / n_total for f in fits]
            shared = ops.sum(party_arrays(ops, np.asarray(inertias)), axis=0)  # R
            winner = int(await _argmin(ops, shared, len(fits)))
        best = fits[winner]
        labels, distances = nearest(z, best.centroids)
        return _outputs(ops, rows, labels, distances, best, (means, sds), n_total, threshold, k)

    return program


async def _argmin(ops: SecureOps, values: Secret, count: int) -> int:
    """The index of the smallest of `count` secret values (the first on ties), opening
    only that index: one batch of comparisons, one per pair a < b, [v_b < v_a]."""
    pairs = [(a, b) for a in range(count) for b in range(a + 1, count)]
    later_smaller = ops.lt(
        ops.stack([values[b : b + 1] for _, b in pairs]),
        ops.stack([values[a : a + 1] for a, _ in pairs]),
    )
    ones = ops.add_public(ops.mul_public(later_smaller, 0.0), 1.0)
    earlier_wins = ops.sub(ones, later_smaller)  # [v_a <= v_b]: ties to the lower index
    won: list[list[Secret]] = [[] for _ in range(count)]
    for i, (a, b) in enumerate(pairs):
        won[a].append(earlier_wins[i])
        won[b].append(later_smaller[i])
    wins = [ops.ge_public(ops.sum(ops.stack(w), axis=0), count - 1.5) for w in won]
    opened = await ops.reveal(ops.stack(wins))
    return int(np.argmax(opened.reshape(count)))


def _outputs(
    ops: SecureOps,
    rows: Rows,
    labels: np.ndarray,
    distances: np.ndarray,
    fit: _Fit,
    scale: tuple[np.ndarray, np.ndarray],
    n_total: int,
    threshold: int,
    k: int,
) -> list[Secret]:
    """What the coordinator may open about the winning clustering: the public summary,
    the inertia / N, the count bits and masked counts (cluster sizes, per cluster and
    profile variable the patients having it, the patients left out), and the masked
    profile means."""
    means, sds = scale
    q = rows.profile.shape[1]
    centroids = fit.centroids * sds + means
    header = [n_total, fit.iterations, float(fit.converged), len(fit.reseeded), n_total]
    summary = np.concatenate([header, centroids.ravel()])
    public = public_values(ops, summary)
    profile_counts, profile_means = np.zeros((k, q)), np.zeros((k, q))
    for v in range(q):
        present = ~np.isnan(rows.profile[:, v])
        chosen = labels[present]
        profile_counts[:, v] = np.bincount(chosen, minlength=k)
        sums = np.bincount(chosen, weights=rows.profile[present, v], minlength=k)
        profile_means[:, v] = sums / np.maximum(profile_counts[:, v], 1.0)
    local_counts = np.concatenate(
        [np.bincount(labels, minlength=k), profile_counts.ravel(), [rows.missing]]
    ).astype(float)
    shared_counts = party_arrays(ops, local_counts)  # P x (k + k q + 1)
    totals = ops.sum(shared_counts, axis=0)
    released = ops.ge_public(totals, threshold)
    inertia = ops.sum(party_arrays(ops, np.array([distances.sum() / n_total])), axis=0)
    outputs = [public, inertia, released, ops.mul(released, totals)]
    if q:
        _, weights = pooled_weights(ops, shared_counts[:, k : k + k * q])
        profile = pool_means(ops, weights, party_arrays(ops, profile_means.ravel()))
        outputs.append(ops.mul(released[k : k + k * q], profile))
    return outputs


ITERATES_LEAKAGE = (
    "the parties learned every iterate of the centroids, after each step whether any "
    "patient changed cluster, N and the features' joint means and standard deviations"
)
FULL_LEAKAGE = (
    "the parties learned each hospital's row counts rounded up to a multiple of 100, "
    "per feature the power of two just above its largest magnitude and the one within "
    "a factor of two of its joint standard deviation, and the number of iterations, "
    "nothing else; the coordinator also learned each feature's joint standard deviation "
    "within a factor of two"
)


class KMeansAnalysis(Analysis):
    """k-means clustering by Lloyd's algorithm, revealing the centroid iterates."""

    name = "kmeans"

    def validate(self, params: Params) -> None:
        cohort_filter(params)
        d, k = len(params["features"]), int(params["k"])
        init = params.get("init")
        if init and len(init) != k * d:
            raise TemplateError(
                f"init must give k x features = {k} x {d} = {k * d} numbers (centroid by "
                f"centroid), not {len(init)}"
            )
        if params["mode"] not in MODES:
            raise TemplateError(f"mode {params['mode']!r} is not available: {', '.join(MODES)}")
        if params["mode"] == "full" and (params.get("profile") or params["standardize"] != "yes"):
            raise TemplateError(
                "mode 'full' clusters standardised features and reports no profiles: "
                "leave out profile and standardize=no, or use mode 'iterates'"
            )
        overlap = set(params.get("profile") or ()) & set(params["features"])
        if overlap:
            raise TemplateError(f"{', '.join(sorted(overlap))} cannot be both feature and profile")

    def local_input(self, data: PartyData, params: Params) -> Rows:
        return local_rows(data, params)

    def secure_program(self, local: Rows, params: Params, threshold: int) -> SecureProgram:
        if params["mode"] == "full":
            return kmeans_full_program(local, params, threshold)
        return kmeans_program(local, params, threshold)

    def validate_backend(self, params: Params, backend: str) -> None:
        if params["mode"] == "full" and backend != "crypten":
            raise TemplateError(
                "mode 'full' runs on the crypten backend only: it compares every secret row "
                "with every centroid in every step, which MPyC's comparisons (by bit "
                "decomposition) make far too slow; use --backend crypten, or mode 'iterates'"
            )

    def finalize(self, opened: Sequence[float], params: Params, threshold: int) -> dict[str, Any]:
        features = list(params["features"])
        profile = list(params.get("profile") or ())
        d, k, q = len(features), int(params["k"]), len(profile)
        cells = k + k * q + 1
        full = params["mode"] == "full"
        expected = 5 + k * d + 1 + 2 * cells + k * q + (d if full else 0)
        if len(opened) != expected:
            raise ValueError(f"expected {expected} opened values, got {len(opened)}")
        values = np.asarray(opened, dtype=float)
        n, iterations, reseeds = round(values[0]), round(values[1]), round(values[3])
        centroids = values[5 : 5 + k * d].reshape(k, d)
        if full:  # opened in units of 2^e, the exponents last (`kmeans_full`)
            centroids = np.ldexp(centroids, np.rint(values[-d:]).astype(int))
            values = values[:-d]
        at = 5 + k * d
        inertia = float(values[at]) * values[4]  # opened as inertia / (N or padded N)
        bits = [exact_int(b) for b in values[at + 1 : at + 1 + cells]]
        masked = values[at + 1 + cells : at + 1 + 2 * cells]
        counts = [exact_int(m) if b else None for b, m in zip(bits, masked, strict=True)]
        sizes, missing = counts[:k], counts[-1]
        means = values[at + 1 + 2 * cells :]
        profiles = [
            {
                v: (float(means[c * q + i]) if bits[k + c * q + i] else None)
                for i, v in enumerate(profile)
            }
            for c in range(k)
        ]
        suppressed = [c for c, size in enumerate(sizes) if size is None]
        notes = []
        if suppressed:
            notes.append(
                f"cluster(s) {', '.join(str(c) for c in suppressed)} have fewer than "
                f"{threshold} patients: their size and profile are suppressed"
            )
        if reseeds:
            notes.append(
                f"{reseeds} time(s) a cluster was empty and was "
                + (
                    "kept where it was (mode full)"
                    if params["mode"] == "full"
                    else "re-seeded at the midpoint of the two centroids farthest apart"
                )
            )
        return {
            "features": features,
            "centroids": [[float(v) for v in row] for row in centroids],
            "sizes": sizes,
            "suppressed_clusters": suppressed,
            "inertia": inertia,
            "inertia_units": "standardised (joint means and standard deviations)"
            if params["standardize"] == "yes"
            else "the features' own units",
            "iterations": iterations,
            "converged": bool(values[2] > 0.5),
            "n": n,
            "missing": missing,
            "k": k,
            "profiles": profiles if q else None,
            "reseeded": reseeds,
            "notes": notes,
            "mode": params["mode"],
            "leakage": FULL_LEAKAGE if params["mode"] == "full" else ITERATES_LEAKAGE,
            "missing_values": "complete-case: patients missing any feature are left out "
            "(their number is `missing`, suppressed below the threshold)",
            "threshold": threshold,
        }
