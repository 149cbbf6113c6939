"""Features and outcomes of a FHIR bulk export (docs/data.md, "Features and outcomes"):
Observations give the mapped features, inpatient Encounters the readmission outcome.

An Observation counts for a feature when a `code.coding` (or a `component`'s, e.g. the
systolic pressure 8480-6 inside the blood-pressure panel 85354-9) has the system
`http://loinc.org` and one of the feature's LOINC codes, and it carries a
`valueQuantity`. Its day is that of `effectiveDateTime`; the latest day on or before
`as_of` wins, on the same day the later line of the file. `Observation.ndjson` and
`Encounter.ndjson` may be absent (a bulk export writes no file for a type it has none
of); resources with status "entered-in-error" are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from smpc_ehr.data.fhir import _day, _resources
from smpc_ehr.data.mapping import Feature, SourceMapping
from smpc_ehr.data.readmission import readmit_30d
from smpc_ehr.errors import DataError

OBSERVATION_FILE = "Observation.ndjson"
ENCOUNTER_FILE = "Encounter.ndjson"
LOINC_SYSTEM = "http://loinc.org"
UCUM_SYSTEM = "http://unitsofmeasure.org"
INPATIENT_CLASS = "IMP"
"""Encounter.class code (v3 ActCode) of an inpatient encounter."""
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SKIPPED_STATUS = "entered-in-error"


def read_columns(
    folder: Path, mapping: SourceMapping, index: dict[str, int]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The features and outcomes of the patients `index` (Patient.id -> position)."""
    features = _features(folder / OBSERVATION_FILE, mapping, index) if mapping.features else {}
    outcomes = {}
    if "readmit_30d" in mapping.outcomes:
        outcomes["readmit_30d"] = _readmission(folder / ENCOUNTER_FILE, mapping, index)
    return features, outcomes


def _present(path: Path, kind: str) -> list[tuple[int, dict[str, Any]]]:
    if not path.exists():
        return []
    return [(n, r) for n, r in _resources(path, kind) if r.get("status") != SKIPPED_STATUS]


def _patient(resource: dict[str, Any], index: dict[str, int], where: str) -> int:
    reference = str((resource.get("subject") or {}).get("reference", ""))
    pid = reference.removeprefix("Patient/")
    if not reference.startswith("Patient/") or pid not in index:
        raise DataError(f"{where}, subject.reference: {reference!r} is not a Patient here")
    return index[pid]


def _loinc_codes(element: dict[str, Any]) -> list[str]:
    codings = (element.get("code") or {}).get("coding") or []
    return [
        str(c.get("code"))
        for c in codings
        if isinstance(c, dict) and c.get("system") == LOINC_SYSTEM
    ]


def _features(path: Path, mapping: SourceMapping, index: dict[str, int]) -> dict[str, np.ndarray]:
    by_loinc = mapping.by_loinc()
    as_of = np.datetime64(mapping.as_of, "D")
    values = {f.name: np.full(len(index), np.nan) for f in mapping.features}
    best: dict[tuple[str, int], tuple[np.datetime64, int, int]] = {}
    for number, resource in _present(path, "Observation"):
        where = f"{path}: line {number}"
        parts = [("", resource)]
        parts += [(f"component[{i}].", c) for i, c in enumerate(resource.get("component") or [])]
        found = []
        for position, (field, element) in enumerate(parts):
            if not isinstance(element, dict) or "valueQuantity" not in element:
                continue
            codes = [c for c in _loinc_codes(element) if c in by_loinc]
            if codes:
                found.append((position, field, element, codes[0]))
        if not found:
            continue
        patient = _patient(resource, index, where)
        if "effectiveDateTime" not in resource:
            raise DataError(f"{where}, effectiveDateTime: missing")
        day = _day(resource["effectiveDateTime"], where, "effectiveDateTime")
        if day > as_of:
            continue
        for position, field, element, code in found:
            feature = by_loinc[code]
            value = _value(feature, code, element, where, field)  # every one is checked
            key = (day, number, position)
            if best.get((feature.name, patient), key) > key:
                continue
            best[(feature.name, patient)] = key
            values[feature.name][patient] = value
    return values


def _value(feature: Feature, code: str, element: dict[str, Any], where: str, field: str) -> float:
    """The feature's value of one valueQuantity, its unit checked, converted, rounded."""
    quantity = element["valueQuantity"]
    value = quantity.get("value") if isinstance(quantity, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool) or not np.isfinite(value):
        raise DataError(f"{where}, {field}valueQuantity.value: {value!r} is not a number")
    expected = feature.expected_unit(code, None)
    unit = quantity.get("code") if quantity.get("system") == UCUM_SYSTEM else None
    unit = unit or quantity.get("unit")
    if expected is not None and unit not in (None, "", expected):
        raise DataError(
            f"{where}, {field}valueQuantity: unit {unit!r} is not {expected!r} "
            f"(feature {feature.name}, code {code})"
        )
    return feature.finish(float(value), feature.conversion(code, None))


def _readmission(path: Path, mapping: SourceMapping, index: dict[str, int]) -> np.ndarray:
    patient, start, end = [], [], []
    for number, resource in _present(path, "Encounter"):
        where = f"{path}: line {number}"
        kind = resource.get("class") or {}
        if not isinstance(kind, dict) or kind.get("code") != INPATIENT_CLASS:
            continue
        patient.append(_patient(resource, index, where))
        period = resource.get("period") or {}
        if not isinstance(period, dict) or "start" not in period:
            raise DataError(f"{where}, period.start: missing")
        start.append(_day(period["start"], where, "period.start"))
        has_end = period.get("end") is not None
        end.append(_day(period["end"], where, "period.end") if has_end else np.datetime64("NaT"))
    return readmit_30d(
        len(index),
        np.array(patient, dtype=np.int64),
        np.array(start, dtype="datetime64[D]"),
        np.array(end, dtype="datetime64[D]"),
        mapping.as_of,
    )
