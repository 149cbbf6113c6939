"""The survival date columns of a FHIR bulk export (docs/data.md, "Survival dates"):

- `death_date` from `Patient.deceasedDateTime` (its day). A patient with
  `deceasedBoolean` true and no date has an unknown death date (empty): no event time
  can be given, so a survival analysis counts the patient as censored at the last
  contact; a hospital that records deaths so should export the date.
- `last_contact_date`, where the export has `EpisodeOfCare.ndjson`, from the patient's
  episodes of care (the FHIR counterpart of OMOP's observation_period: the span in which
  the hospital is responsible for the patient): the latest `period.end`; an episode
  without an end is still open, so the date is empty (followed up to the as-of date).
  Without that file, from the patient's Encounters: the latest `period.end`, or
  `period.start` for an encounter without an end. An export with neither file gives no
  `last_contact_date` column, so an analysis that needs it is refused naming it.

Resources whose status says the contact did not take place (`NOT_CONTACTS`) are skipped;
a patient without any resource has the date empty (unknown). A death after the
analysis's as-of date is not an event there: the analysis decides that, not the source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from smpc_ehr.data.fhir import _day, _resources
from smpc_ehr.data.fhir_features import ENCOUNTER_FILE
from smpc_ehr.errors import DataError

EPISODE_FILE = "EpisodeOfCare.ndjson"
NOT_CONTACTS = ("planned", "waitlist", "cancelled", "entered-in-error")
"""Statuses of an Encounter or EpisodeOfCare that is no contact with the patient."""
_NAT = np.datetime64("NaT")


def death_dates(patients: list[tuple[int, dict[str, Any]]], path: Path) -> np.ndarray:
    """Each Patient's deceasedDateTime as a day (NaT: alive, or dead on an unknown day)."""
    out = np.full(len(patients), _NAT, dtype="datetime64[D]")
    for i, (number, resource) in enumerate(patients):
        if resource.get("deceasedDateTime") is not None:
            where = f"{path}: line {number}"
            out[i] = _day(resource["deceasedDateTime"], where, "deceasedDateTime")
    return out


def last_contacts(folder: Path, index: dict[str, int]) -> np.ndarray | None:
    """Each patient's last contact by the module's rule, or None without the files."""
    episodes, encounters = folder / EPISODE_FILE, folder / ENCOUNTER_FILE
    if episodes.exists():
        return _latest(episodes, "EpisodeOfCare", "patient", index, open_is_unknown=True)
    if encounters.exists():
        return _latest(encounters, "Encounter", "subject", index, open_is_unknown=False)
    return None


def _latest(
    path: Path, kind: str, field: str, index: dict[str, int], open_is_unknown: bool
) -> np.ndarray:
    """Per patient, the latest period.end (an episode without one: unknown, if
    `open_is_unknown`; else its period.start counts) of the file's contacts."""
    latest = np.full(len(index), _NAT, dtype="datetime64[D]")
    still_open = np.zeros(len(index), dtype=bool)
    for number, resource in _resources(path, kind):
        if resource.get("status") in NOT_CONTACTS:
            continue
        where = f"{path}: line {number}"
        reference = str((resource.get(field) or {}).get("reference", ""))
        pid = reference.removeprefix("Patient/")
        if not reference.startswith("Patient/") or pid not in index:
            raise DataError(f"{where}, {field}.reference: {reference!r} is not a Patient here")
        period = resource.get("period") or {}
        if not isinstance(period, dict):
            raise DataError(f"{where}, period: not a Period")
        if period.get("end") is not None:
            day = _day(period["end"], where, "period.end")
        elif open_is_unknown:
            still_open[index[pid]] = True
            continue
        elif period.get("start") is not None:
            day = _day(period["start"], where, "period.start")
        else:
            continue  # an encounter without a period: no date to take
        i = index[pid]
        if np.isnat(latest[i]) or day > latest[i]:
            latest[i] = day
    latest[still_open] = _NAT
    return latest


def write_episodes(folder: Path, patients: pa.Table) -> None:
    """The synthetic export's `EpisodeOfCare.ndjson`: per known last_contact_date of the
    CSV format's `patients`, a finished episode from the birth date to it."""
    if "last_contact_date" not in patients.column_names:
        return
    with (folder / EPISODE_FILE).open("w", encoding="utf-8") as out:
        for i, (pid, born, contact) in enumerate(
            zip(
                patients.column("patient_id").to_pylist(),
                patients.column("birth_date").to_pylist(),
                patients.column("last_contact_date").to_pylist(),
                strict=True,
            )
        ):
            if contact is None:
                continue
            episode = {
                "resourceType": "EpisodeOfCare",
                "id": f"eoc-{i + 1}",
                "status": "finished",
                "patient": {"reference": f"Patient/{pid}"},
                "period": {"start": born.isoformat(), "end": contact.isoformat()},
            }
            out.write(json.dumps(episode) + "\n")
