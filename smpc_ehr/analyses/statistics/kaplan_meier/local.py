"""The local step of the Kaplan-Meier analysis: per group and grid point, one party's
numbers at risk and events (plaintext, on the party's own data), from its patients'
times on the public grid (`common.survival.patient_times`: time zero, the event, the
censoring rule and the rounding). With strata, each (group, stratum) pair is its own
curve.
"""

from __future__ import annotations

import numpy as np

from smpc_ehr.analyses.base import Params
from smpc_ehr.analyses.common.survival import (
    Times,
    group_levels,
    patient_times,
    strata_levels,
)
from smpc_ehr.data.records import PartyData


def curves(params: Params) -> list[tuple[str | None, str | None]]:
    """The released curves, in input order: (group level, stratum level), group-major."""
    return [(g, s) for g in group_levels(params) for s in strata_levels(params)]


def grid_counts(times: Times, groups: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(at_risk, events), each groups x (horizon + 1): at_risk[g, i] counts the group's
    patients with time >= i, events[g, i] its events at time i."""
    points = np.arange(horizon + 1)
    at_risk = np.zeros((groups, horizon + 1), dtype=np.int64)
    events = np.zeros((groups, horizon + 1), dtype=np.int64)
    for g in range(groups):
        mine = times.group == g
        t = np.sort(times.time[mine])
        at_risk[g] = len(t) - np.searchsorted(t, points, side="left")
        hit = times.time[mine & times.event]
        events[g] = np.bincount(hit[hit <= horizon], minlength=horizon + 1)
    return at_risk, events


def local_counts(data: PartyData, params: Params) -> list[int]:
    """The party's input: at_risk (curves x grid), events (curves x grid), left out."""
    times = patient_times(data, params)
    at_risk, events = grid_counts(times, len(curves(params)), int(params["horizon"]))
    return [*at_risk.ravel().tolist(), *events.ravel().tolist(), times.left_out]
