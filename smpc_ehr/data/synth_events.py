"""The synthetic population's measurements and hospital stays, for its OMOP and FHIR
forms: events from which the stated mapping rules (docs/data.md, "Features and
outcomes") give back exactly the features and the outcome of the CSV files.

Each known feature value becomes the latest measurement on or before `as_of`; around it
are rows the rules must pass over: older values, a value of the same day with a smaller
row id (a tie), values after `as_of` (also for some patients whose value is missing).
Some values are written as observations, some BMIs with a concept id only, some HbA1c
in mmol/mol (IFCC, converted back exactly after rounding), some systolic pressures as a
component of the blood-pressure panel (FHIR). Stays follow `readmission`'s rule: an
index stay discharged on or before `as_of` - 30 days, a readmission 1-30 days later or
none, older stays before it, outpatient visits that do not count; a patient with a
missing outcome has no stay or only one discharged after the cutoff.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smpc_ehr.data import synth_model as m
from smpc_ehr.data.cohort import DEFAULT_AS_OF
from smpc_ehr.data.fhir_features import (
    ACT_CODE_SYSTEM,
    ENCOUNTER_FILE,
    LOINC_SYSTEM,
    OBSERVATION_FILE,
    UCUM_SYSTEM,
)
from smpc_ehr.data.omop_features import EVENT_TABLES, INPATIENT_VISIT
from smpc_ehr.data.readmission import WINDOW_DAYS

CODES: dict[str, tuple[str, str]] = {
    "bmi": ("39156-5", "kg/m2"),
    "hba1c": ("4548-4", "%"),
    "sbp": ("8480-6", "mm[Hg]"),
    "ldl": ("13457-7", "mg/dL"),
    "creatinine": ("2160-0", "mg/dL"),
    "weight": ("29463-7", "kg"),
    "heart_rate": ("8867-4", "/min"),
    "hdl": ("2085-9", "mg/dL"),
    "triglycerides": ("2571-8", "mg/dL"),
    "egfr": ("98979-8", "mL/min/{1.73_m2}"),
}
"""Each synthetic feature's LOINC code (the one written) and UCUM unit."""
MORE_CODES = {"ldl": ["18262-6"], "egfr": ["62238-1"]}
"""Further codes the written mapping lists (LDL direct assay, eGFR CKD-EPI 2009)."""
BMI_CONCEPT = 3038553
"""OMOP standard concept of LOINC 39156-5 (body mass index)."""
HBA1C_IFCC = "59261-8"
IFCC_SCALE, IFCC_OFFSET = 0.09148, 2.152
"""NGSP % = IFCC mmol/mol * 0.09148 + 2.152 (the IFCC-NGSP master equation)."""
BP_PANEL, DIASTOLIC = "85354-9", "8462-4"
OUTPATIENT_VISIT = 9202
DECIMALS = {**m.FEATURE_DECIMALS, **m.EXTRA_DECIMALS}
FILES = (OBSERVATION_FILE, ENCOUNTER_FILE)


@dataclass(frozen=True)
class Events:
    """Measurement rows and visits; row ids are the order of the arrays (per table)."""

    table: np.ndarray  # 0 measurement, 1 observation (EVENT_TABLES)
    patient: np.ndarray  # index into the patients table
    feature: np.ndarray
    loinc: np.ndarray  # None: written with the concept id only (OMOP)
    concept: np.ndarray
    day: np.ndarray
    value: np.ndarray
    unit: np.ndarray
    panel: np.ndarray  # FHIR: a component of the blood-pressure panel
    visit_patient: np.ndarray
    visit_concept: np.ndarray
    visit_start: np.ndarray
    visit_end: np.ndarray


def feature_names(patients: pa.Table) -> list[str]:
    """The synthetic features in the CSV file's column order."""
    return [n for n in patients.column_names if n in CODES]


def draw(rng: np.random.Generator, patients: pa.Table) -> Events:
    """The events of one party's patients (the CSV format's table)."""
    as_of = np.datetime64(DEFAULT_AS_OF, "D")
    parts: list[dict[str, np.ndarray]] = []
    for name in feature_names(patients):
        values = np.asarray(
            pc.cast(patients.column(name), pa.float64()).to_numpy(zero_copy_only=False)
        )
        parts += _feature_rows(rng, name, values, as_of)
    rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    # ties first, so that their ids are smaller and their FHIR lines earlier
    order = np.argsort(~rows.pop("first"), kind="stable")
    rows = {k: v[order] for k, v in rows.items()}
    outcome = np.asarray(
        pc.cast(patients.column("readmit_30d"), pa.float64()).to_numpy(zero_copy_only=False)
    )
    visits = _visits(rng, outcome, as_of)
    return Events(**rows, **visits)


def _feature_rows(
    rng: np.random.Generator, name: str, values: np.ndarray, as_of: np.datetime64
) -> list[dict[str, np.ndarray]]:
    n = len(values)
    known = np.flatnonzero(~np.isnan(values))
    day = as_of - rng.integers(0, 365, len(known)).astype("timedelta64[D]")
    table = (rng.random(len(known)) < 0.1).astype(np.int8)
    latest = _rows(name, known, day, values[known], table)
    if name == "bmi":
        latest["concept"][:] = BMI_CONCEPT
        latest["loinc"][rng.random(len(known)) < 0.3] = None
    if name == "hba1c":
        _as_ifcc(rng, latest)
    if name == "sbp":
        latest["panel"] = rng.random(len(known)) < 0.7
    other = np.round(values * 1.1 + 1.0, DECIMALS[name])  # never the chosen value
    older = known[rng.random(len(known)) < 0.5]
    tied = np.flatnonzero((rng.random(len(known)) < 0.05) & (table == 0))
    later = np.flatnonzero(rng.random(n) < np.where(np.isnan(values), 0.3, 0.1))
    nan_to = np.where(np.isnan(other), 0.0, other)
    parts = [
        latest,
        _rows(
            name,
            older,
            day[np.searchsorted(known, older)] - _days(rng, 1, 730, older),
            nan_to[older],
            np.zeros(len(older), np.int8),
        ),
        _rows(name, known[tied], day[tied], nan_to[known[tied]], table[tied], first=True),
        _rows(
            name,
            later,
            as_of + _days(rng, 1, 90, later),
            nan_to[later],
            np.zeros(len(later), np.int8),
        ),
    ]
    return parts


def _days(rng: np.random.Generator, lo: int, hi: int, like: np.ndarray) -> np.ndarray:
    return rng.integers(lo, hi + 1, len(like)).astype("timedelta64[D]")


def _rows(
    name: str,
    patient: np.ndarray,
    day: np.ndarray,
    value: np.ndarray,
    table: np.ndarray,
    first: bool = False,
) -> dict[str, np.ndarray]:
    k = len(patient)
    loinc, unit = CODES[name]
    return {
        "table": table.astype(np.int8),
        "patient": patient.astype(np.int64),
        "feature": np.full(k, name, dtype=object),
        "loinc": np.full(k, loinc, dtype=object),
        "concept": np.zeros(k, dtype=np.int64),
        "day": np.asarray(day, dtype="datetime64[D]"),
        "value": value.astype(np.float64),
        "unit": np.full(k, unit, dtype=object),
        "panel": np.zeros(k, dtype=bool),
        "first": np.full(k, first),
    }


def _as_ifcc(rng: np.random.Generator, rows: dict[str, np.ndarray]) -> None:
    """Write about a third of the HbA1c values in mmol/mol, where the mapping's
    conversion and rounding give the % value back exactly."""
    pct = rows["value"]
    mmol = np.round((pct - IFCC_OFFSET) / IFCC_SCALE)
    back = mmol * IFCC_SCALE + IFCC_OFFSET
    exact = np.array([round(b, 1) == p for b, p in zip(back, pct, strict=True)], dtype=bool)
    use = exact & (np.abs(back - pct) < 0.049) & (rng.random(len(pct)) < 0.3)
    rows["value"] = np.where(use, mmol, pct)
    rows["loinc"][use] = HBA1C_IFCC
    rows["unit"][use] = "mmol/mol"


def _visits(
    rng: np.random.Generator, outcome: np.ndarray, as_of: np.datetime64
) -> dict[str, np.ndarray]:
    cutoff = as_of - np.timedelta64(WINDOW_DAYS, "D")
    patient: list[np.ndarray] = []
    concept: list[np.ndarray] = []
    start: list[np.ndarray] = []
    end: list[np.ndarray] = []

    def add(who: np.ndarray, kind: int, s: np.ndarray, e: np.ndarray) -> None:
        patient.append(who)
        concept.append(np.full(len(who), kind))
        start.append(s)
        end.append(e)

    yes, no = np.flatnonzero(outcome == 1), np.flatnonzero(outcome == 0)
    k = rng.integers(1, WINDOW_DAYS + 1, len(yes))
    back = np.floor(rng.random(len(yes)) * k).astype(np.int64)  # 0..k-1: after the cutoff
    discharge_yes = cutoff - back.astype("timedelta64[D]")
    readmitted = discharge_yes + k.astype("timedelta64[D]")
    add(yes, INPATIENT_VISIT, readmitted, readmitted + _days(rng, 1, 10, yes))
    discharge_no = cutoff - _days(rng, 0, 700, no)
    clinic = no[rng.random(len(no)) < 0.5]  # outpatient: no readmission
    seen = discharge_no[np.searchsorted(no, clinic)] + _days(rng, 1, WINDOW_DAYS, clinic)
    add(clinic, OUTPATIENT_VISIT, seen, seen)
    index_patient = np.concatenate([yes, no])
    discharge = np.concatenate([discharge_yes, discharge_no])
    add(index_patient, INPATIENT_VISIT, discharge - _days(rng, 1, 10, index_patient), discharge)
    earlier = rng.random(len(index_patient)) < 0.4  # an older stay and its readmission
    first_end = discharge[earlier] - _days(rng, 100, 400, index_patient[earlier])
    add(index_patient[earlier], INPATIENT_VISIT, first_end - _days(rng, 1, 5, first_end), first_end)
    again = first_end + _days(rng, 1, 20, first_end)
    add(index_patient[earlier], INPATIENT_VISIT, again, again + _days(rng, 0, 20, again))
    missing = np.flatnonzero(np.isnan(outcome))
    recent = missing[rng.random(len(missing)) < 0.5]  # discharged after the cutoff
    admitted = cutoff + _days(rng, -5, 20, recent)
    add(
        recent,
        INPATIENT_VISIT,
        admitted,
        np.maximum(admitted, cutoff + 1) + _days(rng, 0, 5, recent),
    )
    order = np.argsort(np.concatenate(start), kind="stable")
    return {
        "visit_patient": np.concatenate(patient)[order],
        "visit_concept": np.concatenate(concept)[order],
        "visit_start": np.concatenate(start).astype("datetime64[D]")[order],
        "visit_end": np.concatenate(end).astype("datetime64[D]")[order],
    }


def mapping_toml(patients: pa.Table) -> str:
    """The `source.toml` lines that map the synthetic features and outcome."""
    lines = [f"as_of = {DEFAULT_AS_OF.isoformat()}", 'outcomes = ["readmit_30d"]']
    for name in feature_names(patients):
        loinc, unit = CODES[name]
        codes = [loinc, *MORE_CODES.get(name, [])] + ([HBA1C_IFCC] if name == "hba1c" else [])
        lines += ["", f"[features.{name}]", f"loinc = {json.dumps(codes)}"]
        if name == "bmi":
            lines.append(f"concept_ids = [{BMI_CONCEPT}]")
        lines += [f"unit = {json.dumps(unit)}", f"decimals = {DECIMALS[name]}"]
        if name == "hba1c":
            lines += [
                f'[features.hba1c.convert."{HBA1C_IFCC}"]  # IFCC-NGSP master equation',
                'unit = "mmol/mol"',
                f"scale = {IFCC_SCALE}",
                f"offset = {IFCC_OFFSET}",
            ]
    return "\n".join(lines) + "\n"


def write_omop_events(path: Path, events: Events) -> None:
    """Add `measurement`, `observation` and `visit_occurrence` to the OMOP SQLite file
    written by `omop.write_omop` (person_id = the patient's position + 1)."""
    with sqlite3.connect(path) as db:
        for number, name in enumerate(EVENT_TABLES):
            db.execute(
                f"CREATE TABLE {name} ({name}_id INTEGER PRIMARY KEY, person_id INTEGER NOT "
                f"NULL, {name}_concept_id INTEGER NOT NULL, {name}_date TEXT NOT NULL, "
                f"value_as_number REAL, unit_source_value TEXT, {name}_source_value TEXT)"
            )
            here = np.flatnonzero(events.table == number)
            rows = [
                (
                    i + 1,
                    int(events.patient[r]) + 1,
                    int(events.concept[r]),
                    str(events.day[r]),
                    float(events.value[r]),
                    events.unit[r],
                    events.loinc[r],
                )
                for i, r in enumerate(here)
            ]
            db.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        db.execute(
            "CREATE TABLE visit_occurrence (visit_occurrence_id INTEGER PRIMARY KEY, person_id "
            "INTEGER NOT NULL, visit_concept_id INTEGER NOT NULL, visit_start_date TEXT NOT "
            "NULL, visit_end_date TEXT)"
        )
        visits = [
            (i + 1, int(p) + 1, int(c), str(s), str(e))
            for i, (p, c, s, e) in enumerate(
                zip(
                    events.visit_patient,
                    events.visit_concept,
                    events.visit_start,
                    events.visit_end,
                    strict=True,
                )
            )
        ]
        db.executemany("INSERT INTO visit_occurrence VALUES (?, ?, ?, ?, ?)", visits)
    db.close()


def write_fhir_events(folder: Path, events: Events, patient_ids: list[str]) -> None:
    """Write `Observation.ndjson` and `Encounter.ndjson` beside the Patient file."""
    with (folder / OBSERVATION_FILE).open("w", encoding="utf-8") as out:
        for r in range(len(events.patient)):
            out.write(json.dumps(_observation(events, r, patient_ids)) + "\n")
    classes = {INPATIENT_VISIT: "IMP", OUTPATIENT_VISIT: "AMB"}
    with (folder / ENCOUNTER_FILE).open("w", encoding="utf-8") as out:
        for i in range(len(events.visit_patient)):
            encounter = {
                "resourceType": "Encounter",
                "id": f"enc-{i + 1}",
                "status": "finished",
                "class": {
                    "system": ACT_CODE_SYSTEM,
                    "code": classes[int(events.visit_concept[i])],
                },
                "subject": {"reference": f"Patient/{patient_ids[events.visit_patient[i]]}"},
                "period": {
                    "start": str(events.visit_start[i]),
                    "end": str(events.visit_end[i]),
                },
            }
            out.write(json.dumps(encounter) + "\n")


def _observation(events: Events, r: int, patient_ids: list[str]) -> dict[str, Any]:
    loinc = events.loinc[r] or CODES[events.feature[r]][0]
    unit = events.unit[r]
    quantity = {"value": float(events.value[r]), "unit": unit, "system": UCUM_SYSTEM, "code": unit}
    coded = {"code": {"coding": [{"system": LOINC_SYSTEM, "code": loinc}]}}
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"obs-{r + 1}",
        "status": "final",
        "subject": {"reference": f"Patient/{patient_ids[events.patient[r]]}"},
        "effectiveDateTime": str(events.day[r]),
    }
    if events.panel[r]:
        diastolic = {"value": 80.0, "unit": "mm[Hg]", "system": UCUM_SYSTEM, "code": "mm[Hg]"}
        resource["code"] = {"coding": [{"system": LOINC_SYSTEM, "code": BP_PANEL}]}
        resource["component"] = [
            {**coded, "valueQuantity": quantity},
            {
                "code": {"coding": [{"system": LOINC_SYSTEM, "code": DIASTOLIC}]},
                "valueQuantity": diastolic,
            },
        ]
    else:
        resource.update(coded)
        resource["valueQuantity"] = quantity
    return resource
