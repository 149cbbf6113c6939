"""The local step of the Kaplan-Meier analysis: per group and grid point, one party's
events and censored patients (plaintext, on the party's own data), from its patients'
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


def interval_counts(
    times: Times, groups: int, horizon: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(events, censored, beyond): events[g, i] and censored[g, i] count the group's
    patients whose time is i with and without the event, beyond[g] those whose time is
    after the horizon. Each patient is in exactly one of these cells, and the numbers at
    risk are their sums from the end: at_risk[g, i] = beyond[g] + the events and
    censored at i or later (summed inside MPC: `analysis.numbers_at_risk`)."""
    events = np.zeros((groups, horizon + 1), dtype=np.int64)
    censored = np.zeros((groups, horizon + 1), dtype=np.int64)
    inside = times.time <= horizon
    np.add.at(events, (times.group[inside & times.event], times.time[inside & times.event]), 1)
    np.add.at(censored, (times.group[inside & ~times.event], times.time[inside & ~times.event]), 1)
    beyond = np.bincount(times.group[~inside], minlength=groups)
    return events, censored, beyond


def local_counts(data: PartyData, params: Params) -> list[int]:
    """The party's input: events and censored (curves x grid each), beyond the horizon
    (curves), left out (one cell each patient: sensitivity 1 for the noise), and in an
    exact run per curve its cohort patients whether usable or not (what the plain count
    of the same cohort and group counts: the release rule compares them inside MPC)."""
    times = patient_times(data, params)
    events, censored, beyond = interval_counts(times, len(curves(params)), int(params["horizon"]))
    cohort = times.cohort.tolist() if params.get("epsilon") is None else []
    return [
        *events.ravel().tolist(),
        *censored.ravel().tolist(),
        *beyond.tolist(),
        times.left_out,
        *cohort,
    ]
