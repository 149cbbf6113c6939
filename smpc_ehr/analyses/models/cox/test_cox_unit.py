"""The Cox regression without a federation: the local risk-set sums (against a loop
over patients), Breslow's score and information (against statsmodels' PHReg at the
same coefficients), the range flag, the secure ratios and range check on the plaintext
reference ops (MPyC's and CrypTen's precision) against the float ones, and `finalize`,
render and tidy rows of a real finalised result."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from statsmodels.duration.hazard_regression import PHReg

from smpc_ehr.analyses.models.cox import ANALYSIS
from smpc_ehr.analyses.models.cox.local import (
    EVENT_FLOOR_BITS,
    CoxData,
    full_matrix,
    pairs,
    risk_sums,
    score_information,
    step_input,
    weight_shift,
)
from smpc_ehr.analyses.models.cox.secure import Layout, require_in_range
from smpc_ehr.analyses.models.cox.secure import score_information as score_information_mpc
from smpc_ehr.errors import JointRefusal
from smpc_ehr.securemath.test_division_unit import CRYPTEN_LIKE, Alone
from smpc_ehr.study.template import load_template
from smpc_ehr.testing.reference import REFERENCE_PRECISION, ReferenceOps
from tests._render import T, finalised, render

TEMPLATE = Path(__file__).resolve().parents[4] / "protocols" / "cox_regression.toml"
RAW = {
    "codes": "E11,I50",
    "time_unit": "year",
    "horizon": "30",
    "features": "hba1c,bmi",
    "categorical": "condition",
    "condition_codes": "I50",
}


def sample(rng: np.random.Generator, n: int = 60, k: int = 3) -> tuple[np.ndarray, ...]:
    """Features, integer times on a grid of 0..9 with many ties, and event flags."""
    z = rng.normal(size=(n, k))
    time = rng.integers(0, 10, n)
    event = rng.random(n) < 0.6
    return z, time, event


def test_risk_sums_are_the_sums_over_each_risk_set() -> None:
    rng = np.random.default_rng(1)
    z, time, event = sample(rng)
    w = np.exp(z @ np.array([0.3, -0.2, 0.1]))
    sums = risk_sums(z, w, time, event, 10)
    for j in range(10):
        at_risk = time >= j
        assert sums.s0[j] == pytest.approx(w[at_risk].sum())
        np.testing.assert_allclose(sums.s1[:, j], (w[at_risk, None] * z[at_risk]).sum(axis=0))
        outer = [(w[at_risk] * z[at_risk, a] * z[at_risk, b]).sum() for a, b in pairs(3)]
        np.testing.assert_allclose(sums.s2[:, j], outer)
        assert sums.events[j] == np.sum(event & (time == j))
    np.testing.assert_allclose(sums.event_sum, z[event].sum(axis=0))


def test_score_and_information_are_breslows() -> None:
    rng = np.random.default_rng(2)
    z, time, event = sample(rng, n=80)
    beta = np.array([0.4, -0.3, 0.2])
    model = PHReg(time.astype(float), z, event.astype(int), ties="breslow")
    u, info = score_information(risk_sums(z, np.exp(z @ beta), time, event, 10))
    np.testing.assert_allclose(u, model.score(beta), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(full_matrix(info, 3), -model.hessian(beta), rtol=1e-10)


def test_a_party_out_of_range_inputs_nothing_but_its_flag() -> None:
    rng = np.random.default_rng(3)
    z, time, event = sample(rng)
    cox = CoxData(z, time, event, 0)
    fine = step_input(cox, z, np.zeros(3), EVENT_FLOOR_BITS * np.log(2.0) + 1.0, 10)
    assert len(fine) == Layout(3, 10).size
    assert fine[-2] == 1.0 and 0 < fine[-1] < 1
    np.testing.assert_array_equal(fine[:10], np.ceil(fine[10:20]))
    low = step_input(cox, z, np.zeros(3), EVENT_FLOOR_BITS * np.log(2.0) - 1.0, 10)
    assert not low.any(), "an event weight below 2^6: zeros and flag 0"


def opened_values() -> dict[str, np.ndarray]:
    """What the fit opens for 3 features: standardised coefficients, the means and sds,
    the information's public scale and the inverse of the scaled information."""
    information = np.array([[0.9, 0.1, 0.05], [0.1, 0.7, 0.02], [0.05, 0.02, 0.2]])
    scale = 3 / 4 / 2.0**1 / 807
    return {
        "n": np.array([2042.0]),
        "events": np.array([807.0]),
        "iterations": np.array([4.0]),
        "beta": np.array([0.37, -0.07, 0.05]),
        "means": np.array([6.1, 27.0, 0.2]),
        "sds": np.array([1.2, 6.0, 0.4]),
        "information_scale": np.array([scale]),
        "inverse_information": np.linalg.inv(information * scale),
        "left_out_released": np.array([1.0]),
        "left_out": np.array([1234.0]),
        "concordance": np.array([0.61234]),
    }


def released_result() -> dict[str, Any]:
    """A real finalised result (the tidy tests' case)."""
    return finalised("cox_regression", opened_values(), load_template(TEMPLATE).bind(RAW))


def test_finalize_undoes_the_standardisation() -> None:
    result = released_result()
    values = opened_values()
    sds = values["sds"]
    names = ["hba1c", "bmi", "condition=1"]
    assert list(result["coefficients"]) == names
    np.testing.assert_allclose(list(result["coefficients"].values()), values["beta"] / sds)
    # I^-1 = (q I / D)^-1 q / D; SE of b = beta / sd is sqrt(I^-1)_jj / sd
    covariance = np.linalg.inv(np.array([[0.9, 0.1, 0.05], [0.1, 0.7, 0.02], [0.05, 0.02, 0.2]]))
    errors = np.sqrt(np.diag(covariance)) / sds
    np.testing.assert_allclose(list(result["std_errors"].values()), errors, rtol=1e-9)
    b, s = values["beta"][0] / sds[0], errors[0]
    assert result["hazard_ratios"]["hba1c"] == pytest.approx(np.exp(b))
    assert result["ci95"]["hba1c"] == pytest.approx(
        [np.exp(b - 1.96 * s), np.exp(b + 1.96 * s)], rel=1e-4
    )
    assert result["z"]["hba1c"] == pytest.approx(b / s)
    assert (result["n"], result["events"], result["iterations"]) == (2042, 807, 4)
    assert result["reference_levels"] == {"condition": "0"}
    assert result["threshold"] == T


def test_renders_as_a_phreg_summary() -> None:
    text = render(released_result(), "cox_regression")
    header = text.splitlines()[0].split()
    assert header == ["coef", "HR", "std", "err", "z", "P>|z|", "95%", "CI", "(HR)"]
    assert "hba1c" in text and "condition=1" in text
    assert "n = 2,042, events = 807, left out 1,234, 4 Newton iterations, converged" in text
    assert "ties: Breslow; time in years on the grid 0..30" in text
    assert "reference levels: condition = 0" in text
    assert "concordance: 0.6123 (Harrell's C over comparable pairs from pooled counts" in text
    assert f"small-cell threshold: {T}" in text


def test_tidy_rows_hold_the_estimates() -> None:
    result = released_result()
    rows = {(r["term"], r["statistic"]): r for r in ANALYSIS.tidy(result)}
    hr = rows[("hba1c", "hazard_ratio")]
    assert hr["value"] == result["hazard_ratios"]["hba1c"]
    assert [hr["lower"], hr["upper"]] == result["ci95"]["hba1c"]
    assert rows[("condition=1", "estimate")]["note"] == "reference condition=0"
    assert rows[("", "events")]["value"] == 807 and rows[("", "n")]["value"] == 2042
    assert rows[("", "concordance")]["value"] == 0.61234


def test_a_skipped_concordance_is_null_with_the_reason() -> None:
    params = load_template(TEMPLATE).bind(RAW)
    skipped = finalised("cox_regression", opened_values() | {"concordance": [-1.0]}, params)
    assert skipped["concordance"] is None and "fixed-point range" in skipped["concordance_note"]
    assert "concordance: not computed: events x N" in render(skipped, "cox_regression")
    unasked = load_template(TEMPLATE).bind({**RAW, "concordance": "no"})
    values = {k: v for k, v in opened_values().items() if k != "concordance"}
    assert finalised("cox_regression", values, unasked)["concordance"] is None


def secure_step(values: np.ndarray, layout: Layout, crypten: bool) -> tuple[np.ndarray, ...]:
    """`secure.score_information` and the range check on one party's step input, on
    the plaintext reference ops (MPyC's precision, or CrypTen's 16 fractional bits)."""
    precision = CRYPTEN_LIKE if crypten else REFERENCE_PRECISION
    ops = ReferenceOps(Alone(), 0, seed=5, precision=precision)

    async def run() -> tuple[np.ndarray, ...]:
        pooled = ops.input_values(0, values, values.shape)
        await require_in_range(ops, pooled, layout)
        score, information = score_information_mpc(ops, pooled, layout)
        return await ops.reveal(score), await ops.reveal(information)

    return asyncio.run(run())


@pytest.mark.parametrize("crypten", [False, True])
def test_secure_ratios_match_the_float_score_and_information(crypten: bool) -> None:
    rng = np.random.default_rng(7)
    z, time, event = sample(rng, n=400)
    time[time == 9] = 8  # nobody at risk at the last grid point: S0 = 0 there
    beta = np.array([0.5, -0.4, 0.3])
    layout = Layout(3, 10)
    shift = weight_shift(400, 3)
    values = step_input(CoxData(z, time, event, 0), z, beta, shift, 10)
    score, information = secure_step(values, layout, crypten)
    want_u, want_i = score_information(risk_sums(z, np.exp(z @ beta), time, event, 10))
    events = event.sum()
    unit = 2.0 ** -(16 if crypten else 32)
    assert np.max(np.abs(score - want_u)) / events < 64 * unit
    assert np.max(np.abs(information - want_i)) / events < 64 * unit


def test_the_range_check_refuses_a_party_out_of_range() -> None:
    rng = np.random.default_rng(8)
    z, time, event = sample(rng)
    low = step_input(CoxData(z, time, event, 0), z, np.zeros(3), 0.0, 10)  # weights 1 < 2^6
    with pytest.raises(JointRefusal, match="fixed-point"):
        secure_step(low, Layout(3, 10), crypten=False)
