"""Cohort filters and joint-count cells, evaluated locally on one party's plaintext data.

A cohort is the set of distinct patients that have at least one matching condition row
(optionally with onset inside a window) and pass the sex and age filters. Counts are
split into cells over fixed strata whose layout does not depend on the data, so every
party produces vectors of the same shape that can be added inside MPC.

Ages are exact full years at ``as_of``. ``as_of`` defaults to the fixed DEFAULT_AS_OF,
never to today, so that a study re-run gives the same answer and all parties agree.
A patient born after ``as_of`` is in no cohort at that date.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from smpc_ehr.data.codes import match_table, normalize_pattern
from smpc_ehr.data.records import SEXES, PartyData, date_key

DEFAULT_AS_OF = date(2026, 1, 1)
AGE_BANDS: tuple[str, ...] = (*(f"{lo}-{lo + 9}" for lo in range(0, 90, 10)), "90+")
STRATA: dict[str, tuple[str, ...]] = {"sex": SEXES, "age_band": AGE_BANDS}


def _as_date(value: object, name: str) -> date:
    """Accept a date (a datetime is cut to its date) or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{name} must be a date (or 'YYYY-MM-DD'), got {value!r}")


def _as_age(value: object, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative whole number of years, got {value!r}")
    return value


@dataclass(frozen=True)
class CohortFilter:
    """Which patients a query counts; validated and normalised on construction.

    ``codes`` are ICD-10-CM patterns (a code selects itself and its sub-codes; an empty
    tuple means all patients). Ages and the onset window are inclusive. When an onset
    window is given, only condition rows with a known onset inside it match.
    """

    codes: tuple[str, ...] = ()
    sex: str | None = None
    age_min: int | None = None
    age_max: int | None = None
    as_of: date = DEFAULT_AS_OF
    onset_from: date | None = None
    onset_to: date | None = None

    def __post_init__(self) -> None:
        if isinstance(self.codes, str):
            raise ValueError("codes must be a tuple of patterns, not a single string")
        codes = tuple(sorted({normalize_pattern(c) for c in self.codes}))
        object.__setattr__(self, "codes", codes)
        if self.sex is not None:
            sex = str(self.sex).strip().upper()
            if sex not in SEXES:
                raise ValueError(f"sex must be one of {', '.join(SEXES)}, got {self.sex!r}")
            object.__setattr__(self, "sex", sex)
        lo, hi = _as_age(self.age_min, "age_min"), _as_age(self.age_max, "age_max")
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"age_min {lo} is greater than age_max {hi}")
        object.__setattr__(self, "as_of", _as_date(self.as_of, "as_of"))
        window = []
        for name in ("onset_from", "onset_to"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _as_date(value, name))
                window.append(name)
        if window and not self.codes:
            raise ValueError("an onset window needs codes: it restricts which diagnoses match")
        if self.onset_from and self.onset_to and self.onset_from > self.onset_to:
            raise ValueError(f"onset_from {self.onset_from} is after onset_to {self.onset_to}")


def age_in_years(birth: np.ndarray, as_of: date) -> np.ndarray:
    """Exact age in completed years at ``as_of`` (int64; negative if born later).

    Someone born on 29 February becomes a year older on 1 March in non-leap years.
    """
    return _ages(date_key(birth), as_of)


def _ages(birth_key: np.ndarray, as_of: date) -> np.ndarray:
    as_of_key = as_of.year * 10000 + as_of.month * 100 + as_of.day
    return (as_of_key - birth_key) // 10000


def cohort_mask(data: PartyData, f: CohortFilter) -> np.ndarray:
    """Boolean mask over the party's patients: who is in the cohort."""
    mask = np.zeros(data.n_patients, dtype=bool)
    mask[_select(data, f)[0]] = True
    return mask


def cohort_members(data: PartyData, f: CohortFilter) -> tuple[np.ndarray, np.ndarray]:
    """The cohort's patient numbers (ascending) and their ages in years at ``f.as_of``."""
    return _select(data, f)


def _select(data: PartyData, f: CohortFilter) -> tuple[np.ndarray, np.ndarray]:
    """The cohort's patient numbers (ascending) and their ages (reused for age bands).

    With codes, only the patients having a matching condition are looked at, so a
    rare-disease query costs little however large the hospital.
    """
    if f.codes:
        chosen = _with_condition(data, f)
        birth, sex = data.birth_key.take(chosen), data.sex_code.take(chosen)
    else:  # everyone: no gathering needed
        birth, sex = data.birth_key, data.sex_code
    age = _ages(birth, f.as_of)
    keep = age >= 0
    if f.age_min is not None:
        keep &= age >= f.age_min
    if f.age_max is not None:
        keep &= age <= f.age_max
    if f.sex is not None:
        keep &= sex == SEXES.index(f.sex)
    selected = chosen[keep] if f.codes else np.flatnonzero(keep)
    return selected, age[keep]


def _with_condition(data: PartyData, f: CohortFilter) -> np.ndarray:
    """Patients (ascending numbers) with a condition row matching codes and onset window."""
    has = np.zeros(data.n_patients, dtype=bool)
    has[data.cond_patient.take(matching_rows(data, f))] = True
    return np.flatnonzero(has)


def matching_rows(data: PartyData, f: CohortFilter) -> np.ndarray:
    """The condition rows matching the codes and onset window (what puts a patient in
    the cohort; survival analyses take time zero from their onsets)."""
    codes = np.flatnonzero(match_table(data.code_table, f.codes))
    starts = data.code_starts
    rows = np.concatenate(
        [data.rows_by_code[starts[c] : starts[c + 1]] for c in codes] or [np.empty(0, np.intp)]
    )
    if f.onset_from is not None or f.onset_to is not None:
        onset = data.cond_onset.take(rows)
        inside = np.ones(len(rows), dtype=bool)
        if f.onset_from is not None:
            inside &= onset >= np.datetime64(f.onset_from, "D")
        if f.onset_to is not None:
            inside &= onset <= np.datetime64(f.onset_to, "D")
        rows = rows[inside]
    return rows


def cell_labels(by: tuple[str, ...]) -> list[dict[str, str]]:
    """Labels of the cells for stratification ``by``, in row-major order (data-independent)."""
    _check_by(by)
    return [
        dict(zip(by, combo, strict=True)) for combo in itertools.product(*(STRATA[v] for v in by))
    ]


def _check_by(by: tuple[str, ...]) -> None:
    unknown = [v for v in by if v not in STRATA]
    if unknown:
        raise ValueError(f"unknown stratum {unknown[0]!r}; choose from {', '.join(STRATA)}")
    if len(set(by)) != len(by):
        raise ValueError(f"stratum listed twice in {by}")


def count_cells(
    data: PartyData, f: CohortFilter, by: tuple[str, ...] = ()
) -> tuple[list[dict[str, str]], np.ndarray]:
    """Distinct cohort patients per cell of ``by`` (labels, int64 counts in label order)."""
    labels = cell_labels(by)
    _, cell = member_cells(data, f, by)
    return labels, np.bincount(cell, minlength=len(labels)).astype(np.int64)


def member_cells(
    data: PartyData, f: CohortFilter, by: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """The cohort's patient numbers (ascending) and each one's cell of ``by`` (its
    position in `cell_labels(by)`; 0 for all without ``by``)."""
    selected, age = _select(data, f)
    cell = np.zeros(len(selected), dtype=np.int64)
    for var in by:
        if var == "sex":
            index = data.sex_code.take(selected).astype(np.int64)
        else:
            index = np.minimum(age // 10, len(AGE_BANDS) - 1)
        cell = cell * len(STRATA[var]) + index
    return selected, cell
