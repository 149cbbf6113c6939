"""The plaintext side of `bench.py kmeans`: the pooled complete cases standardised as the
job does, scikit-learn's KMeans from the same initial centroids, how close a clustering
comes to its reference (centroids, sizes, inertia) with the table of it, and the series
of timed clusterings (MPC jobs or scikit-learn fits) a run collects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite import harness as h
from benchsuite import report, timings
from benchsuite.data import VARIABLES, load_pooled
from benchsuite.harness import PARTIES

FEATURES = ("bmi", "hba1c", "sbp", "ldl", "hdl", "triglycerides", "egfr", "weight")
K = 4


@dataclass(frozen=True)
class Limits:
    """How close a clustering must come to its reference."""

    centroids: float
    """Every centroid coordinate (original units), relative."""
    inertia: float
    """Relative."""
    moved: float
    """Patients in another cluster than the reference's, as a fraction of N ..."""
    least_moved: int = 0
    """... or this many, whichever is more."""

    def moved_allowed(self, n: int) -> int:
        return max(self.least_moved, int(self.moved * n))


LIMITS = {"mpyc": Limits(1e-6, 1e-6, 0.0), "crypten": Limits(1e-3, 1e-3, 1e-4, 1)}
"""Iterates mode against scikit-learn at the headline size: each backend's stated
precision (analyses/models/kmeans/test_kmeans.py); CrypTen may put a patient at a
cluster boundary on the other side."""
SMALL_LIMITS = Limits(2e-2, 1e-3, 2e-3, 1)
"""On the small federation of the full mode: a patient at a cluster boundary going the
other way under CrypTen's resolution moves a centroid of a few hundred patients by
some 1e-3 relative."""


@dataclass(frozen=True)
class Pooled:
    """All parties' complete cases of the features, standardised as the job does, and
    the initial centroids picked from them."""

    x: np.ndarray
    means: np.ndarray
    sds: np.ndarray
    z: np.ndarray
    init: np.ndarray
    """k x d, original units, rounded to 6 decimals."""
    missing: int

    @property
    def init_z(self) -> np.ndarray:
        return (self.init - self.means) / self.sds

    @property
    def n(self) -> int:
        return len(self.x)


def pooled_rows(folder: Path) -> Pooled:
    everything = load_pooled([folder / ident for ident in h.party_ids(PARTIES)])
    x = everything[:, [VARIABLES.index(f) for f in FEATURES]]
    keep = ~np.isnan(x).any(axis=1)
    x = np.ascontiguousarray(x[keep])
    means, sds = x.mean(axis=0), x.std(axis=0)
    picks = (2 * np.arange(K) + 1) * len(x) // (2 * K)
    init = np.round(x[picks], 6)
    return Pooled(x, means, sds, (x - means) / sds, init, int((~keep).sum()))


@dataclass(frozen=True)
class Clustering:
    centroids: np.ndarray
    """k x d, original units."""
    sizes: tuple[int | None, ...]
    inertia: float
    """Standardised units."""
    iterations: int
    n: int
    converged: bool | None
    missing: int | None
    """Patients left out for a missing feature (None: suppressed)."""

    @classmethod
    def of_job(cls, result: dict[str, Any]) -> Clustering:
        return cls(
            np.asarray(result["centroids"], dtype=float),
            tuple(result["sizes"]),
            float(result["inertia"]),
            int(result["iterations"]),
            int(result["n"]),
            bool(result["converged"]),
            result["missing"],
        )

    @classmethod
    def of_sklearn(cls, model: Any, pooled: Pooled) -> Clustering:
        return cls(
            model.cluster_centers_ * pooled.sds + pooled.means,
            tuple(int(v) for v in np.bincount(model.labels_, minlength=K)),
            float(model.inertia_),
            int(model.n_iter_),
            pooled.n,
            None,
            pooled.missing,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "centroids": [[round(float(v), 6) for v in row] for row in self.centroids],
            "sizes": list(self.sizes),
            "inertia": round(self.inertia, 4),
            "iterations": self.iterations,
            "n": self.n,
            "converged": self.converged,
            "missing": self.missing,
        }


@dataclass(frozen=True)
class Agreement:
    """A clustering (`got`) next to a reference (`want`), and whether it is close enough."""

    what: str
    got: Clustering
    want: Clustering
    sds: np.ndarray
    limits: Limits

    @property
    def centroid_relative(self) -> float:
        return float(np.abs(self.got.centroids / self.want.centroids - 1.0).max())

    @property
    def centroid_sds(self) -> float:
        """The largest centroid difference in pooled standard deviations."""
        return float((np.abs(self.got.centroids - self.want.centroids) / self.sds).max())

    @property
    def moved(self) -> int | None:
        """Patients in another cluster (half the summed size differences); None when a
        size is suppressed."""
        if None in self.got.sizes or None in self.want.sizes:
            return None
        pairs = zip(self.got.sizes, self.want.sizes, strict=True)
        return sum(abs(int(a) - int(b)) for a, b in pairs if a is not None and b is not None) // 2

    @property
    def inertia_relative(self) -> float:
        return abs(self.got.inertia / self.want.inertia - 1.0)

    def problems(self) -> list[str]:
        limits, moved = self.limits, self.moved
        out = []
        if self.got.n != self.want.n:
            out.append(f"{self.what}: N {self.got.n:,} vs {self.want.n:,}")
        if self.got.missing != self.want.missing:
            out.append(f"{self.what}: missing {self.got.missing} vs {self.want.missing}")
        if self.centroid_relative > limits.centroids:
            out.append(
                f"{self.what}: centroids differ by {self.centroid_relative:.3g} relative "
                f"(limit {limits.centroids:g})"
            )
        if self.inertia_relative > limits.inertia:
            out.append(
                f"{self.what}: inertia {self.got.inertia:.6g} vs {self.want.inertia:.6g} "
                f"({self.inertia_relative:.3g} relative, limit {limits.inertia:g})"
            )
        allowed = limits.moved_allowed(self.want.n)
        if moved is None or moved > allowed:
            out.append(
                f"{self.what}: sizes {list(self.got.sizes)} vs {list(self.want.sizes)} "
                f"({'-' if moved is None else moved} patients moved, limit {allowed})"
            )
        return out

    def figures(self) -> dict[str, Any]:
        return {
            "comparison": self.what,
            "n": [self.got.n, self.want.n],
            "missing": [self.got.missing, self.want.missing],
            "iterations": [self.got.iterations, self.want.iterations],
            "max_relative_centroid_difference": float(f"{self.centroid_relative:.3g}"),
            "max_centroid_difference_sds": float(f"{self.centroid_sds:.3g}"),
            "sizes": [list(self.got.sizes), list(self.want.sizes)],
            "sizes_equal": self.got.sizes == self.want.sizes,
            "patients_moved": self.moved,
            "inertia": [round(self.got.inertia, 4), round(self.want.inertia, 4)],
            "inertia_relative_difference": float(f"{self.inertia_relative:.3g}"),
            "limits": {
                "centroids_relative": self.limits.centroids,
                "inertia_relative": self.limits.inertia,
                "patients_moved": self.limits.moved_allowed(self.want.n),
            },
            "check": "mismatch" if self.problems() else "ok",
        }


def sklearn_kmeans(pooled: Pooled, max_iter: int) -> Any:
    from sklearn.cluster import KMeans

    return KMeans(
        n_clusters=K, init=pooled.init_z, n_init=1, max_iter=max_iter, tol=0.0, algorithm="lloyd"
    )


def agreement_table(agreements: Sequence[Agreement]) -> str:
    headers = ["comparison", "N", "iterations", "max rel centroid diff", "max diff (sds)"]
    headers += ["sizes equal", "moved", "inertia", "reference inertia", "rel diff", "check"]
    body = []
    for a in agreements:
        f = a.figures()
        body.append(
            [
                a.what,
                f"{a.got.n:,}" if a.got.n == a.want.n else f"{a.got.n:,} vs {a.want.n:,}",
                f"{a.got.iterations} / {a.want.iterations}",
                f"{a.centroid_relative:.2e}",
                f"{a.centroid_sds:.2e}",
                "yes" if f["sizes_equal"] else "no",
                "-" if a.moved is None else f"{a.moved:,}",
                f"{a.got.inertia:,.2f}",
                f"{a.want.inertia:,.2f}",
                f"{a.inertia_relative:.2e}",
                "ok" if f["check"] == "ok" else "MISMATCH",
            ]
        )
    return report.table(headers, body)


# --- series of timed clusterings ------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    """One timed run: an MPC job (with its id and the gaps between its Lloyd steps'
    progress notes) or a scikit-learn fit."""

    seconds: float
    iterations: int
    job_id: str | None = None
    step_gaps: tuple[float, ...] = ()


@dataclass
class Series:
    """The timed runs of one backend and mode (or scikit-learn's fits), the first
    result (warm-up or timed: the one checked) and the error that ended the series."""

    runs: list[Timed] = field(default_factory=list)
    first: Clustering | None = None
    error: str | None = None

    @property
    def seconds(self) -> list[float]:
        return [r.seconds for r in self.runs]

    @property
    def iterations(self) -> list[int]:
        return [r.iterations for r in self.runs]

    def record(self, clustering: Clustering, timed_run: bool, how_long: Timed) -> None:
        if self.first is None:
            self.first = clustering
        if timed_run:
            self.runs.append(how_long)


def fit_sklearn(pooled: Pooled, series: Series, mpc_iterations: int, timed_run: bool) -> None:
    """One scikit-learn fit with max_iter = the MPC job's iteration count."""
    model = sklearn_kmeans(pooled, mpc_iterations)
    elapsed, _ = h.timed(lambda: model.fit(pooled.z))
    clustering = Clustering.of_sklearn(model, pooled)
    series.record(clustering, timed_run, Timed(elapsed, clustering.iterations))


def series_figures(s: Series, steps: dict[str, timings.PartySteps]) -> dict[str, Any]:
    """Timing, iterations and the parties' own figures of a series of jobs."""
    job_ids = [r.job_id for r in s.runs]
    median_s = timings.median(s.seconds)
    iterations = timings.median(s.iterations)
    return {
        "time": timings.summary(s.seconds),
        "iterations": iterations,
        "seconds_per_lloyd_step": None
        if median_s is None or not iterations
        else round(median_s / iterations, 4),
        "lloyd_step_gap_ms": timings.rounded(
            timings.ms(timings.median([g for r in s.runs for g in r.step_gaps]))
        ),
        **timings.step_figures(job_ids, steps, count_digits=0),
        "jobs_logged_by_every_party": timings.logged_by_every_party(job_ids, steps, PARTIES),
        "error": s.error,
    }
