"""`bench.py wan`: the count, logistic regression and k-means over a real network delay.

Every member (three hospitals, the coordinator, the dealer) runs in its own Linux network
namespace; all traffic between members crosses a delaying relay (benchsuite/relay.py:
these kernels have `tc` rate limiting but no `netem`) and each member's outgoing rate is
limited with `tc tbf`. For each one-way delay (default 0, 10 and 50 ms) a federation is
started, each job is run once to warm up and then timed, and the table puts each job's
median time next to the model

    local time (the same job at 0 ms, through the relay) + hops x delay + bytes / rate

where hops are the job's sequential message rounds among the parties (the job's
`cost`) and bytes the most any party sent (where the analysis releases them). The
jobs' own RPCs to the coordinator add about two round trips more.
Where namespaces cannot be made (not root, no iproute2) it says why and exits 1.

Method and previous figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchsuite import harness as h
from benchsuite import options, report, timings
from benchsuite.clusters import pooled_rows
from benchsuite.data import VARIABLES, stats_data
from benchsuite.harness import PROTOCOLS, log
from benchsuite.kmeans import job_params as kmeans_params
from benchsuite.logreg_data import OUTCOME
from benchsuite.netlab import Link, namespaces, why_not

PATIENTS = 10_000
QUICK_PATIENTS = 2_000
DELAYS_MS = (0.0, 10.0, 50.0)
RATE_MBIT = 100.0
GOALS_AT_10MS = {"count": 0.5, "logistic": 10.0, "kmeans": 20.0}
"""The issue's goals at 10 ms one-way delay, in seconds."""
MEMBERS = ("coordinator", "dealer", "hospital-1", "hospital-2", "hospital-3")


@dataclass(frozen=True)
class Config:
    patients: int
    delays_ms: tuple[float, ...]
    rate_mbit: float
    backends: tuple[str, ...]
    repeats: int
    seed: int
    data_root: Path
    quick: bool


@dataclass(frozen=True)
class JobSpec:
    name: str
    protocol: Path
    params: dict[str, str]


def job_specs(data: Path) -> list[JobSpec]:
    """The three jobs, with the parameters of their own benchmarks (k-means from the same
    initial centroids as `bench.py kmeans`)."""
    pooled = pooled_rows(data)
    return [
        JobSpec("count", PROTOCOLS / "rare_disease_count.toml", {"codes": "E11"}),
        JobSpec(
            "logistic",
            PROTOCOLS / "logistic_regression.toml",
            {"outcome": OUTCOME, "features": ",".join(VARIABLES)},
        ),
        JobSpec("kmeans", PROTOCOLS / "kmeans.toml", kmeans_params(pooled, "iterates", 1e-4)),
    ]


@dataclass
class Measured:
    """One job on one backend at one delay."""

    job: str
    backend: str
    delay_ms: float
    seconds: list[float]
    hops: int | None
    max_bytes_sent: int | None

    @property
    def median(self) -> float | None:
        return timings.median(self.seconds)


def cost_of(cost: dict[str, Any] | None) -> tuple[int | None, int | None]:
    """Hops and the most bytes any party sent, from a job's `cost` (None if absent)."""
    cost = cost or {}
    hops = cost.get("hops")
    sent = cost.get("bytes_sent")
    most = max(sent.values()) if isinstance(sent, dict) and sent else sent
    return (int(hops) if hops is not None else None, int(most) if most is not None else None)


@contextmanager
def wan_federation(data: Path, link: Link, tag: str) -> Iterator[h.RunningFederation]:
    """A local federation on `data` with every member in its own namespace behind `link`."""
    with (
        namespaces(MEMBERS, link) as placement,
        h.local_federation(data, tag, placement=placement) as fed,
    ):
        yield fed


def measure(cfg: Config) -> list[Measured]:
    data, gen_seconds = stats_data(cfg.data_root, cfg.seed, cfg.patients)
    if gen_seconds is not None:
        log(f"generated 3 x {cfg.patients:,} patients in {gen_seconds:.1f} s")
    specs = job_specs(data)
    rows: list[Measured] = []
    for delay in cfg.delays_ms:
        tag = f"[wan {delay:g} ms]"
        with wan_federation(data, Link(delay, cfg.rate_mbit), tag) as fed, h.analyst(fed) as client:
            for backend in cfg.backends:
                for spec in specs:
                    h.run_job(client, spec.protocol, spec.params, backend)  # warm-up
                    seconds: list[float] = []
                    hops = sent = None
                    for _ in range(cfg.repeats):
                        h.settle()
                        job = h.run_job(client, spec.protocol, spec.params, backend)
                        seconds.append(job.seconds)
                        hops, sent = cost_of(job.cost)
                    rows.append(Measured(spec.name, backend, delay, seconds, hops, sent))
                    log(f"{tag} {backend} {spec.name}: {timings.median(seconds):.3f} s")
    return rows


def model_seconds(row: Measured, local: Measured | None, rate_mbit: float) -> float | None:
    """local + hops x one-way delay + bytes / rate, or None without hops or a local time."""
    if local is None or local.median is None or row.hops is None:
        return None
    transfer = (row.max_bytes_sent or 0) * 8 / (rate_mbit * 1e6)
    return local.median + row.hops * row.delay_ms / 1000 + transfer


def print_report(cfg: Config, rows: Sequence[Measured]) -> int:
    local = {(r.job, r.backend): r for r in rows if r.delay_ms == 0}
    table_rows = []
    figures_rows = []
    for r in rows:
        model = model_seconds(r, local.get((r.job, r.backend)), cfg.rate_mbit)
        goal = GOALS_AT_10MS.get(r.job) if r.delay_ms == 10 else None
        met = None if goal is None or r.median is None else r.median < goal
        table_rows.append(
            [
                r.job,
                r.backend,
                f"{r.delay_ms:g}",
                report.fixed(r.median, "s"),
                "-" if r.hops is None else r.hops,
                "-" if r.max_bytes_sent is None else f"{r.max_bytes_sent / 1e6:.2f}",
                report.fixed(model, "s"),
                "-" if goal is None else f"< {goal:g} s {report.verdict(met)}",
            ]
        )
        figures_rows.append(
            {
                "job": r.job,
                "backend": r.backend,
                "delay_ms": r.delay_ms,
                "seconds": [round(s, 4) for s in r.seconds],
                "median_s": timings.rounded(r.median, 4),
                "hops": r.hops,
                "max_bytes_sent": r.max_bytes_sent,
                "model_s": timings.rounded(model, 4),
                "goal_s": goal,
                "goal_met": met,
            }
        )
    print(
        f"WAN: 3 hospitals x {cfg.patients:,} patients, one-way delay through a relay, "
        f"{cfg.rate_mbit:g} Mbit/s per member (tc tbf); model = time at 0 ms + hops x delay "
        "+ most bytes sent / rate"
    )
    headers = ["job", "backend", "delay ms", "median s", "hops", "MB sent", "model s", "goal"]
    print(report.table(headers, table_rows))
    return report.finish_figures(
        {"benchmark": "wan", "settings": report.settings(cfg), "rows": figures_rows}, []
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_quick_option(
        parser, f"{QUICK_PATIENTS:,} patients per party, delays 0 and 10 ms, 1 repeat"
    )
    parser.add_argument("--patients", type=int, help=f"patients per party (default {PATIENTS:,})")
    parser.add_argument(
        "--delays",
        type=lambda text: tuple(float(v) for v in text.split(",")),
        help="one-way delays in ms (default 0,10,50; 0 is needed for the model)",
    )
    parser.add_argument("--rate", type=float, default=RATE_MBIT, help="Mbit/s (default 100)")
    options.add_backends_option(parser)
    parser.add_argument("--repeats", type=int, help="timed repetitions (default 3)")
    options.add_data_options(parser)


def config(args: argparse.Namespace) -> Config:
    quick = bool(args.quick)
    return Config(
        patients=args.patients or (QUICK_PATIENTS if quick else PATIENTS),
        delays_ms=args.delays or ((0.0, 10.0) if quick else DELAYS_MS),
        rate_mbit=args.rate,
        backends=tuple(args.backends),
        repeats=args.repeats or (1 if quick else 3),
        **options.data_settings(args),
    )


def run(args: argparse.Namespace) -> int:
    reason = why_not()
    if reason:
        print(f"bench.py wan needs Linux network namespaces: {reason}")
        return 1
    cfg = config(args)
    return print_report(cfg, measure(cfg))
