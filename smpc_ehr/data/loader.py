"""Load and validate one party's data folder into a PartyData, all or nothing.

A folder holds ``patients.csv`` (or ``.parquet``) and ``conditions.csv`` (or
``.parquet``), or a ``source.toml`` naming another source (`sources`); the format is described
in docs/data.md. Any problem raises DataError
naming file, line (or Parquet row) and column; no partially loaded data is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smpc_ehr.data.codes import CODE_REGEX
from smpc_ehr.data.records import SEXES, PartyData
from smpc_ehr.data.tabular import (
    Source,
    categories,
    dates,
    first,
    numbers,
    read_table,
    require_nonempty,
    text,
)
from smpc_ehr.errors import DataError

PATIENT_COLUMNS = ("patient_id", "sex", "birth_date")
CONDITION_COLUMNS = ("patient_id", "code")
OPTIONAL_CONDITION_COLUMNS = ("onset_date",)
LINK_COLUMN = "link_id"
"""The optional text column of patients holding each patient's linkage identifier
(docs/data.md, "Linkage"); never a numeric feature."""
DATE_COLUMNS = ("death_date", "last_contact_date")
"""Optional date columns of patients (YYYY-MM-DD, empty = unknown), read as dates for
survival analyses (`PartyData.dates`); never numeric features."""


@dataclass(frozen=True)
class _Patients:
    ids: pa.Array
    sex: np.ndarray
    birth: np.ndarray
    features: dict[str, np.ndarray]
    outcomes: dict[str, np.ndarray]
    link_id: np.ndarray | None = None
    dates: dict[str, np.ndarray] | None = None


def load_party_data(folder: Path) -> PartyData:
    """Read, validate and index a party's patients and conditions, wherever the folder
    says they are (`sources`): the rows a job would see now."""
    from smpc_ehr.data.sources import open_store  # which loads files through this module

    store = open_store(folder)
    try:
        job = store.open_job()
        try:
            return job.rows()
        finally:
            job.close()
    finally:
        store.close()


def data_files(folder: Path) -> list[Path]:
    """The patients and conditions files of a folder of today's format."""
    return [_find(folder, "patients"), _find(folder, "conditions")]


def load_files(folder: Path) -> PartyData:
    """Read, validate and index the patients and conditions files of `folder`."""
    patients_path = _find(folder, "patients")
    conditions_path = _find(folder, "conditions")
    return party_data_from_tables(
        Source(patients_path),
        read_table(patients_path, PATIENT_COLUMNS, optional=None),
        Source(conditions_path),
        read_table(conditions_path, CONDITION_COLUMNS, OPTIONAL_CONDITION_COLUMNS),
    )


def party_data_from_tables(
    psrc: Source, patient_table: pa.Table, csrc: Source, cond: pa.Table
) -> PartyData:
    """Validate and index the two tables of today's format, read from `psrc` and
    `csrc` (whose positions the errors name): also what a DuckDB source loads."""
    patients = _load_patients(psrc, patient_table)
    cond_ids = text(csrc, cond, "patient_id")
    require_nonempty(csrc, cond_ids, "patient_id")
    cond_patient = _link(psrc, patients.ids, csrc, cond_ids)
    code_table, code_index = categories(
        csrc,
        text(csrc, cond, "code"),
        "code",
        CODE_REGEX,
        "an ICD-10-CM code (e.g. E75.22)",
    )
    if "onset_date" in cond.column_names:
        onset = dates(csrc, cond, "onset_date", allow_empty=True)
    else:
        onset = np.full(cond.num_rows, np.datetime64("NaT"), dtype="datetime64[D]")
    return PartyData(
        patient_ids=np.asarray(patients.ids.to_numpy(zero_copy_only=False), dtype=object),
        sex=patients.sex,
        birth_date=patients.birth,
        features=patients.features,
        outcomes=patients.outcomes,
        cond_patient=cond_patient,
        code_table=code_table,
        cond_code_index=code_index,
        cond_onset=onset,
        link_id=patients.link_id,
        dates=patients.dates or {},
    )


def _find(folder: Path, stem: str) -> Path:
    found = [p for p in (folder / f"{stem}.csv", folder / f"{stem}.parquet") if p.is_file()]
    if not found:
        raise DataError(f"{folder}: missing {stem}.csv (or {stem}.parquet)")
    if len(found) > 1:
        raise DataError(f"{folder}: both {stem}.csv and {stem}.parquet exist; keep one")
    return found[0]


def _load_patients(src: Source, table: pa.Table) -> _Patients:
    ids = text(src, table, "patient_id")
    require_nonempty(src, ids, "patient_id")
    sex_table, sex_index = categories(
        src,
        text(src, table, "sex"),
        "sex",
        f"^[{''.join(SEXES)}]$",
        "a known sex (expected F, M or U)",
    )
    sex = sex_table[sex_index].astype("<U1") if len(ids) else np.empty(0, dtype="<U1")
    birth = dates(src, table, "birth_date", allow_empty=False)
    features: dict[str, np.ndarray] = {}
    outcomes: dict[str, np.ndarray] = {}
    link_id = None
    if LINK_COLUMN in table.column_names:
        links = text(src, table, LINK_COLUMN)
        link_id = np.asarray(links.to_numpy(zero_copy_only=False), dtype=object)
    event_dates = {
        name: dates(src, table, name, allow_empty=True)
        for name in table.column_names
        if name in DATE_COLUMNS
    }
    for name in table.column_names:
        if name not in (*PATIENT_COLUMNS, LINK_COLUMN, *DATE_COLUMNS):
            values, is_outcome = numbers(src, table, name)
            (outcomes if is_outcome else features)[name] = values
    return _Patients(ids, sex, birth, features, outcomes, link_id, event_dates)


def _link(psrc: Source, ids: pa.Array, csrc: Source, cond_ids: pa.Array) -> np.ndarray:
    """Check patient ids are unique and map each condition row to its patient's index.

    One hash pass over patients and condition rows together: the dictionary keeps first
    appearances in order, so with unique ids patient i is entry i, and a condition row
    whose entry is past the patients names an unknown patient.
    """
    n = len(ids)
    if ids.type != cond_ids.type:
        ids, cond_ids = ids.cast(pa.large_string()), cond_ids.cast(pa.large_string())
    both = pa.concat_arrays([ids, cond_ids])
    index = np.asarray(pc.dictionary_encode(both).indices.to_numpy(zero_copy_only=False))
    repeated = index[:n] != np.arange(n)
    if repeated.any():
        i = first(repeated)
        raise psrc.error(i, "patient_id", f"duplicate patient_id {ids[i].as_py()!r}")
    unknown = index[n:] >= n
    if unknown.any():
        i = first(unknown)
        raise csrc.error(i, "patient_id", f"patient_id {cond_ids[i].as_py()!r} is not in patients")
    return index[n:].astype(np.int64)
