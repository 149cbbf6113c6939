"""`bench.py stats`: latency of a joint summary and correlation matrix under MPC next to numpy.

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite import harness as h
from benchsuite import options, report, timings
from benchsuite.data import VARIABLES, load_pooled, stats_data
from benchsuite.harness import PARTIES, PROTOCOLS, log, party_ids, timed
from benchsuite.report import fixed, table
from benchsuite.stats_numpy import NUMPY, mismatches

GOAL_RATIO = 3.0
GOAL_PATIENTS = 1_000_000
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 20_000)
DEFAULT_SCALING_BACKENDS = ("mpyc",)


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
        return tuple(b for b in options.BACKENDS if b in wanted)


# --- one size -------------------------------------------------------------------------


@dataclass
class SizeRun:
    """Everything measured at one number of patients per party."""

    patients: int
    setup: dict[str, Any]
    samples: dict[tuple[str, str], h.Samples]  # (backend, query)
    steps: dict[str, timings.PartySteps]
    problems: list[str]


def measure(cfg: Config, size: int) -> SizeRun:
    tag = f"[{PARTIES} x {size:,}]"
    log(f"{tag} data {cfg.data_root / f'stats-{PARTIES}x{size}-seed{cfg.seed}'}")
    data, gen_seconds = stats_data(cfg.data_root, cfg.seed, size)
    if gen_seconds is not None:
        log(f"{tag} generated {PARTIES} x {size:,} patients in {gen_seconds:.1f} s")
    load_seconds, pooled = timed(lambda: load_pooled([data / i for i in party_ids(PARTIES)]))
    log(f"{tag} numpy: loaded {pooled.shape[0]:,} x {pooled.shape[1]} in {load_seconds:.1f} s")
    truth = {q.name: NUMPY[q.name](pooled) for q in QUERIES}
    backends = cfg.backends_at(size)
    samples = {(b, q.name): h.Samples() for b in backends for q in QUERIES}
    problems: list[str] = []

    def pairs(client: Any) -> list[h.Pair]:
        return [
            _pair(client, b, q, pooled, truth[q.name], samples[(b, q.name)], problems)
            for b in backends
            for q in QUERIES
        ]

    setup, steps = timings.timed_pairs(
        data, tag, pairs, cfg.warmup, cfg.repeats, gen_seconds, numpy_load_seconds=load_seconds
    )
    for (backend, query), s in samples.items():
        problems += timings.unlogged(f"{backend} {query}", s.jobs.job_ids, steps, PARTIES)
    return SizeRun(size, setup, samples, steps, problems)


def _pair(
    client: Any,
    backend: str,
    q: Query,
    pooled: np.ndarray,
    truth: Any,
    s: h.Samples,
    problems: list[str],
) -> h.Pair:
    """The job on one backend and its numpy twin."""
    return h.checked_pair(
        f"{backend} {q.name}",
        lambda: h.run_job(client, q.protocol, q.params, backend),
        lambda: NUMPY[q.name](pooled),
        lambda result: mismatches(q.name, backend, result, truth),
        s,
        problems,
    )


# --- report ---------------------------------------------------------------------------


def rows_of(runs: Sequence[SizeRun]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        for (backend, query), s in run.samples.items():
            rows.append(
                {
                    "patients_per_party": run.patients,
                    "patients_total": PARTIES * run.patients,
                    "backend": backend,
                    "query": query,
                    **timings.pair_figures(s, "numpy", run.steps),
                }
            )
    return rows


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
    columns = [
        report.Column("backend", report.key("backend")),
        report.Column("analysis", report.key("query")),
        *report.time_columns("mpc"),
        *report.step_columns("KiB"),
        report.Column("numpy median s", report.seconds_of("numpy"), 3),
        report.Column("ratio", report.key("ratio")),
        report.goal_column(GOAL_RATIO, lambda r: r["ratio"] <= GOAL_RATIO),
    ]
    shown = [
        r
        for r in rows
        if r["patients_per_party"] == cfg.headline_size and r["backend"] in cfg.headline_backends
    ]
    return report.columns_table(columns, shown)


def scaling_table(cfg: Config, rows: Sequence[dict[str, Any]]) -> tuple[str, list[str]]:
    """Per backend and size the parties' steps; and per backend how much they grew."""
    headers = ["backend", "patients/party"]
    for q in QUERIES:
        headers += [f"{q.name} local ms", f"{q.name} MPC ms"]
    by_key = {(r["backend"], r["patients_per_party"], r["query"]): r for r in rows}
    body, growth = [], []
    for backend in (b for b in options.BACKENDS if b in cfg.scaling_backends):
        for size in cfg.sizes:
            line: list[object] = [backend, size]
            for q in QUERIES:
                r = by_key.get((backend, size, q.name))
                line += [
                    fixed(r["local_step_ms"] if r else None, headers[len(line)], 1),
                    fixed(r["mpc_step_ms"] if r else None, headers[len(line) + 1], 1),
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
        report.goal_size_note(cfg.headline_size, GOAL_PATIENTS)
    problems = [p for run in runs for p in run.problems]
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
    return report.finish_figures(figures, problems)


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_quick_option(parser, "2,000 and 20,000 patients per party, 2 repeats")
    parser.add_argument(
        "--sizes",
        type=options.size_list,
        help="patients per party (default 10000,100000,1000000; table 1 uses the largest)",
    )
    parser.add_argument(
        "--backends",
        type=options.backend_list,
        help="backends of both tables (default: table 1 mpyc,crypten; table 2 mpyc)",
    )
    parser.add_argument("--repeats", type=int, help="timed repetitions per job (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up jobs (default 1)")
    options.add_data_options(parser)


def config(args: argparse.Namespace) -> Config:
    quick = bool(args.quick)
    cfg = Config(
        sizes=args.sizes or (QUICK_SIZES if quick else DEFAULT_SIZES),
        headline_backends=args.backends or options.BACKENDS,
        scaling_backends=args.backends or DEFAULT_SCALING_BACKENDS,
        repeats=args.repeats or (2 if quick else 5),
        warmup=max(0, args.warmup),
        **options.data_settings(args),
    )
    if cfg.repeats < 1:
        raise SystemExit("--repeats must be positive")
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
    runs = [measure(cfg, size) for size in cfg.sizes]
    return print_report(cfg, runs)
