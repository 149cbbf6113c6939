"""Shared small in-memory data for the unit tests of the released-counts analyses
(histogram, contingency table, odds ratio): no federation."""

from __future__ import annotations

import numpy as np
import pytest

from smpc_ehr.data.records import PartyData

T = 3
N = 400


@pytest.fixture(scope="module")
def data() -> PartyData:
    """N patients: sex, ages 1..89, bmi with missing and out-of-range values and
    values exactly on edges, a 0/1 readmission with missing values, diagnoses."""
    rng = np.random.default_rng(7)
    sex = rng.choice(np.array(["F", "M", "U"]), size=N, p=[0.48, 0.48, 0.04])
    birth = np.datetime64("2025-06-01") - rng.integers(365, 89 * 365, size=N).astype(
        "timedelta64[D]"
    )
    bmi = np.round(rng.uniform(5, 80, size=N), 1)
    bmi[:8] = [10, 20, 25, 30, 35, 70, 9.9, 70.1]  # on and just beyond the edges
    bmi[rng.random(N) < 0.1] = np.nan
    readmit = (rng.random(N) < 0.3).astype(float)
    readmit[rng.random(N) < 0.05] = np.nan
    codes = np.array(["E11.9", "I10", "J45"])
    cond_patient = rng.integers(0, N, size=300)
    cond_code = rng.integers(0, len(codes), size=300)
    return PartyData(
        patient_ids=np.array([f"p{i}" for i in range(N)], dtype=object),
        sex=sex,
        birth_date=birth.astype("datetime64[D]"),
        features={"bmi": bmi},
        outcomes={"readmit_30d": readmit},
        cond_patient=cond_patient,
        code_table=codes,
        cond_code_index=cond_code,
        cond_onset=np.full(300, np.datetime64("2020-01-01"), dtype="datetime64[D]"),
    )


def opened(totals: list[int], threshold: int = T) -> list[float]:
    """What the released-counts program opens for these joint totals."""
    bits = [int(t >= threshold) for t in totals]
    return [float(b) for b in bits] + [float(b * t) for b, t in zip(bits, totals, strict=True)]


def has_code(data: PartyData, prefix: str) -> np.ndarray:
    rows = np.char.startswith(data.code_table[data.cond_code_index], prefix)
    has = np.zeros(data.n_patients, dtype=bool)
    has[data.cond_patient[rows]] = True
    return has
