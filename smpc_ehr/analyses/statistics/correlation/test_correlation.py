"""The correlation matrix over real federations (3 and 5 parties, mutual TLS) on both backends,
against numpy/scipy on the pooled plaintext files (tests/_stats_truth.py); tolerances
and the job cache in tests/_stats_jobs.py. The same checks run on the in-process
federation (tests/_inprocess.py), the fast tier."""

from __future__ import annotations

import numpy as np

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


# ------------------------------------------------------------------ in process (fast tier)


def test_correlation_in_process(inprocess_combo: InProcessCombo) -> None:
    test_correlation(inprocess_combo)
