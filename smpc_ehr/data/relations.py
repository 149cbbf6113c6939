"""What a database source shows the rest of the party: two relations in the terms of
today's file format, so that the local step's SQL (`pushdown`) is written once for every
kind of database (OMOP CDM in PostgreSQL or SQLite, DuckDB files, Parquet in place).

Each kind of source builds its `Relations` from its own tables with SQLAlchemy's
constructs (no SQL text is formatted from data or parameters). A job reads through one
`SqlSnapshot`: one connection inside one read transaction, so that every query of the
job, and every step of an iterative analysis, sees the same data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlalchemy as sa


@dataclass(frozen=True)
class Relations:
    """The patients and condition rows of a database source.

    `patients` has the columns `pid` (the source's own key, any type, unique), `sex_code`
    (integer: 0 F, 1 M, 2 U, the order of `records.SEXES`), `birth_key` (integer
    yyyymmdd, never NULL) and one float column per name in `features` and `outcomes`
    (NULL = missing). `conditions` has `pid` (a patient's key), `code` (as stored) and
    `onset` (a DATE, NULL = unknown).
    """

    patients: sa.FromClause
    conditions: sa.FromClause
    features: tuple[str, ...]
    outcomes: tuple[str, ...]
    normalize_code: Callable[[str], str]
    """A stored code in the CSV format's spelling (e.g. "E7522" -> "E75.22"); raises
    DataError naming the table and column for a value that is not an ICD-10 code."""


@dataclass(frozen=True)
class SqlSnapshot:
    """One job's view of a database source: `connection` is inside a read transaction
    that lasts the job; `version` names the data read (docs/data.md, "Data version")."""

    connection: sa.Connection
    relations: Relations
    version: str
