"""Kaplan-Meier tidy rows from a real finalised result (the opened values of the secure
program for hand-made joint counts, through `release`): every released number once,
suppressed points marked, the median and the log-rank test as the result has them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from smpc_ehr.analyses.statistics.kaplan_meier.analysis import KaplanMeierAnalysis
from tests._render import T, bind

KM = KaplanMeierAnalysis()
AT_RISK = [[40, 38, 30, 21, 12, 9], [35, 30, 22, 14, 11, 10], [5, 4, 3, 2, 1, 0]]
EVENTS = [[2, 3, 4, 5, 2, 1], [5, 6, 7, 3, 1, 0], [1, 1, 1, 1, 1, 0]]


def released_result() -> dict[str, Any]:
    """A finalised grouped result: F released to time 4, M to time 4 (10 < 11 at 5),
    U nowhere; left out 30."""
    counts = np.concatenate([np.ravel(AT_RISK), [30]])
    bits = np.array([int(all(n >= T for n in row[: i + 1])) for row in AT_RISK for i in range(6)])
    bits = np.append(bits, 1)
    opened = [*bits, *(bits * counts), *(bits[:-1] * np.ravel(EVENTS))]
    params = bind("kaplan_meier", codes="E11", group="sex", horizon="5")
    return KM.release([float(v) for v in opened], params, T)


def test_rows_hold_every_released_number_once() -> None:
    result = released_result()
    rows = KM.tidy(result)
    keyed = {(r["group"], r["variable"], r["term"], r["statistic"]): r for r in rows}
    assert len(keyed) == len(rows)
    f = keyed[("sex=F", "death_date", "time=3", "at_risk")]
    assert f["value"] == 21 and f["suppressed"] is False
    assert keyed[("sex=F", "death_date", "time=3", "events")]["value"] == 5
    surv = keyed[("sex=F", "death_date", "time=3", "survival")]
    want = np.prod([1 - d / n for d, n in zip(EVENTS[0][:4], AT_RISK[0][:4], strict=True)])
    assert surv["value"] == pytest.approx(want, abs=1e-12)
    g = result["groups"][0]
    assert (surv["lower"], surv["upper"]) == (g["ci_low"][3], g["ci_high"][3])
    assert surv["lower"] < surv["value"] < surv["upper"]
    for stat in ("at_risk", "events", "survival"):
        hidden = keyed[("sex=F", "death_date", "time=5", stat)]
        assert hidden["suppressed"] is True and hidden["value"] is None
        assert hidden.get("lower") is None
    u = [r for r in rows if r["group"] == "sex=U"]
    assert len(u) == 3 * 6 + 1 and all(r["suppressed"] and r["value"] is None for r in u)
    for sex, g in zip(("F", "M"), result["groups"], strict=False):
        median = keyed[(f"sex={sex}", "death_date", "", "median")]
        assert median["value"] == g["median"] and not median["suppressed"]
        assert [median["lower"], median["upper"]] == g["median_ci"]
    test = result["logrank"]
    assert test is not None
    for stat, key in (("chi2", "chi2"), ("df", "df"), ("p_value", "p")):
        assert keyed[("", "death_date", "logrank", stat)]["value"] == test[key]
    assert keyed[("", "death_date", "", "left_out")]["value"] == 30
    assert len(rows) == 3 * (3 * 6 + 1) + 3 + 1


def test_without_a_group_no_test_rows_and_an_empty_group() -> None:
    counts = [40, 30, 20, 12, 9, 8]
    bits = [1, 1, 1, 1, 0, 0]
    opened = [*bits, 0, *(b * n for b, n in zip(bits, counts, strict=True)), 0, 2, 3, 1, 1, 0, 0]
    result = KM.release(
        [float(v) for v in opened], bind("kaplan_meier", codes="E11", horizon="5"), T
    )
    rows = KM.tidy(result)
    assert {r["group"] for r in rows} == {""}
    assert not [r for r in rows if r["term"] == "logrank"]
    assert [r["value"] for r in rows if r["statistic"] == "at_risk"] == [40, 30, 20, 12, None, None]
    left = [r for r in rows if r["statistic"] == "left_out"]
    assert left[0]["suppressed"] is True  # 0 < T
