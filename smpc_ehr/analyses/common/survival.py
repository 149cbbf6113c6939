"""Follow-up times of a survival analysis's cohort on a public grid (plaintext, on
one party's own data), shared by Kaplan-Meier and the Cox regression.

Time zero is a patient's earliest onset of the cohort's codes (within the onset window,
if any). The patient's end is the event date if it is known and not after as_of (an
event), else the earlier of last_contact_date and as_of (censored; an unknown last
contact counts as as_of). A time t in days becomes ceil(t / unit) grid units, computed
in integers (a month is 487/16 days, a year 1461/4). Left out: patients without a known
time zero, whose end is before time zero, or (with a group or strata) without its value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.base import Params
from smpc_ehr.analyses.common.variables import (
    Cohort,
    category_index,
    category_levels,
    cohort_filter,
    select_cohort,
)
from smpc_ehr.data.cohort import matching_rows
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import DataError, TemplateError

UNIT_DAYS: dict[str, tuple[int, int]] = {
    "day": (1, 1),
    "week": (7, 1),
    "month": (487, 16),  # 30.4375 days
    "year": (1461, 4),  # 365.25 days
}
"""Days per time unit as a fraction (numerator, denominator), so rounding is exact."""
CONTACT = "last_contact_date"


@dataclass(frozen=True)
class Times:
    """The cohort's usable patients: rounded times, event flags and group levels."""

    time: np.ndarray  # int64 grid units
    event: np.ndarray  # bool
    group: np.ndarray  # int64 curve number: group level x strata + stratum level
    left_out: int
    usable: np.ndarray
    """Which cohort members these patients are (bool over the cohort), for analyses that
    read other columns of the same patients (the Cox regression's features)."""
    cohort: np.ndarray
    """Per curve (group level x strata + stratum level), the cohort's patients with its
    values, usable or not: what the plain count of the same cohort by group counts."""


def group_levels(params: Params) -> tuple[str | None, ...]:
    """The public group levels (one None level without a group)."""
    group = params.get("group")
    return (None,) if not group else category_levels(group, params)


def strata_levels(params: Params) -> tuple[str | None, ...]:
    """The public strata levels (one None level without strata)."""
    strata = params.get("strata")
    return (None,) if not strata else category_levels(strata, params)


def ceil_units(days: np.ndarray, unit: str) -> np.ndarray:
    """ceil(days / unit length) in integers."""
    num, den = UNIT_DAYS[unit]
    return -((-days * den) // num)


def patient_times(data: PartyData, params: Params) -> Times:
    """Each usable cohort patient's rounded time, event flag and group level."""
    event_column = params.get("event") or "death_date"
    for name in (event_column, CONTACT):
        if name not in data.dates:
            raise DataError(
                f"this party has no date column {name!r} in its patients file (or its "
                "source's tables: docs/data.md, 'Survival dates')"
            )
    cohort = select_cohort(data, params)
    rows = matching_rows(data, cohort_filter(params))
    onset = data.cond_onset.take(rows).astype(np.int64)
    known = ~np.isnat(data.cond_onset.take(rows))
    never = np.iinfo(np.int64).max
    start = np.full(data.n_patients, never)
    np.minimum.at(start, data.cond_patient.take(rows)[known], onset[known])
    start = start.take(cohort.members)
    as_of = np.datetime64(params["as_of"], "D").astype(np.int64)
    death = data.dates[event_column].take(cohort.members)
    contact = data.dates[CONTACT].take(cohort.members)
    died = ~np.isnat(death) & (death.astype(np.int64) <= as_of)
    censor = np.where(np.isnat(contact), as_of, np.minimum(contact.astype(np.int64), as_of))
    end = np.where(died, death.astype(np.int64), censor)
    group = _level_index(data, params.get("group"), cohort, params)
    stratum = _level_index(data, params.get("strata"), cohort, params)
    strata = len(strata_levels(params))
    group = np.where(stratum >= 0, group * strata + stratum, -1)
    usable = (start != never) & (end >= start) & (group >= 0)
    days = (end - np.where(usable, start, 0))[usable]
    return Times(
        ceil_units(days, params["time_unit"]),
        died[usable],
        group[usable],
        cohort.size - int(np.count_nonzero(usable)),
        usable,
        np.bincount(
            group[group >= 0], minlength=len(group_levels(params)) * len(strata_levels(params))
        ),
    )


def _level_index(data: PartyData, name: str | None, cohort: Cohort, params: Params) -> np.ndarray:
    """Each cohort patient's level number of `name` (-1 = missing; 0 without `name`)."""
    if not name:
        return np.zeros(cohort.size, dtype=np.int64)
    return category_index(data, name, cohort, params)


MAX_HORIZON = 120
"""At most 121 grid points: the shapes, hence the work inside MPC, stay bounded."""


def validate_cohort_and_grid(params: Params) -> None:
    """The checks of the cohort and the grid: codes are required (time zero is their
    onset), horizon 1 to MAX_HORIZON."""
    if not params.get("codes"):
        raise TemplateError("parameter 'codes' is required: time zero is their onset")
    cohort_filter(params)
    if not 1 <= int(params["horizon"]) <= MAX_HORIZON:
        raise TemplateError(f"parameter 'horizon' must be 1 to {MAX_HORIZON}")
