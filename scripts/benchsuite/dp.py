"""`bench.py dp`: utility of the differentially private analyses vs epsilon.

For epsilon in 0.1, 0.5, 1, 2, 5, 10 (each at delta 1e-6), on 3 hospitals of synthetic
patients: the median relative error of a noisy count of about 1,000 over repeated runs,
with MPyC's calibration (t = 1 colluder of 3) and CrypTen's (t = 2) beside it; and,
once their templates take `epsilon`, summary (relative error of the means),
correlation (largest error of a coefficient) and logistic regression (AUC loss and
coefficient error against a pooled plaintext fit) rows, one function each.

Why the in-process federation (smpc_ehr/testing) stands in for the backends: a DP
release is the exact result plus the sum of every party's noise share, drawn with the
exact sampler from the plan of (sensitivity, rho, n, t), and t is the only thing the
backend contributes (the reference backend carries the backend's name and its
fixed-point precision, MPyC's). So the noise, and the error it causes, is the same as
on a real federation, in a fraction of the time. `--real-check` runs one noisy count on
a real MPyC federation (processes, mutual TLS) to confirm.

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import argparse
import functools
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite import harness as h
from benchsuite import options, report
from benchsuite.data import cached_federation_data, float_column
from benchsuite.harness import PARTIES, PROTOCOLS, log, party_ids
from benchsuite.report import table

EPSILONS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)
BACKENDS = ("mpyc", "crypten")
PATIENTS = 100_000
QUICK_PATIENTS = 10_000
REPEATS = 100
QUICK_REPEATS = 20
TARGET_COUNT = 1_000
COUNT_CODES = ("I10", "E11", "E66", "E78", "N18", "F32", "K21", "I25", "J45", "I50", "J44")
"""Candidates for the count of about TARGET_COUNT: each code by sex and age band."""
GOAL_EPSILON = 1.0
GOAL_COUNT_ERROR = 0.01
"""Median relative error of a count of ~1,000 at epsilon 1, MPyC with 3 hospitals."""
GOAL_AUC_LOSS = 0.02
"""Logistic regression: pooled plaintext AUC minus the DP model's, at epsilon 1."""
MEDIAN_ABS_NORMAL = 0.6744897501960817
"""The median of |Z| for Z standard normal: the predicted median error is this times sd."""
NUMERIC = {"bmi": (10.0, 60.0), "sbp": (80.0, 220.0), "hba1c": (4.0, 14.0), "ldl": (30.0, 250.0)}
"""Variables of the summary, correlation and logistic rows, with their public clipping
bounds (the `bounds` parameter)."""
LOGISTIC_OUTCOME = "readmit_30d"

Row = dict[str, Any]


@dataclass(frozen=True)
class Config:
    patients: int
    repeats: int
    seed: int
    data_root: Path
    quick: bool
    real_check: bool
    dp_steps: int | None


@dataclass
class Context:
    """What every row function reads: the settings, the data and its federation."""

    cfg: Config
    data: Path
    fed: Any  # smpc_ehr.testing.federation.InProcessFederation
    notes: list[str] = field(default_factory=list)

    def run(self, protocol: str, params: dict[str, str], backend: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self.fed.run(template(protocol), params, backend).result
        return result


@functools.cache
def template(protocol: str) -> Any:
    """A protocol template of protocols/, loaded once."""
    from smpc_ehr.study.template import load_template

    return load_template(PROTOCOLS / protocol)


def takes(protocol: str, name: str) -> bool:
    """Whether the template has parameter `name`."""
    return any(p.name == name for p in template(protocol).parameters)


def dp_available(protocol: str) -> bool:
    """Whether the template takes `epsilon` (has a DP variant)."""
    return takes(protocol, "epsilon")


def unavailable(analysis: str, protocol: str) -> list[Row]:
    return [{"analysis": analysis, "available": False, "protocol": protocol}]


def bounds_param(names: Sequence[str]) -> str:
    return ",".join(f"{NUMERIC[n][0]:g},{NUMERIC[n][1]:g}" for n in names)


def noisy(params: dict[str, str], epsilon: float, bounds: Sequence[str] = ()) -> dict[str, str]:
    """`params` for a DP run at `epsilon`, with the clipping bounds of `bounds`' variables."""
    extra = {"bounds": bounds_param(bounds)} if bounds else {}
    return {**params, "epsilon": repr(epsilon), **extra}


# --- count ----------------------------------------------------------------------------


def count_query(ctx: Context) -> tuple[dict[str, str], int]:
    """The cohort (code, sex, age band) whose exact joint count is nearest TARGET_COUNT,
    and that count (exact in-process runs: the count analysis, checked against pandas by
    its tests)."""
    best: tuple[int, dict[str, str]] | None = None
    for code in COUNT_CODES:
        result = ctx.run("rare_disease_count.toml", {"codes": code, "by": "sex,age_band"})
        for cell in result["cells"]:
            if cell["count"] is None or cell["sex"] == "U":
                continue
            low, _, high = cell["age_band"].rstrip("+").partition("-")
            age = f"{low}-{high or 120}"
            params = {"codes": code, "sex": cell["sex"], "age": age}
            if best is None or abs(cell["count"] - TARGET_COUNT) < abs(best[0] - TARGET_COUNT):
                best = (cell["count"], params)
    assert best is not None
    count, params = best
    check = ctx.run("rare_disease_count.toml", params)["count"]
    if check != count:
        raise RuntimeError(f"the cell's count {count} and its cohort's {check} differ")
    return params, count


def count_rows(ctx: Context) -> list[Row]:
    params, truth = count_query(ctx)
    log(f"count: {params} (exact {truth})")
    rows = []
    for backend in BACKENDS:
        for epsilon in EPSILONS:
            runs = [
                ctx.run("rare_disease_count.toml", noisy(params, epsilon), backend)
                for _ in range(ctx.cfg.repeats)
            ]
            sd = float(runs[0]["dp"]["noise_sd"])
            errors = [1.0 if r["count"] is None else abs(r["count"] - truth) / truth for r in runs]
            rows.append(
                {
                    "analysis": "count",
                    "available": True,
                    "backend": backend,
                    "colluders": runs[0]["dp"]["colluders"],
                    "epsilon": epsilon,
                    "params": params,
                    "truth": truth,
                    "noise_sd": round(sd, 3),
                    "median_rel_error": statistics.median(errors),
                    "predicted_median_rel_error": MEDIAN_ABS_NORMAL * sd / truth,
                    "suppressed": sum(r["count"] is None for r in runs),
                    "runs": len(runs),
                }
            )
    return rows


# --- summary and correlation ----------------------------------------------------------


def summary_rows(ctx: Context) -> list[Row]:
    """Relative error of each noisy mean against the exact run's, median over runs."""
    protocol = "summary.toml"
    if not dp_available(protocol):
        return unavailable("summary", protocol)
    names = ("bmi", "sbp")
    params = {"variables": ",".join(names)}
    exact = ctx.run(protocol, params)["variables"]
    rows = []
    for epsilon in EPSILONS:
        errors = []
        for _ in range(ctx.cfg.repeats):
            got = ctx.run(protocol, noisy(params, epsilon, names))["variables"]
            errors += [_relative(got[n].get("mean"), exact[n]["mean"]) for n in names]
        rows.append(_error_row("summary", epsilon, "median rel. error of a mean", errors))
    return rows


def correlation_rows(ctx: Context) -> list[Row]:
    """The largest error of a correlation coefficient against the exact run's, median
    over runs."""
    protocol = "correlation.toml"
    if not dp_available(protocol):
        return unavailable("correlation", protocol)
    names = ("bmi", "sbp", "ldl")
    params = {"variables": ",".join(names)}
    exact = np.asarray(ctx.run(protocol, params)["matrix"], dtype=float)
    rows = []
    for epsilon in EPSILONS:
        errors = []
        for _ in range(ctx.cfg.repeats):
            got = ctx.run(protocol, noisy(params, epsilon, names)).get("matrix")
            errors.append(
                math.inf if got is None else float(np.max(np.abs(np.asarray(got) - exact)))
            )
        rows.append(_error_row("correlation", epsilon, "median max |r error|", errors))
    return rows


def _relative(value: float | None, truth: float) -> float:
    return math.inf if value is None else abs(value - truth) / abs(truth)


def _error_row(analysis: str, epsilon: float, measure: str, errors: list[float]) -> Row:
    return {
        "analysis": analysis,
        "available": True,
        "backend": "mpyc",
        "epsilon": epsilon,
        "measure": measure,
        "median_error": statistics.median(errors),
        "runs": len(errors),
    }


# --- logistic regression --------------------------------------------------------------


def pooled_rows(data: Path, columns: Sequence[str]) -> np.ndarray:
    """Every party's complete cases of `columns` (the outcome last), pooled."""
    import pyarrow.parquet as pq

    parts = []
    for ident in party_ids(PARTIES):
        frame = pq.read_table(data / ident / "patients.parquet", columns=list(columns))
        x = np.column_stack([float_column(frame, c) for c in columns])
        parts.append(x[~np.isnan(x).any(axis=1)])
    return np.concatenate(parts)


def logistic_rows(ctx: Context) -> list[Row]:
    """AUC (on the pooled rows) of the DP model against a pooled plaintext fit of the same
    clipped features, and the largest coefficient error, median over runs."""
    protocol = "logistic_regression.toml"
    if not dp_available(protocol):
        return unavailable("logistic regression", protocol)
    from sklearn.metrics import roc_auc_score

    from benchsuite.models import sklearn_model

    names = ("bmi", "sbp", "hba1c", "ldl")
    rows_xy = pooled_rows(ctx.data, (*names, LOGISTIC_OUTCOME))
    low = np.array([NUMERIC[n][0] for n in names])
    high = np.array([NUMERIC[n][1] for n in names])
    x, y = np.clip(rows_xy[:, :-1], low, high), rows_xy[:, -1]
    model, _ = sklearn_model()
    model.fit(x, y)
    pooled_beta = np.concatenate([model.intercept_, model.coef_[0]])
    pooled_auc = float(roc_auc_score(y, x @ pooled_beta[1:]))
    params = {"outcome": LOGISTIC_OUTCOME, "features": ",".join(names)}
    if ctx.cfg.dp_steps is not None and takes(protocol, "dp_steps"):
        params["dp_steps"] = str(ctx.cfg.dp_steps)  # else the template's default
    rows = []
    for epsilon in EPSILONS:
        aucs, errors = [], []
        for _ in range(ctx.cfg.repeats):
            got = ctx.run(protocol, noisy(params, epsilon, names))["coefficients"]
            beta = np.array([got["(intercept)"], *(got[n] for n in names)])
            aucs.append(float(roc_auc_score(y, x @ beta[1:])))
            errors.append(float(np.max(np.abs(beta - pooled_beta))))
        auc = statistics.median(aucs)
        rows.append(
            {
                "analysis": "logistic regression",
                "available": True,
                "backend": "mpyc",
                "epsilon": epsilon,
                "pooled_auc": pooled_auc,
                "median_auc": auc,
                "auc_loss": pooled_auc - auc,
                "median_max_coef_error": statistics.median(errors),
                "runs": len(aucs),
            }
        )
    return rows


ROWS: tuple[Callable[[Context], list[Row]], ...] = (
    count_rows,
    summary_rows,
    correlation_rows,
    logistic_rows,
)
"""One function per analysis; an analysis whose template lacks `epsilon` gives one
"not available" row."""


# --- a real federation, as a check ----------------------------------------------------


def real_check(ctx: Context, params: dict[str, str], truth: int) -> Row:
    """One noisy count at epsilon 1 on a real MPyC federation: within 6 sd of the truth."""
    with h.local_federation(ctx.data, "[real check]") as fed, h.analyst(fed) as client:
        job = h.run_job(client, PROTOCOLS / "rare_disease_count.toml", {**params, "epsilon": "1"})
    sd = float(job.result["dp"]["noise_sd"])
    count = job.result["count"]
    within = count is not None and abs(count - truth) <= 6 * sd
    if not within:
        ctx.notes.append(f"real MPyC count {count} is not within 6 sd ({sd:.2f}) of {truth}")
    return {"count": count, "truth": truth, "noise_sd": sd, "within_6_sd": within}


# --- report ---------------------------------------------------------------------------


def goals(rows: Sequence[Row]) -> list[Row]:
    found = []
    for row in rows:
        if not row["available"] or row["epsilon"] != GOAL_EPSILON:
            continue
        if row["analysis"] == "count" and row["backend"] == "mpyc":
            value, limit, what = row["median_rel_error"], GOAL_COUNT_ERROR, "count rel. error"
        elif row["analysis"] == "logistic regression":
            value, limit, what = row["auc_loss"], GOAL_AUC_LOSS, "logistic AUC loss"
        else:
            continue
        found.append({"goal": what, "value": value, "limit": limit, "met": value <= limit})
    return found


def print_report(cfg: Config, rows: Sequence[Row], check: Row | None, notes: list[str]) -> int:
    print(
        f"\ndp: utility vs epsilon (delta 1e-6), {PARTIES} x {cfg.patients:,} patients, "
        f"{cfg.repeats} runs per cell; in-process federation standing in for each backend"
    )
    counts = [r for r in rows if r["analysis"] == "count"]
    if counts:
        print(f"\ncount {counts[0]['params']} (exact {counts[0]['truth']}):")
        headers = ["backend", "t", "epsilon", "noise sd", "median rel. error", "predicted"]
        body = [
            [
                r["backend"],
                r["colluders"],
                f"{r['epsilon']:g}",
                f"{r['noise_sd']:.2f}",
                f"{100 * r['median_rel_error']:.3f} %",
                f"{100 * r['predicted_median_rel_error']:.3f} %",
            ]
            for r in counts
        ]
        print(table(headers, body))
    for name in ("summary", "correlation", "logistic regression"):
        mine = [r for r in rows if r["analysis"] == name]
        if not mine or not mine[0]["available"]:
            print(f"\n{name}: not available (its template has no epsilon yet)")
            continue
        print(f"\n{name}:")
        keys = [k for k in mine[0] if k not in ("analysis", "available", "backend", "runs")]
        print(table(keys, [[_cell(r[k]) for k in keys] for r in mine]))
    if check is not None:
        print(f"\nreal MPyC federation, epsilon 1: {check}")
    met = goals(rows)
    for goal in met:
        verdict = "met" if goal["met"] else "NOT met"
        value, limit = goal["value"], goal["limit"]
        print(f"goal: {goal['goal']} at epsilon 1 = {value:.4f} <= {limit:g}: {verdict}")
    if not any(g["goal"] == "logistic AUC loss" for g in met):
        print(f"goal: logistic AUC loss at epsilon 1 <= {GOAL_AUC_LOSS}: not available")
    figures = {
        "benchmark": "dp",
        **report.settings(cfg),
        "results": list(rows),
        "real_check": check,
        "goals": met,
    }
    return report.finish_figures(figures, notes)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_quick_option(parser, f"{QUICK_PATIENTS:,} patients per party, {QUICK_REPEATS} runs")
    parser.add_argument("--patients", type=int, help=f"patients per party (default {PATIENTS:,})")
    parser.add_argument("--repeats", type=int, help=f"runs per epsilon (default {REPEATS})")
    parser.add_argument(
        "--real-check",
        action="store_true",
        help="also one noisy count on a real MPyC federation (starts processes)",
    )
    parser.add_argument(
        "--dp-steps", type=int, help="logistic regression's dp_steps (default: the template's)"
    )
    options.add_data_options(parser)


def config(args: argparse.Namespace) -> Config:
    quick = bool(args.quick)
    cfg = Config(
        patients=args.patients or (QUICK_PATIENTS if quick else PATIENTS),
        repeats=args.repeats or (QUICK_REPEATS if quick else REPEATS),
        real_check=bool(args.real_check),
        dp_steps=args.dp_steps,
        **options.data_settings(args),
    )
    if cfg.patients < 1 or cfg.repeats < 1:
        raise SystemExit("--patients and --repeats must be positive")
    return cfg


def run(args: argparse.Namespace) -> int:
    from smpc_ehr.testing.federation import InProcessFederation

    cfg = config(args)
    name = f"dp-{PARTIES}x{cfg.patients}-seed{cfg.seed}"
    data, seconds = cached_federation_data(
        cfg.data_root, name, party_ids(PARTIES), [cfg.patients] * PARTIES, cfg.seed
    )
    if seconds is not None:
        log(f"generated {PARTIES} x {cfg.patients:,} patients in {seconds:.1f} s")
    ctx = Context(cfg, data, InProcessFederation.from_folder(data, h.MIN_CELL_COUNT))
    rows: list[Row] = []
    for rows_of in ROWS:
        log(f"{rows_of.__name__} ...")
        rows += rows_of(ctx)
    check = None
    if cfg.real_check:
        counts = [r for r in rows if r["analysis"] == "count"]
        check = real_check(ctx, counts[0]["params"], counts[0]["truth"])
    return print_report(cfg, rows, check, ctx.notes)
