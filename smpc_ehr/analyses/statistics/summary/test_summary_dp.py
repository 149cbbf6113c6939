"""The differentially private summary (`epsilon`, `bounds`) on the in-process federation
(fast tier), against numpy on the pooled, clipped plaintext (tests/_dp_moments.py):
every released n, missing, mean and variance within the noise's stated bounds (each
check fails falsely with probability at most 1e-6), the noise sized as planned and
really there, suppression on the noisy count, missing bounds refused."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import smpc_ehr.analyses.common.noise as noise
from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import JobSetting
from smpc_ehr.cli.render import render_result
from smpc_ehr.errors import TemplateError
from smpc_ehr.privacy.accountant import rho_for
from smpc_ehr.privacy.mechanism import plan_noise
from smpc_ehr.testing.federation import InProcessFederation
from smpc_ehr.testing.reference import FRAC_BITS
from tests import _dp_moments as dpm
from tests import _stats_truth as truth
from tests._render import bind, job
from tests._stats_jobs import THRESHOLD, template

VARIABLES = ["bmi", "hba1c", "sbp"]
BOUNDS = [15.0, 45.0, 4.0, 9.0, 80.0, 220.0]  # bmi and hba1c clip some values
PARAMS = {
    "variables": ",".join(VARIABLES),
    "by": "sex",
    "epsilon": "1",
    "bounds": ",".join(f"{b:g}" for b in BOUNDS),
}


def run(fed: InProcessFederation, params: dict[str, str]) -> dict[str, Any]:
    return fed.run(template("summary"), params).result


def noise_sd(strata: int, variables: int, epsilon: float = 1.0) -> float:
    l2 = math.sqrt(variables * (1 + 2 * (1 + 2.0**-15) ** 2))
    plan = plan_noise(l2, 3, 1, rho=rho_for(epsilon, 1e-6), dim=4 * strata * variables)
    return math.sqrt(plan.released_variance)


def test_dp_summary_is_within_the_noise_of_the_clipped_truth(
    inprocess: InProcessFederation, data3: Path
) -> None:
    result = run(inprocess, PARAMS)
    sd = noise_sd(3, 3)
    assert result["dp"]["noise_sd"] == pytest.approx(sd, rel=1e-12)
    assert result["dp"]["epsilon"] == 1.0 and result["dp"]["colluders"] == 1
    assert "binary_rule" not in result and "noise" in result
    frame = truth.cohort_frame(data3)
    sex = truth.category(frame, "sex")
    assert list(result["strata"]) == list(truth.levels("sex"))
    for level, stratum in result["strata"].items():
        for v, name in enumerate(VARIABLES):
            low, high = BOUNDS[2 * v], BOUNDS[2 * v + 1]
            dpm.check_cell(
                stratum["variables"][name], frame.loc[sex == level, name], (low, high), sd
            )
    # The large strata are released; a second run differs: the noise is there.
    again = run(inprocess, PARAMS)
    for level in ("F", "M"):
        first, second = result["strata"][level]["variables"], again["strata"][level]["variables"]
        assert all(first[v]["n"] is not None for v in VARIABLES)
        assert [first[v]["mean"] for v in VARIABLES] != [second[v]["mean"] for v in VARIABLES]


def test_suppression_is_decided_on_the_noisy_count(
    inprocess: InProcessFederation, data3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every party's share fixed at +7 (then -5000) per value: the noisy count of an empty
    # cohort passes the threshold, that of a large one does not.
    def fixed(share: float) -> Callable[[float, int], np.ndarray]:
        return lambda scale, size: np.full(size, round(share * 2**FRAC_BITS), dtype=np.int64)

    params = {**PARAMS, "variables": "bmi", "bounds": "15,45"}
    params.pop("by")
    assert len(truth.cohort_frame(data3, codes="Q99.9")) == 0
    monkeypatch.setattr(noise, "noise_share", fixed(7))
    empty = run(inprocess, {**params, "codes": "Q99.9"})["variables"]["bmi"]
    assert empty["n"] == 21 and empty["missing"] == 21
    assert empty["mean"] == 45 and empty["variance"] == 0  # 21 (1 + 1 per sum): the bound
    monkeypatch.setattr(noise, "noise_share", fixed(-5000))
    everyone = run(inprocess, params)["variables"]["bmi"]
    assert everyone["n"] is None and everyone["suppressed"] and everyone["mean"] is None


def test_a_dp_summary_needs_bounds() -> None:
    summary = ANALYSES["summary"]
    params = bind("summary", variables="bmi,hba1c", epsilon="1")
    with pytest.raises(TemplateError, match=r"'bounds'.*bmi, hba1c"):
        summary.validate(params)
    with pytest.raises(TemplateError, match="need 4"):
        summary.validate(bind("summary", variables="bmi,hba1c", epsilon="1", bounds="15,45"))
    summary.validate(bind("summary", variables="bmi,hba1c"))  # exact: no bounds needed


def test_a_real_finalised_dp_summary_renders() -> None:
    params = bind("summary", variables="bmi", epsilon="1", bounds="15,45")
    opened = [1, 1, 1000.4, -200.0, 300.0, 20.2]  # released, missing_released, n, sums, missing
    result = ANALYSES["summary"].release(opened, params, THRESHOLD, JobSetting("mpyc", 3))
    cell = result["variables"]["bmi"]
    assert cell["n"] == 1000 and cell["missing"] == 20
    assert cell["mean"] == pytest.approx(30 + 15 * -200 / 1000)
    assert cell["variance"] == pytest.approx(225 * (300 - 200**2 / 1000) / 999)
    lines = render_result(job(result), "summary", strict=True).splitlines()
    assert any(line.startswith("differentially private: n and missing") for line in lines)
    assert lines[-1].startswith("differentially private, epsilon = 1 at delta = 1e-06")
