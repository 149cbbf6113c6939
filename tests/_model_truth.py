"""Plaintext truth for the models: a pooled penalised maximum-likelihood fit (numpy
Newton-Raphson on the pooled rows), the check of a released fit against it, and the
held-out rows as the parties draw them; independent of smpc_ehr."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats


def pooled_fit(frame: pd.DataFrame, outcome: str, features: list[str], l2: float) -> dict:
    """Penalised maximum likelihood on the pooled complete cases (intercept unpenalised)."""
    rows = frame[[outcome, *features]].dropna()
    x = np.column_stack([np.ones(len(rows)), rows[features].to_numpy(float)])
    y = rows[outcome].to_numpy(float)
    penalty = np.r_[0.0, np.full(len(features), l2)]
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-x @ beta))
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, x.T @ (y - p) - penalty * beta)
        beta += step
        if np.abs(step).max() < 1e-13:
            break
    errors = np.sqrt(np.diag(np.linalg.inv(hessian)))
    return {"n": len(rows), "beta": beta, "se": errors}


def check_against_pooled(result: dict, want: dict, features: list[str]) -> None:
    names = ["(intercept)", *features]
    got_beta = np.array([result["coefficients"][n] for n in names])
    got_se = np.array([result["std_errors"][n] for n in names])
    assert result["n"] == want["n"] and result["converged"] is True
    assert np.abs(got_beta - want["beta"]).max() <= 1e-3, got_beta - want["beta"]
    assert np.abs(got_se / want["se"] - 1).max() <= 0.01, got_se / want["se"]
    for name, b, s in zip(names, got_beta, got_se, strict=True):  # derived columns
        assert result["odds_ratios"][name] == pytest.approx(np.exp(b), rel=1e-12)
        lo, hi = result["ci95"][name]
        assert lo == pytest.approx(np.exp(b - 1.959963984540054 * s), rel=1e-12)
        assert hi == pytest.approx(np.exp(b + 1.959963984540054 * s), rel=1e-12)
        assert result["p_values"][name] == pytest.approx(
            2 * stats.norm.sf(abs(b / s)), rel=1e-9, abs=1e-300
        )


def pooled_test_rows(data: Path, seed: int, fraction: float) -> pd.DataFrame:
    """Every hospital's held-out rows, drawn as the parties draw them (numpy's generator
    from the seed, one uniform per patient in file order; all patients are the cohort)."""
    frames = []
    for folder in sorted(p for p in data.iterdir() if (p / "patients.csv").exists()):
        frame = pd.read_csv(folder / "patients.csv")
        frames.append(frame[np.random.default_rng(seed).random(len(frame)) < fraction])
    return pd.concat(frames)
