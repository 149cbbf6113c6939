"""The survival date columns of an OMOP CDM source (docs/data.md, "Survival dates"):

- `death_date` from the `death` table: the person's `death_date` (CDM 5.4 keeps one row
  per person; where a database holds several, the earliest counts).
- `last_contact_date` from `observation_period`: the latest
  `observation_period_end_date` of the person (the end of the last span in which the
  hospital would have recorded the person's events).

A person without a row has the date empty (unknown). A CDM without the table has no such
column at all, so an analysis that needs it is refused naming it. A death after the
analysis's as-of date is not an event there: the analysis decides that, not the source.
The synthetic OMOP writer (`write_dates`) writes both tables from the CSV's columns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from smpc_ehr.data.omop import _day
from smpc_ehr.errors import DataError

if TYPE_CHECKING:
    import sqlalchemy as sa

DATE_TABLES: dict[str, tuple[str, str, str]] = {
    "death_date": ("death", "death_date", "min"),
    "last_contact_date": ("observation_period", "observation_period_end_date", "max"),
}
"""Each date column: the CDM table, its date column and which of a person's rows counts."""
EHR_RECORD = 32817
"""Type concept "EHR" for the synthetic rows' *_type_concept_id."""


def read_dates(
    connection: sa.Connection, schema: str | None, index: Mapping[Any, int], n: int
) -> dict[str, np.ndarray]:
    """The date columns of the `n` persons (`index`: person_id -> position) whose
    tables exist in the CDM, as datetime64[D] with NaT where a person has no row."""
    import sqlalchemy as sa

    present = sa.inspect(connection)
    dates: dict[str, np.ndarray] = {}
    for name, (table, column, pick) in DATE_TABLES.items():
        if not present.has_table(table, schema=schema):
            continue
        t = sa.table(table, sa.column("person_id"), sa.column(column), schema=schema)
        chosen = sa.func.min(t.c[column]) if pick == "min" else sa.func.max(t.c[column])
        query = sa.select(t.c.person_id, chosen.label("day")).group_by(t.c.person_id)
        values = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
        for row in connection.execute(query.order_by(t.c.person_id)):
            where = f"person_id {row.person_id}"
            if row.person_id not in index:
                raise DataError(
                    f"OMOP table {table}, column person_id, {where}: "
                    f"person {row.person_id} is not in table person"
                )
            if row.day is not None:
                values[index[row.person_id]] = _day(row.day, column, where, table=table)
        dates[name] = values
    return dates


def write_dates(db: sqlite3.Connection, patients: pa.Table) -> None:
    """Create `death` and `observation_period` in the synthetic SQLite CDM from the
    CSV format's `patients` (person_id = position + 1): a death row per known
    death_date, and per known last_contact_date one observation period from the birth
    date to it. Without the CSV's date columns, no table (as a CDM without them)."""
    names = patients.column_names
    if not all(name in names for name in DATE_TABLES):
        return
    births = patients.column("birth_date").to_pylist()
    deaths = patients.column("death_date").to_pylist()
    contacts = patients.column("last_contact_date").to_pylist()
    db.execute(
        "CREATE TABLE death (person_id INTEGER NOT NULL, death_date TEXT NOT NULL, "
        "death_datetime TEXT, death_type_concept_id INTEGER NOT NULL)"
    )
    db.execute(
        "CREATE TABLE observation_period (observation_period_id INTEGER PRIMARY KEY, "
        "person_id INTEGER NOT NULL, observation_period_start_date TEXT NOT NULL, "
        "observation_period_end_date TEXT NOT NULL, period_type_concept_id INTEGER NOT NULL)"
    )
    db.executemany(
        "INSERT INTO death VALUES (?, ?, NULL, ?)",
        [(i + 1, d.isoformat(), EHR_RECORD) for i, d in enumerate(deaths) if d is not None],
    )
    periods = [(i + 1, b, c) for i, (b, c) in enumerate(zip(births, contacts, strict=True)) if c]
    db.executemany(
        "INSERT INTO observation_period VALUES (?, ?, ?, ?, ?)",
        [
            (k + 1, i, b.isoformat(), c.isoformat(), EHR_RECORD)
            for k, (i, b, c) in enumerate(periods)
        ],
    )
