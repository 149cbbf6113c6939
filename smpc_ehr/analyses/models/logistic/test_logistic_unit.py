"""The logistic regression without a federation: its terminal table (hand-built and
from a real `finalize` of opened values built with numpy, with the fallback disabled)
and its leakage statements against the template's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smpc_ehr.analyses.common import evaluation
from smpc_ehr.analyses.common.newton import cholesky, cholesky_solve
from smpc_ehr.analyses.models import logistic
from smpc_ehr.analyses.models.logistic.analysis import (
    FULL_LEAKAGE,
    ITERATES_LEAKAGE,
    POOLED_LEAKAGE,
)
from smpc_ehr.analyses.models.logistic.full import HESSIAN_SCALE
from smpc_ehr.cli.render import render_result
from smpc_ehr.client import JobResult
from smpc_ehr.errors import JointRefusal
from smpc_ehr.study.template import load_template

TEMPLATE = Path(__file__).resolve().parents[4] / "protocols" / "logistic_regression.toml"
T = 11
ANALYSIS = logistic.ANALYSIS


def job(body: dict[str, Any]) -> JobResult:
    return JobResult("job", "logistic_regression", "sha256:0", "mpyc", ("a", "b", "c"), body, 1.0)


def words(text: str) -> str:
    return " ".join(text.split())


def test_leakage_statements_are_the_templates() -> None:
    leakage = words(load_template(TEMPLATE).leakage)
    assert leakage in words(logistic.__doc__ or "")
    for statement in (ITERATES_LEAKAGE, POOLED_LEAKAGE, FULL_LEAKAGE):
        assert words(statement) in leakage


def test_renders_a_coefficient_table() -> None:
    names = ["(intercept)", "hba1c"]
    body = {
        "coefficients": dict(zip(names, [-3.5, 0.3166], strict=True)),
        "std_errors": dict(zip(names, [0.25, 0.0443], strict=True)),
        "odds_ratios": dict(zip(names, [0.0302, 1.3725], strict=True)),
        "ci95": {"(intercept)": [0.0185, 0.0493], "hba1c": [1.258, 1.497]},
        "p_values": dict(zip(names, [1.5e-44, 8.9e-13], strict=True)),
        "n": 7009,
        "iterations": 6,
        "converged": True,
        "mode": "iterates",
        "l2": 0.0,
        "leakage": "the parties learned every iterate",
        "missing_values": "complete-case",
        "threshold": T,
        "outcome": "readmit_30d",
        "reference_levels": {"sex": "F"},
        "events": 1234,
        "left_out": None,
        "log_likelihood": -2345.6789,
        "null_log_likelihood": -2456.78912,
        "lr_chi2": 222.22044,
        "lr_df": 1,
        "lr_p": 8.1e-50,
        "pseudo_r2": 0.045221,
        "aic": 4695.3578,
        "bic": 4709.12345,
        "summary_note": None,
    }
    text = render_result(job(body), "logistic_regression", strict=True)
    assert text.endswith(ANALYSIS.render(body))
    assert "observations: 7,009   events: 1,234   left out (missing values): <11" in text
    assert "reference levels: sex = F" in text and "pseudo-R2 (McFadden): 0.04522" in text
    assert "log-likelihood: -2,345.679   null log-likelihood: -2,456.789" in text
    assert "chi2 = 222.2, df = 1, p < 1e-16" in text
    assert "AIC: 4,695.358   BIC: 4,709.123" in text
    assert "<11 = suppressed" in text  # the left-out count
    # One number of decimals per column, enough for 4 significant digits of each value.
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[-20:] if line}
    assert rows["(intercept)"] == [
        "-3.5000", "0.25000", "-14.000", "<", "1e-16", "0.03020", "0.01850", "to", "0.04930"
    ]  # fmt: skip
    assert rows["hba1c"] == [
        "0.3166", "0.04430", "7.147", "8.9e-13", "1.37250", "1.25800", "to", "1.49700"
    ]  # fmt: skip
    assert "n = 7,009, 6 Newton iterations, converged" in text
    assert "the parties learned every iterate" in text and "complete-case" in text


def evaluation_values(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """What the evaluation could open: counts of 600 scored rows, each released if it
    reaches the threshold (the complementary rule aside), and a released AUC."""
    scores = rng.random(600)
    counts = evaluation.local_counts(scores, (rng.random(600) < scores).astype(float))
    released = (counts[:24] >= T).astype(float)
    return {
        "evaluation_released": released,
        "evaluation_counts": released * counts[:24],
        "evaluation_score_sums": released[4:14] * counts[24:34],
        "evaluation_auc_released": np.ones(1),
        "evaluation_auc": np.array([0.75]),
    }


def model_values(mode: str, d: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Opened values of a plausible fit with d features, in the mode's outputs."""
    k = d + 1
    a = rng.normal(size=(k, k))
    inverse = a @ a.T + k * np.eye(k)  # SPD, as the inverted Hessian
    summary = {  # 120 events of 900, 40 left out (released), log-likelihood
        "events": np.array([120.0]),
        "left_out_released": np.ones(1),
        "left_out": np.array([40.0]),
    }
    if mode in ("iterates", "pooled"):
        return {
            "n": np.array([900.0]),
            "iterations": np.array([6.0]),
            "beta": rng.normal(scale=0.5, size=k),
            "means": rng.normal(size=d),
            "sds": rng.uniform(0.5, 2, size=d),
            "inverse_hessian": inverse,
            **summary,
            "log_likelihood": np.array([-340.25]),
        }
    scaled = inverse * 1000 / HESSIAN_SCALE  # the covariance of the Hessian x 2^8 / padded N
    return {
        "padded_n": np.array([1000.0]),
        "iterations": np.array([7.0]),
        "exponents": np.array([3.0, -2.0][:d]),
        "n": np.array([900.0]),
        "intercept": rng.normal(size=1),
        "slopes": rng.normal(scale=0.5, size=d),
        "intercept_variance": scaled[0, :1],
        "intercept_covariances": scaled[0, 1:],
        "slope_covariance": scaled[1:, 1:],
        **summary,
    }


@pytest.mark.parametrize("mode", ["iterates", "pooled", "full"])
@pytest.mark.parametrize("test_fraction", ["0", "0.3"])
def test_a_real_finalised_result_renders(mode: str, test_fraction: str) -> None:
    params = load_template(TEMPLATE).bind(
        {
            "outcome": "readmit_30d",
            "features": "bmi,hba1c",
            "mode": mode,
            "test_fraction": test_fraction,
        }
    )
    rng = np.random.default_rng(3)
    named = model_values(mode, 2, rng)
    if float(test_fraction) > 0:
        named |= evaluation_values(rng)
    spec = ANALYSIS.outputs(params)
    assert [out.name for out in spec] == list(named)
    assert all(np.shape(named[out.name]) == out.shape for out in spec)
    flat = [float(v) for out in spec for v in np.ravel(named[out.name])]
    result = ANALYSIS.release(flat, params, T)
    text = render_result(job(result), "logistic_regression", strict=True)
    assert "(intercept)" in text and "hba1c" in text and "n = 900" in text
    assert words(result["leakage"]) in words(text)
    assert ("held-out evaluation" in text) == (float(test_fraction) > 0)
    assert "events: 120   left out (missing values): 40" in text
    assert result["null_log_likelihood"] == pytest.approx(
        120 * np.log(120 / 900) + 780 * np.log(780 / 900)
    )
    if mode == "full":
        assert "log-likelihood: NA" in text and 'NA: not available in mode "full"' in text
    else:
        assert "log-likelihood: -340.2" in text and result["aic"] == 2 * 340.25 + 2 * 3


def test_the_pooled_step_is_numpys_solve_in_plain_floats() -> None:
    rng = np.random.default_rng(5)
    for k in (1, 5, 26):
        a = rng.normal(size=(k, k))
        spd = a @ a.T / k + 0.01 * np.eye(k)
        b = rng.normal(size=k)
        factor = cholesky(spd.tolist())
        assert np.allclose(np.array(factor) @ np.array(factor).T, spd, atol=1e-12)
        want = np.linalg.solve(spd, b)
        got = np.array(cholesky_solve(factor, b.tolist()))
        assert np.abs(got - want).max() <= 1e-9 * np.abs(want).max()
        # Plain Python floats: the same bits on every run (and every machine).
        assert cholesky_solve(cholesky(spd.tolist()), b.tolist()) == got.tolist()


def test_a_singular_pooled_hessian_is_refused() -> None:
    collinear = np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(JointRefusal, match="collinear"):
        cholesky(collinear.tolist())
    with pytest.raises(JointRefusal, match="collinear"):
        cholesky([[1.0, 0.0], [0.0, -0.5]])
