"""The release rule of Kaplan-Meier is a prefix decided inside MPC: a party that inputs
numbers at risk that grow along the grid gets no value opened after the first grid
point below the threshold. The secure program runs on MPyC's one-party runtime (it
masks and opens as a federation does), so the one party's input is the joint count."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from smpc_ehr.analyses.statistics.kaplan_meier.analysis import KaplanMeierAnalysis
from tests._render import bind
from tests.test_mpyc_sec_param import restore_mpyc_globals, run_alone  # noqa: F401 (a fixture)

KM = KaplanMeierAnalysis()
T = 10


def cells_of(at_risk: list[list[int]], events: list[list[int]]) -> list[int]:
    """The input layout (events, censored, beyond) whose numbers at risk are `at_risk`:
    censored[i] = at_risk[i] - events[i] - at_risk[i + 1] (negative where a party's
    numbers grow), none censored at the horizon, the rest beyond it."""
    censored, beyond = [], []
    for n, d in zip(at_risk, events, strict=True):
        censored += [n[i] - d[i] - n[i + 1] for i in range(len(n) - 1)] + [0]
        beyond.append(n[-1] - d[-1])
    return [*np.ravel(events).tolist(), *censored, *beyond]


def opened(local: list[int], params: Any) -> dict[str, list[int]]:
    """What the secure program opens for this (joint) input."""
    program = KM.secure_program(local, params, T)

    async def run(ops: Any) -> dict[str, list[int]]:
        named = await program(ops)
        return {k: [round(float(v)) for v in await ops.reveal(s)] for k, s in named.items()}

    return run_alone(run)


@pytest.mark.usefixtures("restore_mpyc_globals")
def test_growing_numbers_at_risk_open_nothing_after_the_first_small_point() -> None:
    params = bind("kaplan_meier", codes="E11", group="sex", horizon="5")
    # per sex F, M, U: at risk at 0..5; F dips below 10 at 2 then "grows" again,
    # M is honest, U starts below the threshold and grows to 40
    at_risk = [[30, 12, 4, 50, 50, 50], [40, 30, 20, 11, 10, 9], [3, 40, 40, 40, 40, 40]]
    events = [[1, 2, 1, 5, 5, 5], [2, 3, 1, 1, 0, 1], [0, 4, 4, 4, 4, 4]]
    left_out = 25
    cohort = [40, 40, 3]  # each sex's first number at risk plus 10, 0 and 0 left out
    local = [*cells_of(at_risk, events), left_out, *cohort]
    got = opened(local, params)
    # the rule written out: released while every point so far reaches T
    bits = [int(all(n >= T for n in row[: i + 1])) for row in at_risk for i in range(6)]
    assert bits == [1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert got["released"] == [*bits, 1]
    assert got["counts"] == [b * n for b, n in zip(bits, np.ravel(at_risk), strict=True)] + [25]
    assert got["events"] == [b * d for b, d in zip(bits, np.ravel(events), strict=True)]
    result = KM.finalize({k: np.array(v, dtype=float) for k, v in got.items()}, params, T)
    f, m, u = result["groups"]
    assert f["at_risk"] == [30, 12, None, None, None, None]
    assert m["at_risk"] == [40, 30, 20, 11, 10, None]
    assert u["at_risk"] == [None] * 6 and u["events"] == [None] * 6


@pytest.mark.usefixtures("restore_mpyc_globals")
def test_a_group_whose_left_out_patients_are_few_is_suppressed_whole() -> None:
    """The subtraction attack: the plain count of the same cohort by sex minus a curve's
    number at risk at time 0 gives that sex's patients left out (no time zero, or an end
    before it). A curve is released only if that difference is 0 or reaches T."""
    params = bind("kaplan_meier", codes="E11", group="sex", horizon="2")
    at_risk = [[30, 20, 15], [40, 30, 20], [50, 45, 40]]
    events = [[1, 2, 1], [2, 3, 1], [0, 4, 4]]
    cohort = [33, 40, 60]  # F: 3 left out (1..T-1: barred), M: none, U: exactly T
    local = [*cells_of(at_risk, events), 13, *cohort]
    got = opened(local, params)
    assert got["released"] == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert got["counts"] == [0, 0, 0, 40, 30, 20, 50, 45, 40, 13]
    assert got["events"] == [0, 0, 0, 2, 3, 1, 0, 4, 4]
    result = KM.finalize({k: np.array(v, dtype=float) for k, v in got.items()}, params, T)
    f, m, u = result["groups"]
    assert f["at_risk"] == [None] * 3 and f["survival"] == [None] * 3
    assert m["at_risk"] == [40, 30, 20] and u["at_risk"] == [50, 45, 40]
    for gap in range(1, T):  # every small difference bars the curve, 0 and T do not
        probe = [*local[:21], 13, 30 + gap, 40, 60]
        assert opened(probe, params)["released"][:3] == [0, 0, 0], gap
    assert opened([*local[:21], 13, 30 + T, 40, 60], params)["released"][:3] == [1, 1, 1]
