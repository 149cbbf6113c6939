"""A FHIR R4 bulk export (NDJSON) as a party's data: patients and ICD-10 conditions.

What is read (docs/data.md, "FHIR bulk export"), from `Patient.ndjson` and
`Condition.ndjson` in the export folder (one JSON resource per line, parsed as JSON
only):
- `Patient`: the id (`Patient.id`); sex from `gender` ("female" F, "male" M, anything
  else or none U); `birthDate`, where a missing month is taken as July and a missing day
  as the 15th, as for OMOP; with `link_system` set, the link id from the `value` of
  the first `identifier` of that system (none: the patient has no link id).
- `Condition`: the patient from `subject.reference` ("Patient/<id>"); the first coding
  of `code` whose system is ICD-10 (`ICD10_SYSTEMS`), dotted or undotted; the onset
  from `onsetDateTime` (none: unknown).

Features and outcomes (Observations, Encounters) are read as the source's mapping says
(`fhir_features`); death_date and last_contact_date as `fhir_dates` says. A resource that
breaks a rule raises DataError naming the file, the line and the field.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from smpc_ehr.data.mapping import NO_MAPPING, SourceMapping, with_columns
from smpc_ehr.data.omop import MISSING_DAY, MISSING_MONTH, icd10
from smpc_ehr.data.records import PartyData, persons_and_conditions
from smpc_ehr.errors import DataError

PATIENT_FILE = "Patient.ndjson"
CONDITION_FILE = "Condition.ndjson"
ICD10_SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm")
_SEXES = {"female": "F", "male": "M"}
SYNTHETIC_LINK_SYSTEM = "urn:smpc-ehr:synthetic-link-id"
"""The Patient.identifier system `write_fhir` gives synthetic link ids."""


def _resources(path: Path, kind: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, resource) of every non-empty line of an NDJSON file of `kind`."""
    if not path.is_file():
        raise DataError(f"{path}: FHIR export file does not exist")
    found = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                resource = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {number}: not JSON ({exc.msg})") from None
            if not isinstance(resource, dict) or resource.get("resourceType") != kind:
                raise DataError(f"{path}: line {number}: resourceType is not {kind}")
            found.append((number, resource))
    return found


def _day(text: Any, where: str, field: str) -> np.datetime64:
    """A FHIR date (YYYY, YYYY-MM or YYYY-MM-DD, or a dateTime) as a day."""
    try:
        parts = str(text)[:10].split("-")
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else MISSING_MONTH
        day = int(parts[2]) if len(parts) > 2 else MISSING_DAY
        return np.datetime64(date(year, month, day), "D")
    except (ValueError, IndexError):
        raise DataError(f"{where}, {field}: {text!r} is not a FHIR date") from None


def export_files(folder: Path) -> list[Path]:
    """The NDJSON files of an export folder (what a change of is a new data version)."""
    return sorted(folder.glob("*.ndjson"))


def load_fhir(
    folder: Path, mapping: SourceMapping = NO_MAPPING, link_system: str | None = None
) -> PartyData:
    """Read the Patient and Condition resources of a bulk-export folder (with link ids
    from the Patient identifiers of `link_system`, if given), and the Observations and
    Encounters that `mapping` names (`fhir_features`)."""
    from smpc_ehr.data.fhir_dates import death_dates, last_contacts
    from smpc_ehr.data.fhir_features import read_columns

    patient_path, condition_path = folder / PATIENT_FILE, folder / CONDITION_FILE
    patients = _resources(patient_path, "Patient")
    if not patients:
        raise DataError(f"{patient_path}: no Patient resources")
    index: dict[str, int] = {}
    sex, birth, links = [], [], []
    for number, resource in patients:
        where = f"{patient_path}: line {number}"
        pid = resource.get("id")
        if not isinstance(pid, str) or not pid or pid in index:
            raise DataError(f"{where}, id: {pid!r} is missing or repeated")
        index[pid] = len(index)
        sex.append(_SEXES.get(resource.get("gender", ""), "U"))
        if "birthDate" not in resource:
            raise DataError(f"{where}, birthDate: missing")
        birth.append(_day(resource["birthDate"], where, "birthDate"))
        links.append(_link_id(resource, link_system))
    conditions = _resources(condition_path, "Condition")
    cond_patient = np.empty(len(conditions), dtype=np.int64)
    codes = np.empty(len(conditions), dtype=object)
    onset = np.full(len(conditions), np.datetime64("NaT"), dtype="datetime64[D]")
    for i, (number, resource) in enumerate(conditions):
        where = f"{condition_path}: line {number}"
        reference = str((resource.get("subject") or {}).get("reference", ""))
        pid = reference.removeprefix("Patient/")
        if not reference.startswith("Patient/") or pid not in index:
            raise DataError(f"{where}, subject.reference: {reference!r} is not a Patient here")
        cond_patient[i] = index[pid]
        codings = (resource.get("code") or {}).get("coding") or []
        icd = [c.get("code") for c in codings if c.get("system") in ICD10_SYSTEMS]
        if not icd or not isinstance(icd[0], str):
            raise DataError(f"{where}, code.coding: no ICD-10 coding")
        codes[i] = icd10(icd[0])
        if "onsetDateTime" in resource:
            onset[i] = _day(resource["onsetDateTime"], where, "onsetDateTime")
    data = persons_and_conditions(
        np.array(list(index), dtype=object),
        np.array(sex, dtype=object),
        np.array(birth, dtype="datetime64[D]"),
        cond_patient,
        codes,
        onset,
        None if link_system is None else np.array(links, dtype=object),
    )
    dates = {"death_date": death_dates(patients, patient_path)}
    contacts = last_contacts(folder, index)
    if contacts is not None:
        dates["last_contact_date"] = contacts
    data = dataclasses.replace(data, dates=dates)
    return with_columns(data, *read_columns(folder, mapping, index))


def _link_id(patient: dict[str, Any], system: str | None) -> str:
    """The value of the patient's first identifier of `system` ("" if none)."""
    for identifier in patient.get("identifier") or []:
        if isinstance(identifier, dict) and identifier.get("system") == system:
            return str(identifier.get("value") or "").strip()
    return ""


def write_fhir(folder: Path, patients: pa.Table, conditions: pa.Table) -> None:
    """Write `patients` and `conditions` (the CSV format's tables) as FHIR R4 NDJSON:
    the synthetic data's bulk-export form (Observations and Encounters: synth_events),
    with deceasedDateTime and EpisodeOfCare where `patients` has the date columns."""
    from smpc_ehr.data.fhir_dates import write_episodes

    genders = {"F": "female", "M": "male", "U": "unknown"}
    links = _links(patients)
    with (folder / PATIENT_FILE).open("w", encoding="utf-8") as out:
        for pid, sex, born, died in zip(
            patients.column("patient_id").to_pylist(),
            patients.column("sex").to_pylist(),
            patients.column("birth_date").to_pylist(),
            _deaths(patients),
            strict=True,
        ):
            patient = {
                "resourceType": "Patient",
                "id": pid,
                "gender": genders[sex],
                "birthDate": born.isoformat(),
                **_identifiers(links.get(pid)),
                **({} if died is None else {"deceasedDateTime": died.isoformat()}),
            }
            out.write(json.dumps(patient) + "\n")
    write_episodes(folder, patients)
    onsets = conditions.column("onset_date").to_pylist()  # synth always writes it
    with (folder / CONDITION_FILE).open("w", encoding="utf-8") as out:
        for pid, code, started in zip(
            conditions.column("patient_id").to_pylist(),
            conditions.column("code").to_pylist(),
            onsets,
            strict=True,
        ):
            resource: dict[str, Any] = {
                "resourceType": "Condition",
                "subject": {"reference": f"Patient/{pid}"},
                "code": {"coding": [{"system": ICD10_SYSTEMS[0], "code": code}]},
            }
            if started is not None:
                resource["onsetDateTime"] = started.isoformat()
            out.write(json.dumps(resource) + "\n")


def _deaths(patients: pa.Table) -> list[date | None]:
    """Each patient's death date, where the table has a `death_date` column."""
    if "death_date" not in patients.column_names:
        return [None] * patients.num_rows
    return patients.column("death_date").to_pylist()


def _links(patients: pa.Table) -> dict[str, str]:
    """Each patient's link id, where the table has a `link_id` column."""
    if "link_id" not in patients.column_names:
        return {}
    ids = patients.column("patient_id").to_pylist()
    return dict(zip(ids, patients.column("link_id").to_pylist(), strict=True))


def _identifiers(link: str | None) -> dict[str, Any]:
    """The `identifier` of a written Patient: its link id, if it has one."""
    if not link:
        return {}
    return {"identifier": [{"system": SYNTHETIC_LINK_SYSTEM, "value": link}]}
