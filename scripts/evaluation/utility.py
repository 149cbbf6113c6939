"""Privacy-utility curves: what differential privacy costs in accuracy, per epsilon.

Two releases, each at epsilon in {0.1, 0.3, 1, 3, 10} (delta 1e-6, MPyC's calibration:
t = 1 colluder of 3 hospitals), each point the mean of repeated runs (fresh noise each
run) with its 95% Student-t interval, and the exact MPC run (no epsilon) as the
epsilon = infinity reference line:
- the AUC of the logistic regression model (bmi, sbp, hba1c, ldl -> readmit_30d) on the
  held-out federation's patients (same generator, another seed);
- the relative error |noisy - exact| / exact of a count (patients with hypertension,
  I10), a suppressed noisy count counting as 100 %.
The runs use the in-process federation (privacy_data.py says why it releases what a real
MPyC federation releases). The noise has no seed (each party's sampler reads the
operating system's CSPRNG, by design): the data's seeds are fixed, the noise differs
between reports within the stated intervals.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evaluation.confidence import mean_interval
from evaluation.privacy_data import (
    Federations,
    coefficients,
    federations,
    in_memory_scratch,
    logistic_params,
    logistic_rows,
    real_check,
    template,
)
from evaluation.section import Context, Figure, Section, Size, Table

TITLE = "Privacy-utility curves"
COUNT_CODE = "I10"


@dataclass(frozen=True)
class Plan:
    """How much each size runs."""

    patients: int
    epsilons: tuple[float, ...]
    repeats: int
    real_check: bool = False
    """Also compare one exact and one noisy count with a real MPyC federation's."""


PLANS: dict[Size, Plan] = {
    "tiny": Plan(150, (0.1, 10.0), 2),
    "quick": Plan(1000, (0.1, 1.0, 10.0), 10),
    "full": Plan(5000, (0.1, 0.3, 1.0, 3.0, 10.0), 30, real_check=True),
}


EXACT_RUNS = 1
"""The exact MPC run (the epsilon = infinity line) is deterministic: one run."""


@dataclass
class Curve:
    """One measure against epsilon: per epsilon the runs' values, and the exact run's."""

    measure: str
    unit: str
    exact: float
    values: dict[float, list[float]]
    failed: dict[float, int]
    floor: float = -math.inf
    """The measure's least possible value: the t-interval is cut there."""

    def points(self) -> list[dict[str, Any]]:
        rows = []
        for epsilon, runs in self.values.items():
            mean, low, high = mean_interval(runs) if runs else (math.nan,) * 3
            low = max(low, self.floor)
            rows.append(
                {
                    "epsilon": epsilon,
                    "mean": mean,
                    "low": low,
                    "high": high,
                    "runs": len(runs),
                    "failed": self.failed.get(epsilon, 0),
                }
            )
        return rows


def auc_curve(feds: Federations, plan: Plan) -> Curve:
    """The logistic model's held-out AUC, exact and per epsilon."""
    from sklearn.metrics import roc_auc_score

    from smpc_ehr.testing.federation import JobFailed

    fed = feds.federation()
    x, y = logistic_rows(feds.holdout)

    def auc(epsilon: float | None) -> float:
        result = fed.run(template("logistic_regression.toml"), logistic_params(epsilon)).result
        beta = coefficients(result)
        return float(roc_auc_score(y, x @ beta[1:]))

    values: dict[float, list[float]] = {}
    failed: dict[float, int] = {}
    for epsilon in plan.epsilons:
        values[epsilon] = []
        for _ in range(plan.repeats):
            try:
                values[epsilon].append(auc(epsilon))
            except JobFailed:  # no model released: the analyst is left with chance
                failed[epsilon] = failed.get(epsilon, 0) + 1
                values[epsilon].append(0.5)
    return Curve("held-out AUC", "", auc(None), values, failed)


def count_curve(feds: Federations, plan: Plan) -> tuple[Curve, int, dict[float, float]]:
    """The count's relative error per epsilon (exact: 0), the exact count, and the noise
    sd each run stated (for the predicted mean error sd * sqrt(2/pi) / exact)."""
    fed = feds.federation()
    count = template("rare_disease_count.toml")
    exact = fed.run(count, {"codes": COUNT_CODE}).result["count"]
    if not exact:
        raise RuntimeError(f"the exact count of {COUNT_CODE} is suppressed: data too small")
    values: dict[float, list[float]] = {}
    sds: dict[float, float] = {}
    for epsilon in plan.epsilons:
        values[epsilon] = []
        for _ in range(plan.repeats):
            result = fed.run(count, {"codes": COUNT_CODE, "epsilon": repr(epsilon)}).result
            sds[epsilon] = float(result["dp"]["noise_sd"])
            noisy = result["count"]
            values[epsilon].append(1.0 if noisy is None else abs(noisy - exact) / exact)
    return Curve(f"relative error of the count {COUNT_CODE}", "%", 0.0, values, {}, 0.0), exact, sds


def plot(
    path: Any,
    curve: Curve,
    ylabel: str,
    title: str,
    scale: float = 1.0,
    extra: Callable[[Any], None] | None = None,
) -> None:
    """Mean per epsilon with its 95% band, log x, the exact run as a horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [p for p in curve.points() if p["runs"]]
    eps = [p["epsilon"] for p in points]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    ax.fill_between(
        eps,
        [scale * p["low"] for p in points],
        [scale * p["high"] for p in points],
        alpha=0.25,
        color="tab:blue",
        label="95% confidence band (t)",
    )
    runs = points[0]["runs"] if points else 0
    ax.plot(
        eps,
        [scale * p["mean"] for p in points],
        "o-",
        color="tab:blue",
        label=f"DP, mean of {runs} runs",
    )
    ax.axhline(scale * curve.exact, color="black", ls="--", label="exact MPC (epsilon = infinity)")
    if extra is not None:
        extra(ax)
    ax.set_xscale("log")
    ax.set_xticks(eps, [f"{e:g}" for e in eps])
    ax.set_xlabel("epsilon per release (delta = 1e-6), log scale")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def table(curve: Curve, scale: float, digits: int, caption: str, note: str) -> Table:
    rows: list[list[Any]] = [
        [
            f"{p['epsilon']:g}",
            round(scale * p["mean"], digits),
            f"[{scale * p['low']:.{digits}f}, {scale * p['high']:.{digits}f}]",
            p["runs"],
            p["failed"],
        ]
        for p in curve.points()
    ]
    rows.append(
        [
            "infinity (exact MPC)",
            round(scale * curve.exact, digits),
            "none (no noise)",
            EXACT_RUNS,
            0,
        ]
    )
    unit = f" ({curve.unit})" if curve.unit else ""
    headers = ["epsilon", f"mean{unit}", "95% CI (t)", "runs", "refused runs"]
    return Table(caption, headers, rows, note)


def run(context: Context) -> Section:
    plan = PLANS[context.size]
    context.out.mkdir(parents=True, exist_ok=True)
    start, cpu = time.perf_counter(), time.process_time()
    with in_memory_scratch(), federations(plan.patients, context.seed) as feds:
        auc = auc_curve(feds, plan)
        count, exact_count, sds = count_curve(feds, plan)
        held_out = len(logistic_rows(feds.holdout)[1])
        check = real_check(feds.members, {"codes": COUNT_CODE}, 1.0) if plan.real_check else None
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu

    def predicted(ax: Any) -> None:
        eps = sorted(sds)
        ax.plot(
            eps,
            [100 * sds[e] * math.sqrt(2 / math.pi) / exact_count for e in eps],
            ":",
            color="tab:red",
            label="predicted: stated noise sd x sqrt(2/pi) / count",
        )

    plot(
        context.out / "utility_auc.png",
        auc,
        "AUC on held-out patients (0.5 = chance)",
        "Logistic regression: AUC against epsilon",
    )
    plot(
        context.out / "utility_count.png",
        count,
        "relative error (%)",
        f"Count of patients with {COUNT_CODE} (exact {exact_count}): error against epsilon",
        scale=100.0,
        extra=predicted,
    )
    n = 3 * plan.patients
    jobs = len(plan.epsilons) * plan.repeats * 2 + 2
    text = (
        f"Differential privacy at each epsilon against the exact MPC result, on 3 hospitals "
        f"of {plan.patients:,} synthetic patients each (seed {context.seed}; held-out "
        f"patients: seed {context.seed + 1}), {plan.repeats} runs per point. The runs use "
        "the in-process federation: the real coordinator and party code (policy, ledger, "
        "suppression, every party's exact noise sampler) with the secure arithmetic on a "
        "plaintext reference of MPyC's precision. A DP release is the exact result plus the "
        "parties' noise shares, drawn from the plan of (sensitivity, rho, n, t), and the "
        "backend contributes only t (1 of 3 for MPyC), so the released values are "
        "distributed as a real MPyC federation's, in a fraction of the time. "
        f"{jobs} jobs in {seconds:.1f} s ({cpu:.1f} s CPU in this process). The noise is "
        "unseeded (the parties' CSPRNG, by design): a new report gives other values "
        "within the intervals."
    )
    if check is not None:
        verdict = "agree" if check["agrees"] else "DO NOT agree"
        text += (
            f" Check on a real MPyC federation (processes, mutual TLS): exact count "
            f"{check['exact']} (in-process {check['in_process_exact']}), noise sd "
            f"{check['noise_sd']:.3f} (in-process {check['in_process_noise_sd']:.3f}), a "
            f"noisy count at epsilon 1 of {check['noisy']}: they {verdict}."
        )
    auc_table = table(
        auc,
        1.0,
        4,
        "Logistic regression (bmi, sbp, hba1c, ldl -> readmit_30d): held-out AUC",
        f"AUC of the released model on the {held_out:,} complete-case patients of another "
        f"federation from the same generator; trained on {n:,} patients "
        "(complete cases). Refused runs (the noisy number of complete cases below the "
        "threshold, at small epsilon and small data) count as AUC 0.5: no model, chance.",
    )
    count_table = table(
        count,
        100.0,
        3,
        f"Count of patients with {COUNT_CODE}: relative error",
        f"|noisy - exact| / exact in %, exact = {exact_count}; a suppressed noisy count "
        "counts as 100 %.",
    )
    raw = {
        "patients_per_hospital": plan.patients,
        "seed": context.seed,
        "repeats": plan.repeats,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "real_check": check,
        "auc": {
            "exact": auc.exact,
            "exact_runs": EXACT_RUNS,
            "exact_refused": 0,
            "points": auc.points(),
            "runs": {str(k): v for k, v in auc.values.items()},
        },
        "count": {
            "code": COUNT_CODE,
            "exact": exact_count,
            "exact_runs": EXACT_RUNS,
            "exact_refused": 0,
            "noise_sd": {str(k): v for k, v in sds.items()},
            "points": count.points(),
            "runs": {str(k): v for k, v in count.values.items()},
        },
    }
    return Section(
        TITLE,
        text,
        [auc_table, count_table],
        [
            Figure("utility_auc.png", "Held-out AUC of the DP logistic model against epsilon"),
            Figure("utility_count.png", "Relative error of a DP count against epsilon"),
        ],
        raw,
    )
