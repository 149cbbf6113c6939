"""`bench.py transport`: each backend over the project's mesh next to its own transport.

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite import options
from benchsuite import transport_programs as programs
from benchsuite.harness import log, party_ids
from benchsuite.report import finish_figures, table
from benchsuite.timings import Summary
from benchsuite.transport_runs import PARTIES, Bench, Config, Run, Runs, dealer
from benchsuite.workers import WorkerError, make_pki

GOAL_RATIO = 1.5
WEIGHT_TOLERANCE = 0.02
"""Largest difference between the two sides' opened weights: CrypTen's fixed point has
16 fractional bits and each side rounds products with different randomness."""
ACCURACY_TOLERANCE = 0.005
MATVEC_TOLERANCE = 1e-6
"""MPyC's fixed point has 32 fractional bits; each product element is rounded once."""


def measure(cfg: Config, bench: Bench) -> Runs:
    """Every repetition: each backend over both transports, alternating which goes first."""
    runs: Runs = {backend: {"mesh": [], "own": []} for backend in cfg.backends}
    for rep in range(cfg.repeats):
        order = ("mesh", "own") if rep % 2 == 0 else ("own", "mesh")
        for backend in cfg.backends:
            for side in order:
                run = bench.side(backend, side)
                runs[backend][side].append(run)
                timings = ", ".join(f"{name} {s:.2f} s" for name, s in run.seconds.items())
                log(f"[{rep + 1}/{cfg.repeats}] {backend} over {side}: {timings}")
    return runs


# --- checks ---------------------------------------------------------------------------


def check_mpyc(cfg: Config, runs: dict[str, list[Run]]) -> tuple[list[str], dict[str, Any]]:
    """Both sides must open the plaintext answer: counts exactly, the product closely."""
    truth = programs.mpyc_truth(cfg.mpyc, cfg.seed, PARTIES)
    problems: list[str] = []
    worst = 0.0
    for side, side_runs in runs.items():
        for i, run in enumerate(side_runs, 1):
            where = f"MPyC over {side}, run {i}"
            values = run.values
            if "disagreement" in values:
                problems.append(f"{where}: the parties opened different values")
                continue
            for name in ("above", "masked"):
                if values[name] != truth[name].tolist():
                    problems.append(f"{where}: {name} differs from the plaintext counts")
            error = float(np.max(np.abs(np.asarray(values["product"]) - truth["product"])))
            worst = max(worst, error)
            if error > MATVEC_TOLERANCE:
                problems.append(f"{where}: mat-vec off by {error:.3g} > {MATVEC_TOLERANCE:g}")
    figures = {
        "cells_above_threshold": int(truth["above"].sum()),
        "matvec_max_abs_error": worst,
        "matvec_tolerance": MATVEC_TOLERANCE,
    }
    return problems, figures


def check_crypten(cfg: Config, runs: dict[str, list[Run]]) -> tuple[list[str], dict[str, Any]]:
    """The two sides' weights must agree within fixed-point precision, and so must their
    accuracy; the float64 reference (exact sigmoid) is reported, not enforced."""
    problems: list[str] = []
    weights: dict[str, list[np.ndarray]] = {}
    for side, side_runs in runs.items():
        for i, run in enumerate(side_runs, 1):
            if "disagreement" in run.values:
                problems.append(
                    f"CrypTen over {side}, run {i}: the parties opened different values"
                )
            else:
                weights.setdefault(side, []).append(np.asarray(run.values["weights"]))
    reference = programs.plaintext_logistic_regression(cfg.crypten, cfg.seed)
    acc = {
        side: [programs.accuracy(cfg.crypten, cfg.seed, w) for w in ws]
        for side, ws in weights.items()
    }
    figures: dict[str, Any] = {
        "accuracy_mesh": acc.get("mesh"),
        "accuracy_own": acc.get("own"),
        "accuracy_float64_reference": programs.accuracy(cfg.crypten, cfg.seed, reference),
        "weights_max_abs_diff_vs_float64": max(
            (float(np.max(np.abs(w - reference))) for ws in weights.values() for w in ws),
            default=None,
        ),
        "weight_tolerance": WEIGHT_TOLERANCE,
    }
    if "mesh" in weights and "own" in weights:
        diff = max(float(np.max(np.abs(a - b))) for a in weights["mesh"] for b in weights["own"])
        acc_diff = max(abs(a - b) for a in acc["mesh"] for b in acc["own"])
        figures["weights_max_abs_diff_mesh_vs_own"] = diff
        if diff > WEIGHT_TOLERANCE:
            problems.append(f"CrypTen weights differ by {diff:.3g} > {WEIGHT_TOLERANCE:g}")
        if acc_diff > ACCURACY_TOLERANCE:
            problems.append(f"CrypTen accuracy differs by {acc_diff:.3g} between the sides")
    return problems, figures


# --- report ---------------------------------------------------------------------------

PROGRAMS = (("crypten", "logreg"), ("mpyc", "counts"), ("mpyc", "matvec"))
NAMES = {"crypten": "CrypTen", "mpyc": "MPyC"}


def label(cfg: Config, program: str) -> str:
    return {
        "logreg": cfg.crypten.label(),
        "counts": cfg.mpyc.label_counts(),
        "matvec": cfg.mpyc.label_matvec(),
    }[program]


def rows_of(cfg: Config, runs: Runs) -> list[dict[str, Any]]:
    rows = []
    for backend, program in PROGRAMS:
        if backend not in runs:
            continue
        mesh = [run.seconds[program] for run in runs[backend]["mesh"]]
        own = [run.seconds[program] for run in runs[backend]["own"]]
        ratio = statistics.median(mesh) / statistics.median(own)
        mesh_cpu = statistics.median(run.cpu[program] for run in runs[backend]["mesh"])
        own_cpu = statistics.median(run.cpu[program] for run in runs[backend]["own"])
        rows.append(
            {
                "backend": backend,
                "program": program,
                "label": label(cfg, program),
                "mesh_seconds": [round(s, 4) for s in mesh],
                "own_seconds": [round(s, 4) for s in own],
                "mesh_median_s": round(statistics.median(mesh), 4),
                "own_median_s": round(statistics.median(own), 4),
                "mesh": Summary.of(mesh).as_dict(),
                "own": Summary.of(own).as_dict(),
                "ratio": round(ratio, 3),
                "goal_ratio": GOAL_RATIO,
                "goal_met": ratio <= GOAL_RATIO,
                "ratio_of_minima": round(min(mesh) / min(own), 3),
                "mesh_party_cpu_median_s": round(mesh_cpu, 3),
                "own_party_cpu_median_s": round(own_cpu, 3),
                "cpu_ratio": round(mesh_cpu / own_cpu, 3),
            }
        )
    return rows


def load_averages(runs: Runs) -> dict[str, dict[str, list[float]]]:
    """The machine's load when each run started: high values mean other work competed."""
    return {
        backend: {
            side: [round(run.load, 2) for run in side_runs] for side, side_runs in sides.items()
        }
        for backend, sides in runs.items()
    }


def traffic(runs: Runs) -> dict[str, Any]:
    """What party 0 sent over the mesh per run (hops, messages, payload bytes)."""
    return {
        backend: [run.traffic for run in sides["mesh"] if run.traffic is not None]
        for backend, sides in runs.items()
    }


def print_report(cfg: Config, runs: Runs) -> int:
    rows = rows_of(cfg, runs)
    problems: list[str] = []
    checks: dict[str, Any] = {}
    if "mpyc" in runs:
        found, checks["mpyc"] = check_mpyc(cfg, runs["mpyc"])
        problems += found
    if "crypten" in runs:
        found, checks["crypten"] = check_crypten(cfg, runs["crypten"])
        problems += found
    print(
        f"\ntransport: {PARTIES} parties, mesh (mutual-TLS gRPC) vs the backend's own "
        f"transport, median of {cfg.repeats} run(s) each, same machine, same run"
    )
    headers = ["backend", "program", "mesh median s", "own median s", "ratio", "goal"]
    headers += ["mesh CPU s", "own CPU s"]
    body = [
        [
            NAMES[r["backend"]],
            r["label"],
            r["mesh_median_s"],
            r["own_median_s"],
            r["ratio"],
            f"<= {GOAL_RATIO:g}: {'met' if r['goal_met'] else 'NOT met'}",
            r["mesh_party_cpu_median_s"],
            r["own_party_cpu_median_s"],
        ]
        for r in rows
    ]
    print(table(headers, body))
    print(
        "(CPU s: CPU time of the 3 party processes within the span, summed, median; "
        "the dealer's or TTP's is not included)"
    )
    for backend, sent in traffic(runs).items():
        if sent:
            print(
                f"{NAMES[backend]} over the mesh, all programs of one run (party 0): "
                f"{sent[0].get('hops', 0)} hops, {sent[0]['messages']:,} messages, "
                f"{sent[0]['bytes'] / 2**20:.1f} MiB sent"
            )
    if cfg.mpyc_own_args:
        print(f"MPyC's own transport ran with {' '.join(cfg.mpyc_own_args)} (diagnosis)")
    if "crypten" in checks:
        c = checks["crypten"]
        print(
            f"\nCrypTen accuracy: mesh {_fmt(c['accuracy_mesh'])}, own {_fmt(c['accuracy_own'])}, "
            f"float64 reference {c['accuracy_float64_reference']:.4f}"
        )
    figures = {
        "benchmark": "transport",
        "quick": cfg.quick,
        "parties": PARTIES,
        "repeats": cfg.repeats,
        "seed": cfg.seed,
        "sizes": {"crypten": vars(cfg.crypten), "mpyc": vars(cfg.mpyc)},
        "results": rows,
        "ratios": {f"{r['backend']}_{r['program']}": r["ratio"] for r in rows},
        "goal_ratio": GOAL_RATIO,
        "goal_met": all(r["goal_met"] for r in rows),
        "mpyc_own_args": list(cfg.mpyc_own_args),
        "load_1min_at_start": load_averages(runs),
        "mesh_traffic_party0": traffic(runs),
        "checks": checks,
    }
    return finish_figures(figures, problems)


def _fmt(values: Sequence[float] | None) -> str:
    return "-" if not values else "/".join(f"{v:.4f}" for v in values)


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_quick_option(parser, "3,000 x 20 and 2 steps; 100 counts; 300 x 10; 1 repetition")
    parser.add_argument("--repeats", type=int, help="repetitions per side (default 3)")
    parser.add_argument(
        "--backends",
        type=_backends,
        default=("crypten", "mpyc"),
        help="comma-separated subset of crypten,mpyc (default both)",
    )
    parser.add_argument("--seed", type=int, default=7, help="input data seed (default 7)")
    parser.add_argument(
        "--mpyc-mix32-64bit",
        action="store_true",
        help="diagnosis: give MPyC's own transport --mix32-64bit too, as the mesh backend\n"
        "sets it (no pickle; MPyC then also takes its list-based share code paths)",
    )


def _backends(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    if not names or not set(names) <= {"crypten", "mpyc"}:
        raise argparse.ArgumentTypeError(f"expected crypten and/or mpyc, got {text!r}")
    return names


def config(args: argparse.Namespace) -> Config:
    quick = bool(args.quick)
    cfg = Config(
        quick=quick,
        repeats=args.repeats or (1 if quick else 3),
        backends=args.backends,
        crypten=programs.CryptenSizes(3_000, 20, 2)
        if quick
        else programs.CryptenSizes(30_000, 20, 10),
        mpyc=programs.MpycSizes(100, 300, 10) if quick else programs.MpycSizes(1_000, 3_000, 10),
        seed=args.seed,
        deadline_seconds=120.0 if quick else 900.0,
        round_seconds=60.0 if quick else 120.0,
        mpyc_own_args=("--mix32-64bit",) if args.mpyc_mix32_64bit else (),
    )
    if cfg.repeats < 1:
        raise SystemExit("--repeats must be positive")
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
    with tempfile.TemporaryDirectory(prefix="smpc-bench-transport-") as tmp:
        workdir = Path(tmp)
        pki = make_pki(workdir / "federation", party_ids(PARTIES))
        bench = Bench(cfg, workdir, pki, dealer_address=None)
        try:
            if "crypten" in cfg.backends:
                with dealer(bench):
                    runs = measure(cfg, bench)
            else:
                runs = measure(cfg, bench)
        except WorkerError as exc:
            print(f"FAILED: {exc}", flush=True)
            return 2
    return print_report(cfg, runs)
