"""k-means clustering, modes "iterates" and "pooled": Lloyd's algorithm where the parties
see each iterate of the centroids (mode "full" is in full.py; one step: steps.py).

How it runs (each party on its own complete cases of the features, in plaintext where
it says "locally"):
1. Check, inside MPC: for every hospital (and coalition), the others hold at least
   k x the threshold of rows (`group_size.require_others_reach`); one bit is opened, a
   refusal names no hospital. Nothing, not even a joint mean, is shown before.
2. Scale: N and, with `standardize`, the features' joint means and standard deviations
   are pooled inside MPC and revealed to the parties (`moments.reveal_standardisation`);
   without it the features are clustered in their own units.
3. Start: the given `init`, or per restart the joint means of a random partition (each
   party's rows get clusters from [seed, restart, party]).
4. Lloyd steps. Locally: each row to its nearest centroid; per cluster the count and
   mean. Inside MPC: every cluster must hold the threshold of the other hospitals'
   patients (else a refusal naming no cluster; an empty cluster fails too, there is no
   re-seeding); then the joint cluster means are opened to the parties, with one bit:
   whether no patient anywhere changed cluster (mode "pooled": the joint per-cluster
   counts and sums instead, each party divides; `steps.PooledStep`). Stop on that
   bit, when the centroids move by at most `tol`, or after `max_iter` steps.
5. With restarts, the joint inertias are compared inside MPC and only the winner's
   index is opened (`_argmin`).
6. Released to the coordinator (`release.released_clustering`, rule in release.py):
   per final cluster its size, centroid and profile means, with complementary
   suppression; a cluster in which a 0/1 feature has fewer than the threshold of ones
   or zeros is hidden like a small one; the iteration count and convergence flag.

With `epsilon`, a differentially private Lloyd instead (dp.py): public clipping and
scaling, a fixed number of steps with noisy counts and sums, no check that opens a
noiseless bit.

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common import cost
from smpc_ehr.analyses.common.cells import first_smallest
from smpc_ehr.analyses.common.cost import CostRelease
from smpc_ehr.analyses.common.group_size import (
    require_others_reach,
)
from smpc_ehr.analyses.common.moments import (
    binary_rule,
    local_binary,
    party_arrays,
    pool_means,
    pooled_weights,
    reveal_standardisation,
)
from smpc_ehr.analyses.common.noise import NoisyRelease, requested_epsilon
from smpc_ehr.analyses.common.public import public_outputs
from smpc_ehr.analyses.common.tidy import Row
from smpc_ehr.analyses.common.variables import cohort_filter
from smpc_ehr.analyses.models.kmeans.data import (
    Rows,
    initial_centroids,
    local_rows,
    nearest,
    refusal,
    shortfall,
)
from smpc_ehr.analyses.models.kmeans.dp import (
    dp_fields,
    kmeans_dp_program,
    lloyd_release,
    validate_dp,
)
from smpc_ehr.analyses.models.kmeans.full import kmeans_full_program
from smpc_ehr.analyses.models.kmeans.release import Released, release_outputs, released_clustering
from smpc_ehr.analyses.models.kmeans.render import render_kmeans
from smpc_ehr.analyses.models.kmeans.steps import PooledStep, Step, nearest_labels
from smpc_ehr.analyses.models.kmeans.tidy import tidy_kmeans
from smpc_ehr.backends import supports
from smpc_ehr.backends.backend import FULL_MODE
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError
from smpc_ehr.securemath.ops import Secret, SecureOps, public_values

MODES = ("iterates", "pooled", "full")


class _Fit:
    """One restart's state at every party: the public centroids (clustered units) and
    this party's own labels."""

    def __init__(self, centroids: np.ndarray) -> None:
        self.centroids = centroids
        self.labels: np.ndarray | None = None
        """This party's rows' clusters in the last step (or the starting partition)."""
        self.iterations = 0
        self.converged = False


def kmeans_program(rows: Rows, params: Params, threshold: int) -> NamedProgram:
    """The iterates-mode clustering (see the module docstring); opens to the coordinator
    `KMeansAnalysis.outputs` (`_outputs`)."""
    features = list(params["features"])
    d, k = len(features), int(params["k"])
    max_iter, tol, restarts = int(params["max_iter"]), float(params["tol"]), int(params["n_init"])
    standardize = params["standardize"] == "yes"
    explicit = initial_centroids(params, d)

    async def program(ops: SecureOps) -> NamedSecrets:
        # Nothing is revealed, not even the joint means, unless the patients of the other
        # hospitals could fill every cluster (a necessary condition of every step's check).
        own = party_arrays(ops, np.array([float(len(rows.x))]))
        await require_others_reach(ops, own, k * threshold, refusal(k, threshold, True))
        # N >= k threshold follows (every coalition's others reach it): no comparison
        # is spent on it again.
        n_total, means, sds = await reveal_standardisation(
            ops, rows.x, features, None, shortfall(k, threshold)
        )
        if not standardize:
            means, sds = np.zeros(d), np.ones(d)
        z = (rows.x - means) / sds

        step = Step(ops, z, k, threshold, n_total)
        if params["mode"] == "pooled":
            step = PooledStep(ops, z, k, threshold, n_total, standardize)

        async def run(fit: _Fit) -> _Fit:
            while fit.iterations < max_iter:
                fit.iterations += 1
                labels = nearest_labels(z, fit.centroids)
                centroids, stable = await step.centroids(labels, fit.labels)
                fit.labels = labels
                shift = float(np.sqrt(((centroids - fit.centroids) ** 2).sum()))
                fit.centroids = centroids
                ops.progress("lloyd", fit.iterations, max_iter)
                if stable or shift <= tol:
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
                fit = _Fit((await step.centroids(partition, None))[0])
                fit.labels = partition
            fits.append(await run(fit))
        winner = 0
        if len(fits) > 1:
            inertias = [nearest(z, f.centroids)[1].sum() / n_total for f in fits]
            shared = ops.sum(party_arrays(ops, np.asarray(inertias)), axis=0)  # R
            winner = await _argmin(ops, shared)
        best = fits[winner]
        labels, distances = nearest(z, best.centroids)
        return _outputs(ops, rows, labels, distances, best, (means, sds), n_total, threshold, k)

    return program


async def _argmin(ops: SecureOps, values: Secret) -> int:
    """The index of the smallest of the secret values (the first on ties), opening only
    that index (`cells.first_smallest`)."""
    opened = await ops.reveal(first_smallest(ops, values))
    return int(np.argmax(opened))


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
) -> NamedSecrets:
    """What the coordinator may open about the winning clustering: the public iteration
    count and convergence flag, and `released_clustering` of the final sizes, the
    left-out patients, [N, inertia / N, N, 0 empty clusters], the centroids and the
    profile means."""
    means, sds = scale
    q = rows.profile.shape[1]
    centroids = fit.centroids * sds + means
    steps = {"iterations": np.array([fit.iterations]), "converged": np.array([fit.converged])}
    header = public_outputs(ops, steps)
    profile_counts, profile_means = np.zeros((k, q)), np.zeros((k, q))
    binary, ones = np.zeros((k, q)), np.zeros((k, q))
    for v in range(q):
        present = ~np.isnan(rows.profile[:, v])
        chosen = labels[present]
        profile_counts[:, v] = np.bincount(chosen, minlength=k)
        sums = np.bincount(chosen, weights=rows.profile[present, v], minlength=k)
        profile_means[:, v] = sums / np.maximum(profile_counts[:, v], 1.0)
        for c in range(k):
            binary[c, v], ones[c, v] = local_binary(rows.profile[labels == c, v])
    local_counts = np.concatenate(
        [np.bincount(labels, minlength=k), profile_counts.ravel(), [rows.missing]]
    ).astype(float)
    shared_counts = party_arrays(ops, local_counts)  # P x (k + k q + 1)
    totals = ops.sum(shared_counts, axis=0)
    inertia = ops.sum(party_arrays(ops, np.array([distances.sum() / n_total])), axis=0)
    n = public_values(ops, np.array([float(n_total)]))
    overall = ops.concatenate([n, inertia, n, ops.mul_public(n, 0.0)])
    profile: tuple[Secret, Secret, Secret] | tuple[None, None, None] = (None, None, None)
    if q:
        _, weights = pooled_weights(ops, shared_counts[:, k : k + k * q])
        pooled = pool_means(ops, weights, party_arrays(ops, profile_means.ravel()))
        counts = totals[k : k + k * q]
        binary_ok = binary_rule(
            ops,
            party_arrays(ops, binary.ravel()),
            party_arrays(ops, ones.ravel()),
            counts,
            threshold,
        )
        profile = (ops.reshape(counts, (k, q)), ops.reshape(pooled, (k, q)), binary_ok)
    released = released_clustering(
        ops,
        threshold,
        totals[:k],
        totals[k + k * q :],
        overall,
        public_values(ops, centroids),
        *profile,
        cluster_ok=_binary_features_ok(ops, rows.x, labels, totals[:k], threshold),
    )
    return {**header, **released}


def _binary_features_ok(
    ops: SecureOps, x: np.ndarray, labels: np.ndarray, sizes: Secret, threshold: int
) -> Secret:
    """Per cluster, the exact bit [every feature that is 0/1 at every hospital has the
    threshold of ones and of zeros in the cluster] (`moments.binary_rule`): a shown
    centroid's coordinate of a 0/1 feature times the shown size is its count of ones."""
    k, d = sizes.shape[0], x.shape[1]
    binary, ones = np.zeros((k, d)), np.zeros((k, d))
    for c in range(k):
        for f in range(d):
            binary[c, f], ones[c, f] = local_binary(x[labels == c, f])
    per_feature = ops.reshape(ops.stack([sizes] * d, axis=1), (k * d,))
    rule = binary_rule(
        ops,
        party_arrays(ops, binary.ravel()),
        party_arrays(ops, ones.ravel()),
        per_feature,
        threshold,
    )
    return ops.ge_public(ops.sum(ops.reshape(rule, (k, d)), axis=1), d - 0.5)


ITERATES_LEAKAGE = (
    "Each hospital learns whether the other hospitals' patients could fill k clusters of "
    "the small-cell threshold, the number of patients used (N), the features' joint means "
    "and standard deviations (with standardize = yes), every iterate of the centroids of "
    "every restart, after each step whether any patient changed cluster, and which "
    "restart won."
)
"""What the parties learned in mode "iterates": a passage of the template's leakage."""
FULL_LEAKAGE = (
    "the hospitals learn only each hospital's row count rounded up to a multiple of 100, "
    "whether N reaches k times the threshold, whether a feature is constant, for each "
    "feature the power of two just above the largest absolute value of any patient and "
    "the power of two within a factor of two of its joint standard deviation (which the "
    "coordinator learns too) and, per step, whether it was the last"
)
"""What the parties learned in mode "full": a passage of the template's leakage."""
POOLED_LEAKAGE = (
    "With mode = pooled (chosen explicitly, never the default), they learn besides, "
    "at every step of every restart, each cluster's joint size (its number of "
    "patients at all hospitals together) and the joint sums of its patients' "
    "clustered features (the size times the centroid, which they see anyway); every "
    "hospital divides them itself."
)
"""What the parties learned in mode "pooled" besides ITERATES_LEAKAGE: the passage of the
template's leakage that follows it."""


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
        if requested_epsilon(params) is not None:
            if params["mode"] == "pooled":
                raise TemplateError(
                    "mode 'pooled' has no differentially private variant: with epsilon, "
                    "leave mode at 'iterates' (its noisy counts and sums are opened anyway)"
                )
            validate_dp(params)
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

    def outputs(self, params: Params) -> tuple[Output, ...]:
        d, k = len(params["features"]), int(params["k"])
        q = len(params.get("profile") or ())
        steps = (Output("iterations", (1,)), Output("converged", (1,)))
        exponents = (Output("exponents", (d,)),) if params["mode"] == "full" else ()
        return (*steps, *release_outputs(k, d, q), *exponents)

    def noisy_releases(self, params: Params) -> tuple[NoisyRelease, ...]:
        return (lloyd_release(params),)

    def cost_release(self, params: Params) -> CostRelease:
        """Several starts run iterations the result does not count; mode 'full' shares
        rows, whose number the traffic would tell."""
        if initial_centroids(params, len(params["features"])) is None and int(params["n_init"]) > 1:
            return cost.RESTARTS
        return cost.ROWS_SHARED if params["mode"] == "full" else cost.ALL

    def secure_program(self, local: Rows, params: Params, threshold: int) -> NamedProgram:
        if requested_epsilon(params) is not None:
            return kmeans_dp_program(local, params, threshold)
        if params["mode"] == "full":
            return kmeans_full_program(local, params, threshold)
        return kmeans_program(local, params, threshold)

    def validate_backend(self, params: Params, backend: str) -> None:
        if params["mode"] == "full" and not supports(backend, FULL_MODE):
            raise TemplateError(
                "mode 'full' runs on the crypten backend only: it compares every secret row "
                "with every centroid in every step, which MPyC's comparisons (by bit "
                "decomposition) make far too slow; use --backend crypten, or mode 'iterates'"
            )

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        features = list(params["features"])
        profile = list(params.get("profile") or ())
        k, q = int(params["k"]), len(profile)
        full = params["mode"] == "full"
        iterations = round(opened["iterations"].item())
        converged = round(opened["converged"].item())
        out = Released.decode(opened)
        centroids = out.centroids
        if full:  # opened in units of 2^e (`full.kmeans_full_program`)
            exponents = np.rint(np.asarray(opened["exponents"], dtype=float)).astype(int)
            centroids = [
                None if c is None else [float(v) for v in np.ldexp(c, exponents)] for c in centroids
            ]
        profiles = [dict(zip(profile, means, strict=True)) for means in out.profiles]
        suppressed = [c for c, size in enumerate(out.sizes) if size is None]
        notes = []
        if suppressed:
            notes.append(
                f"cluster(s) {', '.join(str(c) for c in suppressed)} are suppressed (size, "
                f"centroid and profile): at least one has fewer than {threshold} patients, "
                "and so that no size can be derived from the others, the smallest other "
                "cluster is suppressed too and N and the inertia are withheld"
            )
        if out.emptied:
            notes.append(f"{out.emptied} time(s) a cluster was empty and was kept where it was")
        result = {
            "features": features,
            "centroids": centroids,
            "sizes": out.sizes,
            "suppressed_clusters": suppressed,
            "inertia": out.inertia,
            "inertia_units": "standardised (joint means and standard deviations)"
            if params["standardize"] == "yes"
            else "the features' own units",
            "iterations": iterations,
            "converged": bool(converged),
            "n": out.n,
            "missing": out.missing,
            "k": k,
            "profiles": profiles if q else None,
            "reseeded": out.emptied,
            "notes": notes,
            "mode": params["mode"],
            "leakage": {
                "full": FULL_LEAKAGE,
                "pooled": f"{ITERATES_LEAKAGE} {POOLED_LEAKAGE}",
            }.get(params["mode"], ITERATES_LEAKAGE),
            "missing_values": "complete-case: patients missing any feature are left out "
            "(their number is `missing`, suppressed below the threshold)",
            "threshold": threshold,
        }
        if requested_epsilon(params) is not None:
            result.update(dp_fields(params, suppressed, threshold))
        return result

    def render(self, result: dict[str, Any]) -> str:
        return render_kmeans(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_kmeans(result)
