"""The differentially private odds ratio (`epsilon`) on the in-process federation: each
released cell is the pooled plaintext's count plus the noise the parties drew
(recorded) and within z noise sd of the truth (tests/_dp_cells.py: ALPHA = 1e-6 per
test); the odds ratio is the noisy cells', and its interval and test add the noise
variance by the delta method (recomputed here); two runs differ; an exact run draws no
noise."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from smpc_ehr.testing.federation import InProcessFederation
from tests import _stats_truth as truth
from tests._dp_cells import (
    check_noisy_cells,
    forbid_noise,
    noisy_run,
    record_noise,
    z_bound,
)
from tests._render import render
from tests._stats_jobs import JOBS, SAME, rel_close, template

ODDS_RATIO = template("odds_ratio")
PARAMS = JOBS["odds_ratio"][1]
EPSILON = 1.0


def test_dp_odds_ratio_adds_the_noise_variance(
    inprocess: InProcessFederation, data3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = truth.cohort_frame(data3, condition_codes="E11")
    t = truth.table(frame, "condition", "readmit_30d")
    (d, c), (b, a) = t["counts"]  # rows condition 0, 1; columns readmit 0, 1
    exact = np.array([a, b, c, d, t["missing"]])
    z = z_bound(2 * len(exact))  # two runs
    drawn = record_noise(monkeypatch)
    runs = []
    for _ in range(2):
        result, noise, sd = noisy_run(inprocess, ODDS_RATIO, PARAMS, drawn, EPSILON, 5)
        cells = result["table"]
        released = [cells["exposed"]["outcome_1"], cells["exposed"]["outcome_0"]]
        released += [cells["unexposed"]["outcome_1"], cells["unexposed"]["outcome_0"]]
        check_noisy_cells([*released, result["missing"]], exact, noise, sd, z)
        runs.append(released)
    assert runs[0] != runs[1], "the noise must really be there"
    na, nb, nc, nd = released
    log_or = math.log(na * nd / (nb * nc))
    se = math.sqrt(sum(1 / n + sd**2 / n**2 for n in released))
    z975 = float(stats.norm.ppf(0.975))
    assert rel_close(result["odds_ratio"], math.exp(log_or), SAME)
    assert rel_close(result["statistic"], log_or / se, SAME)
    assert rel_close(result["p_value"], float(2 * stats.norm.sf(abs(log_or / se))), SAME)
    for got, want in zip(result["ci95"], (log_or - z975 * se, log_or + z975 * se), strict=True):
        assert rel_close(got, math.exp(want), SAME)
    woolf = truth.woolf(na, nb, nc, nd)  # the interval ignoring the noise is narrower
    assert result["ci95"][0] < woolf["ci95"][0] and woolf["ci95"][1] < result["ci95"][1]
    assert "noise variance added" in result["method"]
    lines = render(result, "odds_ratio").splitlines()
    assert lines[-1].startswith(f"differentially private, epsilon = {EPSILON:g}")


def test_an_exact_odds_ratio_draws_no_noise(
    inprocess: InProcessFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_noise(monkeypatch)
    result = inprocess.run(ODDS_RATIO, PARAMS).result
    assert "dp" not in result and "noise" not in result["method"]
