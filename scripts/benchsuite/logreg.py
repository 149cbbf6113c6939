"""`bench.py logreg`: a joint logistic regression ("iterates" mode) under MPC next to scikit-learn.

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite import harness as h
from benchsuite.harness import PARTIES, PROTOCOLS, Summary, log, party_ids, table, timed
from benchsuite.stats import BACKENDS, VARIABLES, _backend_list

PATIENTS = 100_000
QUICK_PATIENTS = 5_000
GOAL_RATIO = 5.0
OUTCOME = "readmit_30d"
TEST_FRACTION = 0.2
SPLIT_SEED = 1
"""The job's `seed` parameter: each party's train/test split."""
PROTOCOL = PROTOCOLS / "logistic_regression.toml"
INTERCEPT = "(intercept)"
COEFFICIENT_LIMIT = 1e-3
AUC_LIMIT = 0.005
AUC_BINS = 100
"""As smpc_ehr/analyses/evaluation.py bins the scores for the AUC."""
REFERENCE: dict[str, tuple[float, float]] = {
    "bmi": (26.0, 6.0),
    "hba1c": (6.0, 1.0),
    "sbp": (135.0, 20.0),
    "ldl": (120.0, 35.0),
    "creatinine": (1.2, 0.6),
    "weight": (73.0, 23.0),
    "heart_rate": (75.0, 11.0),
    "hdl": (51.0, 13.0),
    "egfr": (77.0, 36.0),
}
"""Fixed (centre, scale) of the standardised squares and products: public constants,
the same at every party, so that every party computes the same function."""
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "bmi_sq": ("square", "bmi"),
    "hba1c_sq": ("square", "hba1c"),
    "sbp_sq": ("square", "sbp"),
    "egfr_sq": ("square", "egfr"),
    "bmi_x_hba1c": ("product", "bmi", "hba1c"),
    "sbp_x_creatinine": ("product", "sbp", "creatinine"),
    "ldl_x_hdl": ("product", "ldl", "hdl"),
    "weight_x_heart_rate": ("product", "weight", "heart_rate"),
    "log_triglycerides": ("log", "triglycerides"),
    "log_creatinine": ("log", "creatinine"),
}
"""The bench-only columns: (function, the variables it reads)."""
FEATURES = (*VARIABLES, *EXTRA_COLUMNS)
FEATURES_AND_INTERCEPT = (INTERCEPT, *FEATURES)


@dataclass(frozen=True)
class Config:
    patients: int
    backends: tuple[str, ...]
    repeats: int
    warmup: int
    seed: int
    data_root: Path
    quick: bool

    @property
    def data_name(self) -> str:
        return f"logreg-{PARTIES}x{self.patients}-seed{self.seed}"

    @property
    def params(self) -> dict[str, str]:
        return {
            "outcome": OUTCOME,
            "features": ",".join(FEATURES),
            "test_fraction": str(TEST_FRACTION),
            "seed": str(SPLIT_SEED),
        }


# --- the data -------------------------------------------------------------------------


def extra_column(spec: tuple[str, ...], columns: dict[str, np.ndarray]) -> np.ndarray:
    """One bench-only column from the variables it reads (float64, NaN = missing)."""

    def z(name: str) -> np.ndarray:
        centre, scale = REFERENCE[name]
        return (columns[name] - centre) / scale

    kind, *names = spec
    if kind == "square":
        return z(names[0]) ** 2
    if kind == "product":
        return z(names[0]) * z(names[1])
    if kind == "log":
        return np.log(columns[names[0]])
    raise ValueError(f"unknown column function {kind!r}")


def add_extra_columns(patients: Path) -> None:
    """Append the bench-only columns to a patients.parquet (replaced atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pq.read_table(patients)
    columns = {name: _float_column(data, name) for name in VARIABLES}
    for name, spec in EXTRA_COLUMNS.items():
        values = extra_column(spec, columns)
        missing = np.isnan(values)
        if np.isinf(values).any() or np.abs(values[~missing]).max(initial=0.0) > 2.0**14:
            raise ValueError(f"{patients}: bench column {name} out of range")
        if name in data.column_names:
            data = data.drop_columns([name])
        data = data.append_column(name, pa.array(values, type=pa.float64(), mask=missing))
    staging = patients.with_name(f".{patients.name}.partial")
    pq.write_table(data, staging)
    os.replace(staging, patients)


def _float_column(data: Any, name: str) -> np.ndarray:
    """A Parquet column as float64, NaN = missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = pc.fill_null(pc.cast(data.column(name), pa.float64()), float("nan"))
    return np.asarray(column.to_numpy(), dtype=np.float64)


def logreg_data(cfg: Config) -> tuple[Path, float | None]:
    """The cached federation with the 20 features; a cache lacking one of them (written
    before the generator had all 10 variables, or interrupted before the bench columns
    were added) is removed and generated again."""
    import pyarrow.parquet as pq

    ids = party_ids(PARTIES)
    folder = cfg.data_root / cfg.data_name
    if (folder / "truth.json").exists():
        for ident in ids:
            patients = folder / ident / "patients.parquet"
            names = set(pq.read_schema(patients).names) if patients.exists() else set()
            lacking = {*FEATURES, OUTCOME} - names
            if lacking:
                log(f"{folder} lacks {', '.join(sorted(lacking))}; generating it again")
                shutil.rmtree(folder)
                break
    folder, gen_seconds = h.cached_federation_data(
        cfg.data_root, cfg.data_name, ids, [cfg.patients] * PARTIES, cfg.seed
    )
    if gen_seconds is not None:
        start = time.perf_counter()
        for ident in ids:
            add_extra_columns(folder / ident / "patients.parquet")
        gen_seconds += time.perf_counter() - start
    return folder, gen_seconds


@dataclass(frozen=True)
class Pooled:
    """All parties' complete cases, split as the parties split them, in original units."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_pooled(folders: Sequence[Path]) -> Pooled:
    """Each party's patients in file order: the rows with the outcome and every feature,
    held out where np.random.default_rng(SPLIT_SEED).random(patients) < TEST_FRACTION
    (smpc_ehr/analyses/logistic.py: local_design, the cohort being every patient)."""
    import pyarrow.parquet as pq

    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for folder in folders:
        data = pq.read_table(folder / "patients.parquet", columns=[*FEATURES, OUTCOME])
        x = np.column_stack([_float_column(data, name) for name in FEATURES])
        y = _float_column(data, OUTCOME)
        keep = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
        draw = np.random.default_rng(SPLIT_SEED).random(data.num_rows)
        parts.append((x[keep], y[keep], draw[keep] < TEST_FRACTION))
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    test = np.concatenate([p[2] for p in parts])
    return Pooled(np.ascontiguousarray(x[~test]), y[~test], np.ascontiguousarray(x[test]), y[test])


# --- the scikit-learn baseline --------------------------------------------------------


def sklearn_model() -> tuple[Any, str]:
    """An unpenalised LogisticRegression as the issue asks, and how it was made."""
    import sklearn
    from sklearn.linear_model import LogisticRegression

    version = tuple(int(p) for p in sklearn.__version__.split(".")[:2] if p.isdigit())
    solver = "newton-cholesky" if version >= (1, 2) else "lbfgs"
    # penalty=None is deprecated from 1.8 (to go in 1.10): C=inf is the same model there.
    unpenalised: dict[str, Any] = {"C": np.inf} if version >= (1, 8) else {"penalty": None}
    model = LogisticRegression(solver=solver, max_iter=1000, tol=1e-8, **unpenalised)
    how = ", ".join(f"{k}={v}" for k, v in unpenalised.items())
    return model, f"scikit-learn {sklearn.__version__}, {solver}, {how}, tol=1e-8"


@dataclass(frozen=True)
class Fit:
    """A scikit-learn fit and its evaluation on the held-out rows."""

    coefficients: dict[str, float]
    iterations: int
    auc: float
    auc_binned: float
    accuracy: float
    confusion: list[list[int]]
    """[[tn, fp], [fn, tp]] at 0.5, as the MPC evaluation lays it out."""


def sklearn_fit(model: Any, pooled: Pooled) -> Any:
    return model.fit(pooled.x_train, pooled.y_train)


def sklearn_scores(model: Any, pooled: Pooled) -> tuple[np.ndarray, float, float]:
    """Predicted probabilities of the held-out rows, their AUC and accuracy at 0.5."""
    from sklearn.metrics import roc_auc_score

    scores = model.predict_proba(pooled.x_test)[:, 1]
    auc = float(roc_auc_score(pooled.y_test, scores))
    accuracy = float(np.mean((scores >= 0.5) == (pooled.y_test == 1)))
    return scores, auc, accuracy


def binned_auc(scores: np.ndarray, y: np.ndarray) -> float:
    """The AUC as the MPC evaluation computes it: scores in bins of 0.01, a positive-
    negative pair in one bin counting one half."""
    bins = np.minimum((scores * AUC_BINS).astype(int), AUC_BINS - 1)
    pos = np.bincount(bins[y == 1], minlength=AUC_BINS).astype(float)
    neg = np.bincount(bins[y != 1], minlength=AUC_BINS).astype(float)
    above = pos.sum() - np.cumsum(pos)
    return float(np.sum(neg * (above + pos / 2)) / (pos.sum() * neg.sum()))


def describe_fit(model: Any, pooled: Pooled) -> Fit:
    scores, auc, accuracy = sklearn_scores(model, pooled)
    names = FEATURES_AND_INTERCEPT
    values = [float(model.intercept_[0]), *(float(v) for v in model.coef_[0])]
    return Fit(
        dict(zip(names, values, strict=True)),
        int(np.max(model.n_iter_)),
        auc,
        binned_auc(scores, pooled.y_test),
        accuracy,
        confusion(scores, pooled.y_test),
    )


def confusion(scores: np.ndarray, y: np.ndarray) -> list[list[int]]:
    predicted, positive = scores >= 0.5, y == 1
    return [
        [int(np.sum(~predicted & ~positive)), int(np.sum(predicted & ~positive))],
        [int(np.sum(~predicted & positive)), int(np.sum(predicted & positive))],
    ]


# --- checking MPC against scikit-learn ------------------------------------------------


def comparison(result: dict[str, Any], fit: Fit, pooled: Pooled) -> dict[str, Any]:
    """The MPC model next to scikit-learn's, and what fails the check."""
    evaluation = result.get("evaluation") or {}
    mpc_coefficients = result["coefficients"]
    differences = {
        name: abs(float(mpc_coefficients[name]) - want) for name, want in fit.coefficients.items()
    }
    worst = max(differences, key=lambda name: differences[name])
    auc, accuracy = evaluation.get("auc"), evaluation.get("accuracy")
    out: dict[str, Any] = {
        "n_train": {"mpc": result["n"], "sklearn": int(pooled.y_train.size)},
        "n_test": {"mpc": evaluation.get("n"), "sklearn": int(pooled.y_test.size)},
        "iterations": {"mpc": result["iterations"], "sklearn": fit.iterations},
        "coefficients": {
            name: {"mpc": float(mpc_coefficients[name]), "sklearn": want}
            for name, want in fit.coefficients.items()
        },
        "max_abs_coefficient_difference": differences[worst],
        "max_difference_at": worst,
        "auc": {"mpc": auc, "sklearn": fit.auc, "sklearn_binned": fit.auc_binned},
        "auc_difference": None if auc is None else abs(auc - fit.auc),
        "accuracy": {"mpc": accuracy, "sklearn": fit.accuracy},
        "accuracy_difference": None if accuracy is None else abs(accuracy - fit.accuracy),
        "confusion": {"mpc": evaluation.get("confusion"), "sklearn": fit.confusion},
    }
    problems = []
    if result["n"] != pooled.y_train.size:
        problems.append(f"N: MPC {result['n']} vs {pooled.y_train.size} pooled training rows")
    if evaluation.get("n") not in (None, pooled.y_test.size):
        problems.append(f"held-out rows: MPC {evaluation['n']} vs {pooled.y_test.size} pooled")
    if differences[worst] > COEFFICIENT_LIMIT:
        problems.append(
            f"coefficient {worst}: MPC {mpc_coefficients[worst]:.6g} vs scikit-learn "
            f"{fit.coefficients[worst]:.6g} (|difference| {differences[worst]:.3g} > "
            f"{COEFFICIENT_LIMIT:g})"
        )
    if auc is None:
        problems.append("the MPC AUC was not released")
    elif abs(auc - fit.auc) > AUC_LIMIT:
        problems.append(
            f"AUC: MPC {auc:.4f} vs scikit-learn {fit.auc:.4f} (|difference| "
            f"{abs(auc - fit.auc):.4f} > {AUC_LIMIT:g})"
        )
    out["problems"] = problems
    return out


# --- the run --------------------------------------------------------------------------


@dataclass
class Samples:
    jobs: h.Jobs = field(default_factory=h.Jobs)
    fit: list[float] = field(default_factory=list)
    fit_predict: list[float] = field(default_factory=list)


@dataclass
class Run:
    setup: dict[str, Any]
    samples: dict[str, Samples]  # by backend
    steps: dict[str, h.PartySteps]
    checks: dict[str, dict[str, Any]]  # by backend
    sklearn: str


def prepared_data(cfg: Config, tag: str) -> tuple[Path, float | None, float, Pooled]:
    """The cached federation (generated if missing) and its pooled rows: the folder, the
    generation and loading seconds and the rows."""
    data, gen_seconds = logreg_data(cfg)
    if gen_seconds is not None:
        log(f"{tag} generated {PARTIES} x {cfg.patients:,} patients in {gen_seconds:.1f} s")
    load_seconds, pooled = timed(lambda: load_pooled([data / i for i in party_ids(PARTIES)]))
    return data, gen_seconds, load_seconds, pooled


def measure(cfg: Config) -> Run:
    tag = f"[{PARTIES} x {cfg.patients:,}]"
    log(f"{tag} data {cfg.data_root / cfg.data_name}")
    data, gen_seconds, load_seconds, pooled = prepared_data(cfg, tag)
    log(
        f"{tag} scikit-learn: loaded {pooled.y_train.size:,} training and "
        f"{pooled.y_test.size:,} held-out rows x {len(FEATURES)} in {load_seconds:.1f} s"
    )
    model, how = sklearn_model()
    with h.local_federation(data, tag) as fed:
        setup = h.setup_figures(fed, gen_seconds, sklearn_load_seconds=load_seconds)
        setup |= {
            "train_rows": int(pooled.y_train.size),
            "test_rows": int(pooled.y_test.size),
            "load_average_before_jobs": h.load_average(),
        }
        samples = {backend: Samples() for backend in cfg.backends}
        checks: dict[str, dict[str, Any]] = {}
        # scikit-learn's first fit pays one-off imports (about 0.15 s): always warm it up.
        _time_sklearn(model, pooled, Samples())
        reference = describe_fit(model, pooled)
        with h.analyst(fed) as client:
            pairs = [
                _pair(client, cfg, b, model, pooled, samples[b], checks, reference)
                for b in cfg.backends
            ]
            h.alternate(pairs, cfg.warmup, cfg.repeats, tag)
        setup["rss_mb_after_jobs"] = fed.rss_mb()
        setup["load_average_after_jobs"] = h.load_average()
        steps = h.party_steps(fed)
    for backend, s in samples.items():
        checks[backend]["problems"] += h.unlogged(backend, s.jobs.job_ids, steps, PARTIES)
    return Run(setup, samples, steps, checks, how)


def _pair(
    client: Any,
    cfg: Config,
    backend: str,
    model: Any,
    pooled: Pooled,
    s: Samples,
    checks: dict[str, dict[str, Any]],
    reference: Fit,
) -> h.Pair:
    """A backend's MPC job and a scikit-learn fit; the first MPC model is checked."""

    def mpc(timed_run: bool) -> None:
        job = h.run_job(client, PROTOCOL, cfg.params, backend, stage="newton")
        if backend not in checks:
            checks[backend] = comparison(job.result, reference, pooled)
        if timed_run:
            s.jobs.runs.append(job)

    def baseline(timed_run: bool) -> None:
        if timed_run:
            _time_sklearn(model, pooled, s)
        else:
            sklearn_fit(model, pooled)

    return h.Pair(backend, mpc, baseline)


def _time_sklearn(model: Any, pooled: Pooled, s: Samples) -> None:
    start = time.perf_counter()
    sklearn_fit(model, pooled)
    fitted = time.perf_counter()
    sklearn_scores(model, pooled)
    end = time.perf_counter()
    s.fit.append(fitted - start)
    s.fit_predict.append(end - start)


# --- report ---------------------------------------------------------------------------


def figures_of(run: Run, backend: str) -> dict[str, Any]:
    s = run.samples[backend]
    jobs = s.jobs
    mpc, fit = Summary.of(jobs.seconds), Summary.of(s.fit)
    fit_predict = Summary.of(s.fit_predict)
    return {
        "backend": backend,
        "mpc": mpc.as_dict(),
        "mpc_coordinator": Summary.of(jobs.coordinator_seconds).as_dict(),
        "sklearn_fit": fit.as_dict(),
        "sklearn_fit_predict": fit_predict.as_dict(),
        "ratio": round(mpc.median_ms / fit.median_ms, 3),
        "ratio_fit_predict": round(mpc.median_ms / fit_predict.median_ms, 3),
        "iterations": h.median(jobs.iterations),
        **h.step_figures(jobs.job_ids, run.steps),
        "to_first_step_ms": h.rounded(h.ms(h.median(jobs.first_step))),
        "later_step_ms": h.rounded(h.ms(h.median(jobs.later_step))),
        "after_last_step_ms": h.rounded(h.ms(h.median(jobs.after_last_step))),
    }


def timing_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = [
        h.Column("backend", h.key("backend")),
        *h.time_columns("mpc"),
        h.Column("iterations", h.key("iterations"), 0),
        *h.step_columns("MiB"),
        h.Column("sklearn fit s", h.seconds_of("sklearn_fit"), 3),
        h.Column("fit+predict s", h.seconds_of("sklearn_fit_predict"), 3),
        h.Column("ratio", h.key("ratio")),
        h.goal_column(GOAL_RATIO, lambda r: r["ratio"] <= GOAL_RATIO),
    ]
    return h.columns_table(columns, rows)


def breakdown_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = [
        h.Column("backend", h.key("backend")),
        h.Column("to 1st Newton step ms", h.key("to_first_step_ms"), 1),
        h.Column("later step ms (median)", h.key("later_step_ms"), 1),
        h.Column("after last step ms", h.key("after_last_step_ms"), 1),
        h.Column("coordinator elapsed ms", lambda r: r["mpc_coordinator"]["median_ms"], 1),
        h.Column("analyst end to end ms", lambda r: r["mpc"]["median_ms"], 1),
    ]
    return h.columns_table(columns, rows)


def accuracy_table(check: dict[str, Any]) -> str:
    headers = ["quantity", "MPC", "scikit-learn", "|difference|", "limit", "check"]

    def line(
        what: str,
        mpc: Any,
        plain: Any,
        difference: Any = None,
        limit: float | None = None,
        fmt: str = "",
        difference_fmt: str | None = None,
    ) -> list[object]:
        def cell(v: Any, spec: str = fmt) -> str:
            return "-" if v is None else format(v, spec)

        verdict = "-" if limit is None else ("ok" if difference <= limit else "FAILED")
        if limit is not None and difference is None:
            verdict = "FAILED"
        spec = difference_fmt or fmt
        return [what, cell(mpc), cell(plain), cell(difference, spec), cell(limit, spec), verdict]

    def matrix(cells: Any) -> str | None:
        if cells is None:
            return None
        rows = (", ".join("-" if c is None else f"{c:,}" for c in row) for row in cells)
        return "[" + ", ".join(f"[{r}]" for r in rows) + "]"

    n_train, n_test = check["n_train"], check["n_test"]
    auc, accuracy, iterations = check["auc"], check["accuracy"], check["iterations"]
    worst, auc_diff = check["max_difference_at"], check["auc_difference"]
    body = [
        line("N (training rows)", n_train["mpc"], n_train["sklearn"], fmt=","),
        line("held-out rows", n_test["mpc"], n_test["sklearn"], fmt=","),
        line("iterations", iterations["mpc"], iterations["sklearn"], fmt="d"),
        line(
            f"max |coef diff|: {worst}",
            check["coefficients"][worst]["mpc"],
            check["coefficients"][worst]["sklearn"],
            check["max_abs_coefficient_difference"],
            COEFFICIENT_LIMIT,
            ".6g",
            ".3g",
        ),
        line("AUC (MPC: bins of 0.01)", auc["mpc"], auc["sklearn"], auc_diff, AUC_LIMIT, ".4f"),
        line("AUC of sklearn, binned as MPC", None, auc["sklearn_binned"], fmt=".4f"),
        line(
            "accuracy at 0.5",
            accuracy["mpc"],
            accuracy["sklearn"],
            check["accuracy_difference"],
            fmt=".4f",
        ),
        line(
            "confusion [[tn, fp], [fn, tp]] at 0.5",
            matrix(check["confusion"]["mpc"]),
            matrix(check["confusion"]["sklearn"]),
        ),
    ]
    return table(headers, body)


def coefficient_table(checks: dict[str, dict[str, Any]]) -> str:
    headers = ["coefficient", "scikit-learn"]
    for backend in checks:
        headers += [backend, f"{backend} |difference|"]
    body = []
    for name in FEATURES_AND_INTERCEPT:
        line = [name]
        for i, check in enumerate(checks.values()):
            c = check["coefficients"][name]
            if i == 0:
                line.append(f"{c['sklearn']:.6g}")
            line += [f"{c['mpc']:.6g}", f"{abs(c['mpc'] - c['sklearn']):.2g}"]
        body.append(line)
    return table(headers, body)


def print_report(cfg: Config, run: Run) -> int:
    rows = [figures_of(run, backend) for backend in cfg.backends]
    checks = run.checks
    print(
        f"\nlogreg: {PARTIES} parties x {cfg.patients:,} patients, {len(FEATURES)} features, "
        f"iterates mode, test fraction {TEST_FRACTION:g}; median of {cfg.repeats} "
        f"repetitions end to end (analyst), scikit-learn on the pooled "
        f"{run.setup['train_rows']:,} complete-case training rows in one process "
        f"({run.sklearn})"
    )
    print(timing_table(rows))
    before, after = run.setup["load_average_before_jobs"], run.setup["load_average_after_jobs"]
    print(
        f"load average (1 min) before / after the jobs: {before[0]:.2f} / {after[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    print("\nlogreg: where the MPC time goes (analyst's clock at each Newton step's progress note)")
    print(breakdown_table(rows))
    for backend, check in checks.items():
        print(f"\nlogreg: {backend} model (first job) against scikit-learn's")
        print(accuracy_table(check))
    if any(check["accuracy"]["mpc"] is None for check in checks.values()):
        print(
            f"(accuracy and the held-out count are not released when a confusion cell is "
            f"below the small-cell threshold, {h.MIN_CELL_COUNT}: docs/models.md)"
        )
    print()
    print(coefficient_table(checks))
    goal = [
        {
            "backend": f["backend"],
            "ratio": f["ratio"],
            "goal_ratio": GOAL_RATIO,
            "goal_met": f["ratio"] <= GOAL_RATIO,
        }
        for f in rows
    ]
    met = all(g["goal_met"] for g in goal)
    print(
        f"\ngoal (MPC median <= {GOAL_RATIO:g} x scikit-learn fit median at {cfg.patients:,} "
        f"per party): {'met' if met else 'NOT met'} "
        + ", ".join(
            f"{f['backend']} {f['ratio']:.2f} (against fit+predict {f['ratio_fit_predict']:.2f})"
            for f in rows
        )
    )
    if cfg.patients != PATIENTS:
        print(f"(the issue's goal is stated for {PATIENTS:,} patients per party)")
    print(
        "full-MPC mode (features and outcomes secret-shared, the whole fit inside MPC, "
        "crypten only): timed by `bench.py logreg-full`"
    )
    problems = [p for check in checks.values() for p in check["problems"]]
    figures = {
        "benchmark": "logreg",
        "quick": cfg.quick,
        "parties": PARTIES,
        "patients_per_party": cfg.patients,
        "features": list(FEATURES),
        "outcome": OUTCOME,
        "params": cfg.params,
        "backends": list(cfg.backends),
        "repeats": cfg.repeats,
        "warmup": cfg.warmup,
        "seed": cfg.seed,
        "sklearn": run.sklearn,
        "results": rows,
        "comparison": {
            backend: {k: v for k, v in check.items() if k != "problems"}
            for backend, check in checks.items()
        },
        "setup": run.setup,
        "goal": goal,
        "goal_met": met,
        "full_mode": "bench.py logreg-full",
    }
    return h.finish_figures(figures, problems)


# --- command line ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    h.add_quick_option(parser, f"{QUICK_PATIENTS:,} patients per party, 1 repeat, no warm-up")
    parser.add_argument("--patients", type=int, help=f"patients per party (default {PATIENTS:,})")
    parser.add_argument(
        "--backends",
        type=_backend_list,
        default=BACKENDS,
        help=f"MPC backends, one table row each (default {','.join(BACKENDS)})",
    )
    parser.add_argument("--repeats", type=int, help="timed repetitions (default 3)")
    parser.add_argument("--warmup", type=int, help="warm-up jobs (default 1; --quick: 0)")
    h.add_data_options(parser)


def config(args: argparse.Namespace) -> Config:
    quick = bool(args.quick)
    cfg = Config(
        patients=args.patients or (QUICK_PATIENTS if quick else PATIENTS),
        backends=tuple(args.backends),
        repeats=args.repeats or (1 if quick else 3),
        warmup=max(0, args.warmup if args.warmup is not None else (0 if quick else 1)),
        seed=args.seed,
        data_root=args.data_dir.resolve(),
        quick=quick,
    )
    if cfg.repeats < 1:
        raise SystemExit("--repeats must be positive")
    if cfg.patients < 100:
        raise SystemExit("--patients must be at least 100")
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
    return print_report(cfg, measure(cfg))
