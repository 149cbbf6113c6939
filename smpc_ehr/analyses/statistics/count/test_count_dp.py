"""The differentially private joint count (`epsilon`): noise from every party's
`noise_share`, added inside MPC before the small-cell test, unbiased and with the
variance `plan_noise` promises; exact runs unchanged. Fast tier on the in-process
federation (tests/_inprocess.py), one slow check on fed3 with MPyC.

The statistical checks fail falsely with probability at most ALPHA each. The released
noise is a sum of n independent discrete Gaussians of scale >= 3 (at epsilon = 1),
whose distribution is a Gaussian's to far better than the bounds need, so the mean is
checked with a normal bound and the variance with a chi-square one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

import smpc_ehr.analyses.common.noise as noise
from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import JobSetting
from smpc_ehr.cli.render import render_result
from smpc_ehr.client import Client
from smpc_ehr.privacy.accountant import rho_for
from smpc_ehr.privacy.mechanism import plan_noise
from smpc_ehr.testing.federation import InProcessFederation
from tests._render import bind, job, released_counts
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE

THRESHOLD = 11
ALPHA = 1e-6
"""The false-failure rate of each statistical check."""
RUNS = 300
EPSILON = 1.0


def dp_runs(
    fed: InProcessFederation, params: dict[str, str], runs: int, backend: str = ""
) -> list[dict[str, Any]]:
    return [fed.run(COUNT_TEMPLATE, params, backend).result for _ in range(runs)]


def test_dp_counts_are_unbiased_with_the_planned_variance(
    inprocess: InProcessFederation, data3: Path
) -> None:
    truth = truth_counts(data3, ["E11"])[()]
    assert truth > 1000, "a count far above the threshold: no run may be suppressed"
    results = dp_runs(inprocess, {"codes": "E11", "epsilon": str(EPSILON)}, RUNS)
    plan = plan_noise(1, 3, 1, epsilon=EPSILON, delta=noise.DELTA)
    dp = results[0]["dp"]
    assert dp == {
        "mechanism": "distributed discrete Gaussian",
        "epsilon": EPSILON,
        "delta": 1e-6,
        "rho": rho_for(EPSILON, 1e-6),  # what the ledger is charged; the plan spends <= it
        "noise_sd": math.sqrt(plan.released_variance),
        "colluders": 1,  # MPyC with 3 parties: (n-1)//2
        "max_sites": 1,
    }
    counts = np.array([r["count"] for r in results], dtype=float)
    assert all(r["dp"] == dp and r["suppressed"] is False for r in results)
    variance = plan.released_variance
    # Mean: |mean - truth| <= z sd / sqrt(R), two-sided at ALPHA.
    z = stats.norm.isf(ALPHA / 2)
    assert abs(counts.mean() - truth) <= z * math.sqrt(variance / RUNS), counts.mean()
    # Variance: (R - 1) S^2 / sigma^2 is chi-square with R - 1 degrees of freedom.
    statistic = (RUNS - 1) * counts.var(ddof=1) / variance
    low, high = stats.chi2.ppf(ALPHA / 2, RUNS - 1), stats.chi2.isf(ALPHA / 2, RUNS - 1)
    assert low <= statistic <= high, (counts.var(ddof=1), variance)
    assert counts.var() > 0 and len(set(counts)) > 10, "the noise must really be there"


def test_suppression_uses_the_noisy_total(inprocess: InProcessFederation, data3: Path) -> None:
    # A true total of 0 with noise sd ~100 (epsilon 0.05): about half the runs reach the
    # threshold and are released (as noisy values); all 40 fall on one side with
    # probability below 1e-10.
    assert truth_counts(data3, ["Q99.9"]) == {(): 0}
    results = dp_runs(inprocess, {"codes": "Q99.9", "epsilon": "0.05"}, 40)
    released = [r["count"] for r in results if not r["suppressed"]]
    hidden = [r for r in results if r["suppressed"]]
    assert released and hidden
    assert all(count >= THRESHOLD for count in released)
    assert all(r["count"] is None for r in hidden)


def test_every_party_draws_its_share_with_noise_share(
    inprocess: InProcessFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[tuple[float, int, list[int]]] = []
    real = noise.noise_share

    def recording(scale: float, size: int) -> Any:
        share = real(scale, size)
        drawn.append((scale, size, share.tolist()))
        return share

    monkeypatch.setattr(noise, "noise_share", recording)
    result = inprocess.run(COUNT_TEMPLATE, {"codes": "E11", "by": "sex", "epsilon": "2"}).result
    plan = plan_noise(1, 3, 1, epsilon=2, delta=noise.DELTA, dim=3)
    assert [(scale, size) for scale, size, _ in drawn] == [(plan.share_scale, 3)] * 3
    assert result["dp"]["noise_sd"] == math.sqrt(plan.released_variance)


def test_patients_at_several_hospitals_multiply_the_noise(
    inprocess: InProcessFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """max_sites = 2: a patient may be counted twice, so the sensitivity is 2 and each
    share is planned for it (the released sd is about twice max_sites = 1's)."""
    scales: list[float] = []
    real = noise.noise_share

    def recording(scale: float, size: int) -> Any:
        scales.append(scale)
        return real(scale, size)

    monkeypatch.setattr(noise, "noise_share", recording)
    params = {"codes": "E11", "epsilon": "2", "max_sites": "2"}
    result = inprocess.run(COUNT_TEMPLATE, params).result
    plan = plan_noise(2, 3, 1, epsilon=2, delta=noise.DELTA)
    assert scales == [plan.share_scale] * 3
    assert result["dp"]["max_sites"] == 2
    assert result["dp"]["noise_sd"] == math.sqrt(plan.released_variance)
    single = plan_noise(1, 3, 1, epsilon=2, delta=noise.DELTA)
    assert 1.9 < plan.share_scale / single.share_scale < 2.1


def test_exact_runs_draw_no_noise_and_release_no_dp(
    inprocess: InProcessFederation, data3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(scale: float, size: int) -> Any:
        raise AssertionError("an exact run drew noise")

    monkeypatch.setattr(noise, "noise_share", forbidden)
    result = inprocess.run(COUNT_TEMPLATE, {"codes": "E11"}).result
    assert result == {"count": truth_counts(data3, ["E11"])[()], "suppressed": False,
                      "threshold": THRESHOLD}  # fmt: skip


@pytest.mark.parametrize(("backend", "colluders", "sd"), [("mpyc", 1, 5.55), ("crypten", 2, 7.85)])
def test_the_noise_is_calibrated_to_the_backends_colluders(
    inprocess: InProcessFederation, backend: str, colluders: int, sd: float
) -> None:
    """The figures of docs/privacy.md's table (epsilon = 1, 3 parties)."""
    result = inprocess.run(COUNT_TEMPLATE, {"codes": "E11", "epsilon": "1"}, backend).result
    assert result["dp"]["colluders"] == colluders
    assert round(result["dp"]["noise_sd"], 2) == sd


def test_a_real_finalised_dp_count_renders() -> None:
    params = bind("rare_disease_count", codes="E11", by="sex", epsilon="1")
    opened = released_counts([1320, 1288, 9])
    flat = [*opened["released"], *opened["counts"]]
    count = ANALYSES["count"]
    with pytest.raises(ValueError, match="setting"):
        count.release(flat, params, THRESHOLD)
    result = count.release(flat, params, THRESHOLD, JobSetting("mpyc", 3))
    lines = render_result(job(result), "count", strict=True).split("\n", 1)[1].splitlines()
    assert lines[2].split() == ["F", "1,320"]
    assert lines[-2] == "small-cell threshold: 11"
    assert lines[-1] == (
        "differentially private, epsilon = 1 at delta = 1e-06"
        " (noise sd 5.55 per value; distributed discrete Gaussian)"
    )


@pytest.mark.slow
@pytest.mark.parametrize(("backend", "colluders"), [("mpyc", 1), ("crypten", 2)])
def test_a_dp_count_is_within_six_sd_of_the_truth(
    fed3, data3: Path, backend: str, colluders: int
) -> None:
    truth = truth_counts(data3, ["E11"])[()]
    with Client.from_state(fed3.state_dir) as client:
        result = client.run(COUNT_TEMPLATE, {"codes": "E11", "epsilon": "1"}, backend=backend)
        # A total of 0 with noise sd ~100: noisy totals of either sign go through the
        # secure comparison (a negative one must be suppressed, not wrap around).
        small = [
            client.run(COUNT_TEMPLATE, {"codes": "Q99.9", "epsilon": "0.05"}, backend=backend)
            for _ in range(4)
        ]
    assert result.backend == backend
    dp = result.result["dp"]
    assert dp["colluders"] == colluders and dp["epsilon"] == 1.0
    assert abs(result.result["count"] - truth) <= 6 * dp["noise_sd"]
    for run in small:
        count = run.result["count"]
        assert (count is None) == run.result["suppressed"]
        assert count is None or THRESHOLD <= count <= 6 * run.result["dp"]["noise_sd"]
