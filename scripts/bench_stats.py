"""`bench.py stats`: latency of a joint summary and correlation matrix under MPC next to numpy.

Question (issue): for 3 parties with 1,000,000 patients each and 10 numeric variables
(bmi, hba1c, sbp, ldl, creatinine, weight, heart_rate, hdl, triglycerides, egfr, all
with missing values), how long do the summary (protocols/summary.toml) and the 10 x 10
correlation matrix (protocols/correlation.toml) take under MPC, next to the same
computation in numpy on the pooled 3,000,000 rows in one process? Goal: MPC median at
most 3x the numpy median, both from the same run. And the MPC cost must not grow with
the number of patients (only each party's local reduction does): the same jobs at
10,000 / 100,000 / 1,000,000 patients per party (`--sizes`) show it.

For each size a synthetic federation of 3 parties is generated once (cached under
.bench-data/, regenerated when the cached patients lack one of the 10 variables) and
started as a real local federation (`local up`: a process per party, a coordinator and
a dealer, mutual TLS). The parties load their data at start-up; the numpy side loads
the pooled rows into one float64 array (n x 10, NaN = missing, column-major as the
Parquet columns are) before anything is timed. After warm-up jobs (not counted), each
job is timed R times end to end in the analyst process: `time.perf_counter()` around
`Client.run(...)`, from submitting the protocol to holding the released result. The
repetitions alternate MPC and numpy (which goes first alternates too) so that machine
noise hits both alike, with a 0.2 s pause before each run so that one side's
aftermath does not land in the other's timing; ratio = MPC median / numpy median.
The federation is brought down afterwards, also on Ctrl-C.

Each party logs per job "local step X ms, MPC Y ms, N messages, B bytes sent"
(smpc_ehr/party/jobs.py); those lines are read from the federation's logs, and for
each timed job the slowest party's local step and MPC step are taken (messages and
bytes: the most any party sent); the tables show medians over the timed jobs.

The numpy baseline is the fastest straightforward numpy found (np.nanvar and a 2-D
np.where are 2-6x slower on 3,000,000 x 10):
- summary: per column, the non-missing values (`col[~np.isnan(col)]`), their count,
  the missing count, mean, sample variance (ddof=1, two-pass), sd and se;
- correlation: per-variable missing counts, the complete-case rows
  (`X[~np.isnan(X).any(axis=1)]`), their means, the centred matrix product
  (`c.T @ c / (n - 1)`, what np.cov computes) and the correlations from it.
Every MPC result is checked against numpy (counts exactly, means, variances,
covariances and correlations within the precision stated in smpc_ehr/analyses/
moments.py); a mismatch is printed loudly and makes the exit status 1.

Table 1: the largest size (1,000,000 per party by default), backends mpyc and crypten.
Table 2: MPC step and local step per size, backend mpyc (`--backends` sets both).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _bench_common import (
    PROTOCOLS,
    RunningFederation,
    Summary,
    add_data_options,
    cached_federation_data,
    finish_figures,
    local_federation,
    log,
    party_ids,
    table,
    timed,
)
from bench_counts import party_load_seconds

VARIABLES = (
    "bmi",
    "hba1c",
    "sbp",
    "ldl",
    "creatinine",
    "weight",
    "heart_rate",
    "hdl",
    "triglycerides",
    "egfr",
)
PARTIES = 3
GOAL_RATIO = 3.0
GOAL_PATIENTS = 1_000_000
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 20_000)
BACKENDS = ("mpyc", "crypten")
DEFAULT_SCALING_BACKENDS = ("mpyc",)
FRACTION_BITS = {"mpyc": 32, "crypten": 16}
"""Fixed-point fractional bits of each backend, for the stated precision (moments.py)."""
MIN_CELL_COUNT = 11
UP_TIMEOUT = 900.0
JOB_DEADLINE = 120.0
"""The longest job deadline the coordinator accepts."""
SETTLE_SECONDS = 0.2
"""Pause before each timed run, so that what the parties do after a job (closing its
channel, logging, torch threads spinning down) does not land in the numpy timing."""


@dataclass(frozen=True)
class Query:
    """One benchmark job: a protocol template with the 10 variables."""

    name: str
    protocol: Path

    @property
    def params(self) -> dict[str, str]:
        return {"variables": ",".join(VARIABLES)}


QUERIES = (
    Query("summary", PROTOCOLS / "summary.toml"),
    Query("correlation", PROTOCOLS / "correlation.toml"),
)


@dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...]
    headline_backends: tuple[str, ...]
    scaling_backends: tuple[str, ...]
    repeats: int
    warmup: int
    seed: int
    data_root: Path
    quick: bool

    @property
    def headline_size(self) -> int:
        """Table 1 is measured at the largest size."""
        return max(self.sizes)

    def backends_at(self, size: int) -> tuple[str, ...]:
        wanted = set(self.scaling_backends)
        if size == self.headline_size:
            wanted |= set(self.headline_backends)
        return tuple(b for b in BACKENDS if b in wanted)


# --- the numpy baseline ---------------------------------------------------------------


def load_pooled(folders: Sequence[Path]) -> np.ndarray:
    """All parties' patients' 10 variables in one float64 array (rows x 10, NaN =
    missing), column-major: each column is contiguous, as in the Parquet files."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = [pq.read_table(f / "patients.parquet", columns=list(VARIABLES)) for f in folders]
    rows = sum(t.num_rows for t in tables)
    pooled = np.empty((rows, len(VARIABLES)), dtype=np.float64, order="F")
    start = 0
    for t in tables:
        for j, name in enumerate(VARIABLES):
            column = pc.fill_null(pc.cast(t.column(name), pa.float64()), float("nan"))
            pooled[start : start + t.num_rows, j] = column.to_numpy()
        start += t.num_rows
    return pooled


def numpy_summary(x: np.ndarray) -> list[dict[str, float]]:
    """Per column: n, missing, mean, sample variance, sd, se (available-case)."""
    out = []
    for j in range(x.shape[1]):
        column = x[:, j]
        known = column[~np.isnan(column)]
        n = known.size
        mean = known.mean()
        centred = known - mean
        variance = (centred @ centred) / (n - 1)
        sd = np.sqrt(variance)
        out.append(
            {
                "n": n,
                "missing": column.size - n,
                "mean": mean,
                "variance": variance,
                "sd": sd,
                "se": sd / np.sqrt(n),
            }
        )
    return out


def numpy_correlation(x: np.ndarray) -> dict[str, Any]:
    """Complete-case count, means, sample covariance and correlation matrix, and each
    variable's missing count."""
    missing = np.isnan(x)
    per_variable_missing = missing.sum(axis=0)
    complete = x[~missing.any(axis=1)]
    n = complete.shape[0]
    means = complete.mean(axis=0)
    centred = complete - means
    cov = centred.T @ centred / (n - 1)
    sd = np.sqrt(np.diag(cov))
    return {
        "n": n,
        "means": means,
        "covariance": cov,
        "matrix": cov / np.outer(sd, sd),
        "missing": per_variable_missing,
    }


NUMPY: dict[str, Callable[[np.ndarray], Any]] = {
    "summary": numpy_summary,
    "correlation": numpy_correlation,
}


# --- checking MPC against numpy -------------------------------------------------------


def mismatches(q: Query, backend: str, result: dict[str, Any], truth: Any) -> list[str]:
    """Differences beyond the stated precision (moments.py) between MPC and numpy."""
    eps = 8 * PARTIES * 2.0 ** -FRACTION_BITS[backend]
    label = f"{backend} {q.name}"
    problems: list[str] = []

    def close(what: str, got: float | None, want: float, tolerance: float) -> None:
        if got is None or not abs(got - want) <= tolerance + 1e-12 * abs(want):
            problems.append(f"{label} {what}: MPC {got} vs numpy {want:.12g} (tol {tolerance:.3g})")

    def exact(what: str, got: int | None, want: int) -> None:
        if got is None and want < int(result.get("threshold", MIN_CELL_COUNT)):
            return  # suppressed, rightly
        if got != want:
            problems.append(f"{label} {what}: MPC {got} vs numpy {want}")

    if q.name == "summary":
        for name, want in zip(VARIABLES, truth, strict=True):
            got = result["variables"][name]
            scale = abs(want["mean"]) + want["sd"]
            exact(f"{name} n", got["n"], int(want["n"]))
            exact(f"{name} missing", got["missing"], int(want["missing"]))
            close(f"{name} mean", got["mean"], want["mean"], eps * scale)
            close(f"{name} variance", got["variance"], want["variance"], eps * scale**2)
        return problems
    exact("n", result["n"], int(truth["n"]))
    for a, name in enumerate(VARIABLES):
        exact(f"{name} missing", result["missing"][name], int(truth["missing"][a]))
    if result["suppressed"]:
        return [*problems, f"{label}: suppressed, numpy counts {truth['n']}"]
    sd = np.sqrt(np.diag(truth["covariance"]))
    scale = np.abs(truth["means"]) + sd
    corr_tolerance = 2 * eps * (1 + float(np.max(np.abs(truth["means"]) / sd))) ** 2
    for a, name in enumerate(VARIABLES):
        close(f"{name} mean", result["means"][a], truth["means"][a], eps * scale[a])
        for b, other in enumerate(VARIABLES):
            cell = f"[{name}, {other}]"
            tolerance = eps * scale[a] * scale[b]
            close(f"cov{cell}", result["covariance"][a][b], truth["covariance"][a, b], tolerance)
            close(f"r{cell}", result["matrix"][a][b], truth["matrix"][a, b], corr_tolerance)
    return problems


# --- the parties' own timings ---------------------------------------------------------

_JOB_LINE = re.compile(
    r"job (\S+): local step ([0-9.]+) ms, MPC ([0-9.]+) ms, (\d+) messages, (\d+) bytes sent"
)


@dataclass(frozen=True)
class PartySteps:
    """One job as its parties logged it: the slowest party's steps, the most sent."""

    local_ms: float
    mpc_ms: float
    messages: int
    bytes_sent: int
    parties: int


def party_steps(fed: RunningFederation) -> dict[str, PartySteps]:
    """Every job the parties logged, by job id (max over the parties that logged it)."""
    per_job: dict[str, list[tuple[float, float, int, int]]] = {}
    for ident in fed.pids:
        log_file = fed.state_dir / "logs" / f"{ident}.log"
        if not log_file.exists():
            continue
        for match in _JOB_LINE.finditer(log_file.read_text(errors="replace")):
            job_id, local_ms, mpc_ms, messages, sent = match.groups()
            per_job.setdefault(job_id, []).append(
                (float(local_ms), float(mpc_ms), int(messages), int(sent))
            )
    return {
        job: PartySteps(
            max(e[0] for e in entries),
            max(e[1] for e in entries),
            max(e[2] for e in entries),
            max(e[3] for e in entries),
            len(entries),
        )
        for job, entries in per_job.items()
    }


# --- one size -------------------------------------------------------------------------


@dataclass
class Samples:
    mpc: list[float] = field(default_factory=list)
    mpc_coordinator: list[float] = field(default_factory=list)
    numpy: list[float] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)


@dataclass
class SizeRun:
    """Everything measured at one number of patients per party."""

    patients: int
    setup: dict[str, Any]
    samples: dict[tuple[str, str], Samples]  # (backend, query)
    steps: dict[str, PartySteps]
    problems: list[str]


def stats_data(cfg: Config, size: int) -> tuple[Path, float | None]:
    """The cached federation of 3 x `size` patients; a cache written before the
    generator had all 10 variables is removed and generated again."""
    import pyarrow.parquet as pq

    ids = party_ids(PARTIES)
    name = f"stats-{PARTIES}x{size}-seed{cfg.seed}"
    folder = cfg.data_root / name
    if (folder / "truth.json").exists():
        for ident in ids:
            patients = folder / ident / "patients.parquet"
            lacking = set(VARIABLES) - set(pq.read_schema(patients).names)
            if lacking:
                log(f"{folder} lacks {', '.join(sorted(lacking))}; generating it again")
                shutil.rmtree(folder)
                break
    return cached_federation_data(cfg.data_root, name, ids, [size] * PARTIES, cfg.seed)


def measure(cfg: Config, size: int) -> SizeRun:
    tag = f"[{PARTIES} x {size:,}]"
    log(f"{tag} data {cfg.data_root / f'stats-{PARTIES}x{size}-seed{cfg.seed}'}")
    data, gen_seconds = stats_data(cfg, size)
    if gen_seconds is not None:
        log(f"{tag} generated {PARTIES} x {size:,} patients in {gen_seconds:.1f} s")
    load_seconds, pooled = timed(lambda: load_pooled([data / i for i in party_ids(PARTIES)]))
    log(f"{tag} numpy: loaded {pooled.shape[0]:,} x {pooled.shape[1]} in {load_seconds:.1f} s")
    truth = {q.name: NUMPY[q.name](pooled) for q in QUERIES}
    log(f"{tag} local up ...")
    with local_federation(data, MIN_CELL_COUNT, UP_TIMEOUT) as fed:
        log(f"{tag} local up took {fed.up_seconds:.1f} s")
        setup = {
            "generate_seconds": None if gen_seconds is None else round(gen_seconds, 2),
            "local_up_seconds": round(fed.up_seconds, 2),
            "party_load_seconds": party_load_seconds(fed),
            "numpy_load_seconds": round(load_seconds, 2),
            "rss_mb_after_up": fed.rss_mb(),
        }
        samples, problems = job_loop(cfg, fed, pooled, truth, cfg.backends_at(size), tag)
        setup["rss_mb_after_jobs"] = fed.rss_mb()
        steps = party_steps(fed)
    for (backend, query), s in samples.items():
        unlogged = [j for j in s.job_ids if steps.get(j) is None or steps[j].parties < PARTIES]
        if unlogged:
            problems.append(
                f"{backend} {query}: {len(unlogged)} job(s) without a step line from every party"
            )
    return SizeRun(size, setup, samples, steps, problems)


def job_loop(
    cfg: Config,
    fed: RunningFederation,
    pooled: np.ndarray,
    truth: dict[str, Any],
    backends: Sequence[str],
    tag: str,
) -> tuple[dict[tuple[str, str], Samples], list[str]]:
    """Warm up (and check) each job, then time it R times, alternating MPC and numpy."""
    from smpc_ehr.client.client import Client

    samples = {(b, q.name): Samples() for b in backends for q in QUERIES}
    problems: list[str] = []
    with Client.from_state(fed.state_dir) as client:

        def mpc(backend: str, q: Query) -> Any:
            return client.run(q.protocol, q.params, backend=backend, deadline_seconds=JOB_DEADLINE)

        def run_numpy(q: Query) -> Any:
            return NUMPY[q.name](pooled)

        for backend in backends:
            for q in QUERIES:
                checked = False
                for _ in range(cfg.warmup):
                    job = mpc(backend, q)
                    run_numpy(q)
                    if not checked:
                        problems += mismatches(q, backend, job.result, truth[q.name])
                        checked = True
                log(f"{tag} {backend} {q.name}: warmed up")
        for rep in range(cfg.repeats):
            for backend in backends:
                for q in QUERIES:
                    s = samples[(backend, q.name)]
                    mpc_first = rep % 2 == 0
                    if mpc_first:
                        job = _time_mpc(mpc, backend, q, s)
                    time.sleep(SETTLE_SECONDS)
                    s.numpy.append(timed(lambda q=q: run_numpy(q))[0])
                    if not mpc_first:
                        job = _time_mpc(mpc, backend, q, s)
                    if rep == 0 and cfg.warmup == 0:
                        problems += mismatches(q, backend, job.result, truth[q.name])
            log(f"{tag} repetition {rep + 1}/{cfg.repeats} done")
    return samples, problems


def _time_mpc(mpc: Callable[[str, Query], Any], backend: str, q: Query, s: Samples) -> Any:
    time.sleep(SETTLE_SECONDS)
    elapsed, job = timed(lambda: mpc(backend, q))
    s.mpc.append(elapsed)
    s.mpc_coordinator.append(float(job.elapsed_seconds))
    s.job_ids.append(job.job_id)
    return job


# --- report ---------------------------------------------------------------------------


def _median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def rows_of(runs: Sequence[SizeRun]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        for (backend, query), s in run.samples.items():
            mpc, server, plain = (
                Summary.of(s.mpc),
                Summary.of(s.mpc_coordinator),
                Summary.of(s.numpy),
            )
            steps = [run.steps[j] for j in s.job_ids if j in run.steps]
            rows.append(
                {
                    "patients_per_party": run.patients,
                    "patients_total": PARTIES * run.patients,
                    "backend": backend,
                    "query": query,
                    "mpc": mpc.as_dict(),
                    "mpc_coordinator": server.as_dict(),
                    "numpy": plain.as_dict(),
                    "ratio": round(mpc.median_ms / plain.median_ms, 3),
                    "local_step_ms": _round(_median([p.local_ms for p in steps])),
                    "mpc_step_ms": _round(_median([p.mpc_ms for p in steps])),
                    "messages_per_party": _round(_median([p.messages for p in steps])),
                    "bytes_sent_per_party": _round(_median([p.bytes_sent for p in steps])),
                    "jobs_with_steps": len(steps),
                }
            )
    return rows


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def _fixed(value: float | None, header: str, digits: int = 3) -> str:
    """A number with fixed decimals, right-aligned under its header (table() left-aligns
    text; its own float format rounds seconds of a small run to 0.00)."""
    return ("-" if value is None else f"{value:.{digits}f}").rjust(len(header))


def goals(cfg: Config, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        if row["patients_per_party"] == cfg.headline_size and row["backend"] in (
            cfg.headline_backends
        ):
            out.append(
                {
                    "patients_per_party": row["patients_per_party"],
                    "backend": row["backend"],
                    "query": row["query"],
                    "ratio": row["ratio"],
                    "goal_ratio": GOAL_RATIO,
                    "goal_met": row["ratio"] <= GOAL_RATIO,
                }
            )
    return out


def headline_table(cfg: Config, rows: Sequence[dict[str, Any]]) -> str:
    headers = ["backend", "analysis", "MPC median s", "MPC p90 s", "local step ms"]
    headers += ["MPC step ms", "messages", "KiB sent", "numpy median s", "ratio"]
    headers += [f"goal <= {GOAL_RATIO:g}"]
    body = []
    for r in rows:
        if r["patients_per_party"] != cfg.headline_size or r["backend"] not in (
            cfg.headline_backends
        ):
            continue
        kib = None if r["bytes_sent_per_party"] is None else r["bytes_sent_per_party"] / 1024
        body.append(
            [
                r["backend"],
                r["query"],
                _fixed(r["mpc"]["median_ms"] / 1000, headers[2]),
                _fixed(r["mpc"]["p90_ms"] / 1000, headers[3]),
                _fixed(r["local_step_ms"], headers[4], 1),
                _fixed(r["mpc_step_ms"], headers[5], 1),
                _fixed(r["messages_per_party"], headers[6], 0),
                _fixed(kib, headers[7], 1),
                _fixed(r["numpy"]["median_ms"] / 1000, headers[8]),
                r["ratio"],
                "met" if r["ratio"] <= GOAL_RATIO else "NOT met",
            ]
        )
    return table(headers, body)


def scaling_table(cfg: Config, rows: Sequence[dict[str, Any]]) -> tuple[str, list[str]]:
    """Per backend and size the parties' steps; and per backend how much they grew."""
    headers = ["backend", "patients/party"]
    for q in QUERIES:
        headers += [f"{q.name} local ms", f"{q.name} MPC ms"]
    by_key = {(r["backend"], r["patients_per_party"], r["query"]): r for r in rows}
    body, growth = [], []
    for backend in (b for b in BACKENDS if b in cfg.scaling_backends):
        for size in cfg.sizes:
            line: list[object] = [backend, size]
            for q in QUERIES:
                r = by_key.get((backend, size, q.name))
                line += [
                    _fixed(r and r["local_step_ms"], headers[len(line)], 1),
                    _fixed(r and r["mpc_step_ms"], headers[len(line) + 1], 1),
                ]
            body.append(line)
        lo, hi = min(cfg.sizes), max(cfg.sizes)
        parts = []
        for q in QUERIES:
            first, last = by_key.get((backend, lo, q.name)), by_key.get((backend, hi, q.name))
            if not first or not last or not first["mpc_step_ms"] or not first["local_step_ms"]:
                continue
            parts.append(
                f"{q.name}: MPC step x{last['mpc_step_ms'] / first['mpc_step_ms']:.2f}, "
                f"local step x{last['local_step_ms'] / first['local_step_ms']:.1f}"
            )
        if parts:
            growth.append(f"{backend}, {hi:,} vs {lo:,} per party: " + "; ".join(parts))
    return table(headers, body), growth


def print_report(cfg: Config, runs: Sequence[SizeRun]) -> int:
    rows = rows_of(runs)
    print(
        f"\nstats: {PARTIES} parties x {cfg.headline_size:,} patients, {len(VARIABLES)} "
        f"variables; median of {cfg.repeats} repetitions end to end (analyst), numpy on the "
        f"pooled {PARTIES * cfg.headline_size:,} rows in one process"
    )
    print(headline_table(cfg, rows))
    scaling, growth = scaling_table(cfg, rows)
    print(
        f"\nstats scaling: the parties' own steps (slowest party, median over "
        f"{cfg.repeats} jobs) by patients per party"
    )
    print(scaling)
    for line in growth:
        print(line)
    goal = goals(cfg, rows)
    met = all(g["goal_met"] for g in goal)
    if goal:
        print(
            f"\ngoal (MPC median <= {GOAL_RATIO:g} x numpy median at {cfg.headline_size:,} "
            f"per party): {'met' if met else 'NOT met'} "
            + ", ".join(f"{g['backend']} {g['query']} {g['ratio']:.2f}" for g in goal)
        )
        if cfg.headline_size != GOAL_PATIENTS:
            print(f"(the issue's goal is stated for {GOAL_PATIENTS:,} patients per party)")
    problems = [p for run in runs for p in run.problems]
    for p in problems:
        print(f"MISMATCH: {p}")
    figures = {
        "benchmark": "stats",
        "quick": cfg.quick,
        "parties": PARTIES,
        "variables": list(VARIABLES),
        "sizes": list(cfg.sizes),
        "headline_patients_per_party": cfg.headline_size,
        "headline_backends": list(cfg.headline_backends),
        "scaling_backends": list(cfg.scaling_backends),
        "repeats": cfg.repeats,
        "warmup": cfg.warmup,
        "seed": cfg.seed,
        "results": rows,
        "setup": {str(run.patients): run.setup for run in runs},
        "goal": goal,
        "goal_met": met if goal else None,
    }
    return finish_figures(figures, problems)


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small run: 2,000 and 20,000 patients per party, 2 repeats",
    )
    parser.add_argument(
        "--sizes",
        type=_size_list,
        help="patients per party (default 10000,100000,1000000; table 1 uses the largest)",
    )
    parser.add_argument(
        "--backends",
        type=_backend_list,
        help="backends of both tables (default: table 1 mpyc,crypten; table 2 mpyc)",
    )
    parser.add_argument("--repeats", type=int, help="timed repetitions per job (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up jobs (default 1)")
    add_data_options(parser)


def _size_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v.replace("_", "")) for v in text.split(",") if v.strip())
    except ValueError:
        message = f"expected numbers like 10000,100000, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return tuple(sorted(set(values)))


def _backend_list(text: str) -> tuple[str, ...]:
    values = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [v for v in values if v not in BACKENDS]
    if not values or unknown:
        raise argparse.ArgumentTypeError(f"backends are {', '.join(BACKENDS)}, got {text!r}")
    return tuple(b for b in BACKENDS if b in values)


def config(args: argparse.Namespace) -> Config:
    quick = bool(args.quick)
    cfg = Config(
        sizes=args.sizes or (QUICK_SIZES if quick else DEFAULT_SIZES),
        headline_backends=args.backends or BACKENDS,
        scaling_backends=args.backends or DEFAULT_SCALING_BACKENDS,
        repeats=args.repeats or (2 if quick else 5),
        warmup=max(0, args.warmup),
        seed=args.seed,
        data_root=args.data_dir.resolve(),
        quick=quick,
    )
    if cfg.repeats < 1:
        raise SystemExit("--repeats must be positive")
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
    runs = [measure(cfg, size) for size in cfg.sizes]
    return print_report(cfg, runs)
