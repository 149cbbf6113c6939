"""Synthetic death and last-contact dates with a known hazard, for survival analyses.

Each patient with a dated diagnosis is followed from the latest onset of any of their
diagnoses (so every recorded diagnosis falls within the follow-up, as in a real record;
an analysis's time zero, the earliest onset of its cohort's codes, is on or before it):
death comes after an exponential time with the hazard `BASE_HAZARD_PER_YEAR` (times
`MALE_HAZARD_RATIO` for men, and times `HBA1C_HAZARD_RATIO` per unit of hba1c above
`HBA1C_CENTRE`; a missing hba1c counts as the centre), so a Cox regression from the
latest diagnosis recovers both hazard ratios (from a cohort's earlier time zero,
immortal time pulls them towards 1); follow-up ends after a uniform time up to
`MAX_FOLLOW_UP_YEARS` (loss to follow-up) or at the as-of date, whichever is first. A
death before the end of follow-up is recorded as `death_date` (and is the last contact);
otherwise `death_date` is empty and `last_contact_date` is the end of follow-up. A few
last contacts are unknown (empty). Patients without a dated diagnosis get neither date.

Why a separate random stream (seeded from the federation's seed and the party's
position): every other column keeps the values it had for the same seed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

BASE_HAZARD_PER_YEAR = 0.04
MALE_HAZARD_RATIO = 1.8
HBA1C_HAZARD_RATIO = 1.3
"""Per unit (percentage point) of hba1c: the planted effect the Cox tests recover."""
HBA1C_CENTRE = 6.0
MAX_FOLLOW_UP_YEARS = 20.0
LAST_CONTACT_MISSING_RATE = 0.02
DAYS_PER_YEAR = 365.25
STREAM = 18
"""Mixed into the seed of the survival stream (any constant distinct from the others)."""


def survival_rng(seed: int, party_index: int) -> np.random.Generator:
    """The party's own stream for the survival dates, independent of all others."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, STREAM, party_index])))


def last_onsets(n: int, cond_index: np.ndarray, onset: np.ndarray) -> np.ndarray:
    """Each patient's latest known onset date (NaT if none)."""
    days = onset.astype("datetime64[D]").astype(np.int64)
    known = ~np.isnat(onset)
    never = np.iinfo(np.int64).min
    last = np.full(n, never)
    np.maximum.at(last, cond_index[known], days[known])
    out = last.astype("datetime64[D]")
    out[last == never] = np.datetime64("NaT")
    return out


def event_dates(
    rng: np.random.Generator,
    start: np.ndarray,
    male: np.ndarray,
    as_of: np.datetime64,
    hba1c: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(death_date, last_contact_date) as datetime64[D] with NaT where empty."""
    n = len(start)
    rate = BASE_HAZARD_PER_YEAR * np.where(male, MALE_HAZARD_RATIO, 1.0)
    if hba1c is not None:
        excess = np.nan_to_num(np.asarray(hba1c, dtype=float) - HBA1C_CENTRE, nan=0.0)
        rate = rate * HBA1C_HAZARD_RATIO**excess
    death_years = rng.exponential(1.0, n) / rate
    follow_years = rng.uniform(0.0, MAX_FOLLOW_UP_YEARS, n)
    unknown_contact = rng.random(n) < LAST_CONTACT_MISSING_RATE
    death = start + np.floor(death_years * DAYS_PER_YEAR).astype("timedelta64[D]")
    end = np.minimum(start + np.floor(follow_years * DAYS_PER_YEAR).astype("timedelta64[D]"), as_of)
    died = ~np.isnat(start) & (death <= end)
    death_date = np.where(died, death, np.datetime64("NaT"))
    last_contact = np.where(died, death, end)
    last_contact[unknown_contact | np.isnat(start)] = np.datetime64("NaT")
    return death_date.astype("datetime64[D]"), last_contact.astype("datetime64[D]")


def with_event_dates(
    patients: pa.Table, conditions: pa.Table, rng: np.random.Generator, as_of: np.datetime64
) -> pa.Table:
    """`patients` with the columns death_date and last_contact_date appended."""
    ids = patients.column("patient_id").to_pylist()
    position = {pid: i for i, pid in enumerate(ids)}
    cond_index = np.asarray([position[p] for p in conditions.column("patient_id").to_pylist()])
    onset = np.asarray(
        conditions.column("onset_date").to_numpy(zero_copy_only=False), dtype="datetime64[D]"
    )
    start = last_onsets(len(ids), cond_index.astype(np.int64), onset)
    male = np.asarray(patients.column("sex").to_pylist()) == "M"
    hba1c = None
    if "hba1c" in patients.column_names:
        hba1c = np.asarray(patients.column("hba1c").to_numpy(zero_copy_only=False), dtype=float)
    death, contact = event_dates(rng, start, male, as_of, hba1c)
    for name, values in (("death_date", death), ("last_contact_date", contact)):
        patients = patients.append_column(name, pa.array(values, mask=np.isnat(values)))
    return patients
