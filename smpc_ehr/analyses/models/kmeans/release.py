"""What a k-means clustering releases to the coordinator, in both modes, and the
suppression rule that decides it inside MPC.

The rule (every bit computed inside MPC; only the bits and the masked values are
opened, to the coordinator):
- a cluster is shown (its size, its centroid and its profile means) only if its
  joint size reaches the small-cell threshold;
- complementary suppression: if some cluster is below the threshold, the smallest of
  the other clusters is hidden as well (size, centroid and profiles), and N, the
  inertia and the number of times a cluster was empty (full mode) are withheld. So a
  hidden size is never N minus the shown ones, and even with N from another query
  only the sum of two or more hidden sizes follows, one of which reaches the
  threshold; the hidden clusters together hold at least the threshold of patients,
  and no centroid of fewer is shown;
- a profile mean is shown only if its cluster is and at least the threshold of the
  cluster's patients have the variable, and, for a 0/1 variable, if its ones and its
  zeros in the cluster each reach the threshold (`moments.binary_rule`: with the size,
  the mean would give the count of ones);
- the number of patients left out for a missing feature is shown only if it reaches
  the threshold (its complement, the cohort's size, is not part of this release).

The analyst sees which clusters are hidden, not which of them is below the threshold.
Why the inertia goes with N: at convergence it is sum ||x||^2 - sum_c n_c ||c_c||^2,
one equation tying the hidden sizes and centroids to the features' moments, which a
summary of the same cohort would supply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.base import NamedSecrets, Output
from smpc_ehr.analyses.common.cells import complementary, exact_int
from smpc_ehr.securemath.ops import Secret, SecureOps

OVERALL = ("n", "inertia", "inertia_scale", "emptied")
"""N, inertia / s, s and the times a cluster was empty: withheld together."""


def release_outputs(k: int, d: int, q: int) -> tuple[Output, ...]:
    """What `released_clustering` opens, by name, for k clusters, d features and q
    profile variables: per cluster the bit [shown] and the masked size; the bit [every
    cluster shown] and the masked OVERALL figures; the bit [left-out count shown] and
    the masked count; the masked centroids; with profiles, per cluster and variable the
    bit [mean shown] and the masked mean."""
    outputs = [
        Output("shown", (k,)),
        Output("sizes", (k,)),
        Output("all_shown", (1,)),
        *(Output(name, (1,)) for name in OVERALL),
        Output("missing_shown", (1,)),
        Output("missing", (1,)),
        Output("centroids", (k, d)),
    ]
    if q:
        outputs += [Output("profile_shown", (k, q)), Output("profile_means", (k, q))]
    return tuple(outputs)


def released_clustering(
    ops: SecureOps,
    threshold: int,
    sizes: Secret,
    missing: Secret,
    overall: Secret,
    centroids: Secret,
    profile_counts: Secret | None = None,
    profile_means: Secret | None = None,
    profile_binary: Secret | None = None,
    *,
    cluster_ok: Secret | None = None,
) -> NamedSecrets:
    """The bits and masked values the coordinator may open (`release_outputs`;
    `Released.decode` reads them), by the module's rule: `sizes` (k), `missing` (1),
    `overall` (the OVERALL figures, in that order), the centroids (k x d),
    the profile counts and means (k x q each) and `moments.binary_rule`'s exact bits
    for the profile means (k q: a 0/1 profile's mean only where its ones and zeros in
    the cluster both reach the threshold); `cluster_ok` (k exact bits, optional) hides a
    cluster as if it were small (its 0/1 features' ones or zeros fall short: its
    centroid times its size would give them)."""
    k, d = centroids.shape[0], centroids.shape[1]
    cells = [sizes, missing]
    if profile_counts is not None:
        cells.append(ops.reshape(profile_counts, (int(np.prod(profile_counts.shape)),)))
    reach = ops.ge_public(ops.concatenate(cells), threshold)  # one batch
    big = reach[:k] if cluster_ok is None else ops.ge_public(ops.add(reach[:k], cluster_ok), 1.5)
    shown, whole = complementary(ops, big, sizes)  # the smallest shown one goes too
    flags = [shown, whole]
    if profile_counts is not None:
        q = profile_counts.shape[1]
        each = ops.mul(ops.reshape(reach[k + 1 :], (k, q)), ops.stack([shown] * q, axis=1))
        if profile_binary is not None:
            each = ops.mul(each, ops.reshape(profile_binary, (k, q)))
        flags.append(ops.reshape(each, (k * q,)))
    # Products of bits are off by a few units of the last place on CrypTen: a mask of
    # 2^-16 instead of 0 would open a hidden value times 2^-16, readable.
    exact = ops.exact_bits(ops.concatenate(flags))
    shown, whole = exact[:k], exact[k : k + 1]
    missing_bit = reach[k : k + 1]  # straight from a comparison: exact
    masked = ops.mul(ops.reshape(ops.stack([whole] * len(OVERALL)), (len(OVERALL),)), overall)
    outputs = {
        "shown": shown,
        "sizes": ops.mul(shown, sizes),
        "all_shown": whole,
        **{name: masked[i : i + 1] for i, name in enumerate(OVERALL)},
        "missing_shown": missing_bit,
        "missing": ops.mul(missing_bit, missing),
        "centroids": ops.mul(ops.stack([shown] * d, axis=1), centroids),
    }
    if profile_counts is not None and profile_means is not None:
        bits = ops.reshape(exact[k + 1 :], (k, q))
        outputs["profile_shown"] = bits
        outputs["profile_means"] = ops.mul(bits, profile_means)
    return outputs


MASKED_ZERO = 1e-3
"""A withheld value opens as 0 up to a few products' roundings (CrypTen: n units of
2^-16); a mask off by one unit would open a value of 250 as 0.004."""


@dataclass(frozen=True)
class Released:
    """The decoded release: None where suppressed."""

    sizes: list[int | None]
    centroids: list[list[float] | None]
    n: int | None
    inertia: float | None
    emptied: int | None
    missing: int | None
    profiles: list[list[float | None]]

    @classmethod
    def decode(cls, opened: Mapping[str, np.ndarray]) -> Released:
        """Read the opened `release_outputs`; ValueError if a withheld value opened as
        anything but 0 (a mask that was not exactly 0)."""

        def bits(name: str) -> np.ndarray:
            values = np.asarray(opened[name], dtype=float)
            return np.array([exact_int(b) for b in values.ravel()]).reshape(values.shape)

        shown = bits("shown").astype(bool)
        whole = bits("all_shown").item() == 1
        missing_bit = bits("missing_shown") == 1
        sizes, missing = np.asarray(opened["sizes"], float), np.asarray(opened["missing"], float)
        centroids = np.asarray(opened["centroids"], dtype=float)
        k = len(shown)
        profiled = "profile_shown" in opened
        profile_bits = bits("profile_shown").astype(bool) if profiled else np.zeros((k, 0), bool)
        means = np.asarray(opened["profile_means"], float) if profiled else np.zeros((k, 0))
        overall = np.concatenate([np.asarray(opened[name], dtype=float) for name in OVERALL])
        withheld = np.concatenate(
            [
                sizes[~shown],
                overall[:0] if whole else overall,
                missing[~missing_bit],
                centroids[~shown].ravel(),
                means[~profile_bits],
            ]
        )
        if np.abs(withheld).max(initial=0.0) > MASKED_ZERO:
            raise ValueError("a withheld k-means output opened as nonzero: masks inconsistent")
        n_value, inertia, scale, emptied = overall
        return cls(
            sizes=[exact_int(m) if s else None for s, m in zip(shown, sizes, strict=True)],
            centroids=[
                [float(x) for x in row] if s else None
                for s, row in zip(shown, centroids, strict=True)
            ],
            n=exact_int(n_value) if whole else None,
            inertia=float(inertia * scale) if whole else None,
            emptied=exact_int(emptied) if whole else None,
            missing=exact_int(missing.item()) if missing_bit.item() else None,
            profiles=[
                [float(m) if b else None for b, m in zip(brow, mrow, strict=True)]
                for brow, mrow in zip(profile_bits, means, strict=True)
            ],
        )
