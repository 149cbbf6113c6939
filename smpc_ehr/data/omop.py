"""An OMOP CDM 5.4 database as a party's data: persons and their ICD-10 conditions.

What is read (docs/data.md, "OMOP CDM source"), in one transaction:
- `person`: sex from `gender_concept_id` (8532 female, 8507 male, anything else
  unknown); birth date from `birth_datetime`, else `year_of_birth` with a missing
  `month_of_birth` taken as July and a missing `day_of_birth` as the 15th; the
  hospital's own id from `person_source_value` (else the `person_id`); with
  `link_column` set, each person's link id from that column (empty: none), and the
  id from `person_id` when the link column is `person_source_value`.
- `condition_occurrence`: the ICD-10 code from `condition_source_value`, dotted or
  undotted ("E7522" is E75.22); the onset from `condition_start_date` (empty: unknown).

Features and outcomes (measurement, observation, visit_occurrence) are read as the
source's mapping says (`omop_features`); death_date and last_contact_date from `death`
and `observation_period` (`omop_dates`). Tables are named through SQLAlchemy's constructs with the
configured schema and every value is a bound parameter: nothing is formatted into SQL.
A row that breaks a rule raises DataError naming the table, the column and the row's id.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from smpc_ehr.data.codes import CODE_REGEX
from smpc_ehr.data.mapping import NO_MAPPING, SourceMapping, with_columns
from smpc_ehr.data.records import PartyData, persons_and_conditions
from smpc_ehr.errors import DataError

if TYPE_CHECKING:
    import sqlalchemy as sa

FEMALE_CONCEPT = 8532
MALE_CONCEPT = 8507
MISSING_MONTH = 7
"""A birth month the person table leaves empty is taken as July (mid-year)."""
MISSING_DAY = 15
"""A birth day the person table leaves empty is taken as the 15th (mid-month)."""
_CODE = re.compile(CODE_REGEX)


def icd10(value: str) -> str:
    """An ICD-10 code as the CSV format writes it: upper case, the dot after three
    characters ("E7522" and "e75.22" are E75.22)."""
    code = value.strip().upper()
    if "." not in code and len(code) > 3:
        code = f"{code[:3]}.{code[3:]}"
    return code


def load_omop(
    url: str,
    schema: str | None = None,
    mapping: SourceMapping = NO_MAPPING,
    link_column: str | None = None,
) -> PartyData:
    """Read persons and conditions from the OMOP CDM database at the SQLAlchemy `url`
    (with each person's link id from the person column `link_column`, if given), and the
    features and outcomes `mapping` names (`omop_features`)."""
    import sqlalchemy as sa

    from smpc_ehr.data.engines import read_only_engine

    engine, _ = read_only_engine(url)
    try:
        with engine.connect() as connection, connection.begin():  # one snapshot
            return read_omop(connection, schema, mapping, link_column)
    except sa.exc.SQLAlchemyError as exc:
        raise DataError(f"OMOP source {engine.url!r}: {exc.__class__.__name__}: {exc}") from None
    finally:
        engine.dispose()


def read_omop(
    connection: sa.Connection,
    schema: str | None = None,
    mapping: SourceMapping = NO_MAPPING,
    link_column: str | None = None,
) -> PartyData:
    """Persons, conditions and the mapped features and outcomes as `connection` (inside
    the job's transaction) sees them."""
    import sqlalchemy as sa

    from smpc_ehr.data.omop_dates import read_dates
    from smpc_ehr.data.omop_features import read_columns

    extra = () if link_column is None or link_column in PERSON_COLUMNS else (link_column,)
    person = sa.table(
        "person",
        *(sa.column(c) for c in (*PERSON_COLUMNS, *extra)),
        schema=schema,
    )
    condition = sa.table(
        "condition_occurrence",
        *(sa.column(c) for c in CONDITION_COLUMNS),
        schema=schema,
    )
    try:
        persons = connection.execute(sa.select(person).order_by(person.c.person_id)).all()
        conditions = connection.execute(
            sa.select(condition).order_by(condition.c.condition_occurrence_id)
        ).all()
        ids = [row.person_id for row in persons]
        features, outcomes = read_columns(connection, mapping, schema, ids)
        data = with_columns(_party_data(persons, conditions, link_column), features, outcomes)
        index = {pid: i for i, pid in enumerate(ids)}
        dates = read_dates(connection, schema, index, len(ids))
    except sa.exc.SQLAlchemyError as exc:
        where = connection.engine.url
        raise DataError(f"OMOP source {where!r}: {exc.__class__.__name__}: {exc}") from None
    return dataclasses.replace(data, dates=dates)


PERSON_COLUMNS = (  # what is read of each CDM table
    "person_id",
    "gender_concept_id",
    "year_of_birth",
    "month_of_birth",
    "day_of_birth",
    "birth_datetime",
    "person_source_value",
)
CONDITION_COLUMNS = (
    "condition_occurrence_id",
    "person_id",
    "condition_start_date",
    "condition_source_value",
)


def _party_data(
    persons: Sequence[Any], conditions: Sequence[Any], link_column: str | None = None
) -> PartyData:
    if not persons:
        raise DataError("OMOP table person is empty")
    index = {row.person_id: i for i, row in enumerate(persons)}
    sexes = {FEMALE_CONCEPT: "F", MALE_CONCEPT: "M"}
    sex = np.array([sexes.get(row.gender_concept_id, "U") for row in persons], dtype=object)
    birth = np.array([_birth(row) for row in persons], dtype="datetime64[D]")
    ids = np.array([str(row.person_source_value or row.person_id) for row in persons], dtype=object)
    links = None if link_column is None else _link_ids(persons, link_column)
    if link_column == "person_source_value":
        ids = np.array([str(row.person_id) for row in persons], dtype=object)
    cond_patient = np.empty(len(conditions), dtype=np.int64)
    codes = np.empty(len(conditions), dtype=object)
    onset = np.full(len(conditions), np.datetime64("NaT"), dtype="datetime64[D]")
    for i, row in enumerate(conditions):
        where = f"condition_occurrence_id {row.condition_occurrence_id}"
        if row.person_id not in index:
            raise DataError(
                f"OMOP table condition_occurrence, column person_id, {where}: "
                f"person {row.person_id} is not in table person"
            )
        cond_patient[i] = index[row.person_id]
        code = icd10(str(row.condition_source_value or ""))
        if not _CODE.match(code):
            raise DataError(
                f"OMOP table condition_occurrence, column condition_source_value, {where}: "
                f"{row.condition_source_value!r} is not an ICD-10 code (e.g. E75.22 or E7522)"
            )
        codes[i] = code
        if row.condition_start_date is not None:
            onset[i] = _day(row.condition_start_date, "condition_start_date", where)
    return persons_and_conditions(ids, sex, birth, cond_patient, codes, onset, links)


def _link_ids(persons: Sequence[Any], column: str) -> np.ndarray:
    """Each person's link id from `column` as trimmed text ("" where empty)."""
    values = [row._mapping[column] for row in persons]
    return np.array(["" if v is None else str(v).strip() for v in values], dtype=object)


def _birth(row: Any) -> np.datetime64:
    where = f"person_id {row.person_id}"
    if row.birth_datetime is not None:
        return _day(row.birth_datetime, "birth_datetime", where, table="person")
    if row.year_of_birth is None:
        raise DataError(
            f"OMOP table person, column year_of_birth, {where}: empty, and so is birth_datetime"
        )
    try:
        born = date(
            int(row.year_of_birth),
            int(row.month_of_birth or MISSING_MONTH),
            int(row.day_of_birth or MISSING_DAY),
        )
    except ValueError as exc:
        raise DataError(f"OMOP table person, columns *_of_birth, {where}: {exc}") from None
    return np.datetime64(born, "D")


def _day(value: Any, column: str, where: str, table: str = "condition_occurrence") -> np.datetime64:
    """A DATE or DATETIME value (SQLite gives text) as a day."""
    try:
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, str):
            value = date.fromisoformat(value[:10])
        return np.datetime64(value, "D")
    except (TypeError, ValueError):
        raise DataError(
            f"OMOP table {table}, column {column}, {where}: {value!r} is not a date"
        ) from None


def write_omop(path: Path, patients: pa.Table, conditions: pa.Table) -> None:
    """Write `patients` and `conditions` (the CSV format's tables) as an OMOP CDM 5.4
    SQLite file holding the columns `load_omop` reads: the synthetic data's OMOP form
    (with `death` and `observation_period` where `patients` has the date columns)."""
    from smpc_ehr.data.omop_dates import write_dates

    path.unlink(missing_ok=True)
    ids = patients.column("patient_id").to_pylist()
    number = {pid: i + 1 for i, pid in enumerate(ids)}
    concepts = {"F": FEMALE_CONCEPT, "M": MALE_CONCEPT}
    births = patients.column("birth_date").to_pylist()
    sexes = patients.column("sex").to_pylist()
    source_values = _source_values(patients)
    person_rows = [
        (number[pid], concepts.get(sex, 0), b.year, b.month, b.day, b.isoformat(), value)
        for pid, sex, b, value in zip(ids, sexes, births, source_values, strict=True)
    ]
    onsets = conditions.column("onset_date").to_pylist()  # synth always writes it
    condition_rows = [
        (i + 1, number[pid], 0, None if onset is None else onset.isoformat(), code)
        for i, (pid, code, onset) in enumerate(
            zip(
                conditions.column("patient_id").to_pylist(),
                conditions.column("code").to_pylist(),
                onsets,
                strict=True,
            )
        )
    ]
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE person (person_id INTEGER PRIMARY KEY, gender_concept_id INTEGER "
            "NOT NULL, year_of_birth INTEGER NOT NULL, month_of_birth INTEGER, day_of_birth "
            "INTEGER, birth_datetime TEXT, person_source_value TEXT)"
        )
        db.execute(
            "CREATE TABLE condition_occurrence (condition_occurrence_id INTEGER PRIMARY KEY, "
            "person_id INTEGER NOT NULL, condition_concept_id INTEGER NOT NULL, "
            "condition_start_date TEXT, condition_source_value TEXT)"
        )
        db.executemany("INSERT INTO person VALUES (?, ?, ?, ?, ?, ?, ?)", person_rows)
        db.executemany("INSERT INTO condition_occurrence VALUES (?, ?, ?, ?, ?)", condition_rows)
        write_dates(db, patients)
    db.close()


def _source_values(patients: pa.Table) -> list[str]:
    """What `write_omop` puts in person_source_value: the link id where the table has a
    `link_id` column (read back with link_column = "person_source_value"), else the
    hospital's own patient id."""
    column = "link_id" if "link_id" in patients.column_names else "patient_id"
    return [str(v or "") for v in patients.column(column).to_pylist()]
