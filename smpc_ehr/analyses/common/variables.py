"""The variables analyses read from one party's data: its cohort, numeric columns and
categorical variables, evaluated locally in plaintext.

Why one module: every analysis selects its cohort the same way (the joint count's
parameters: codes, sex, age, as_of, onset window; none given = all patients), and
every categorical variable has a public list of levels that does not depend on the
data, so all parties produce arrays of the same public shape.

Categorical variables: `sex` (F, M, U), `age_band` (0-9 ... 90+, at `as_of`),
`condition` (1 if the patient has one of the codes in the parameter
`condition_codes`, else 0) and any 0/1 numeric column such as `readmit_30d`
(levels 0 and 1; a missing value is missing).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.base import Params
from smpc_ehr.analyses.common.local_checks import UnusableValues
from smpc_ehr.analyses.common.noise import requested_epsilon
from smpc_ehr.data.cohort import AGE_BANDS, CohortFilter, cohort_mask, cohort_members
from smpc_ehr.data.records import SEXES, PartyData
from smpc_ehr.errors import DataError, TemplateError

MAX_ABS_VALUE = 2.0**14
"""Largest magnitude of a numeric value an analysis takes: squares and co-moments stay
below 2^28, inside both backends' fixed-point range (2^31) with room for sums. The
iterates modes and the other analyses pool raw moments, so they keep this limit."""
FULL_MODE_MAX_ABS = 2.0**40
"""The full modes scale each feature by a public power of two before anything enters
MPC (`secret_rows.secret_scaling`), so they take any magnitude below this."""
CONDITION = "condition"
"""The categorical variable 'has one of the codes in `condition_codes`'."""
BINARY_LEVELS: tuple[str, ...] = ("0", "1")


def cohort_filter(params: Params) -> CohortFilter:
    """The cohort the template's parameters describe (no codes: all patients)."""
    age = params.get("age")
    try:
        return CohortFilter(
            codes=tuple(params.get("codes") or ()),
            sex=params.get("sex"),
            age_min=age[0] if age else None,
            age_max=age[1] if age else None,
            as_of=params["as_of"],
            onset_from=params.get("onset_from"),
            onset_to=params.get("onset_to"),
        )
    except ValueError as exc:
        raise TemplateError(str(exc)) from exc


@dataclass(frozen=True)
class Cohort:
    """A party's cohort: its patients' row numbers (ascending) and ages at `as_of`."""

    members: np.ndarray
    ages: np.ndarray
    everyone: bool = False
    """True when the cohort is all of the party's patients (columns need no gathering)."""

    @property
    def size(self) -> int:
        return len(self.members)


def select_cohort(data: PartyData, params: Params) -> Cohort:
    """The patients of this party the analysis covers."""
    members, ages = cohort_members(data, cohort_filter(params))
    return Cohort(members, ages, everyone=len(members) == data.n_patients)


def value_limit(params: Params, exact: float = MAX_ABS_VALUE) -> float:
    """The largest magnitude a run takes: `exact` in an exact run, none with `epsilon`.
    Why: a DP run clips every value into public bounds (or counts it in a public bin or
    grid cell) before anything is shared, so no value can leave the fixed-point range,
    and a refusal for an extreme value would release an exact bit about the data (is
    there such a value in the column?) outside the DP guarantee."""
    return math.inf if requested_epsilon(params) is not None else exact


def numeric_values(
    data: PartyData, name: str, cohort: Cohort, limit: float = MAX_ABS_VALUE
) -> np.ndarray:
    """A numeric column over the cohort (float64, NaN = missing). DataError names a
    column this party lacks (that column only: the party's other columns are its own
    business); values beyond `limit`, too large for fixed point, are `UnusableValues`
    (decided jointly, naming no hospital: `local_checks`)."""
    check_column(name, data.columns(), lambda: data.max_abs[name], limit)
    column = data.column(name)
    return column if cohort.everyone else column.take(cohort.members)


def check_column(
    name: str, columns: tuple[str, ...], max_abs: Callable[[], float], limit: float
) -> None:
    """The checks of `numeric_values`, shared with the push-down (`common.pushdown`):
    the column exists (DataError), and the largest magnitude of the whole column,
    `max_abs()` (NaN if all missing), is within `limit` (UnusableValues)."""
    if name not in columns:
        raise DataError(f"this party has no numeric column {name!r}")
    if max_abs() > limit:  # checked on the whole column, never on the cohort
        raise UnusableValues(
            f"column {name!r} has values beyond +-{limit:g}, too large for the secure "
            "fixed-point arithmetic; store it in larger units"
            + (" or use mode 'full'" if limit < FULL_MODE_MAX_ABS else "")
        )


def check_binary(name: str, binary: bool) -> None:
    """A numeric column used as a 0/1 variable must be 0/1 on the whole column."""
    if not binary:  # the whole column's property, not the cohort's
        raise UnusableValues(f"column {name!r} is used as a 0/1 variable but has other values")


def category_levels(name: str, params: Params) -> tuple[str, ...]:
    """The public levels of a categorical variable (the same at every party)."""
    if name == "sex":
        return SEXES
    if name == "age_band":
        return AGE_BANDS
    if name == CONDITION and not params.get("condition_codes"):
        raise TemplateError("the variable 'condition' needs the parameter condition_codes")
    return BINARY_LEVELS


def category_index(data: PartyData, name: str, cohort: Cohort, params: Params) -> np.ndarray:
    """Each cohort patient's level number (int64; -1 = missing) of a categorical variable."""
    if name == "sex":
        return data.sex_code.take(cohort.members).astype(np.int64)
    if name == "age_band":
        return np.minimum(cohort.ages // 10, len(AGE_BANDS) - 1).astype(np.int64)
    if name == CONDITION:
        category_levels(name, params)  # checks that condition_codes is given
        codes = tuple(params["condition_codes"])
        has = cohort_mask(data, CohortFilter(codes=codes, as_of=params["as_of"]))
        return has.take(cohort.members).astype(np.int64)
    values = numeric_values(data, name, cohort)
    check_binary(name, data.binary[name])
    return np.where(np.isnan(values), -1, values).astype(np.int64)


def cross_table(data: PartyData, params: Params, row: str, col: str) -> tuple[np.ndarray, int]:
    """The cohort's patients per (row level, col level) cell (int64, levels in the
    public order) and how many of them miss either variable (left out of the table)."""
    cohort = select_cohort(data, params)
    r = category_index(data, row, cohort, params)
    c = category_index(data, col, cohort, params)
    shape = (len(category_levels(row, params)), len(category_levels(col, params)))
    known = (r >= 0) & (c >= 0)
    cells = np.bincount(r[known] * shape[1] + c[known], minlength=shape[0] * shape[1])
    return cells.reshape(shape), cohort.size - int(np.count_nonzero(known))
