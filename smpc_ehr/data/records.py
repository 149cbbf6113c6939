"""One party's patient records in memory, as column arrays ready for vectorised queries.

The loader builds this once; cohort queries then only index arrays. Derived arrays that
every query needs (the distinct-code table with each row's index into it, a date key
for exact ages, sex as a small integer) are computed here once, not on every query.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

SEXES: tuple[str, ...] = ("F", "M", "U")


def date_key(dates: np.ndarray) -> np.ndarray:
    """Encode datetime64[D] dates as int64 ``yyyymmdd`` so full years are a floor division.

    The calendar arithmetic runs once per distinct day in the range (a lookup table),
    not once per patient: a million birth dates span only some 40,000 days.
    """
    d = np.asarray(dates, dtype="datetime64[D]")
    if np.isnat(d).any():
        raise ValueError("date_key needs known dates, found NaT")
    days = d.astype(np.int64)
    if days.size == 0:
        return days
    lo = int(days.min())
    return _civil_key(np.arange(lo, int(days.max()) + 1, dtype=np.int64))[days - lo]


def _civil_key(days: np.ndarray) -> np.ndarray:
    """yyyymmdd of days since 1970-01-01 (H. Hinnant's civil-from-days algorithm)."""
    z = days + 719468
    era = np.floor_divide(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year * 10000 + month * 100 + day


def _max_abs(values: np.ndarray) -> float:
    """max |x| over the non-missing values (fmax and fmin skip NaN); NaN if none."""
    if values.size == 0:
        return float("nan")
    return float(max(np.fmax.reduce(values), -np.fmin.reduce(values)))


def _is_binary(values: np.ndarray) -> bool:
    """Whether every non-missing value is 0 or 1 (True when all are missing)."""
    known = values[~np.isnan(values)]
    return bool(np.all((known == 0) | (known == 1)))


@dataclass(frozen=True, eq=False)
class PartyData:
    """A party's validated patients and condition rows (one array per column).

    ``cond_patient`` indexes into the patient arrays; ``code_table`` holds the distinct
    codes (sorted) and ``cond_code_index`` each condition row's position in it, so a code
    pattern is matched once per distinct code rather than once per row.
    """

    patient_ids: np.ndarray
    sex: np.ndarray
    birth_date: np.ndarray
    features: Mapping[str, np.ndarray]
    outcomes: Mapping[str, np.ndarray]
    cond_patient: np.ndarray
    code_table: np.ndarray
    cond_code_index: np.ndarray
    cond_onset: np.ndarray
    link_id: np.ndarray | None = None
    """Each patient's linkage identifier as the source holds it (text, "" where the
    patient has none; docs/data.md, "Linkage"), or None when the source has none. The
    party replaces it by `link_token` at start (`linkage.with_link_tokens`)."""
    link_token: np.ndarray | None = None
    """Each patient's keyed link token (uint64, 0 where the patient has no link id), or
    None: what a deduplicated count inputs, never the identifier itself."""
    dates: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Optional per-patient date columns of the patients file (`loader.DATE_COLUMNS`:
    death_date, last_contact_date) as datetime64[D], NaT where unknown. Kept as dates,
    never numeric features: survival analyses measure times between them."""
    birth_key: np.ndarray = field(init=False, repr=False)
    sex_code: np.ndarray = field(init=False, repr=False)
    rows_by_code: np.ndarray = field(init=False, repr=False)
    """Condition row numbers grouped by code: those of code c are
    rows_by_code[code_starts[c]:code_starts[c + 1]] (an inverted index, so a query
    for a rare code touches only its own rows)."""
    code_starts: np.ndarray = field(init=False, repr=False)
    max_abs: Mapping[str, float] = field(init=False, repr=False)
    """Per numeric column, the largest magnitude of its values (NaN if all missing),
    found once at load so that analyses can check their ranges without a pass."""
    binary: Mapping[str, bool] = field(init=False, repr=False)
    """Per numeric column, whether all its values are 0 or 1. Decided on the whole
    column, never on a query's cohort: a refusal that depended on the cohort would
    tell whether a patient with another value is in it."""

    def __post_init__(self) -> None:
        n, m = len(self.patient_ids), len(self.cond_patient)
        per_patient = {"sex": self.sex, "birth_date": self.birth_date}
        per_patient.update(self.features)
        per_patient.update(self.outcomes)
        per_patient.update(self.dates)
        for name, links in (("link_id", self.link_id), ("link_token", self.link_token)):
            if links is not None:
                per_patient[name] = links
        for name, arr in per_patient.items():
            if len(arr) != n:
                raise ValueError(f"column {name!r} has {len(arr)} values for {n} patients")
        for name, arr in (("cond_code_index", self.cond_code_index), ("onset", self.cond_onset)):
            if len(arr) != m:
                raise ValueError(f"{name} has {len(arr)} values for {m} condition rows")
        for name, idx, bound in (
            ("cond_patient", self.cond_patient, n),
            ("cond_code_index", self.cond_code_index, len(self.code_table)),
        ):
            if m and (idx.min() < 0 or idx.max() >= bound):
                raise ValueError(f"{name} holds an index outside 0..{bound - 1}")
        overlap = set(self.features) & set(self.outcomes)
        if overlap:
            raise ValueError(f"columns {sorted(overlap)} are both feature and outcome")
        # Read-only views: the data is shared by every query and must not drift.
        object.__setattr__(self, "features", MappingProxyType(dict(self.features)))
        object.__setattr__(self, "outcomes", MappingProxyType(dict(self.outcomes)))
        for name, arr in self.dates.items():
            if arr.dtype != np.dtype("datetime64[D]"):
                raise ValueError(f"date column {name!r} must be datetime64[D], got {arr.dtype}")
        object.__setattr__(self, "dates", MappingProxyType(dict(self.dates)))
        object.__setattr__(self, "birth_key", date_key(self.birth_date))
        sex_code = np.searchsorted(np.asarray(SEXES), self.sex).astype(np.int8)
        if len(self.sex) and not np.array_equal(np.asarray(SEXES)[sex_code], self.sex):
            raise ValueError(f"sex values must be one of {SEXES}")
        object.__setattr__(self, "sex_code", sex_code)
        order = np.argsort(self.cond_code_index, kind="stable")
        starts = np.searchsorted(
            self.cond_code_index.take(order), np.arange(len(self.code_table) + 1)
        )
        object.__setattr__(
            self,
            "max_abs",
            MappingProxyType(
                {
                    name: _max_abs(values)
                    for name, values in (*self.features.items(), *self.outcomes.items())
                }
            ),
        )
        object.__setattr__(
            self,
            "binary",
            MappingProxyType(
                {
                    name: _is_binary(values)
                    for name, values in (*self.features.items(), *self.outcomes.items())
                }
            ),
        )
        object.__setattr__(self, "rows_by_code", order)
        object.__setattr__(self, "code_starts", starts)
        arrays = [self.patient_ids, self.sex, self.birth_date, self.cond_patient, self.sex_code]
        arrays += [self.code_table, self.cond_code_index, self.cond_onset, self.birth_key]
        arrays += [self.rows_by_code, self.code_starts]
        arrays += [links for links in (self.link_id, self.link_token) if links is not None]
        for arr in [
            *arrays,
            *self.features.values(),
            *self.outcomes.values(),
            *self.dates.values(),
        ]:
            arr.flags.writeable = False

    @property
    def n_patients(self) -> int:
        """Number of patients (rows of patients.csv)."""
        return len(self.patient_ids)

    @property
    def n_conditions(self) -> int:
        """Number of condition rows (duplicates included)."""
        return len(self.cond_patient)

    @property
    def cond_code(self) -> np.ndarray:
        """The code of each condition row (expanded from the distinct-code table)."""
        return self.code_table[self.cond_code_index]

    def columns(self, kind: str | None = None) -> tuple[str, ...]:
        """Names of numeric columns: kind ``"feature"``, ``"outcome"`` or None for both."""
        if kind is None:
            return (*self.features, *self.outcomes)
        if kind == "feature":
            return tuple(self.features)
        if kind == "outcome":
            return tuple(self.outcomes)
        raise ValueError(f"kind must be 'feature', 'outcome' or None, got {kind!r}")

    def column(self, name: str) -> np.ndarray:
        """The float64 values (NaN = missing) of a feature or outcome column."""
        if name in self.features:
            return self.features[name]
        if name in self.outcomes:
            return self.outcomes[name]
        raise KeyError(f"no numeric column {name!r}")  # not the others: the party's schema


def persons_and_conditions(
    patient_ids: np.ndarray,
    sex: np.ndarray,
    birth_date: np.ndarray,
    cond_patient: np.ndarray,
    codes: np.ndarray,
    cond_onset: np.ndarray,
    link_id: np.ndarray | None = None,
) -> PartyData:
    """PartyData without features or outcomes, from one code per condition row (the
    distinct-code table is made here): what the database and FHIR sources read."""
    code_table, code_index = np.unique(np.asarray(codes).astype(str), return_inverse=True)
    return PartyData(
        patient_ids=patient_ids,
        sex=sex,
        birth_date=birth_date,
        features={},
        outcomes={},
        cond_patient=cond_patient,
        code_table=code_table,
        cond_code_index=code_index.astype(np.intp),
        cond_onset=cond_onset,
        link_id=link_id,
    )
