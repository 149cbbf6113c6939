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
    local = [*np.ravel(at_risk).tolist(), *np.ravel(events).tolist(), left_out]
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
