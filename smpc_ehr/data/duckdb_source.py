"""A DuckDB source: today's two tables (`patients`, `conditions`, the columns of
patients.csv and conditions.csv) in a DuckDB database file, or as Parquet files read in
place (docs/data.md, "DuckDB source").

    kind = "duckdb"
    database = "ehr.duckdb"       # tables patients and conditions, opened read-only
    # or: parquet = "."           # a folder holding patients.parquet and conditions.parquet
    memory_limit = "256MB"        # optional: DuckDB's memory limit for one job
    threads = 2                   # optional: DuckDB's worker threads

A party reads it per job through one `SqlSnapshot` (`DuckDbSource.snapshot`): the
analyses that push their local step down (`Analysis.local_input_sql`) run it as SQL in
DuckDB, so the party process holds no row-level table; the others get a PartyData
materialised through the same tables with the loader's checks (`DuckDbSource.load`).

`file_relations` presents two tables of today's format as `Relations` for any of
SQLite, DuckDB and PostgreSQL: sex letter -> sex_code, birth_date -> birth_key
(yyyymmdd by EXTRACT), numeric columns as DOUBLE.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from smpc_ehr.data.codes import CODE_REGEX
from smpc_ehr.data.loader import DATE_COLUMNS, LINK_COLUMN
from smpc_ehr.data.records import SEXES, PartyData
from smpc_ehr.data.relations import Relations, SqlSnapshot
from smpc_ehr.data.tabular import Source
from smpc_ehr.errors import DataError

PATIENT_COLUMNS = ("patient_id", "sex", "birth_date")
CONDITION_COLUMNS = ("patient_id", "code")
TABLES = ("patients", "conditions")
DEFAULT_MEMORY_LIMIT = "256MB"
DEFAULT_THREADS = 2
_CODE = re.compile(CODE_REGEX)
_INTEGER = re.compile(r"^(U?(TINY|SMALL|BIG)?INT(EGER)?|BOOLEAN)$")
_NUMERIC = re.compile(r"^(U?(TINY|SMALL|BIG)?INT(EGER)?|BOOLEAN|FLOAT|DOUBLE|REAL)$")
"""The column types both paths take (the loader refuses DECIMAL and HUGEINT, which Arrow
gives as decimals)."""


def code_speller(where: str) -> Callable[[str], str]:
    """`Relations.normalize_code` for a code column in today's format: trimmed and upper
    case, as the CSV loader reads it; DataError for a value that is not a code."""

    def normalize(value: str) -> str:
        code = value.strip().upper()
        if not _CODE.match(code):
            raise DataError(f"{where}, column 'code': {value!r} is not an ICD-10-CM code")
        return code

    return normalize


def file_relations(
    patients: sa.FromClause,
    conditions: sa.FromClause,
    features: tuple[str, ...],
    outcomes: tuple[str, ...],
    *,
    dialect: str,
    where: str,
) -> Relations:
    """`Relations` over two tables in today's format (`patients`: patient_id, sex,
    birth_date, the numeric columns; `conditions`: patient_id, code, optional
    onset_date). `dialect` is the database's ("sqlite" keeps dates as ISO text, which
    EXTRACT reads there; the others cast to DATE); `where` names the source in errors."""
    p = patients.c
    sex = sa.func.upper(sa.func.trim(p.sex))
    sex_code = sa.case(*((sex == letter, i) for i, letter in enumerate(SEXES)), else_=None)
    born = p.birth_date if dialect == "sqlite" else sa.cast(p.birth_date, sa.Date)
    birth_key = (
        sa.extract("year", born) * 10000 + sa.extract("month", born) * 100 + sa.extract("day", born)
    )
    numbers = [sa.cast(p[name], sa.Double).label(name) for name in (*features, *outcomes)]
    patient_rel = sa.select(
        p.patient_id.label("pid"),
        sex_code.label("sex_code"),
        birth_key.label("birth_key"),
        *numbers,
    ).subquery("patient_rel")
    c = conditions.c
    if "onset_date" not in c:
        onset: sa.ColumnElement[Any] = sa.null()
    elif dialect == "sqlite":
        onset = sa.func.nullif(c.onset_date, "")
    else:
        onset = sa.cast(c.onset_date, sa.Date)
    condition_rel = sa.select(
        c.patient_id.label("pid"), c.code.label("code"), onset.label("onset")
    ).subquery("condition_rel")
    return Relations(
        patients=patient_rel,
        conditions=condition_rel,
        features=features,
        outcomes=outcomes,
        normalize_code=code_speller(f"{where}, table conditions"),
    )


@dataclass(frozen=True)
class DuckDbSource:
    """Where a DuckDB source's data are (exactly one of `database`, `parquet`) and
    DuckDB's limits for one job."""

    database: Path | None = None
    parquet: Path | None = None
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    threads: int = DEFAULT_THREADS

    def __post_init__(self) -> None:
        if (self.database is None) == (self.parquet is None):
            raise DataError("a duckdb source names either a database file or a parquet folder")

    @property
    def label(self) -> str:
        return f"DuckDB {self.database}" if self.database else f"Parquet in {self.parquet}"

    def files(self) -> list[Path]:
        """The files read: the database, or the two Parquet files."""
        if self.database is not None:
            return [self.database]
        assert self.parquet is not None
        return [self.parquet / f"{name}.parquet" for name in TABLES]

    def version(self) -> str:
        """The data version: a hash of each file's name, size and modification time
        (a 10-million-patient file is not read whole to name its version)."""
        digest = hashlib.sha256()
        for path in self.files():
            try:
                stat = path.stat()
            except OSError as exc:
                raise DataError(f"{self.label}: {path} cannot be read: {exc}") from None
            digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        return "files:" + digest.hexdigest()[:16]

    def engine(self) -> sa.Engine:
        """An engine with one connection per job (no pool: a closed job releases the
        file, so the hospital can refresh it between jobs); a database file read-only."""
        self.version()  # the files exist
        config = {"memory_limit": self.memory_limit, "threads": self.threads}
        if self.database is not None:
            url = sa.engine.URL.create("duckdb", database=str(self.database))
            args: dict[str, Any] = {"read_only": True, "config": config}
        else:
            url = sa.engine.URL.create("duckdb", database=":memory:")
            args = {"config": config}
        return sa.create_engine(url, connect_args=args, poolclass=sa.NullPool)

    def tables(self, connection: sa.Connection) -> dict[str, tuple[sa.FromClause, dict[str, str]]]:
        """`patients` and `conditions` as FROM clauses with their columns named, and
        each column's DuckDB type."""
        out: dict[str, tuple[sa.FromClause, dict[str, str]]] = {}
        for name in TABLES:
            where = f"{self.label}, table {name}"
            if self.database is not None:
                types = _describe(connection, sa.table(name), where)
                out[name] = (sa.table(name, *(sa.column(c) for c in types)), types)
            else:
                assert self.parquet is not None
                read = sa.func.read_parquet(str(self.parquet / f"{name}.parquet"))
                types = _describe(connection, read.alias(name), where)
                out[name] = (read.table_valued(*types).alias(name), types)
        return out

    def relations(self, connection: sa.Connection) -> Relations:
        """The source's `Relations` (features and outcomes told apart by the loader's
        outcome rule: an integer or boolean column whose values are all 0 or 1)."""
        tables = self.tables(connection)
        for name, required in zip(TABLES, (PATIENT_COLUMNS, CONDITION_COLUMNS), strict=True):
            for column in required:
                if column not in tables[name][1]:
                    raise DataError(
                        f"{self.label}, table {name}: required column {column!r} missing"
                    )
        patients, types = tables["patients"]
        not_numeric = (*PATIENT_COLUMNS, LINK_COLUMN, *DATE_COLUMNS)  # text ids, dates
        extra = [n for n in types if n not in not_numeric]
        for name in extra:
            if not _NUMERIC.match(types[name]):
                raise DataError(
                    f"{self.label}, table patients, column {name!r}: extra columns must be "
                    f"numeric, found type {types[name]}"
                )
        integers = [n for n in extra if _INTEGER.match(types[n])]
        outcomes = _outcomes(connection, patients, integers)
        return file_relations(
            patients,
            tables["conditions"][0],
            tuple(n for n in extra if n not in outcomes),
            tuple(n for n in extra if n in outcomes),
            dialect="duckdb",
            where=self.label,
        )

    @contextmanager
    def snapshot(self, known: dict[str, Relations] | None = None) -> Iterator[SqlSnapshot]:
        """One job's view: one connection in one read transaction, closed at the end.
        `known` keeps the relations of the version last described, so that their checks
        and the outcome rule's scan of the patients table run once per version of the
        files, not once per job."""
        version = self.version()
        engine = self.engine()
        try:
            with engine.connect() as connection, connection.begin():
                if known is not None and version in known:
                    relations = known[version]
                else:
                    relations = self.relations(connection)
                    if known is not None:
                        known.clear()
                        known[version] = relations
                yield SqlSnapshot(connection, relations, version)
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"{self.label}: {exc.__class__.__name__}: {exc}") from None
        finally:
            engine.dispose()

    def load(self, connection: sa.Connection | None = None) -> PartyData:
        """The whole source as a PartyData, for analyses that need rows, read through
        `connection` (a job's snapshot) or a snapshot of its own. The tables go through
        the CSV/Parquet loader's checks (a Parquet folder is read as the loader reads
        one); errors name the table, the column and the row (1-based, in table order)."""
        from smpc_ehr.data.loader import CONDITION_COLUMNS as WANTED
        from smpc_ehr.data.loader import OPTIONAL_CONDITION_COLUMNS, party_data_from_tables
        from smpc_ehr.data.tabular import read_table

        if self.parquet is not None:
            paths = [self.parquet / f"{name}.parquet" for name in TABLES]
            return party_data_from_tables(
                Source(paths[0]),
                read_table(paths[0], PATIENT_COLUMNS, optional=None),
                Source(paths[1]),
                read_table(paths[1], WANTED, OPTIONAL_CONDITION_COLUMNS),
            )
        assert self.database is not None
        if connection is None:
            with self.snapshot() as snap:
                return self.load(snap.connection)
        self.relations(connection)  # its checks: the required columns
        raw: Any = connection.connection.driver_connection
        fetched = [raw.table(name).to_arrow_table() for name in TABLES]
        return party_data_from_tables(
            _TableSource(self.database / TABLES[0]),
            fetched[0],
            _TableSource(self.database / TABLES[1]),
            fetched[1],
        )


def _describe(connection: sa.Connection, source: sa.FromClause, where: str) -> dict[str, str]:
    """Column names and DuckDB type names of a table, from an empty result."""
    try:
        result = connection.execute(sa.select(sa.text("*")).select_from(source).limit(0))
    except sa.exc.SQLAlchemyError as exc:
        raise DataError(f"{where}: cannot be read: {exc.__class__.__name__}: {exc}") from None
    return {str(d[0]): str(d[1]).upper() for d in result.cursor.description or ()}


def _outcomes(connection: sa.Connection, patients: sa.FromClause, integers: list[str]) -> set[str]:
    """The loader's outcome rule on integer (or boolean) columns: all values 0 or 1,
    at least one present."""
    if not integers:
        return set()
    parts = []
    for name in integers:
        x = sa.cast(patients.c[name], sa.Double)
        parts += [sa.func.count(x), sa.func.sum(sa.case((sa.or_(x == 0, x == 1), 1), else_=0))]
    row = connection.execute(sa.select(*parts)).one()
    return {n for i, n in enumerate(integers) if row[2 * i] and row[2 * i] == row[2 * i + 1]}


class _TableSource(Source):
    """A table of a DuckDB file as the loader's `Source`: positions are rows
    (1-based, in table order), named `<file>/<table>`."""

    @property
    def is_csv(self) -> bool:
        return False


def write_duckdb(path: Path, patients: pa.Table, conditions: pa.Table) -> None:
    """`patients` and `conditions` (the CSV format's tables) as the two tables of a new
    DuckDB file: the synthetic data's DuckDB form."""
    import duckdb

    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as db:
        for name, table in zip(TABLES, (patients, conditions), strict=True):
            db.register("incoming", table)
            db.execute(f"CREATE TABLE {name} AS SELECT * FROM incoming")  # name: a constant
            db.unregister("incoming")


def open_duckdb(table: Mapping[str, Any], folder: Path) -> DuckDbSource:
    """The DuckDB source a `source.toml` (or a party config's source table) describes;
    relative paths are taken from `folder`."""
    database, parquet = table.get("database"), table.get("parquet")
    if (database is None) == (parquet is None):
        raise DataError("kind duckdb needs exactly one of database (a file) or parquet (a folder)")
    for key, value in (("database", database), ("parquet", parquet)):
        if value is not None and (not isinstance(value, str) or not value):
            raise DataError(f"{key} must be a path")
    memory = table.get("memory_limit", DEFAULT_MEMORY_LIMIT)
    threads = table.get("threads", DEFAULT_THREADS)
    if not isinstance(memory, str) or not re.fullmatch(r"\d+(\.\d+)?\s*[KMGT]i?B", memory):
        raise DataError(f"memory_limit must be like '256MB', not {memory!r}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise DataError(f"threads must be a positive whole number, not {threads!r}")
    return DuckDbSource(
        database=None if database is None else (folder / database).resolve(),
        parquet=None if parquet is None else (folder / parquet).resolve(),
        memory_limit=memory,
        threads=threads,
    )
