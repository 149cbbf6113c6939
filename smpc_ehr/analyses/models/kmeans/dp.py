"""Differentially private k-means (`epsilon`): DP Lloyd with noisy sums and counts per
step, after Su, Cao, Li, Bertino and Xiao, "Differentially private k-means
clustering" (CODASPY 2016; VLDB Journal 2017), with the noise added inside MPC
(common/noise.py, the distributed discrete Gaussian).

How it runs (mode "iterates" only; each party in plaintext where it says "locally"):
1. Locally: the complete cases of the features, each clipped into its public `bounds`
   and mapped by the public affine map onto [-1, 1] (low -> -1, high -> 1), then
   rounded to multiples of QUANTUM. Nothing data-dependent (no joint means or
   standard deviations) scales the features.
2. Start (public, the same at every party): the given `init` mapped the same way, or
   k points drawn uniformly in the bounds box from the public `seed`.
3. Exactly `dp_steps` Lloyd steps (no convergence test; `max_iter`, `tol` and `n_init`
   do not apply: one run). Locally: each patient to the nearest current centroid
   (standardize = yes: in the mapped units; no: in the features' own units); per
   cluster the count and the sum of the mapped features. Inside MPC: the parties'
   vectors are summed and that step's slice of the secret noise is added; the noisy
   counts and sums are opened to the parties (differentially private, so what follows
   is post-processing). Every party then computes the new centroids in plaintext: a
   cluster's noisy sum over its noisy count, clipped into [-1, 1]; a cluster whose
   noisy count is below the small-cell threshold keeps its previous centroid.
4. Released to the coordinator (as public figures, `public_outputs`): the final
   centroids in the features' own units and, as the clusters' sizes, the last step's
   noisy counts (rounded), both hidden for a cluster whose noisy count is below the
   threshold (so every shown centroid is its shown cluster's noisy mean). No inertia,
   no N and no left-out count are released (they would need a budget of their own);
   profiles are refused.

Sensitivity. One patient (counted at one hospital) is in one cluster per step: adding
or removing them changes that cluster's count by 1 and its sums by their mapped,
quantised features, each in [-1, 1], so one step's vector of k counts and k x d sums
moves by at most sqrt(1 + d) in L2. The quantisation makes every local sum an exact
multiple of QUANTUM, so the secret inputs carry no fixed-point rounding and the bound
needs no slack. The `dp_steps` steps are one `NoisyRelease` of dp_steps x k (1 + d)
values with L2 sensitivity sqrt(dp_steps (1 + d)): its noise is drawn at once, before
the first step, and each step adds its own slice. By zCDP's adaptive composition this
is the same as charging each step rho / dp_steps with sensitivity sqrt(1 + d) (both the
Gaussian term and Proposition 14's tau term of `privacy.mechanism` add up exactly), so
the whole job spends the rho of its `epsilon` and no more.

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Params
from smpc_ehr.analyses.common.clipping import UnitMap, clip_bounds
from smpc_ehr.analyses.common.moments import party_arrays
from smpc_ehr.analyses.common.noise import NoisyRelease, add_fixed_noise
from smpc_ehr.analyses.common.public import public_outputs
from smpc_ehr.analyses.models.kmeans.data import Rows, initial_centroids, nearest
from smpc_ehr.analyses.models.kmeans.release import OVERALL
from smpc_ehr.errors import TemplateError
from smpc_ehr.securemath.ops import SecureOps, public_values

QUANTUM_BITS = 16
QUANTUM = 2.0**-QUANTUM_BITS
"""Each mapped feature value is rounded to a multiple of this: the coarsest fixed-point
grid of the backends (CrypTen's 16 fractional bits; MPyC's 32 are finer), so local
sums are exact in float64 and on every backend's grid (no rounding slack in the
sensitivity)."""
DP_LEAKAGE = (
    "The hospitals learn every step's noisy counts and sums; the coordinator (and the "
    "analyst) learns the final centroids and, as sizes, the last step's noisy counts, "
    "both only for clusters whose noisy size reaches the threshold; no N, inertia or "
    "left-out count, and no profiles."
)
"""What a DP run releases: a passage of the template's leakage."""
RELEASE = "lloyd steps"
"""The name of the noisy release (every step's counts and sums) in the "dp" block."""


def steps(params: Params) -> int:
    """The fixed number of Lloyd steps of a DP run."""
    return int(params["dp_steps"])


def lloyd_release(params: Params) -> NoisyRelease:
    """Every step's noisy counts (k) and sums (k x d, mapped units) as one release: see
    the module docstring for the sensitivity and why one release is every step's
    charge."""
    k, d, t = int(params["k"]), len(params["features"]), steps(params)
    return NoisyRelease(RELEASE, t * k * (1 + d), math.sqrt(t * (1 + d)))


def validate_dp(params: Params) -> None:
    """TemplateError for what a DP run cannot do, or a DP run lacking its bounds."""
    if params["mode"] != "iterates":
        raise TemplateError(
            "mode 'full' has no differentially private variant: use mode 'iterates' with epsilon"
        )
    if params.get("profile"):
        raise TemplateError(
            "profile is not available with epsilon (its means would need clipping bounds "
            "and a share of the budget of their own): leave it out"
        )
    clip_bounds(params, list(params["features"]))


def feature_map(params: Params) -> UnitMap[np.ndarray]:
    """The public map of each feature's bounds onto [-1, 1]."""
    return UnitMap.of(clip_bounds(params, list(params["features"])).values())


def quantised(box: UnitMap[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Rows (n x d, own units) clipped into the bounds, mapped onto [-1, 1] and
    rounded to multiples of QUANTUM (still in [-1, 1])."""
    return np.round(box.to_unit(x) / QUANTUM) * QUANTUM


def start(params: Params, box: UnitMap[np.ndarray]) -> np.ndarray:
    """The initial centroids in mapped units (k x d): `init` mapped (not clipped), or
    drawn uniformly in [-1, 1]^d, the bounds box, from the public seed (the same at every
    party; public randomness, not noise)."""
    k, d = int(params["k"]), len(params["features"])
    explicit = initial_centroids(params, d)
    if explicit is not None:
        return (explicit - box.centre) / box.half
    return np.random.default_rng([int(params["seed"]), k, d]).uniform(-1.0, 1.0, (k, d))


def local_step(z: np.ndarray, centroids: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """This party's vector of one step: per cluster the count, then per cluster the sums
    of the mapped features (k + k d values, exact multiples of QUANTUM)."""
    k, d = centroids.shape
    labels, _ = nearest(z * metric, centroids * metric)
    sums = np.zeros((k, d))
    np.add.at(sums, labels, z)
    return np.concatenate([np.bincount(labels, minlength=k).astype(float), sums.ravel()])


def update(opened: np.ndarray, centroids: np.ndarray, floor: float) -> np.ndarray:
    """The new centroids from one step's noisy counts and sums (plaintext, every party):
    noisy sum / noisy count clipped into [-1, 1]; a cluster whose noisy count is below
    `floor` keeps its centroid."""
    k, d = centroids.shape
    counts, sums = opened[:k], opened[k:].reshape(k, d)
    kept = counts < floor
    means = sums / np.where(kept, 1.0, counts)[:, None]
    return np.where(kept[:, None], centroids, np.clip(means, -1.0, 1.0))


def kmeans_dp_program(rows: Rows, params: Params, threshold: int) -> NamedProgram:
    """The DP clustering (see the module docstring); opens to the coordinator the same
    outputs as an exact run without profiles, with N, the inertia and the left-out
    count withheld."""
    k, d, t = int(params["k"]), len(params["features"]), steps(params)
    box = feature_map(params)
    metric = np.ones(d) if params["standardize"] == "yes" else box.half
    z = quantised(box, rows.x)
    release = lloyd_release(params)
    width = k * (1 + d)
    floor = float(max(threshold, 1))

    async def program(ops: SecureOps) -> NamedSecrets:
        if ops.frac_bits < QUANTUM_BITS:
            raise ValueError(f"the DP k-means needs at least {QUANTUM_BITS} fractional bits")
        # Every step's noise, secret-shared before the first step; nobody knows it.
        noise = add_fixed_noise(ops, public_values(ops, np.zeros(release.dim)), params, release)
        centroids = start(params, box)
        opened = np.zeros(width)
        for step in range(t):
            totals = ops.sum(party_arrays(ops, local_step(z, centroids, metric)), axis=0)
            noisy = ops.add(totals, noise[step * width : (step + 1) * width])
            opened = await ops.reveal(noisy)
            centroids = update(opened, centroids, floor)
            ops.progress("lloyd", step + 1, t)
        shown = (opened[:k] >= floor).astype(float)  # the clusters updated last
        sizes = np.rint(opened[:k])
        figures = {
            "iterations": [t],
            "converged": [0.0],
            "shown": shown,
            "sizes": shown * sizes,
            "all_shown": [0.0],
            **{name: [0.0] for name in OVERALL},
            "missing_shown": [0.0],
            "missing": [0.0],
            "centroids": shown[:, None] * box.to_original(centroids),
        }
        return public_outputs(ops, figures)

    return program


def dp_fields(params: Params, suppressed: list[int], threshold: int) -> dict[str, Any]:
    """What a DP result says instead of an exact one's convergence, inertia units,
    notes and leakage passage."""
    notes = [
        f"differentially private Lloyd: {steps(params)} steps, a number fixed in advance "
        "(one run, no convergence test: n_init, max_iter and tol do not apply); the "
        "sizes are the last step's noisy counts and the centroids its noisy sums over "
        "them, in the features' own units; N, the inertia and the left-out count are "
        "not released"
    ]
    if suppressed:
        notes.append(
            f"cluster(s) {', '.join(str(c) for c in suppressed)} are suppressed (size "
            f"and centroid): their noisy size is below {threshold}"
        )
    return {
        "converged": None,
        "inertia_units": "not released with epsilon",
        "notes": notes,
        "leakage": DP_LEAKAGE,
        "missing_values": "complete-case: patients missing any feature are left out "
        "(their number is not released with epsilon)",
    }
