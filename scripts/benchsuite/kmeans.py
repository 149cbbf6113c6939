"""`bench.py kmeans`: joint k-means clustering under MPC next to scikit-learn's KMeans.

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite import harness as h
from benchsuite import logreg
from benchsuite.harness import PARTIES, log
from benchsuite.stats import VARIABLES, load_pooled, stats_data

PATIENTS = 100_000
FULL_PATIENTS = 2_000
QUICK_FULL_PATIENTS = 500
GOAL_RATIO = 5.0
FEATURES = ("bmi", "hba1c", "sbp", "ldl", "hdl", "triglycerides", "egfr", "weight")
K = 4
MAX_ITER = 100
TOL = {"mpyc": 1e-4, "crypten": 1e-3}
"""The jobs' tol by backend, unless --tol."""
PROTOCOL = h.PROTOCOLS / "kmeans.toml"
FULL_BACKEND = "crypten"


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
precision (tests/test_kmeans.py); CrypTen may put a patient at a cluster boundary on the
other side."""
SMALL_LIMITS = Limits(2e-2, 1e-3, 2e-3, 1)
"""On the small federation of the full mode: a patient at a cluster boundary going the
other way under CrypTen's resolution moves a centroid of a few hundred patients by
some 1e-3 relative."""


@dataclass(frozen=True)
class Config(logreg.Config):
    """`bench.py logreg`'s settings (the same options; its `data_name` and `params` are not
    used here) and the size of the full-mode federation."""

    full_patients: int
    tol: float | None
    """None: TOL by backend."""

    def tol_for(self, backend: str) -> float:
        return TOL[backend] if self.tol is None else self.tol


# --- the data -------------------------------------------------------------------------


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


def job_params(pooled: Pooled, mode: str, tol: float, max_iter: int = MAX_ITER) -> dict[str, str]:
    return {
        "features": ",".join(FEATURES),
        "k": str(K),
        "standardize": "yes",
        "max_iter": str(max_iter),
        "tol": repr(tol),
        "n_init": "1",
        "init": ",".join(repr(float(v)) for v in pooled.init.ravel()),
        "mode": mode,
    }


# --- clusterings and how close two are ------------------------------------------------


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


# --- the runs -------------------------------------------------------------------------


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


@dataclass
class BackendRun:
    """The iterates mode on one backend and the scikit-learn fits timed next to it."""

    backend: str
    mpc: Series = field(default_factory=Series)
    sklearn: Series = field(default_factory=Series)


def run_job(
    client: Any, backend: str, params: dict[str, str], series: Series, timed_run: bool
) -> None:
    """One MPC job: its result goes to `series.first` if it is the first, its timing
    into `series` if `timed_run`."""
    job = h.run_job(client, PROTOCOL, params, backend, stage="lloyd")
    c = Clustering.of_job(job.result)
    series.record(c, timed_run, Timed(job.seconds, c.iterations, job.job_id, tuple(job.gaps)))


def fit_sklearn(pooled: Pooled, series: Series, mpc_iterations: int, timed_run: bool) -> None:
    """One scikit-learn fit with max_iter = the MPC job's iteration count."""
    model = sklearn_kmeans(pooled, mpc_iterations)
    elapsed, _ = h.timed(lambda: model.fit(pooled.z))
    clustering = Clustering.of_sklearn(model, pooled)
    series.record(clustering, timed_run, Timed(elapsed, clustering.iterations))


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _pair(client: Any, cfg: Config, pooled: Pooled, r: BackendRun, tag: str) -> h.Pair:
    """A backend's iterates job (its first fixes scikit-learn's iteration count) and a
    scikit-learn fit. A backend whose job fails keeps its error and is not run again."""

    def mpc(timed_run: bool) -> None:
        try:
            run_job(
                client,
                r.backend,
                job_params(pooled, "iterates", cfg.tol_for(r.backend)),
                r.mpc,
                timed_run,
            )
        except Exception as exc:
            r.mpc.error = _failure(exc)
            log(f"{tag} {r.backend} failed: {r.mpc.error}")

    def baseline(timed_run: bool) -> None:
        if r.mpc.first is None:
            return
        if r.sklearn.first is None:  # the first fit pays one-off imports: untimed
            fit_sklearn(pooled, r.sklearn, r.mpc.first.iterations, False)
        fit_sklearn(pooled, r.sklearn, r.mpc.first.iterations, timed_run)

    def mpc_first(rep: int) -> bool:
        return rep % 2 == 0 or r.mpc.first is None

    return h.Pair(r.backend, mpc, baseline, lambda: r.mpc.error is not None, mpc_first)


@dataclass
class FullRun:
    """Iterates and full mode on CrypTen on the small federation."""

    pooled: Pooled
    iterates: Series = field(default_factory=Series)
    full: Series = field(default_factory=Series)
    sklearn: Clustering | None = None
    full_max_iter: int = MAX_ITER


def full_loop(cfg: Config, fed: h.RunningFederation, pooled: Pooled, tag: str) -> FullRun:
    out = FullRun(pooled)
    with h.analyst(fed) as client:
        try:
            for i in range(cfg.warmup + cfg.repeats):
                h.settle()
                run_job(
                    client,
                    FULL_BACKEND,
                    job_params(pooled, "iterates", cfg.tol_for(FULL_BACKEND)),
                    out.iterates,
                    i >= cfg.warmup,
                )
            log(f"{tag} {FULL_BACKEND} iterates mode done")
        except Exception as exc:
            out.iterates.error = _failure(exc)
            log(f"{tag} {FULL_BACKEND} iterates mode failed: {out.iterates.error}")
        if out.iterates.first is not None:
            out.full_max_iter = out.iterates.first.iterations
            model = sklearn_kmeans(pooled, out.full_max_iter).fit(pooled.z)
            out.sklearn = Clustering.of_sklearn(model, pooled)
        # Full mode runs to its own convergence: a near-tie assigned the other way in fixed
        # point can shift its path by a step, and a capped run would then be compared
        # unconverged.
        params = job_params(pooled, "full", cfg.tol_for(FULL_BACKEND))
        for rep in range(cfg.repeats):
            try:
                h.settle()
                run_job(client, FULL_BACKEND, params, out.full, True)
            except Exception as exc:
                out.full.error = _failure(exc)
                log(f"{tag} full mode failed: {out.full.error}")
                break
            log(f"{tag} full mode {rep + 1}/{cfg.repeats} done")
    return out


@dataclass
class Measured:
    setup: dict[str, Any]
    runs: dict[str, BackendRun]
    full: FullRun
    steps: dict[str, h.PartySteps]
    pooled: Pooled


def federation(cfg: Config, size: int, tag: str) -> tuple[Path, Pooled, dict[str, Any]]:
    """The cached data of 3 x `size` patients, its pooled complete cases and setup figures."""
    data, gen_seconds = stats_data(cfg.data_root, cfg.seed, size)
    if gen_seconds is not None:
        log(f"{tag} generated {PARTIES} x {size:,} patients in {gen_seconds:.1f} s")
    load_seconds, pooled = h.timed(lambda: pooled_rows(data))
    log(
        f"{tag} scikit-learn: {pooled.n:,} complete cases x {len(FEATURES)} in {load_seconds:.1f} s"
    )
    setup = {
        "data": str(data),
        "generate_seconds": None if gen_seconds is None else round(gen_seconds, 2),
        "sklearn_load_seconds": round(load_seconds, 2),
        "complete_cases": pooled.n,
        "initial_centroids": [[float(v) for v in row] for row in pooled.init],
    }
    return data, pooled, setup


def measure(cfg: Config) -> Measured:
    tag = f"[{PARTIES} x {cfg.patients:,}]"
    data, pooled, setup = federation(cfg, cfg.patients, tag)
    with h.local_federation(data, tag) as fed:
        setup |= {
            "local_up_seconds": round(fed.up_seconds, 2),
            "party_load_seconds": h.party_load_seconds(fed),
            "rss_mb_after_up": fed.rss_mb(),
            "load_average_before_jobs": h.load_average(),
        }
        runs = {backend: BackendRun(backend) for backend in cfg.backends}
        with h.analyst(fed) as client:
            pairs = [_pair(client, cfg, pooled, r, tag) for r in runs.values()]
            h.alternate(pairs, cfg.warmup, cfg.repeats, tag)
        setup["load_average_after_jobs"] = h.load_average()
        setup["rss_mb_after_jobs"] = fed.rss_mb()
        steps = h.party_steps(fed)
    tag = f"[{PARTIES} x {cfg.full_patients:,}]"
    data, small, full_setup = federation(cfg, cfg.full_patients, tag)
    with h.local_federation(data, tag) as fed:
        full = full_loop(cfg, fed, small, tag)
        full_setup["local_up_seconds"] = round(fed.up_seconds, 2)
        steps |= h.party_steps(fed)
    setup["full_mode_data"] = full_setup
    return Measured(setup, runs, full, steps, pooled)


# --- report ---------------------------------------------------------------------------


def series_figures(s: Series, steps: dict[str, h.PartySteps]) -> dict[str, Any]:
    """Timing, iterations and the parties' own figures of a series of jobs."""
    job_ids = [r.job_id for r in s.runs]
    median_s = h.median(s.seconds)
    iterations = h.median(s.iterations)
    return {
        "time": h.summary(s.seconds),
        "iterations": iterations,
        "seconds_per_lloyd_step": None
        if median_s is None or not iterations
        else round(median_s / iterations, 4),
        "lloyd_step_gap_ms": h.rounded(h.ms(h.median([g for r in s.runs for g in r.step_gaps]))),
        **h.step_figures(job_ids, steps, count_digits=0),
        "jobs_logged_by_every_party": sum(
            steps[j].parties >= PARTIES for j in job_ids if j is not None and j in steps
        ),
        "error": s.error,
    }


def backend_figures(r: BackendRun, steps: dict[str, h.PartySteps]) -> dict[str, Any]:
    out = {"backend": r.backend, **series_figures(r.mpc, steps)}
    fit = h.Summary.of(r.sklearn.seconds) if r.sklearn.seconds else None
    out["sklearn_fit"] = None if fit is None else fit.as_dict()
    out["sklearn_iterations"] = h.median(r.sklearn.iterations)
    ratio = None if fit is None or out["time"] is None else out["time"]["median_ms"] / fit.median_ms
    out["ratio"] = None if ratio is None else round(ratio, 2)
    out["goal_met"] = None if ratio is None else ratio <= GOAL_RATIO
    out["converged"] = None if r.mpc.first is None else r.mpc.first.converged
    return out


LLOYD_COLUMNS = [
    h.Column("N", h.key("n"), 0),
    h.Column("iterations", h.key("iterations"), 0),
    h.Column("s / Lloyd step", h.key("seconds_per_lloyd_step"), 3),
]


def iterates_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = [
        h.Column("backend", h.key("backend")),
        *h.time_columns("time"),
        *LLOYD_COLUMNS[1:3],
        h.Column("step gap ms", h.key("lloyd_step_gap_ms"), 1),
        *h.step_columns("MiB", local=False),
        h.Column("sklearn fit s", h.seconds_of("sklearn_fit"), 3),
        h.Column("sklearn iter", h.key("sklearn_iterations"), 0),
        h.Column("ratio", h.key("ratio"), 2),
        h.goal_column(GOAL_RATIO, h.key("goal_met")),
    ]
    return h.columns_table(columns, rows)


def full_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = [
        h.Column("mode", lambda r: f"{r['mode']} ({FULL_BACKEND})"),
        h.Column("median s", h.seconds_of("time"), 3),
        *LLOYD_COLUMNS,
        *h.step_columns("MiB", local=False),
    ]
    return h.columns_table(columns, rows)


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
    return h.table(headers, body)


def agreements_of(m: Measured, cfg: Config) -> list[Agreement]:
    out = []
    for r in m.runs.values():
        if r.mpc.first is not None and r.sklearn.first is not None:
            what = f"{r.backend} iterates vs sklearn, {PARTIES} x {cfg.patients:,}"
            limits = LIMITS[r.backend]
            out.append(Agreement(what, r.mpc.first, r.sklearn.first, m.pooled.sds, limits))
    full, small = m.full, f"{PARTIES} x {cfg.full_patients:,}"
    pairs = [
        ("iterates vs sklearn", full.iterates.first, full.sklearn),
        ("full vs iterates", full.full.first, full.iterates.first),
        ("full vs sklearn", full.full.first, full.sklearn),
    ]
    for what, got, want in pairs:
        if got is not None and want is not None:
            name = f"{FULL_BACKEND} {what}, {small}"
            out.append(Agreement(name, got, want, full.pooled.sds, SMALL_LIMITS))
    return out


def print_report(cfg: Config, m: Measured) -> int:
    rows = [backend_figures(r, m.steps) for r in m.runs.values()]
    print(
        f"\nkmeans: {PARTIES} parties x {cfg.patients:,} patients, {len(FEATURES)} features, "
        f"k = {K}, iterates mode, {m.pooled.n:,} complete cases; median of {cfg.repeats} "
        "repetitions end to end (analyst), tol "
        + ", ".join(f"{b} {cfg.tol_for(b):g}" for b in cfg.backends)
        + "; scikit-learn KMeans (lloyd, same initial "
        "centroids, max_iter = the MPC job's iterations, tol = 0) fit on the pooled "
        "standardised rows in one process"
    )
    print(iterates_table(rows))
    for f in rows:
        if f["error"]:
            print(f"{f['backend']}: FAILED: {f['error']}")
        if f["converged"] is False:
            print(
                f"{f['backend']}: the job did not converge (no step moved every centroid by "
                f"at most tol = {cfg.tol_for(f['backend']):g}): it ran all {MAX_ITER} steps"
            )
    before, after = m.setup["load_average_before_jobs"], m.setup["load_average_after_jobs"]
    print(
        f"load average (1 min) before / after the jobs: {before[0]:.2f} / {after[0]:.2f} "
        f"on {os.cpu_count()} CPUs; MPC step = the slowest party's secure program, MiB "
        "sent = the most any party sent, step gap = median time between two Lloyd steps' "
        "progress notes"
    )
    full = m.full
    full_rows = []
    for mode, s in (("iterates", full.iterates), ("full", full.full)):
        f = {"mode": mode, **series_figures(s, m.steps)}
        f["n"] = None if s.first is None else s.first.n
        f["converged"] = None if s.first is None else s.first.converged
        f["max_iter"] = MAX_ITER
        full_rows.append(f)
    print(
        f"\nkmeans: full mode (rows secret-shared, the clustering inside MPC) next to the "
        f"iterates mode, {PARTIES} parties x {cfg.full_patients:,} patients, "
        f"{full.pooled.n:,} complete cases, {FULL_BACKEND}; median of {cfg.repeats}; each "
        f"mode to its own convergence; tol {cfg.tol_for(FULL_BACKEND):g}"
    )
    print(full_table(full_rows))
    for f in full_rows:
        if f["error"]:
            print(f"{f['mode']} mode: no result: {f['error']}")
        if f["converged"] is False:
            print(f"{f['mode']} mode: did not converge within max_iter = {f['max_iter']}")
    agreements = agreements_of(m, cfg)
    print("\nkmeans: agreement of the first result of each (centroids in original units)")
    print(agreement_table(agreements))
    goal = [{k: f[k] for k in ("backend", "ratio", "goal_met")} for f in rows]
    met = all(g["goal_met"] for g in goal)
    print(
        f"\ngoal (MPC median <= {GOAL_RATIO:g} x scikit-learn fit median at {cfg.patients:,} "
        f"per party): {'met' if met else 'NOT met'}: "
        + ", ".join(
            f"{f['backend']} " + ("failed" if f["ratio"] is None else f"{f['ratio']:.2f}x")
            for f in rows
        )
    )
    if cfg.patients != PATIENTS:
        print(f"(the issue's goal is stated for {PATIENTS:,} patients per party)")
    problems = [p for a in agreements for p in a.problems()]
    problems += [f"{f['backend']} iterates: {f['error']}" for f in rows if f["error"]]
    if full.iterates.error:
        problems.append(f"{FULL_BACKEND} iterates at {cfg.full_patients:,}: {full.iterates.error}")
    for f in rows:
        if f["time"] and f["jobs_logged_by_every_party"] < f["time"]["n"]:
            problems.append(f"{f['backend']}: jobs without a step line from every party")
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()}
    figures = {
        "benchmark": "kmeans",
        **settings,
        "parties": PARTIES,
        "features": list(FEATURES),
        "k": K,
        "params": {
            k: v
            for k, v in job_params(m.pooled, "iterates", 0.0).items()
            if k not in ("init", "tol")
        },
        "tol_by_backend": {b: cfg.tol_for(b) for b in (*cfg.backends, FULL_BACKEND)},
        "results": rows,
        "full_mode": {
            "patients_per_party": cfg.full_patients,
            "backend": FULL_BACKEND,
            "rows": full_rows,
            "available": full.full.first is not None,
        },
        "comparison": [a.figures() for a in agreements],
        "clusterings": {a.what: a.got.summary() for a in agreements},
        "setup": m.setup,
        "goal": {"ratio": GOAL_RATIO, "backends": goal},
        "goal_met": met,
    }
    return h.finish_figures(figures, problems)


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`bench.py logreg`'s options (the same defaults: 100,000 patients per party, --quick
    5,000, 1 repeat, no warm-up) and the full mode's size."""
    logreg.add_arguments(parser)
    parser.add_argument(
        "--full-patients",
        type=int,
        help=f"patients per party of the full-mode federation (default {FULL_PATIENTS:,}; "
        f"--quick: {QUICK_FULL_PATIENTS:,})",
    )
    parser.add_argument(
        "--tol",
        type=float,
        help="the jobs' tol, every backend: the largest centroid move (standardised units) "
        "that ends the Lloyd steps (default: "
        + ", ".join(f"{b} {t:g}" for b, t in TOL.items())
        + ")",
    )


def config(args: argparse.Namespace) -> Config:
    shared = logreg.config(args)
    default = QUICK_FULL_PATIENTS if shared.quick else FULL_PATIENTS
    full_patients = args.full_patients or default
    if full_patients < 100:
        raise SystemExit("--full-patients must be at least 100")
    if args.tol is not None and not 0.0 <= args.tol <= 1.0:
        raise SystemExit("--tol must be between 0 and 1 (the template's range)")
    return Config(**vars(shared), full_patients=full_patients, tol=args.tol)


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
    return print_report(cfg, measure(cfg))
