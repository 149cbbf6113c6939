"""The differentially private logistic regression (`epsilon`, dp.py) on the in-process
federation against a noise-free Newton-Raphson written here: numpy, on the pooled rows,
clipped to the same bounds and mapped onto [-1, 1], the same fixed number of steps; one
slow check runs it once on each real backend (fed3).

Error model (dp.py): to first order the released coefficients differ from the
noise-free fit by H^-1 e, e the last step's gradient noise (sd sigma_g per value, the
"dp" block's figure), so coefficient j's noise sd is sigma_g sqrt((H^-2)_jj) on the
mapped scale. Measured over 100 runs at epsilon 10 (3 x 4,000 patients): the errors'
sd is 1.0-1.3 times that (the neglected terms), so the check allows MARGIN = 1.5 times
z sd, z two-sided for a false-failure rate of ALPHA over the k coefficients. At epsilon
1 the Hessian's noise floor binds on these 9,351 patients and shrinks the fit, which
makes the errors smaller (0.3-0.6 of that sd, measured). The AUC on the pooled rows
fell by 0.3% on average, 1.25% at the 99th percentile and 1.95% at most over 700 runs,
so the check allows AUC_LOSS = 3%: the issue's goal of 2% is for 300,000 patients, where
the loss measured 0.003% (docs/models.md).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from smpc_ehr.analyses.models import logistic
from smpc_ehr.analyses.models.logistic.dp import releases
from smpc_ehr.cli.render import render_result
from smpc_ehr.client import Client, JobResult
from smpc_ehr.errors import TemplateError
from smpc_ehr.local.federation import LocalFederation
from smpc_ehr.privacy.accountant import rho_for
from smpc_ehr.privacy.mechanism import plan_noise
from smpc_ehr.study.template import load_template
from smpc_ehr.testing.federation import InProcessFederation
from smpc_ehr.testing.federation import JobFailed as InProcessJobFailed
from tests import _stats_truth as truth
from tests._inprocess import CheckedFederation
from tests.federations import PROTOCOLS

TEMPLATE = PROTOCOLS / "logistic_regression.toml"
FEATURES = ["bmi", "hba1c", "sbp", "ldl"]
BOUNDS = [15.0, 50.0, 4.0, 12.0, 80.0, 220.0, 40.0, 250.0]
STEPS = 5
ALPHA = 1e-6
MARGIN = 1.5
AUC_LOSS = 0.03
NAMES = ["(intercept)", *FEATURES]


def dp_params(epsilon: float, **more: str) -> dict[str, str]:
    return {
        "outcome": "readmit_30d",
        "features": ",".join(FEATURES),
        "bounds": ",".join(f"{b:g}" for b in BOUNDS),
        "epsilon": str(epsilon),
        **more,
    }


def pooled_rows(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw design [1 | x], the mapped one [1 | z] and y of the pooled complete cases."""
    rows = truth.cohort_frame(data)[["readmit_30d", *FEATURES]].dropna()
    x, y = rows[FEATURES].to_numpy(float), rows["readmit_30d"].to_numpy(float)
    low, high = np.array(BOUNDS[::2]), np.array(BOUNDS[1::2])
    z = (2 * np.clip(x, low, high) - (low + high)) / (high - low)
    ones = np.ones((len(y), 1))
    return np.hstack([ones, x]), np.hstack([ones, z]), y


def newton(z: np.ndarray, y: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """`steps` plain Newton steps from 0; the coefficients and the last Hessian."""
    beta = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ beta))
        hessian = (z * (p * (1 - p))[:, None]).T @ z
        beta = beta + np.linalg.solve(hessian, z.T @ (y - p))
    return beta, hessian


def mapped(result: dict[str, Any]) -> np.ndarray:
    """The released coefficients back on the mapped scale (b_j = a_j beta_j,
    b_0 = beta_0 + sum c_j beta_j)."""
    b = np.array([result["coefficients"][n] for n in NAMES])
    low, high = np.array(BOUNDS[::2]), np.array(BOUNDS[1::2])
    slopes = b[1:] * (high - low) / 2
    return np.r_[b[0] + np.sum(slopes * (high + low) / (high - low)), slopes]


def test_a_large_epsilon_fit_is_the_noise_free_fit_within_its_noise(
    inprocess: InProcessFederation, data3: Path
) -> None:
    result = inprocess.run(TEMPLATE, dp_params(10.0)).result
    _, z, y = pooled_rows(data3)
    want, hessian = newton(z, y, STEPS)
    dp = result["dp"]
    # The noise as planned: the stated rho split over the stated sensitivities.
    k, m = 5, 15
    rho = rho_for(10.0, 1e-6)
    each = 0.95 / STEPS
    for name, l2, share, dim in [
        ("n", 1.0, 0.05, 1),
        ("gradient", math.sqrt(k), each * 2 / 3, k),
        ("hessian", math.sqrt(m) / 4, each / 3, m),
    ]:
        slack = math.sqrt(dim) * 2 * 2.0**-16
        plan = plan_noise(l2 + (slack if dim > 1 else 0), 3, 1, rho=rho * share, dim=dim)
        assert dp["noise_sd"][name] == pytest.approx(math.sqrt(plan.released_variance))
    assert dp["epsilon"] == 10.0 and dp["colluders"] == 1 and dp["rho"] == rho
    inverse = np.linalg.inv(hessian)
    sd = dp["noise_sd"]["gradient"] * np.sqrt(np.diag(inverse @ inverse))
    z_alpha = stats.norm.isf(ALPHA / (2 * k))
    error = mapped(result) - want
    assert np.all(np.abs(error) <= MARGIN * z_alpha * sd), error / sd
    # Standard errors: H^-1 + sigma_g^2 H^-2, in original units (measured within 0.83-1.31).
    low, high = np.array(BOUNDS[::2]), np.array(BOUNDS[1::2])
    covariance = inverse + dp["noise_sd"]["gradient"] ** 2 * inverse @ inverse
    expected = np.sqrt(np.diag(covariance))[1:] * 2 / (high - low)
    got = np.array([result["std_errors"][n] for n in FEATURES])
    assert np.all(np.abs(got / expected - 1) <= 0.5), got / expected
    assert abs(result["n"] - len(y)) <= z_alpha * dp["noise_sd"]["n"]
    assert result["iterations"] == STEPS and result["converged"] is None
    # No value without noise: the summary's counts and log-likelihoods are left out.
    assert all(result[key] is None for key in ("events", "left_out", "log_likelihood", "aic"))
    assert "not released with epsilon" in result["summary_note"]
    text = logistic.ANALYSIS.render(result)
    assert "(noisy)   events: NA   left out (missing values): NA" in text
    assert "NA: not released with epsilon" in text and "<11 = suppressed" not in text


def test_at_epsilon_one_the_fit_is_within_its_noise_and_predicts_nearly_as_well(
    inprocess: InProcessFederation, data3: Path
) -> None:
    first, second = (inprocess.run(TEMPLATE, dp_params(1.0)).result for _ in range(2))
    assert first["coefficients"] != second["coefficients"], "the noise must be there"
    x, z, y = pooled_rows(data3)
    want, hessian = newton(z, y, STEPS)
    exact_auc = roc_auc_score(y, z @ want)
    inverse = np.linalg.inv(hessian)
    sd = first["dp"]["noise_sd"]["gradient"] * np.sqrt(np.diag(inverse @ inverse))
    z_alpha = stats.norm.isf(ALPHA / (2 * len(NAMES)))
    for result in (first, second):
        b = np.array([result["coefficients"][n] for n in NAMES])
        assert roc_auc_score(y, x @ b) >= exact_auc - AUC_LOSS
        assert np.all(np.abs(mapped(result) - want) <= MARGIN * z_alpha * sd)
    text = render_result(
        JobResult("job", "logistic_regression", "sha256:0", "mpyc", ("a", "b", "c"), first, 1.0),
        "logistic_regression",
        strict=True,
    )
    assert "(noisy), 5 noisy Newton steps" in text and "bmi 15..50" in text
    assert "differentially private, epsilon = 1 at delta = 1e-06" in text


def test_a_noisy_n_below_the_threshold_is_refused(data3: Path) -> None:
    # Threshold 100 and no patient: the noisy N (sd 3.1 at epsilon 10) cannot reach it.
    fed = CheckedFederation.from_folder(data3, 100)
    with pytest.raises(InProcessJobFailed, match="fewer than 100 patients") as refused:
        fed.run(TEMPLATE, dp_params(10.0, codes="Q99.9"))
    assert "differentially private count" in str(refused.value)


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"bounds": ""}, "needs 'bounds'"),
        ({"bounds": "15,50"}, "'bounds' has 2 numbers"),
        ({"mode": "full"}, "leave mode at 'iterates'"),
        ({"test_fraction": "0.2"}, "set test_fraction=0"),
    ],
)
def test_dp_jobs_it_cannot_run_are_refused(more: dict[str, str], message: str) -> None:
    raw = {k: v for k, v in dp_params(1.0, **more).items() if v}
    params = load_template(TEMPLATE).bind(raw)
    with pytest.raises(TemplateError, match=re.escape(message)):
        logistic.ANALYSIS.validate(params)


def test_the_sensitivities_hold_for_the_most_extreme_patients() -> None:
    """One patient's gradient and Hessian-triangle terms, at every corner of [-1, 1]^4
    and the worst p, stay within the stated L2 sensitivities (the slack aside)."""
    params = load_template(TEMPLATE).bind(dp_params(1.0))
    plan = releases(params)
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * 4)).reshape(4, -1).T
    for corner in corners:
        zrow = np.r_[1.0, corner]
        worst_gradient = np.linalg.norm(zrow)  # |y - p| < 1
        outer = 0.25 * np.outer(zrow, zrow)  # p (1 - p) <= 1/4
        triangle = np.linalg.norm(outer[np.triu_indices(5)])
        assert worst_gradient <= plan.gradient.l2 and triangle <= plan.hessian.l2
    assert plan.hessian.l2 - math.sqrt(15) / 4 < 1e-3  # tight: the corners reach it
    shares = [r.share for r in plan.all()]
    assert len(shares) == 1 + 2 * STEPS and math.fsum(shares) == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "colluders"), [("mpyc", 1), ("crypten", 2)])
def test_a_dp_fit_on_the_real_backends_is_within_its_noise(
    fed3: LocalFederation, data3: Path, backend: str, colluders: int
) -> None:
    with Client.from_state(fed3.state_dir) as client:
        result = client.run(TEMPLATE, dp_params(10.0), backend=backend)
    assert result.backend == backend and result.result["dp"]["colluders"] == colluders
    _, z, y = pooled_rows(data3)
    want, hessian = newton(z, y, STEPS)
    inverse = np.linalg.inv(hessian)
    sd = result.result["dp"]["noise_sd"]["gradient"] * np.sqrt(np.diag(inverse @ inverse))
    z_alpha = stats.norm.isf(ALPHA / (2 * len(NAMES)))
    assert np.all(np.abs(mapped(result.result) - want) <= MARGIN * z_alpha * sd)
