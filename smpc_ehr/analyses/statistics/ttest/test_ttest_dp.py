"""The differentially private t-test (`epsilon`, `bounds`) on the in-process federation
(fast tier): each group's noisy moments against numpy on the pooled, clipped plaintext
within the noise's stated bounds (tests/_dp_moments.py; each check fails falsely with
probability at most 1e-6), and Welch's test recomputed here from the released groups
with the noise's variance in each mean."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from scipy import stats

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

LOW, HIGH = 4.0, 9.0  # hba1c: some values clipped
PARAMS = {"variable": "hba1c", "group": "readmit_30d", "epsilon": "1", "bounds": "4,9"}


def welch_with_noise(groups: list[dict], noise_sd: float) -> dict[str, float]:
    """Welch's t, df, p and CI with a^2 sd^2 (1 + ubar^2) / n^2 per mean added to the
    squared standard error, counted as known in the Welch-Satterthwaite df."""
    c, a = (LOW + HIGH) / 2, (HIGH - LOW) / 2
    parts = [g["variance"] / g["n"] for g in groups]
    noise = sum(
        a * a * noise_sd**2 * (1 + ((g["mean"] - c) / a) ** 2) / g["n"] ** 2 for g in groups
    )
    se = math.sqrt(sum(parts) + noise)
    df = (sum(parts) + noise) ** 2 / sum(
        p * p / (g["n"] - 1) for p, g in zip(parts, groups, strict=True)
    )
    diff = groups[1]["mean"] - groups[0]["mean"]
    half = stats.t.ppf(0.975, df) * se
    t = diff / se
    return {"statistic": t, "df": df, "p_value": 2 * stats.t.sf(abs(t), df),
            "estimate": diff, "low": diff - half, "high": diff + half}  # fmt: skip


def test_dp_ttest_is_within_the_noise_of_the_clipped_truth(
    inprocess: InProcessFederation, data3: Path
) -> None:
    result = inprocess.run(template("ttest"), PARAMS).result
    l2 = math.sqrt(1 + 2 * (1 + 2.0**-15) ** 2)
    plan = plan_noise(l2, 3, 1, rho=rho_for(1.0, 1e-6), dim=8)
    sd = math.sqrt(plan.released_variance)
    assert result["dp"]["noise_sd"] == pytest.approx(sd, rel=1e-12)
    frame = truth.cohort_frame(data3)
    group = truth.category(frame, "readmit_30d")
    groups = [result["groups"][level] for level in ("0", "1")]
    for level, cell in zip(("0", "1"), groups, strict=True):
        dpm.check_cell(cell, frame.loc[group == level, "hba1c"], (LOW, HIGH), sd)
    assert result["test_refused"] is None and "noise" in result["method"]
    mine = welch_with_noise(groups, sd)
    for key in ("statistic", "df", "p_value", "estimate"):
        assert math.isclose(result[key], mine[key], rel_tol=1e-9), (key, result[key], mine[key])
    assert result["ci95"] == pytest.approx([mine["low"], mine["high"]], rel=1e-9)
    assert result["noise_variance"] > 0
    again = inprocess.run(template("ttest"), PARAMS).result
    assert again["estimate"] != result["estimate"], "the noise must really be there"


def test_a_dp_ttest_needs_bounds() -> None:
    ttest = ANALYSES["ttest"]
    with pytest.raises(TemplateError, match=r"'bounds'.*hba1c"):
        ttest.validate(bind("ttest", variable="hba1c", group="readmit_30d", epsilon="1"))


def test_a_real_finalised_dp_ttest_renders() -> None:
    params = bind("ttest", variable="hba1c", group="readmit_30d", epsilon="1", bounds="4,9")
    # released, missing_released, n, sum u, sum u^2, missing (two groups each)
    opened = [1, 1, 1, 0, 7000.2, 1000.0, -2000.0, 200.0, 3000.0, 500.0, 600.0, 5.0]
    result = ANALYSES["ttest"].release(opened, params, THRESHOLD, JobSetting("mpyc", 3))
    assert result["groups"]["1"]["missing"] is None and result["statistic"] is not None
    text = render_result(job(result), "ttest", strict=True)
    assert "its standard error includes the noise's variance" in text
    assert text.splitlines()[-1].startswith("differentially private, epsilon = 1")
