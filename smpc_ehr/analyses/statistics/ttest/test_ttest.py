"""Welch's t-test over real federations (3 and 5 parties, mutual TLS) on both backends,
against numpy/scipy on the pooled plaintext files (tests/_stats_truth.py); tolerances
and the job cache in tests/_stats_jobs.py. The same checks run on the in-process
federation (tests/_inprocess.py), the fast tier."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from smpc_ehr.client import Client, JobFailed
from smpc_ehr.local.federation import LocalFederation
from tests import _stats_truth as truth
from tests._inprocess import InProcessCombo
from tests._stats_jobs import (
    SAME,
    Combo,
    check_moments,
    mean_tol,
    rel_close,
    template,
    var_tol,
)


def test_welch_ttest(combo: Combo) -> None:
    result = combo.run("ttest")
    frame = truth.cohort_frame(combo.data)
    t = truth.summary(frame, ["hba1c"], "readmit_30d")
    m0, m1 = t["0"]["hba1c"], t["1"]["hba1c"]
    e = combo.eps
    assert result["levels"] == ["0", "1"] and result["estimate_is"] == "mean(1) - mean(0)"
    g0, g1 = result["groups"]["0"], result["groups"]["1"]
    check_moments(g0, m0, e, "group 0")
    check_moments(g1, m1, e, "group 1")
    assert result["test_refused"] is None

    # Consistency: the test is scipy's from the released group statistics.
    mine = truth.welch_from_stats(
        g0["n"], g0["mean"], g0["variance"], g1["n"], g1["mean"], g1["variance"]
    )
    for key in ("statistic", "df", "p_value", "estimate"):
        assert rel_close(result[key], mine[key], SAME), (key, result[key], mine[key])
    for got, want in zip(result["ci95"], mine["ci95"], strict=True):
        assert rel_close(got, want, SAME), (result["ci95"], mine["ci95"])

    # Against scipy.stats.ttest_ind(pooled values, equal_var=False), with the stated
    # precision of the group means and variances carried through Welch's formulas
    # (bounds, not fitted constants; for CrypTen they are about 1e-2 relative, for
    # MPyC about 1e-7; the measured errors are far smaller).
    pooled = truth.welch_pooled(m0["values"], m1["values"])
    tol_d = mean_tol(e, m0) + mean_tol(e, m1)
    assert abs(result["estimate"] - pooled["estimate"]) <= tol_d
    se_true = math.sqrt(m0["variance"] / m0["n"] + m1["variance"] / m1["n"])
    se_rel = mine["se"]
    tol_se = (var_tol(e, m0) / m0["n"] + var_tol(e, m1) / m1["n"]) / (se_true + se_rel)
    tol_t = (tol_d + abs(pooled["statistic"]) * tol_se) / se_rel
    assert abs(result["statistic"] - pooled["statistic"]) <= tol_t
    # df: each v_i / n_i within relative r, so df within [(1-r)^2/(1+r)^2, (1+r)^2/(1-r)^2].
    r = max(var_tol(e, m0) / m0["variance"], var_tol(e, m1) / m1["variance"])
    df_lo, df_hi = pooled["df"] * ((1 - r) / (1 + r)) ** 2, pooled["df"] * ((1 + r) / (1 - r)) ** 2
    assert df_lo <= result["df"] <= df_hi
    q_rel, q_true = stats.t.ppf(0.975, result["df"]), stats.t.ppf(0.975, pooled["df"])
    tol_ci = tol_d + q_rel * tol_se + abs(q_rel - q_true) * se_true
    for got, want in zip(result["ci95"], pooled["ci95"], strict=True):
        assert abs(got - want) <= tol_ci
    # p = 2 sf(|t|, df) over the box of |t| and df allowed above.
    abs_t = abs(pooled["statistic"])
    corners = [
        2 * stats.t.sf(tt, dd)
        for tt in (max(abs_t - tol_t, 0.0), abs_t + tol_t)
        for dd in (df_lo, df_hi)
    ]
    assert min(corners) * (1 - SAME) <= result["p_value"] <= max(corners) * (1 + SAME)
    if combo.backend == "mpyc":
        for key in ("statistic", "df", "estimate"):
            assert rel_close(result[key], pooled[key], 1e-6), (key, result[key], pooled[key])
        for got, want in zip(result["ci95"], pooled["ci95"], strict=True):
            assert rel_close(got, want, 1e-6)


def test_ttest_with_more_than_two_groups_is_refused(fed3: LocalFederation) -> None:
    with Client.from_state(fed3.state_dir) as client, pytest.raises(JobFailed) as err:
        client.run(template("ttest"), {"variable": "bmi", "group": "age_band"})
    message = str(err.value)
    assert "'age_band'" in message and "10 levels" in message, message


# ------------------------------------------------------------------ in process (fast tier)


def test_welch_ttest_in_process(inprocess_combo: InProcessCombo) -> None:
    test_welch_ttest(inprocess_combo)
