"""The differentially private correlation (`epsilon`, `bounds`) on the in-process
federation (fast tier), against numpy on the pooled, clipped complete cases
(tests/_dp_moments.py; each check fails falsely with probability at most 1e-6): n,
missing counts and means within the noise's bounds, each correlation within its noisy
interval plus the most the projection can move it, a valid matrix, noise present."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import JobSetting
from smpc_ehr.cli.render import render_result
from smpc_ehr.errors import TemplateError
from smpc_ehr.privacy.accountant import rho_for
from smpc_ehr.privacy.mechanism import plan_noise
from smpc_ehr.testing.federation import InProcessFederation
from tests import _dp_moments as dpm
from tests import _stats_truth as truth
from tests._render import bind, job
from tests._stats_jobs import THRESHOLD, template

VARIABLES = ["bmi", "hba1c", "sbp", "hdl"]
BOUNDS = [15.0, 45.0, 4.0, 9.0, 80.0, 220.0, 20.0, 90.0]
PARAMS = {
    "variables": ",".join(VARIABLES),
    "epsilon": "1",
    "bounds": ",".join(f"{b:g}" for b in BOUNDS),
}


def test_dp_correlation_is_within_the_noise_of_the_clipped_truth(
    inprocess: InProcessFederation, data3: Path
) -> None:
    result = inprocess.run(template("correlation"), PARAMS).result
    d = len(VARIABLES)
    products = d * (d + 1) // 2
    l2 = math.sqrt(1 + (d + products) * (1 + 2.0**-15) ** 2)
    plan = plan_noise(l2, 3, 1, rho=rho_for(1.0, 1e-6), dim=1 + 2 * d + products)
    sd = math.sqrt(plan.released_variance)
    assert result["dp"]["noise_sd"] == pytest.approx(sd, rel=1e-12)
    frame = truth.cohort_frame(data3)
    complete = frame[VARIABLES].dropna()
    u = [
        dpm.units(complete[v].to_numpy(dtype=float), BOUNDS[2 * i], BOUNDS[2 * i + 1])
        for i, v in enumerate(VARIABLES)
    ]
    sums = dpm.pooled_sums(u)
    e = dpm.z_for(1 + 2 * d + products) * sd  # every noisy value of the release
    assert result["suppressed"] is False and abs(result["n"] - len(complete)) <= e + 0.5
    for v in VARIABLES:
        assert abs(result["missing"][v] - int(frame[v].isna().sum())) <= e + 0.5
    b = dpm.box(len(complete), {k: v for k, v in sums.items() if k != "n"}, e, THRESHOLD)
    for i, mean in enumerate(result["means"]):
        one = dpm.Box(b.n, {"s": b.sums[f"s{i}"]})
        assert dpm.mean_interval(one, BOUNDS[2 * i], BOUNDS[2 * i + 1]).holds(mean)
    # Before projection each r lies in its interval; the projection then moves each by at
    # most the released Frobenius distance (itself at most the noisy matrix's distance
    # from the truth, a valid matrix: the norm of the intervals' widest deviations).
    intervals = dpm.correlation_intervals(b.n, b.sums, d)
    r_true = np.corrcoef(np.array(u))
    deviation = np.array(
        [[max(abs(iv.lo - r_true[i, j]), abs(iv.hi - r_true[i, j])) for j, iv in enumerate(row)]
         for i, row in enumerate(intervals)]
    )  # fmt: skip
    moved = result["projection_distance"]
    assert 0 <= moved <= np.linalg.norm(deviation)
    matrix = np.array(result["matrix"], dtype=float)
    assert np.all(np.abs(matrix - r_true) <= deviation + moved + 1e-9), (matrix, r_true)
    assert np.array_equal(matrix, matrix.T) and np.all(np.diag(matrix) == 1.0)
    assert np.linalg.eigvalsh(matrix)[0] >= -1e-12
    # No CI or p-value: neither would account for the noise.
    assert result["ci95"] is None and result["p_values"] is None
    assert "with epsilon" in result["inference_note"]
    cov = np.array(result["covariance"])
    sd_values = np.sqrt(np.diag(cov))
    assert np.allclose(cov, matrix * np.outer(sd_values, sd_values), rtol=1e-12, atol=0)
    again = inprocess.run(template("correlation"), PARAMS).result
    assert again["matrix"] != result["matrix"], "the noise must really be there"


def test_a_dp_correlation_needs_bounds() -> None:
    correlation = ANALYSES["correlation"]
    with pytest.raises(TemplateError, match=r"'bounds'.*bmi, sbp"):
        correlation.validate(bind("correlation", variables="bmi,sbp", epsilon="1"))


def test_a_real_finalised_dp_correlation_renders_a_projected_matrix() -> None:
    params = bind("correlation", variables="bmi,sbp,hdl", epsilon="1", bounds="15,45,80,220,20,90")
    # u-sums of 1000 patients whose raw correlations (0.9, 0.9, -0.9) are not valid
    sums, squares = [0.0, 0.0, 0.0], [250.0, 250.0, 250.0]
    products = [squares[0], 225.0, 225.0, squares[1], -225.0, squares[2]]  # (0,0) (0,1) ...
    opened = [1, 1, 0, 1, 1000.3, *sums, *products, 40.0, 5.0, 30.0]
    result = ANALYSES["correlation"].release(opened, params, THRESHOLD, JobSetting("mpyc", 3))
    assert result["n"] == 1000 and result["missing"] == {"bmi": 40, "sbp": None, "hdl": 30}
    matrix = np.array(result["matrix"])
    assert np.linalg.eigvalsh(matrix)[0] >= -1e-12 and matrix[0, 1] < 0.9
    assert result["projection_distance"] > 0.1
    assert result["means"] == pytest.approx([30.0, 150.0, 55.0])
    text = render_result(job(result), "correlation", strict=True)
    assert "nearest valid correlation matrix" in text
    assert text.splitlines()[-1].startswith("differentially private, epsilon = 1")
