"""The plaintext references of the logistic regression benchmarks: scikit-learn's fit on
the pooled rows, its evaluation on the held-out rows (AUC binned as the MPC evaluation
bins it, confusion at 0.5), a model's check against it, and the tables that compare them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchsuite.logreg_data import FEATURES_AND_INTERCEPT, Pooled

COEFFICIENT_LIMIT = 1e-3
AUC_LIMIT = 0.005
AUC_BINS = 100
"""As smpc_ehr/analyses/common/evaluation.py bins the scores for the AUC."""


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


@dataclass(frozen=True)
class Scaling:
    """The pooled training means and standard deviations (plaintext: the baseline's help)."""

    means: np.ndarray
    sds: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> Scaling:
        return cls(x.mean(axis=0), x.std(axis=0))

    def design(self, x: np.ndarray) -> np.ndarray:
        """[1, (x - mean) / sd]: the baseline's feature matrix."""
        return np.column_stack([np.ones(len(x)), (x - self.means) / self.sds])


def float64_descent(
    features: np.ndarray, labels: np.ndarray, steps: int, learning_rate: float
) -> np.ndarray:
    """The baseline's steps in float64 with the exact sigmoid (not under MPC)."""
    w = np.zeros(features.shape[1])
    for _ in range(steps):
        fitted = 1.0 / (1.0 + np.exp(-(features @ w)))
        w -= learning_rate * (features.T @ (fitted - labels)) / len(labels)
    return w


@dataclass(frozen=True)
class Scored:
    """A model's evaluation on the pooled held-out rows (plaintext)."""

    accuracy: float
    auc: float
    auc_binned: float
    confusion: list[list[int]]

    @classmethod
    def of(cls, logits: np.ndarray, y: np.ndarray) -> Scored:
        from sklearn.metrics import roc_auc_score

        scores = 1.0 / (1.0 + np.exp(-logits))
        return cls(
            float(np.mean((scores >= 0.5) == (y == 1))),
            float(roc_auc_score(y, scores)),
            binned_auc(scores, y),
            confusion(scores, y),
        )


def score_weights(
    weights: Sequence[float] | np.ndarray, scaling: Scaling, pooled: Pooled
) -> Scored:
    return Scored.of(scaling.design(pooled.x_test) @ np.asarray(weights), pooled.y_test)
