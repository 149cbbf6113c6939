"""The correlation matrix over real federations (3 and 5 parties, mutual TLS) on both backends,
against numpy/scipy on the pooled plaintext files (tests/_stats_truth.py); tolerances
and the job cache in tests/_stats_jobs.py. The same checks run on the in-process
federation (tests/_inprocess.py), the fast tier."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tests import _stats_truth as truth
from tests._inprocess import InProcessCombo
from tests._stats_jobs import (
    IDENTITY,
    JOBS,
    THRESHOLD,
    Combo,
)


def test_correlation(combo: Combo) -> None:
    params = JOBS["correlation"][1]
    result = combo.run("correlation")
    variables = params["variables"].split(",")
    t = truth.correlation(truth.cohort_frame(combo.data), variables)
    e = combo.eps
    assert result["variables"] == variables and result["suppressed"] is False
    assert result["n"] == t["n"]
    assert result["missing"] == {
        v: (t["missing"][v] if t["missing"][v] >= THRESHOLD else None) for v in variables
    }
    assert all(t["missing"][v] >= THRESHOLD for v in variables)  # all exercised as released
    scale = np.abs(t["means"]) + t["pop_sd"]
    means = np.asarray(result["means"])
    assert np.all(np.abs(means - t["means"]) <= e * scale), (means, t["means"])
    cov = np.asarray(result["covariance"], dtype=float)
    tol_cov = e * np.outer(scale, scale) * t["n"] / (t["n"] - 1)
    assert np.all(np.abs(cov - t["covariance"]) <= tol_cov), np.abs(cov - t["covariance"])
    ratio = np.abs(t["means"]) / t["pop_sd"]
    tol_r = 2 * e * (1 + np.maximum.outer(ratio, ratio)) ** 2
    corr = np.asarray(result["matrix"], dtype=float)
    assert np.all(np.abs(corr - t["matrix"]) <= tol_r), np.abs(corr - t["matrix"])
    assert np.all(np.diag(corr) == 1.0)
    # The released matrix is the correlation of the released covariance.
    sd = np.sqrt(np.diag(cov))
    assert np.allclose(corr, cov / np.outer(sd, sd), rtol=IDENTITY, atol=0)
    check_inference(result, truth.cohort_frame(combo.data)[variables].dropna(), tol_r)


def check_inference(result: dict, rows: pd.DataFrame, tol_r: np.ndarray) -> None:
    """Each pair's 95% CI and p-value against scipy.stats.pearsonr on the pooled complete
    cases (CI by Fisher's z, p from t on n - 2 df), within what the released r's error
    (tol_r) moves them: the CI's ends by (1 - end^2) / (1 - r^2) times it, the p-value
    inside its values at r -/+ tol_r (it is monotone in |r|)."""
    n, names = len(rows), list(rows.columns)
    for i, a in enumerate(names):
        assert result["ci95"][i][i] is None and result["p_values"][i][i] is None
        for j in range(i + 1, len(names)):
            want = stats.pearsonr(rows[a], rows[names[j]])
            r, tol = float(want.statistic), float(tol_r[i, j])
            ends = np.array(want.confidence_interval(0.95))
            got = np.array(result["ci95"][i][j])
            assert result["ci95"][j][i] == result["ci95"][i][j]
            slope = (1 - ends**2) / (1 - (abs(r) + tol) ** 2)
            assert np.all(np.abs(got - ends) <= slope * tol + 1e-12), (got, ends)

            def p_at(rho: float) -> float:
                t = rho * np.sqrt((n - 2) / (1 - rho * rho))
                return float(2 * stats.t.sf(abs(t), n - 2))

            assert p_at(r) == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)
            bracket = sorted([p_at(abs(r) - tol), p_at(abs(r) + tol)])
            p = result["p_values"][i][j]
            assert bracket[0] * (1 - 1e-9) <= p <= bracket[1] * (1 + 1e-9), (p, bracket)


# ------------------------------------------------------------------ in process (fast tier)


def test_correlation_in_process(inprocess_combo: InProcessCombo) -> None:
    test_correlation(inprocess_combo)
