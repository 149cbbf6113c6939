"""The outcome `readmit_30d` from a source's inpatient stays (docs/data.md,
"Readmission"), one rule for every kind of source.

The index stay of a patient is the inpatient stay with the latest discharge on or before
`as_of` minus 30 days (so that its whole 30-day window lies before `as_of`); only its
discharge day matters, so ties need no rule. `readmit_30d` is 1 when an inpatient stay
is admitted 1 to 30 days after that discharge day, 0 otherwise, and missing (NaN) for a
patient without such an index stay. A stay without a discharge day is never an index
stay but may be the readmission.
"""

from __future__ import annotations

from datetime import date

import numpy as np

WINDOW_DAYS = 30


def readmit_30d(
    n: int, patient: np.ndarray, start: np.ndarray, end: np.ndarray, as_of: date
) -> np.ndarray:
    """Per patient (0..n-1) the outcome, from one entry per inpatient stay: the patient's
    index, its admission and discharge days (datetime64[D]; NaT = none)."""
    start = np.asarray(start, dtype="datetime64[D]").astype(np.int64)
    ended = ~np.isnat(np.asarray(end, dtype="datetime64[D]"))
    end = np.asarray(end, dtype="datetime64[D]").astype(np.int64)
    cutoff = np.datetime64(as_of, "D").astype(np.int64) - WINDOW_DAYS
    index = ended & (end <= cutoff)
    none = np.iinfo(np.int64).min
    last = np.full(n, none, dtype=np.int64)
    np.maximum.at(last, patient[index], end[index])
    out = np.where(last == none, np.nan, 0.0)
    after = start - last[patient]  # days from the patient's index discharge
    readmitted = (last[patient] != none) & (after >= 1) & (after <= WINDOW_DAYS)
    out[patient[readmitted]] = 1.0
    return out
