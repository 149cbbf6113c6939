"""The accuracy tables of the logistic regression benchmarks: a model next to
scikit-learn's (N, iterations, coefficients, AUC, accuracy, confusion), and the
held-out evaluation of several models where suppressed confusion cells leave the
accuracy known only within bounds."""

from __future__ import annotations

import itertools
from typing import Any

from benchsuite.harness import MIN_CELL_COUNT
from benchsuite.logreg_data import FEATURES_AND_INTERCEPT
from benchsuite.models import AUC_LIMIT, COEFFICIENT_LIMIT
from benchsuite.report import table


def matrix(cells: Any) -> str:
    """A confusion matrix on one line, "-" for a suppressed cell or a missing matrix."""
    if cells is None:
        return "-"
    rows = (", ".join("-" if c is None else f"{c:,}" for c in row) for row in cells)
    return "[" + ", ".join(f"[{r}]" for r in rows) + "]"


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


def accuracy_bounds(cells: Any, n_test: int) -> list[float] | None:
    """The accuracy at 0.5 from a released confusion matrix [[tn, fp], [fn, tp]] whose
    suppressed cells (None: below the small-cell threshold, so 0 to MIN_CELL_COUNT - 1)
    are unknown: its least and greatest value over the counts those cells can hold that
    add up to `n_test` (the pooled held-out count: the same rows); exact if none is
    suppressed. None if no counts fit."""
    if cells is None:
        return None
    flat = [*cells[0], *cells[1]]
    unknown = [i for i, c in enumerate(flat) if c is None]
    left = n_test - sum(c for c in flat if c is not None)
    values = []
    for counts in itertools.product(range(MIN_CELL_COUNT), repeat=len(unknown)):
        if sum(counts) == left:
            filled = dict(zip(unknown, counts, strict=True))
            tn, tp = (filled.get(i, flat[i]) for i in (0, 3))
            values.append((tn + tp) / n_test)
    return [min(values), max(values)] if values else None


def _signed(value: Any, reference: float | None, width: int) -> str:
    """value - reference, signed; for bounds [lo, hi] both ends."""
    if value is None or reference is None:
        return "-".rjust(width)
    if isinstance(value, list):
        if value[0] != value[1]:
            return f"{value[0] - reference:+.4f}..{value[1] - reference:+.4f}".rjust(width)
        value = value[0]
    return f"{value - reference:+.4f}".rjust(width)


def bounds_text(value: Any, width: int) -> str:
    """A figure with 4 decimals; for bounds [lo, hi] both ends."""
    if isinstance(value, list) and value[0] != value[1]:
        return f"{value[0]:.4f}..{value[1]:.4f}".rjust(width)
    value = value[0] if isinstance(value, list) else value
    return ("-" if value is None else f"{value:.4f}").rjust(width)


def held_out_table(models: dict[str, Any]) -> str:
    headers = ["model (held-out rows)", "accuracy at 0.5", "- pooled", "AUC"]
    headers += ["- pooled exact", "- pooled binned"]
    pooled = models["pooled"]

    def row(name: str, accuracy: Any, auc: float | None, of_pooled: bool) -> list[object]:
        w = [len(h) for h in headers]
        return [
            name,
            bounds_text(accuracy, w[1]),
            "-".rjust(w[2]) if of_pooled else _signed(accuracy, pooled["accuracy"], w[2]),
            bounds_text(auc, w[3]),
            _signed(auc, pooled["auc"], w[4]),
            "-".rjust(w[5]) if of_pooled else _signed(auc, pooled["auc_binned"], w[5]),
        ]

    mpc, baseline, reference = models["mpc"], models["baseline"] or {}, models["float64_descent"]
    return table(
        headers,
        [
            row("pooled scikit-learn (exact AUC)", pooled["accuracy"], pooled["auc"], True),
            row("pooled scikit-learn, AUC in bins of 0.01", None, pooled["auc_binned"], True),
            row("MPC full mode (AUC in bins of 0.01)", mpc["accuracy_bounds"], mpc["auc"], False),
            row(
                "CrypTen own, 10 GD steps (baseline)",
                baseline.get("accuracy"),
                baseline.get("auc"),
                False,
            ),
            row("float64, same 10 GD steps", reference["accuracy"], reference["auc"], False),
        ],
    )


def accuracy_goal(bounds: list[Any], pooled: float, limit: float) -> dict[str, Any]:
    """Every job's accuracy within `limit` of the pooled one, judged on the accuracy's
    bounds where cells were suppressed: met if all of them are within, NOT met if none
    is, else None (undecided)."""
    worst = None if None in bounds else max(abs(v - pooled) for b in bounds for v in b)
    nearest = None if None in bounds else max(_distance(b, pooled) for b in bounds)
    met = None if worst is None else (True if worst <= limit else None)
    if nearest is not None and nearest > limit:
        met = False
    return {
        "accuracy_limit": limit,
        "accuracy_exact": all(b is not None and b[0] == b[1] for b in bounds),
        "accuracy_worst_abs_difference": worst,
        "accuracy_met": met,
    }


def _distance(bounds: list[float], value: float) -> float:
    """How far `value` is from the interval `bounds` (0 inside it)."""
    return max(bounds[0] - value, value - bounds[1], 0.0)


def confusion_notes(models: dict[str, Any]) -> str:
    """The held-out confusion matrices of the pooled, MPC and baseline models, and what
    a suppressed cell or a one-class pooled model means for the accuracy."""
    mpc, baseline = models["mpc"], models["baseline"]
    lines = [
        f"confusion [[tn, fp], [fn, tp]] at 0.5: pooled {matrix(models['pooled']['confusion'])}",
        f"  MPC {matrix(mpc['confusion'])}",
        f"  baseline {matrix(None if baseline is None else baseline['confusion'])}",
    ]
    if any(a is None for a in mpc["accuracy_every_job"]):
        lines.append(
            f"(MPC accuracy: not released when a confusion cell is below the small-cell "
            f"threshold, {MIN_CELL_COUNT}; shown as its bounds lo..hi from the released cells, "
            f"the suppressed ones between 0 and {MIN_CELL_COUNT - 1}, and the pooled held-out "
            "count)"
        )
    (tn, fp), (fn, tp) = models["pooled"]["confusion"]
    if min(tn + fn, fp + tp) == 0:
        lines.append(
            "(the pooled model predicts the same class for every held-out patient at 0.5: "
            "its accuracy is that class's share, which any model predicting the same class "
            "reaches; the AUC tells the models apart)"
        )
    return "\n".join(lines)
