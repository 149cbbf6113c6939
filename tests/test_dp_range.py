"""A value beyond the fixed-point range (|x| > 2^14) at one hospital: an exact run is
refused jointly (the whole column cannot enter fixed point), while a differentially
private run (`epsilon`) clips or bins every value into public bounds before anything is
shared, so it runs and releases a result: a refusal there would be an exact bit about the
data ("is there such a value?") outside the DP guarantee (in-process federation, fast
tier)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smpc_ehr.analyses.common.local_checks import JOINT_MESSAGE
from smpc_ehr.analyses.common.variables import MAX_ABS_VALUE
from smpc_ehr.testing.federation import Hospital, InProcessFederation, JobFailed
from tests._inprocess import THRESHOLD, CheckedFederation
from tests._stats_jobs import template
from tests.federations import PROTOCOLS

HUGE = 3 * MAX_ABS_VALUE
DP = {"epsilon": "1"}
JOBS: dict[str, tuple[str | Path, dict[str, Any]]] = {
    "summary": ("summary", {"variables": "sbp", "bounds": "80,220"}),
    "ttest": ("ttest", {"variable": "sbp", "group": "readmit_30d", "bounds": "80,220"}),
    "correlation": ("correlation", {"variables": "bmi,sbp", "bounds": "15,45,80,220"}),
    "logistic": (
        PROTOCOLS / "logistic_regression.toml",
        {"outcome": "readmit_30d", "features": "bmi,sbp", "bounds": "15,50,80,220"},
    ),
    "kmeans": ("kmeans", {"features": "bmi,sbp", "k": "2", "bounds": "15,60,80,220"}),
    "histogram": ("histogram", {"variable": "sbp", "edges": [80, 120, 160, 220]}),
    "quantiles": ("quantiles", {"variable": "sbp", "q": [0.5], "low": 80, "high": 220, "step": 5}),
}


@pytest.fixture(scope="module")
def huge(inprocess: InProcessFederation) -> InProcessFederation:
    """The `inprocess` hospitals, but one sbp value of hospital-2 beyond 2^14."""
    hospitals = []
    for h in inprocess.hospitals:
        data = h.data
        if h.id == "hospital-2":
            sbp = data.features["sbp"].copy()
            sbp[np.flatnonzero(~np.isnan(sbp))[0]] = HUGE
            data = dataclasses.replace(data, features={**data.features, "sbp": sbp})
            assert data.max_abs["sbp"] == HUGE
        hospitals.append(Hospital(h.id, data, THRESHOLD))
    return CheckedFederation(hospitals)


def _template(name: str | Path) -> Path:
    return name if isinstance(name, Path) else template(name)


@pytest.mark.parametrize("job", list(JOBS))
def test_a_dp_run_takes_a_value_beyond_the_range(huge: InProcessFederation, job: str) -> None:
    name, params = JOBS[job]
    result = huge.run(_template(name), {**params, **DP}).result
    assert result["dp"]["epsilon"] == 1.0


@pytest.mark.parametrize("job", ["summary", "histogram"])
def test_an_exact_run_still_refuses_it(huge: InProcessFederation, job: str) -> None:
    name, params = JOBS[job]
    params = {k: v for k, v in params.items() if k != "bounds"}
    with pytest.raises(JobFailed) as failed:
        huge.run(_template(name), params)
    assert JOINT_MESSAGE in str(failed.value)
