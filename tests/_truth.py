"""Plaintext truth for joint counts: pandas on the pooled files, independent of smpc_ehr."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import pandas as pd

SEXES = ("F", "M", "U")
BANDS = (*(f"{10 * i}-{10 * i + 9}" for i in range(9)), "90+")


def ages(birth_dates: pd.Series, as_of: str | dt.date) -> pd.Series:
    """Completed years at `as_of` (a birthday on the reference day counts)."""
    ref = dt.date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
    born = pd.to_datetime(birth_dates)
    before_birthday = (born.dt.month > ref.month) | (
        (born.dt.month == ref.month) & (born.dt.day > ref.day)
    )
    return ref.year - born.dt.year - before_birthday.astype(int)


def pooled(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All parties' patients and conditions in two frames."""
    folders = sorted(p for p in data.iterdir() if (p / "patients.csv").exists())
    patients = pd.concat(
        [
            pd.read_csv(f / "patients.csv", dtype={"patient_id": str}).assign(site=f.name)
            for f in folders
        ]
    )
    conditions = pd.concat(
        [
            pd.read_csv(f / "conditions.csv", dtype={"patient_id": str, "code": str}).assign(
                site=f.name
            )
            for f in folders
        ]
    )
    return patients, conditions


def truth_counts(
    data: Path,
    codes: list[str],
    by: tuple[str, ...] = (),
    sex: str | None = None,
    age: tuple[int, int] | None = None,
    as_of: str = "2026-01-01",
    onset: tuple[str, str] | None = None,
) -> dict[tuple[str, ...], int]:
    """Distinct patients per cell (keys in the order of `by`), zero cells included."""
    patients, conditions = pooled(data)
    prefixes = tuple(c.upper().rstrip("*").rstrip(".") for c in codes)
    hits = conditions[conditions["code"].str.startswith(prefixes)]
    if onset is not None:
        when = pd.to_datetime(hits["onset_date"], errors="coerce")
        hits = hits[(when >= pd.Timestamp(onset[0])) & (when <= pd.Timestamp(onset[1]))]
    cases = hits[["site", "patient_id"]].drop_duplicates()
    cohort = patients.merge(cases, on=["site", "patient_id"])
    cohort = cohort.assign(age=ages(cohort["birth_date"], as_of))
    cohort = cohort[cohort["age"] >= 0]  # not yet born on the reference date
    if sex is not None:
        cohort = cohort[cohort["sex"] == sex]
    if age is not None:
        cohort = cohort[(cohort["age"] >= age[0]) & (cohort["age"] <= age[1])]
    cohort = cohort.assign(age_band=[BANDS[min(a // 10, 9)] for a in cohort["age"]])
    levels = {"sex": SEXES, "age_band": BANDS}
    counts = {combo: 0 for combo in itertools.product(*(levels[b] for b in by))}
    if by:
        for key, n in cohort.groupby(list(by)).size().items():
            counts[key if isinstance(key, tuple) else (key,)] = int(n)
    else:
        counts[()] = len(cohort)
    return counts


def released_with_complement(counts: np.ndarray, threshold: int) -> np.ndarray:
    """Which cells of one partition are released under complementary suppression: those
    of at least the threshold, less the first smallest of them if any cell is hidden."""
    shown = np.asarray(counts) >= threshold
    if not shown.all() and shown.any():
        shown[np.flatnonzero(shown)[np.argmin(np.asarray(counts)[shown])]] = False
    return shown


def released_tenths(
    rows: np.ndarray, events: np.ndarray, threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which calibration tenths' rows and events are released: each half (tenths 0-4,
    5-9) with complementary suppression; events also need threshold non-events."""
    rows, events = np.asarray(rows), np.asarray(events)
    events_reach = (events >= threshold) & (rows - events >= threshold)
    shown_rows, shown_events = np.zeros(10, bool), np.zeros(10, bool)
    for half in (slice(0, 5), slice(5, 10)):
        shown_rows[half] = released_with_complement(rows[half], threshold)
        reach = events_reach[half]
        shown = reach.copy()
        if not reach.all() and reach.any():
            candidates = np.flatnonzero(reach)
            shown[candidates[np.argmin(events[half][candidates])]] = False
        shown_events[half] = shown
    return shown_rows, shown_events
