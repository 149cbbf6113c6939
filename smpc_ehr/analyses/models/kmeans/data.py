"""A k-means clustering's data at one party: its complete cases of the features and
its profile variables, the nearest centroid of each row, and the refusal texts; shared
by both modes and the DP variant (analysis.py, full.py, dp.py)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.base import Params
from smpc_ehr.analyses.common.variables import (
    FULL_MODE_MAX_ABS,
    MAX_ABS_VALUE,
    numeric_values,
    select_cohort,
    value_limit,
)
from smpc_ehr.data.records import PartyData


@dataclass(frozen=True)
class Rows:
    """A party's complete cases of the features (n x d, original units), its profile
    variables for the same rows (n x q, NaN = missing) and how many cohort patients
    were left out for a missing feature."""

    x: np.ndarray
    profile: np.ndarray
    missing: int


def local_rows(data: PartyData, params: Params) -> Rows:
    """This party's rows with every feature present (complete-case). A DP run takes
    values of any size: it clips them into their public bounds before use (dp.py)."""
    cohort = select_cohort(data, params)
    limit = value_limit(params, FULL_MODE_MAX_ABS if params["mode"] == "full" else MAX_ABS_VALUE)
    x = np.column_stack([numeric_values(data, f, cohort, limit) for f in params["features"]])
    names = params.get("profile") or ()
    profile = (
        np.column_stack([numeric_values(data, v, cohort) for v in names])
        if names
        else np.zeros((len(x), 0))
    )
    keep = ~np.isnan(x).any(axis=1)
    return Rows(
        np.ascontiguousarray(x[keep]), np.ascontiguousarray(profile[keep]), int((~keep).sum())
    )


def nearest(z: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's nearest centroid (ties to the lower index, as scikit-learn) and its
    squared distance to it."""
    distances = (
        (z * z).sum(axis=1)[:, None] - 2 * z @ centroids.T + (centroids * centroids).sum(axis=1)
    )
    labels = np.argmin(distances, axis=1)
    return labels, np.maximum(distances[np.arange(len(z)), labels], 0.0)


def initial_centroids(params: Params, d: int) -> np.ndarray | None:
    """The explicit initial centroids (k x d, original units), or None."""
    init = params.get("init")
    if not init:
        return None
    return np.asarray(init, dtype=float).reshape(int(params["k"]), d)


def shortfall(k: int, threshold: int) -> str:
    """Why a clustering of too few patients is refused."""
    return (
        f"fewer than k x {threshold} = {k * threshold} patients have every feature "
        f"(each of the {k} clusters needs at least the small-cell threshold)"
    )


REFUSAL_ADVICE = (
    "try fewer clusters (k), other initial centroids (init) or another seed, or mode "
    "full on crypten, which shows the hospitals no centroid"
)


def refusal(k: int, threshold: int, in_all: bool) -> str:
    """What `group_size.require_others_reach` says when the iterates mode would show the
    hospitals a mean of too few patients of the others: `in_all` (before the joint
    means: k x the threshold are needed) or in a cluster at some step."""
    if in_all:
        return (
            f"k-means with k = {k} needs k x {threshold} = {k * threshold} patients with "
            f"every feature besides each hospital's own ({REFUSAL_ADVICE})"
        )
    return f"k-means, a cluster at some step of Lloyd's algorithm ({REFUSAL_ADVICE})"
