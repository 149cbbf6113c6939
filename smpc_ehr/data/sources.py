"""Where a party's data live, and the store that reads them per job (`store`).

A data folder holds today's CSV or Parquet files, or a `source.toml` with a `kind`
(docs/data.md, "Sources"):

    kind = "omop"
    url = "sqlite:///cdm.sqlite"      # or "postgresql+psycopg2://reader@host/cdm"
    schema = "cdm"                    # optional

    link_column = "person_source_value"   # optional: the person column of link ids

    kind = "fhir"                     # a FHIR R4 bulk export: Patient and Condition NDJSON
    path = "export"                   # optional, default the folder itself
    link_system = "urn:oid:..."       # optional: the Patient.identifier system of link ids

    kind = "duckdb"                   # today's patients and conditions tables in DuckDB
    database = "ehr.duckdb"           # a DuckDB file, or: parquet = "." (Parquet in place)

A relative SQLite or export path is taken from the folder holding `source.toml`.
Both database kinds and fhir take the feature mapping, `outcomes` and `as_of` of `mapping`.
Today's CSV or Parquet files need no `source.toml`.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smpc_ehr.data.mapping import MAPPING_KEYS, parse_mapping
from smpc_ehr.data.records import PartyData
from smpc_ehr.data.relations import Relations
from smpc_ehr.data.store import DatabaseStore, DataStore, FileStore, JobData
from smpc_ehr.errors import DataError

if TYPE_CHECKING:
    from smpc_ehr.data.duckdb_source import DuckDbSource

SOURCE_FILE = "source.toml"
KEYS = {
    "omop": ("url", "schema", "link_column", *MAPPING_KEYS),
    "fhir": ("path", "link_system", *MAPPING_KEYS),
    "duckdb": ("database", "parquet", "memory_limit", "threads"),
}
"""Each kind of source and the keys it takes besides `kind`."""
KINDS = tuple(KEYS)


def open_store(
    folder: Path,
    version_key: bytes | None = None,
    prepare: Callable[[PartyData], PartyData] | None = None,
) -> DataStore:
    """The store of the party data in `folder` (files, or what its source.toml names);
    `version_key` keys the versions of data files (`store.version_key`); `prepare` is
    applied to the rows as they are read (the party's link tokens, `linkage`)."""
    from smpc_ehr.data import loader

    def prepared(rows: PartyData) -> PartyData:
        return rows if prepare is None else prepare(rows)

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: data folder does not exist")
    path = folder / SOURCE_FILE
    if not path.is_file():
        return FileStore(
            lambda: loader.data_files(folder),
            lambda: prepared(loader.load_files(folder)),
            version_key,
        )
    table = read_source_file(path)
    if table["kind"] == "duckdb":
        return DuckDbStore(duckdb_source(table, path), prepared)
    mapping = parse_mapping(table, path)
    if table["kind"] == "fhir":
        from smpc_ehr.data.fhir import export_files, load_fhir

        export = table.get("path", ".")
        if not isinstance(export, str):
            raise DataError(f"{path}: path must be a folder name")
        where = (folder / export).resolve()
        system = _link_key(table, "link_system", path)
        return FileStore(
            lambda: export_files(where),
            lambda: prepared(load_fhir(where, mapping, system)),
            version_key,
        )
    url, schema = table.get("url"), table.get("schema")
    if not isinstance(url, str) or not url:
        raise DataError(f"{path}: url must be a database URL (e.g. sqlite:///cdm.sqlite)")
    if schema is not None and not isinstance(schema, str):
        raise DataError(f"{path}: schema must be a string")
    from smpc_ehr.data.engines import read_only_engine
    from smpc_ehr.data.omop import read_omop
    from smpc_ehr.data.omop_relations import omop_relations

    column = _link_key(table, "link_column", path)
    engine, file = read_only_engine(_anchored(url, folder))
    return DatabaseStore(
        engine,
        lambda connection: prepared(read_omop(connection, schema, mapping, column)),
        omop_relations(mapping, schema),
        file,
    )


def sql_source(folder: Path) -> DuckDbSource | None:
    """The source whose local steps run as SQL when `folder/source.toml` names one
    (kind duckdb); None otherwise."""
    path = Path(folder) / SOURCE_FILE
    if not path.is_file():
        return None
    table = read_source_file(path)
    return duckdb_source(table, path) if table["kind"] == "duckdb" else None


def duckdb_source(table: dict[str, Any], path: Path) -> DuckDbSource:
    """The DuckDB source a source.toml's `table` describes (errors name the file)."""
    from smpc_ehr.data.duckdb_source import open_duckdb

    try:
        return open_duckdb(table, path.parent)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None


class DuckDbStore(DataStore):
    """A DuckDB source read per job: one read-only connection and transaction, which
    push-down queries and, for analyses that need rows, the rows are read through."""

    def __init__(
        self, source: DuckDbSource, prepare: Callable[[PartyData], PartyData] | None = None
    ) -> None:
        self._source = source
        self._prepare = prepare or (lambda rows: rows)
        self._described: dict[str, Relations] = {}

    def open_job(self) -> JobData:
        job = contextlib.ExitStack()
        snapshot = job.enter_context(self._source.snapshot(self._described))
        return JobData(
            snapshot.version,
            lambda: self._prepare(self._source.load(snapshot.connection)),
            snapshot,
            job.close,
        )


def read_source_file(path: Path) -> dict[str, Any]:
    """The table of a source.toml, its kind and keys checked."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: {exc}") from None
    kind = table.get("kind")
    if kind not in KINDS:
        raise DataError(f"{path}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
    unknown = sorted(set(table) - {"kind", *KEYS[kind]})
    if unknown:
        raise DataError(f"{path}: unknown key(s) for kind {kind}: {', '.join(unknown)}")
    return table


def _link_key(table: dict[str, object], key: str, path: Path) -> str | None:
    """The optional key naming where link ids are (a column, an identifier system)."""
    value = table.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise DataError(f"{path}: {key} must be a non-empty string")
    return value


def _anchored(url: str, folder: Path) -> str:
    """A relative SQLite file path read from `folder`, any other URL as given."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        return prefix + str((folder / url[len(prefix) :]).resolve())
    return url


def has_link_ids(folder: Path) -> bool:
    """Whether a party folder's data carry link ids: a `link_id` column in its patients
    file, or a `link_column`/`link_system` in its `source.toml` (`smpc-ehr local up`
    then makes a linkage key for the federation)."""
    source = folder / SOURCE_FILE
    if source.is_file():
        try:
            table = tomllib.loads(source.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            return False  # the party reports the broken file when it loads it
        if table.get("kind") == "duckdb":
            from smpc_ehr.data.loader import LINK_COLUMN

            try:
                duck = duckdb_source(table, source)
                with duck.snapshot() as snapshot:
                    return LINK_COLUMN in duck.tables(snapshot.connection)["patients"][1]
            except DataError:
                return False  # the party reports it when it reads the source
        return bool(table.get("link_column") or table.get("link_system"))
    csv_file, parquet_file = folder / "patients.csv", folder / "patients.parquet"
    if csv_file.is_file():
        with csv_file.open(encoding="utf-8", errors="replace") as lines:
            header = lines.readline().strip().split(",")
        return "link_id" in (name.strip().strip('"') for name in header)
    if parquet_file.is_file():
        import pyarrow.parquet as pq

        return "link_id" in pq.read_schema(parquet_file).names
    return False
