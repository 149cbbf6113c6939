"""Kaplan-Meier end to end: on the in-process federation (fast tier) and on a real
3-party MPyC federation, against lifelines on the pooled plaintext files
(tests/_km_truth.py), with a group; late grid points with small risk sets are null."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifelines import KaplanMeierFitter
from lifelines.statistics import multivariate_logrank_test

from smpc_ehr.client import Client
from smpc_ehr.local.federation import LocalFederation
from smpc_ehr.testing.federation import InProcessFederation
from tests._km_truth import grid, pooled_times
from tests._render import render
from tests._stats_jobs import THRESHOLD, template

KM = template("kaplan_meier")
PARAMS = {"codes": "E11,I50", "group": "sex", "time_unit": "year", "horizon": "30"}
TOL = 1e-9


def check_against_lifelines(result: dict[str, Any], data: Path) -> None:
    """Counts exactly, survival and intervals within TOL, log-rank as lifelines."""
    truth = pooled_times(data, ("E11", "I50"), "year", "sex")
    assert result["left_out"] == sum(truth.attrs["left_out"].values())
    last = {}
    for g in result["groups"]:
        mine = truth[truth["group"] == g["group"]]
        at_risk, events = grid(mine, 30)
        shown = int(np.sum(at_risk >= THRESHOLD))
        cohort = sum(c.get(g["group"], 0) for c in truth.attrs["cohort"].values())
        if 1 <= cohort - at_risk[0] < THRESHOLD:  # the subtraction rule bars the curve
            shown = 0
        assert g["at_risk"] == [*at_risk[:shown].tolist(), *[None] * (31 - shown)], g["group"]
        assert g["events"] == [*events[:shown].tolist(), *[None] * (31 - shown)]
        if not shown:
            continue
        fit = KaplanMeierFitter().fit(mine["time"], mine["event"])
        points = list(range(shown))
        ci = fit.confidence_interval_.reindex(points, method="ffill").fillna(1.0).to_numpy()
        s = fit.survival_function_at_times(points).to_numpy()
        np.testing.assert_allclose(g["survival"][:shown], s, rtol=0, atol=TOL)
        np.testing.assert_allclose(g["ci_low"][:shown], ci[:, 0], rtol=0, atol=TOL)
        np.testing.assert_allclose(g["ci_high"][:shown], ci[:, 1], rtol=0, atol=TOL)
        last[g["group"]] = shown - 1
    assert set(last) == {"F", "M"}  # U is too small: all null
    assert all(n is None for n in result["groups"][2]["at_risk"])
    assert max(last.values()) < 30, "late grid points with small risk sets are null"
    stop = min(last.values())
    both = truth[truth["group"].isin(["F", "M"])]
    t, e = both["time"].to_numpy(), both["event"].to_numpy(bool)
    want = multivariate_logrank_test(np.minimum(t, stop), both["group"], e & (t <= stop))
    test = result["logrank"]
    assert test["df"] == 1 and test["last_time"] == stop
    assert abs(test["chi2"] - want.test_statistic) < 1e-7 * max(1.0, want.test_statistic)
    assert abs(test["p"] - want.p_value) < 1e-9
    assert want.p_value < 1e-3, "the planted hazard ratio (1.8) shows"


def test_kaplan_meier_in_process(inprocess: InProcessFederation, data3: Path) -> None:
    result = inprocess.run(KM, PARAMS).result
    check_against_lifelines(result, data3)
    text = render(result, "kaplan_meier")
    assert "group F" in text and "log-rank test: chi2 =" in text and "suppressed" in text


def test_plain_count_minus_the_number_at_risk_never_gives_a_small_count(
    inprocess: InProcessFederation,
) -> None:
    """The attack: the plain count of the same cohort by sex, minus each released
    curve's number at risk at time 0, gives that sex's left-out patients; the rule
    (unit test in test_kaplan_meier_prefix.py) keeps that difference 0 or >= T. Here on
    the federation, with the count's cohort checked to be the curves' one."""
    km = inprocess.run(KM, PARAMS).result
    count = inprocess.run(template("rare_disease_count"), {"codes": "E11,I50", "by": "sex"})
    plain = {c["sex"]: c["count"] for c in count.result["cells"]}
    released = [g for g in km["groups"] if g["at_risk"][0] is not None]
    assert {g["group"] for g in released} == {"F", "M"}
    for g in released:
        gap = plain[g["group"]] - g["at_risk"][0]
        assert gap == 0 or gap >= THRESHOLD, (g["group"], gap)
    shown = [c for c in plain.values() if c is not None]
    assert sum(shown) - sum(g["at_risk"][0] for g in released) >= km["left_out"]


@pytest.mark.parametrize("backend", ["mpyc", "crypten"])
def test_kaplan_meier_on_a_real_federation(
    fed3: LocalFederation, data3: Path, backend: str
) -> None:
    with Client.from_state(fed3.state_dir) as client:
        job = client.run(KM, PARAMS, backend=backend)
    assert job.backend == backend
    check_against_lifelines(job.result, data3)  # counts are exact on both backends
