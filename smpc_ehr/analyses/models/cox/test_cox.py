"""Cox regression end to end: on the in-process federation (fast tier) and on a real
3-party federation on both backends, against statsmodels' PHReg (Breslow's ties) on
the pooled plaintext files with the same grid times (tests/_km_truth.py), against
lifelines (Efron's ties, looser), stratified by hospital against PHReg with strata,
Harrell's C against a direct computation on the pooled files, and a refusal with too
few events.

Tolerances: the fit's error comes from the ratios S1/S0 and S2/S0 formed inside MPC,
each within a few units of the backend's last place (2^-32 MPyC and the reference,
2^-16 CrypTen; smpc_ehr/analyses/models/cox/secure.py), summed over the D events and
divided by D: the score per event is off by a few units, and the standardised
coefficients by that over the information per event's smallest eigenvalue (about 0.15
here, for the 0/1 feature); Newton stops once its step is below 64 units. So
coefficients agree within 2^10 units of the last place (2.4e-7 for MPyC, 0.016 for
CrypTen, in standardised units; divided by each feature's sd in the original units),
the standard errors relatively within the same and the p-values within 10 times that.
Measured on these data: coefficients within 1e-10 (MPyC) and 1e-5 (CrypTen)
standardised, standard errors within 1e-9 and 1.2e-4 relative.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index
from statsmodels.duration.hazard_regression import PHReg

from smpc_ehr.analyses.models.cox import concordance
from smpc_ehr.analyses.models.cox.test_cox_unit import RAW
from smpc_ehr.client import Client
from smpc_ehr.local.federation import LocalFederation
from smpc_ehr.testing.federation import InProcessFederation, JobFailed
from tests._km_truth import pooled_times
from tests._render import render
from tests._stats_jobs import template

COX = template("cox_regression")
PARAMS = RAW
NAMES = ["hba1c", "bmi", "condition=1"]
UNITS = {"mpyc": 2.0**-32, "crypten": 2.0**-16}


def pooled(data: Path) -> pd.DataFrame:
    """The complete cases of every hospital: grid time and event (cut at the horizon
    30, which no time reaches here), the features and the hospital."""
    frame = pooled_times(data, ("E11", "I50"), "year")
    folders = sorted(p for p in data.iterdir() if p.is_dir())
    patients = pd.concat([pd.read_csv(p / "patients.csv") for p in folders])
    conditions = pd.concat([pd.read_csv(p / "conditions.csv", dtype=str) for p in folders])
    heart = set(conditions[conditions["code"].str.startswith("I50")]["patient_id"])
    frame = frame.merge(patients[["patient_id", "hba1c", "bmi"]], on="patient_id")
    frame["condition=1"] = frame["patient_id"].isin(heart).astype(float)
    frame = frame.dropna(subset=["hba1c", "bmi"]).reset_index(drop=True)
    frame["status"] = (frame["event"] & (frame["time"] <= 30)).astype(int)
    frame["time"] = np.minimum(frame["time"], 30)
    cohort = pooled_times(data, ("E11", "I50"), "year").attrs["cohort"]
    frame.attrs["left_out"] = sum(c[None] for c in cohort.values()) - len(frame)
    return frame


def phreg(frame: pd.DataFrame, strata: bool = False) -> Any:
    groups = frame["hospital"].to_numpy() if strata else None
    exog = frame[NAMES].to_numpy()
    model = PHReg(
        frame["time"].to_numpy(float),
        exog,
        frame["status"].to_numpy(),
        ties="breslow",
        strata=groups,
    )
    return model.fit()


def harrell(frame: pd.DataFrame, eta: np.ndarray, strata: bool) -> tuple[float, float, float]:
    """Harrell's C of the linear predictors `eta`, exactly (pairs comparable when the
    first has the event and the second is followed longer, or censored at the same
    grid time), with the analysis's bins (pairs in one bin tied), and the share of
    comparable pairs within one bin; with strata, pairs within a hospital only."""
    time, status = frame["time"].to_numpy(), frame["status"].to_numpy().astype(bool)
    hospital = frame["hospital"].to_numpy()
    inner = round(2 * concordance.LIMIT / concordance.WIDTH)
    binned = np.clip(np.floor((eta + concordance.LIMIT) / concordance.WIDTH), -1, inner)
    sums = np.zeros(4)  # concordant + tied / 2 (exact, binned), pairs, pairs in one bin
    for i in np.flatnonzero(status):
        later = (time > time[i]) | ((time == time[i]) & ~status)
        if strata:
            later &= hospital == hospital[i]
        same = binned[later] == binned[i]
        sums += [
            np.sum(eta[later] < eta[i]) + 0.5 * np.sum(eta[later] == eta[i]),
            np.sum(binned[later] < binned[i]) + 0.5 * np.sum(same),
            np.count_nonzero(later),
            np.count_nonzero(same),
        ]
    return sums[0] / sums[2], sums[1] / sums[2], sums[3] / sums[2]


def check_concordance(
    result: dict[str, Any], frame: pd.DataFrame, strata: bool, unit: float = UNITS["mpyc"]
) -> None:
    """C as the test computes it from the same bins (within 64 units of the last place:
    the pair counts' products are whole numbers, the ratio a few roundings), within the
    binning's stated approximation of the exact Harrell's C, and near lifelines'
    concordance index."""
    coefficients = np.array([result["coefficients"][n] for n in NAMES])
    x = frame[NAMES].to_numpy()
    eta = (x - x.mean(axis=0)) @ coefficients  # the standardised linear predictor
    exact, binned, same = harrell(frame, eta, strata)
    assert result["concordance"] == pytest.approx(binned, abs=64 * unit)
    assert abs(result["concordance"] - exact) <= same / 2 + 1e-9
    if not strata:  # lifelines counts pairs tied in time a little differently
        lifelines_c = concordance_index(frame["time"], -eta, frame["status"])
        assert abs(result["concordance"] - lifelines_c) < 0.01


def check_against_phreg(
    result: dict[str, Any], frame: pd.DataFrame, unit: float, strata: bool = False
) -> None:
    truth = phreg(frame, strata)
    sds = frame[NAMES].std(ddof=0).to_numpy()
    tolerance = 2.0**10 * unit
    assert result["n"] == len(frame) and result["events"] == int(frame["status"].sum())
    coefficients = np.array([result["coefficients"][n] for n in NAMES])
    errors = np.array([result["std_errors"][n] for n in NAMES])
    assert np.all(np.abs(coefficients - truth.params) <= tolerance / sds), (
        coefficients,
        truth.params,
    )
    assert np.all(np.abs(errors / truth.bse - 1) <= tolerance), (errors, truth.bse)
    p = np.array([result["p_values"][n] for n in NAMES])
    assert np.all(np.abs(p - truth.pvalues) <= 10 * tolerance)


@pytest.fixture(scope="module")
def truth(data3: Path) -> pd.DataFrame:
    return pooled(data3)


def test_cox_in_process_against_phreg_and_lifelines(
    inprocess: InProcessFederation, truth: pd.DataFrame
) -> None:
    result = inprocess.run(COX, PARAMS).result
    check_against_phreg(result, truth, UNITS["mpyc"])
    assert result["left_out"] == truth.attrs["left_out"] > 11  # no time, or a missing feature
    hba1c = result["hazard_ratios"]["hba1c"]
    assert result["ci95"]["hba1c"][0] > 1.1, "the planted hazard ratio of hba1c (1.3) shows"
    assert 1.1 < hba1c < 1.6
    # lifelines has Efron's ties only: on this grid of years, 807 events share 26 time
    # points, and Efron's correction for ties moves the estimates by a fraction of a
    # standard error (measured: up to 0.22 SE) and the standard errors by under 1%.
    frame = truth[[*NAMES, "time", "status"]]
    efron = CoxPHFitter().fit(frame, "time", "status")
    errors = np.array([result["std_errors"][n] for n in NAMES])
    coefficients = np.array([result["coefficients"][n] for n in NAMES])
    assert np.all(np.abs(coefficients - efron.params_.to_numpy()) < 0.5 * errors)
    assert np.all(np.abs(errors / efron.standard_errors_.to_numpy() - 1) < 0.02)
    check_concordance(result, truth, strata=False)
    text = render(result, "cox_regression")
    assert "hba1c" in text and "events = " in text and "reference levels: condition = 0" in text
    assert f"concordance: {result['concordance']:.4f}" in text


def test_cox_stratified_by_hospital_against_phreg_with_strata(
    inprocess: InProcessFederation, truth: pd.DataFrame
) -> None:
    result = inprocess.run(COX, {**PARAMS, "stratify": "hospital"}).result
    assert result["stratify"] == "hospital"
    check_against_phreg(result, truth, UNITS["mpyc"], strata=True)
    check_concordance(result, truth, strata=True)


def test_cox_refuses_too_few_events(inprocess: InProcessFederation) -> None:
    # Events within one day of the first diagnosis: far fewer than the threshold.
    few = {**PARAMS, "time_unit": "day", "horizon": "1"}
    with pytest.raises(JobFailed, match="too few patients"):
        inprocess.run(COX, few)


@pytest.mark.parametrize("backend", ["mpyc", "crypten"])
def test_cox_on_a_real_federation(fed3: LocalFederation, truth: pd.DataFrame, backend: str) -> None:
    with Client.from_state(fed3.state_dir) as client:
        job = client.run(COX, PARAMS, backend=backend)
    assert job.backend == backend
    check_against_phreg(job.result, truth, UNITS[backend])
    check_concordance(job.result, truth, False, UNITS[backend])
