"""`bench.py kmeans`: joint k-means clustering under MPC next to scikit-learn's KMeans.

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchsuite import harness as h
from benchsuite import logreg, report, timings
from benchsuite.clusters import (
    FEATURES,
    LIMITS,
    SMALL_LIMITS,
    Agreement,
    Clustering,
    K,
    Pooled,
    Series,
    Timed,
    agreement_table,
    fit_sklearn,
    pooled_rows,
    series_figures,
    sklearn_kmeans,
)
from benchsuite.data import stats_data
from benchsuite.harness import PARTIES, log

PATIENTS = 100_000
FULL_PATIENTS = 2_000
QUICK_FULL_PATIENTS = 500
GOAL_RATIO = 5.0
MAX_ITER = 100
TOL = {"mpyc": 1e-4, "crypten": 1e-3}
"""The jobs' tol by backend, unless --tol."""
PROTOCOL = h.PROTOCOLS / "kmeans.toml"
FULL_BACKEND = "crypten"


@dataclass(frozen=True)
class Config(logreg.Config):
    """`bench.py logreg`'s settings (the same options; its `data_name` and `params` are not
    used here) and the size of the full-mode federation."""

    full_patients: int
    tol: float | None
    """None: TOL by backend."""
    modes: tuple[str, ...] = ("iterates",)
    """The k-means modes timed on every backend ("pooled" reveals more: the template's
    leakage)."""

    def tol_for(self, backend: str) -> float:
        return TOL[backend] if self.tol is None else self.tol


# --- the data -------------------------------------------------------------------------


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


# --- the runs -------------------------------------------------------------------------


@dataclass
class BackendRun:
    """The iterates mode on one backend and the scikit-learn fits timed next to it."""

    backend: str
    mode: str = "iterates"
    mpc: Series = field(default_factory=Series)
    sklearn: Series = field(default_factory=Series)

    @property
    def name(self) -> str:
        """The backend, and the mode unless it is the default."""
        return self.backend if self.mode == "iterates" else f"{self.backend} {self.mode}"


def run_job(
    client: Any, backend: str, params: dict[str, str], series: Series, timed_run: bool
) -> None:
    """One MPC job: its result goes to `series.first` if it is the first, its timing
    into `series` if `timed_run`."""
    job = h.run_job(client, PROTOCOL, params, backend, stage="lloyd")
    c = Clustering.of_job(job.result)
    series.record(c, timed_run, Timed(job.seconds, c.iterations, job.job_id, tuple(job.gaps)))


def _pair(client: Any, cfg: Config, pooled: Pooled, r: BackendRun, tag: str) -> h.Pair:
    """A backend's iterates job (its first fixes scikit-learn's iteration count) and a
    scikit-learn fit. A backend whose job fails keeps its error and is not run again."""

    def mpc(timed_run: bool) -> None:
        try:
            run_job(
                client,
                r.backend,
                job_params(pooled, r.mode, cfg.tol_for(r.backend)),
                r.mpc,
                timed_run,
            )
        except Exception as exc:
            r.mpc.error = h.failure(exc)
            log(f"{tag} {r.name} failed: {r.mpc.error}")

    def baseline(timed_run: bool) -> None:
        if r.mpc.first is None:
            return
        if r.sklearn.first is None:  # the first fit pays one-off imports: untimed
            fit_sklearn(pooled, r.sklearn, r.mpc.first.iterations, False)
        fit_sklearn(pooled, r.sklearn, r.mpc.first.iterations, timed_run)

    def mpc_first(rep: int) -> bool:
        return rep % 2 == 0 or r.mpc.first is None

    return h.Pair(r.name, mpc, baseline, lambda: r.mpc.error is not None, mpc_first)


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
            out.iterates.error = h.failure(exc)
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
                out.full.error = h.failure(exc)
                log(f"{tag} full mode failed: {out.full.error}")
                break
            log(f"{tag} full mode {rep + 1}/{cfg.repeats} done")
    return out


@dataclass
class Measured:
    setup: dict[str, Any]
    runs: dict[str, BackendRun]
    full: FullRun
    steps: dict[str, timings.PartySteps]
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
        "generate_seconds": timings.rounded(gen_seconds, 2),
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
            "party_load_seconds": timings.party_load_seconds(fed),
            **timings.before_jobs(fed),
        }
        runs = {
            r.name: r for r in (BackendRun(b, mode) for mode in cfg.modes for b in cfg.backends)
        }
        with h.analyst(fed) as client:
            pairs = [_pair(client, cfg, pooled, r, tag) for r in runs.values()]
            h.alternate(pairs, cfg.warmup, cfg.repeats, tag)
        steps = timings.after_jobs(fed, setup)
    tag = f"[{PARTIES} x {cfg.full_patients:,}]"
    data, small, full_setup = federation(cfg, cfg.full_patients, tag)
    with h.local_federation(data, tag) as fed:
        full = full_loop(cfg, fed, small, tag)
        full_setup["local_up_seconds"] = round(fed.up_seconds, 2)
        steps |= timings.party_steps(fed)
    setup["full_mode_data"] = full_setup
    return Measured(setup, runs, full, steps, pooled)


# --- report ---------------------------------------------------------------------------


def backend_figures(r: BackendRun, steps: dict[str, timings.PartySteps]) -> dict[str, Any]:
    out = {"backend": r.name, "mode": r.mode, **series_figures(r.mpc, steps)}
    fit = timings.Summary.of(r.sklearn.seconds) if r.sklearn.seconds else None
    out["sklearn_fit"] = None if fit is None else fit.as_dict()
    out["sklearn_iterations"] = timings.median(r.sklearn.iterations)
    ratio = None if fit is None or out["time"] is None else out["time"]["median_ms"] / fit.median_ms
    out["ratio"] = None if ratio is None else round(ratio, 2)
    out["goal_met"] = None if ratio is None else ratio <= GOAL_RATIO
    out["converged"] = None if r.mpc.first is None else r.mpc.first.converged
    return out


LLOYD_COLUMNS = [
    report.Column("N", report.key("n"), 0),
    report.Column("iterations", report.key("iterations"), 0),
    report.Column("s / Lloyd step", report.key("seconds_per_lloyd_step"), 3),
]


def iterates_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = [
        report.Column("backend", report.key("backend")),
        *report.time_columns("time"),
        *LLOYD_COLUMNS[1:3],
        report.Column("step gap ms", report.key("lloyd_step_gap_ms"), 1),
        *report.step_columns("MiB", local=False),
        report.Column("sklearn fit s", report.seconds_of("sklearn_fit"), 3),
        report.Column("sklearn iter", report.key("sklearn_iterations"), 0),
        report.Column("ratio", report.key("ratio"), 2),
        report.goal_column(GOAL_RATIO, report.key("goal_met")),
    ]
    return report.columns_table(columns, rows)


def full_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = [
        report.Column("mode", lambda r: f"{r['mode']} ({FULL_BACKEND})"),
        report.Column("median s", report.seconds_of("time"), 3),
        *LLOYD_COLUMNS,
        *report.step_columns("MiB", local=False),
    ]
    return report.columns_table(columns, rows)


def agreements_of(m: Measured, cfg: Config) -> list[Agreement]:
    out = []
    for r in m.runs.values():
        if r.mpc.first is not None and r.sklearn.first is not None:
            what = f"{r.backend} {r.mode} vs sklearn, {PARTIES} x {cfg.patients:,}"
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
        f"k = {K}, mode {', '.join(cfg.modes)}, {m.pooled.n:,} complete cases; median of "
        f"{cfg.repeats} "
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
    print(
        f"{report.load_line(m.setup)}; MPC step = the slowest party's secure program, MiB "
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
    # The goal is today's leakage: mode iterates (pooled reveals the step's cluster sizes).
    goal = [{k: f[k] for k in ("backend", "ratio", "goal_met")} for f in rows]
    met = all(g["goal_met"] for g, f in zip(goal, rows, strict=True) if f["mode"] == "iterates")

    def ratios(mode: str) -> str:
        return ", ".join(
            f"{f['backend']} " + ("failed" if f["ratio"] is None else f"{f['ratio']:.2f}x")
            for f in rows
            if f["mode"] == mode
        )

    print(
        f"\ngoal (mode iterates, MPC median <= {GOAL_RATIO:g} x scikit-learn fit median at "
        f"{cfg.patients:,} per party): {'met' if met else 'NOT met'}: {ratios('iterates')}"
    )
    if "pooled" in cfg.modes:
        print(f"mode pooled (new leakage: not the goal's mode): {ratios('pooled')}")
    report.goal_size_note(cfg.patients, PATIENTS)
    problems = [p for a in agreements for p in a.problems()]
    problems += [f"{f['backend']} {f['mode']}: {f['error']}" for f in rows if f["error"]]
    if full.iterates.error:
        problems.append(f"{FULL_BACKEND} iterates at {cfg.full_patients:,}: {full.iterates.error}")
    for f in rows:
        if f["time"] and f["jobs_logged_by_every_party"] < f["time"]["n"]:
            problems.append(f"{f['backend']}: jobs without a step line from every party")
    figures = {
        "benchmark": "kmeans",
        **report.settings(cfg),
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
    return report.finish_figures(figures, problems)


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`bench.py logreg`'s options (the same defaults: 100,000 patients per party, --quick
    5,000, 1 repeat, no warm-up) and the full mode's size."""
    logreg.shared_arguments(parser)
    parser.add_argument(
        "--full-patients",
        type=int,
        help=f"patients per party of the full-mode federation (default {FULL_PATIENTS:,}; "
        f"--quick: {QUICK_FULL_PATIENTS:,})",
    )
    parser.add_argument(
        "--modes",
        default="iterates",
        help="k-means modes to time on every backend, comma separated: iterates (default; "
        "today's leakage), pooled (also opens each step's joint cluster sizes and sums)",
    )
    parser.add_argument(
        "--tol",
        type=float,
        help="the jobs' tol, every backend: the largest centroid move (standardised units) "
        "that ends the Lloyd steps (default: "
        + ", ".join(f"{b} {t:g}" for b, t in TOL.items())
        + ")",
    )


MODES = ("iterates", "pooled")


def config(args: argparse.Namespace) -> Config:
    shared = logreg.config(args)
    default = QUICK_FULL_PATIENTS if shared.quick else FULL_PATIENTS
    full_patients = args.full_patients or default
    if full_patients < 100:
        raise SystemExit("--full-patients must be at least 100")
    if args.tol is not None and not 0.0 <= args.tol <= 1.0:
        raise SystemExit("--tol must be between 0 and 1 (the template's range)")
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if not modes or set(modes) - set(MODES):
        raise SystemExit(f"--modes takes a comma-separated list of {', '.join(MODES)}")
    return Config(**vars(shared), full_patients=full_patients, tol=args.tol, modes=modes)


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
    return print_report(cfg, measure(cfg))
