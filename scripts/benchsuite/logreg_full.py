"""`bench.py logreg-full`: logistic regression, "full" mode, next to CrypTen's own gradient descent.

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite import harness as h
from benchsuite import logreg, options, report, timings, transport_runs
from benchsuite.accuracy import (
    accuracy_bounds,
    accuracy_goal,
    bounds_text,
    coefficient_table,
    confusion_notes,
    held_out_table,
)
from benchsuite.harness import PARTIES, log, timed
from benchsuite.logreg import PROTOCOL, Config
from benchsuite.logreg_data import FEATURES, OUTCOME, TEST_FRACTION, Pooled, prepared_data
from benchsuite.logreg_full_baseline import (
    BACKEND,
    BASELINE_DATA,
    LEARNING_RATE,
    STEPS,
    baseline_bench,
)
from benchsuite.models import (
    Fit,
    Scaling,
    comparison,
    describe_fit,
    float64_descent,
    score_weights,
    sklearn_fit,
    sklearn_model,
)
from benchsuite.timings import Summary
from benchsuite.workers import WorkerError

PATIENTS = 10_000
QUICK_PATIENTS = 5_000
TOL = 1e-4
"""The job's `tol` (standardised units): logistic_full.TOL_FLOOR, the smallest it takes."""
ACCURACY_GOAL = 0.005


# --- the run --------------------------------------------------------------------------


@dataclass
class Measured:
    mpc: h.Jobs = field(default_factory=h.Jobs)
    results: list[dict[str, Any]] = field(default_factory=list)
    """Every MPC job's released result, warm-up first."""
    baseline: list[transport_runs.Run] = field(default_factory=list)
    """The timed baseline runs."""
    baseline_weights: list[list[float] | None] = field(default_factory=list)
    """Every baseline run's opened weights (None: the parties disagreed), warm-up first."""


@dataclass
class Run:
    setup: dict[str, Any]
    measured: Measured
    steps: dict[str, timings.PartySteps]
    fit: Fit
    scaling: Scaling
    pooled: Pooled
    sklearn: str


def params(cfg: Config) -> dict[str, str]:
    """logreg's job parameters, in full mode with `tol` TOL."""
    return {**cfg.params, "mode": "full", "tol": str(TOL)}


def measure(cfg: Config) -> Run:
    from smpc_ehr.study.template import load_template

    tag = f"[{PARTIES} x {cfg.patients:,}]"
    log(f"{tag} data {cfg.data_root / cfg.data_name}")
    data, gen_seconds, load_seconds, pooled = prepared_data(cfg, tag)
    log(f"{tag} pooled: {pooled.y_train.size:,} training, {pooled.y_test.size:,} held-out rows")
    model, how = sklearn_model()
    fit_seconds, _ = timed(lambda: sklearn_fit(model, pooled))
    fit = describe_fit(model, pooled)
    scaling = Scaling.of(pooled.x_train)
    features = scaling.design(pooled.x_train)
    with tempfile.TemporaryDirectory(prefix="smpc-bench-logreg-full-") as tmp:
        workdir = Path(tmp)
        np.savez(workdir / BASELINE_DATA, features=features, labels=pooled.y_train)
        bench = baseline_bench(cfg, workdir, *features.shape)
        # The template as the parties approve it at `local up`: later edits of the file
        # (a shared working tree) must not change what the jobs submit.
        template = load_template(PROTOCOL)
        with h.local_federation(data, tag) as fed:
            setup = {
                "generate_seconds": None if gen_seconds is None else round(gen_seconds, 2),
                "local_up_seconds": round(fed.up_seconds, 2),
                "pooled_load_seconds": round(load_seconds, 2),
                "sklearn_fit_seconds": round(fit_seconds, 3),
                "train_rows": int(pooled.y_train.size),
                "test_rows": int(pooled.y_test.size),
                **timings.before_jobs(fed),
            }
            measured = job_loop(cfg, fed, bench, template, tag)
            steps = timings.after_jobs(fed, setup)
    return Run(setup, measured, steps, fit, scaling, pooled, how)


def job_loop(
    cfg: Config, fed: h.RunningFederation, bench: transport_runs.Bench, template: Any, tag: str
) -> Measured:
    """Warm up, then R repetitions of an MPC job and a baseline run, alternating which
    goes first."""
    out = Measured()
    job_params = params(cfg)

    def mpc(timed_run: bool) -> None:
        job = h.run_job(client, template, job_params, BACKEND, stage="newton")
        out.results.append(job.result)
        if not timed_run:
            return
        out.mpc.runs.append(job)
        log(f"{tag} MPC job {job.seconds:.2f} s, {job.result['iterations']} iterations")

    def baseline(timed_run: bool) -> None:
        result = bench.crypten_own()
        if timed_run:
            out.baseline.append(result)
        weights = result.values.get("weights")
        out.baseline_weights.append(None if weights is None else list(weights))
        log(f"{tag} baseline {result.seconds['logreg']:.2f} s")

    with h.analyst(fed) as client:
        h.alternate([h.Pair("logreg full", mpc, baseline)], cfg.warmup, cfg.repeats, tag)
    return out


# --- report ---------------------------------------------------------------------------


def timing_figures(run: Run) -> dict[str, Any]:
    m = run.measured
    jobs = [run.steps[j] for j in m.mpc.job_ids if j in run.steps]
    party_mpc = [p.mpc_ms / 1000.0 for p in jobs]
    baseline = Summary.of([r.seconds["logreg"] for r in m.baseline]).as_dict()
    figures: dict[str, Any] = {
        "mpc_end_to_end": Summary.of(m.mpc.seconds).as_dict(),
        "mpc_fit_only": timings.summary(m.mpc.to_last_step),
        "mpc_party_mpc_step": timings.summary(party_mpc),
        "mpc_coordinator_elapsed": Summary.of(m.mpc.coordinator_seconds).as_dict(),
        "baseline": baseline,
        "baseline_seconds": [round(r.seconds["logreg"], 4) for r in m.baseline],
        "baseline_party_cpu_median_s": round(
            statistics.median(r.cpu["logreg"] for r in m.baseline), 3
        ),
        "baseline_load_1min_at_start": [round(r.load, 2) for r in m.baseline],
        "mpc_seconds": [round(s, 4) for s in m.mpc.seconds],
        "mpc_fit_only_seconds": [round(s, 4) for s in m.mpc.to_last_step],
        **timings.note_figures(m.mpc),
        "party_local_step_ms": timings.median([p.local_ms for p in jobs]),
        "party_mpc_step_ms": timings.median([p.mpc_ms for p in jobs]),
        "hops": timings.median([p.hops for p in jobs]),
        "messages_per_party": timings.median([p.messages for p in jobs]),
        "bytes_sent_per_party": timings.median([p.bytes_sent for p in jobs]),
        "jobs_with_steps": len(jobs),
    }
    for span in ("end_to_end", "fit_only", "party_mpc_step"):
        figures[f"ratio_{span}"] = report.ratio_of(figures[f"mpc_{span}"], baseline)
    return figures


TIMING_COLUMNS = [
    report.Column("side", report.key("side")),
    report.Column("timed span", report.key("span")),
    *report.summary_columns("summary", 2),
    report.Column("ratio to baseline", report.key("ratio"), 3),
]


def timing_table(f: dict[str, Any]) -> str:
    rows = [
        ("MPC full mode", "end to end (analyst)", "end_to_end"),
        ("", "to the last Newton step (fit only)", "fit_only"),
        ("", "slowest party's MPC step (party log)", "party_mpc_step"),
    ]
    dicts = [
        {"side": side, "span": span, "summary": f[f"mpc_{k}"], "ratio": f[f"ratio_{k}"]}
        for side, span, k in rows
    ]
    dicts.append(
        {
            "side": "CrypTen own, 10 GD steps",
            "span": "inputs to opened weights",
            "summary": f["baseline"],
            "ratio": 1.0,
        }
    )
    return report.columns_table(TIMING_COLUMNS, dicts)


BREAKDOWN_COLUMNS = [
    report.Column("iterations", report.key("iterations"), 0),
    report.Column("to 1st Newton step s", report.key("to_first_step_s"), 2),
    report.Column("later step s (median)", report.key("later_step_s"), 2),
    report.Column("after last step s", report.key("after_last_step_s"), 2),
    report.Column("party local step s", lambda f: report.per(f["party_local_step_ms"], 1000), 2),
    report.Column("party MPC step s", lambda f: report.per(f["party_mpc_step_ms"], 1000), 2),
    report.Column("hops", report.key("hops"), 0),
    report.Column("messages", report.key("messages_per_party"), 0),
    report.Column("MiB sent", lambda f: report.per(f["bytes_sent_per_party"], 2**20), 1),
]


def model_figures(run: Run) -> dict[str, Any]:
    """Every model's accuracy and AUC on the pooled held-out rows, next to the pooled fit."""
    fit, pooled = run.fit, run.pooled
    check = comparison(run.measured.results[0], fit, pooled)
    evaluations = [r.get("evaluation") or {} for r in run.measured.results]
    bounds = [accuracy_bounds(e.get("confusion"), pooled.y_test.size) for e in evaluations]
    baselines = [
        None if w is None else score_weights(w, run.scaling, pooled)
        for w in run.measured.baseline_weights
    ]
    reference_weights = float64_descent(
        run.scaling.design(pooled.x_train), pooled.y_train, STEPS, LEARNING_RATE
    )
    opened = [np.asarray(w) for w in run.measured.baseline_weights if w is not None]
    return {
        "pooled": {
            "accuracy": fit.accuracy,
            "auc": fit.auc,
            "auc_binned": fit.auc_binned,
            "confusion": fit.confusion,
        },
        "mpc": {
            "accuracy": check["accuracy"]["mpc"],
            "accuracy_bounds": bounds[0],
            "auc": check["auc"]["mpc"],
            "confusion": check["confusion"]["mpc"],
            "n_train": check["n_train"]["mpc"],
            "n_test": check["n_test"]["mpc"],
            "iterations": check["iterations"]["mpc"],
            "accuracy_every_job": [e.get("accuracy") for e in evaluations],
            "accuracy_bounds_every_job": bounds,
            "auc_every_job": [e.get("auc") for e in evaluations],
            "max_abs_coefficient_difference": check["max_abs_coefficient_difference"],
            "max_difference_at": check["max_difference_at"],
        },
        "baseline": None if baselines[0] is None else vars(baselines[0]),
        "baseline_accuracy_every_run": [None if b is None else b.accuracy for b in baselines],
        "baseline_auc_every_run": [None if b is None else b.auc for b in baselines],
        "baseline_weights_first_run": run.measured.baseline_weights[0],
        "baseline_weights_max_abs_diff_vs_float64": max(
            (float(np.max(np.abs(w - reference_weights))) for w in opened), default=None
        ),
        "float64_descent": vars(score_weights(reference_weights, run.scaling, pooled)),
        "check": check,
    }


def goals(timing: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
    """Speed: the MPC median below the baseline's. Accuracy: every MPC job's accuracy
    within ACCURACY_GOAL of the pooled one (accuracy.accuracy_goal)."""
    bounds = models["mpc"]["accuracy_bounds_every_job"]
    end_to_end, fit_only = timing["ratio_end_to_end"], timing["ratio_fit_only"]
    return {
        "speed_end_to_end_met": end_to_end < 1.0,
        "speed_fit_only_met": fit_only is not None and fit_only < 1.0,
        "ratio_end_to_end": end_to_end,
        "ratio_fit_only": fit_only,
        **accuracy_goal(bounds, models["pooled"]["accuracy"], ACCURACY_GOAL),
    }


def problems_of(run: Run, models: dict[str, Any], timing: dict[str, Any]) -> list[str]:
    """What makes the run wrong (not a missed goal)."""
    problems = []
    for i, result in enumerate(run.measured.results, 1):
        evaluation = result.get("evaluation") or {}
        if result["n"] != run.pooled.y_train.size:
            problems.append(f"job {i}: N {result['n']} vs {run.pooled.y_train.size} pooled")
        if evaluation.get("n") not in (None, run.pooled.y_test.size):
            problems.append(
                f"job {i}: held-out rows {evaluation['n']} vs {run.pooled.y_test.size} pooled"
            )
        if evaluation.get("auc") is None:
            problems.append(f"job {i}: the MPC AUC was not released")
    if None in run.measured.baseline_weights:
        problems.append("a baseline run's parties opened different weights")
    if len(run.measured.mpc.to_last_step) < len(run.measured.mpc.seconds):
        problems.append("an MPC job sent no Newton progress note")
    if timing["jobs_with_steps"] < len(run.measured.mpc.job_ids):
        problems.append("an MPC job without a step line in the party logs")
    return problems


def _verdict(met: bool | None) -> str:
    return "undecided" if met is None else ("met" if met else "NOT met")


def print_report(cfg: Config, run: Run) -> int:
    timing = timing_figures(run)
    models = model_figures(run)
    goal = goals(timing, models)
    print(
        f"\nlogreg-full: {PARTIES} parties x {cfg.patients:,} patients, {len(FEATURES)} "
        f"features, full mode (rows secret-shared, the whole fit inside MPC, {BACKEND}), "
        f"test fraction {TEST_FRACTION:g}, {run.setup['train_rows']:,} pooled training rows; "
        f"median of {cfg.repeats} repetition(s), MPC job and baseline side by side"
    )
    print(timing_table(timing))
    print(
        f"(baseline: CrypTen over its own torch.distributed/gloo transport, TTP provider, "
        f"{STEPS} gradient steps, learning rate {LEARNING_RATE:g}, CrypTen's sigmoid, "
        f"{run.setup['train_rows']:,} x {len(FEATURES) + 1} pooled training rows standardised "
        "in plaintext; party 0 inputs the features, party 1 the outcomes)"
    )
    print(report.load_line(run.setup))
    print("\nlogreg-full: where the MPC time goes (median per job; party figures: slowest party)")
    print(report.columns_table(BREAKDOWN_COLUMNS, [timing]))
    mpc = models["mpc"]
    print(
        f"\nlogreg-full: models on the {run.pooled.y_test.size:,} pooled held-out rows "
        f"(MPC: first job, N {mpc['n_train']:,}, {mpc['iterations']} iterations; "
        f"pooled: {run.sklearn})"
    )
    print(held_out_table(models))
    print(confusion_notes(models))
    print(
        f"max |coefficient difference| MPC vs scikit-learn: "
        f"{mpc['max_abs_coefficient_difference']:.3g} ({mpc['max_difference_at']})"
    )
    print()
    print(coefficient_table({"MPC full": models["check"]}))
    speed = goal["speed_end_to_end_met"]
    print(
        f"\ngoal: faster than baseline: {_verdict(speed)} (end to end "
        f"{goal['ratio_end_to_end']:.2f} x the baseline median; fit only, to the last "
        f"Newton step: {_fixed_ratio(goal['ratio_fit_only'])} x, "
        f"{_verdict(goal['speed_fit_only_met'])})"
    )
    worst = goal["accuracy_worst_abs_difference"]
    jobs = len(mpc["accuracy_every_job"])
    print(
        f"goal: accuracy within {ACCURACY_GOAL:g} of pooled: "
        f"{_verdict(goal['accuracy_met'])} "
        + (
            "(no accuracy bounds)"
            if worst is None
            else f"(MPC {bounds_text(mpc['accuracy_bounds'], 0)} vs pooled "
            f"{models['pooled']['accuracy']:.4f}; largest |difference| over {jobs} job(s)"
            f"{'' if goal['accuracy_exact'] else ', at the bounds,'} {worst:.4f})"
        )
    )
    report.goal_size_note(cfg.patients, PATIENTS)
    problems = problems_of(run, models, timing)
    check = models.pop("check")
    figures = {
        "benchmark": "logreg-full",
        "quick": cfg.quick,
        "parties": PARTIES,
        "patients_per_party": cfg.patients,
        "features": list(FEATURES),
        "outcome": OUTCOME,
        "params": params(cfg),
        "backend": BACKEND,
        "repeats": cfg.repeats,
        "warmup": cfg.warmup,
        "seed": cfg.seed,
        "baseline": {"steps": STEPS, "learning_rate": LEARNING_RATE, "transport": "gloo, TTP"},
        "sklearn": run.sklearn,
        "timing": timing,
        "models": models,
        "coefficients": check["coefficients"],
        "setup": run.setup,
        "goal": goal,
        "goal_met": bool(goal["speed_end_to_end_met"] and goal["accuracy_met"]),
    }
    return report.finish_figures(figures, problems)


def _fixed_ratio(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_quick_option(parser, f"{QUICK_PATIENTS:,} patients per party, 1 repeat, no warm-up")
    parser.add_argument("--patients", type=int, help=f"patients per party (default {PATIENTS:,})")
    parser.add_argument("--repeats", type=int, help="timed repetitions (default 3)")
    parser.add_argument(
        "--warmup", type=int, help="warm-up MPC jobs and baseline runs (default 1; --quick: 0)"
    )
    options.add_data_options(parser)


def config(args: argparse.Namespace) -> Config:
    """logreg's configuration (its checks and defaults), with this benchmark's
    patients and the crypten backend."""
    patients = args.patients or (QUICK_PATIENTS if args.quick else PATIENTS)
    return logreg.config(
        argparse.Namespace(**{**vars(args), "patients": patients, "backends": (BACKEND,)})
    )


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
    try:
        measured = measure(cfg)
    except WorkerError as exc:
        print(f"FAILED: the baseline: {exc}", flush=True)
        return 2
    except h.JobFailed as exc:
        print(f"FAILED: the MPC job: {exc}", flush=True)
        return 2
    return print_report(cfg, measured)
