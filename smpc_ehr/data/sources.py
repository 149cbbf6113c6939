"""Where a party's data live, and the store that reads them per job (`store`).

A data folder holds today's CSV or Parquet files, or a `source.toml` with a `kind`
(docs/data.md, "Sources"):

    kind = "omop"
    url = "sqlite:///cdm.sqlite"      # or "postgresql+psycopg2://reader@host/cdm"
    schema = "cdm"                    # optional

    kind = "fhir"                     # a FHIR R4 bulk export: Patient and Condition NDJSON
    path = "export"                   # optional, default the folder itself

A relative SQLite or export path is taken from the folder holding `source.toml`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from smpc_ehr.data.store import DatabaseStore, DataStore, FileStore
from smpc_ehr.errors import DataError

SOURCE_FILE = "source.toml"
KEYS = {"omop": ("url", "schema"), "fhir": ("path",)}
"""Each kind of source and the keys it takes besides `kind`."""
KINDS = tuple(KEYS)


def open_store(folder: Path) -> DataStore:
    """The store of the party data in `folder` (files, or what its source.toml names)."""
    from smpc_ehr.data import loader

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: data folder does not exist")
    path = folder / SOURCE_FILE
    if not path.is_file():
        return FileStore(lambda: loader.data_files(folder), lambda: loader.load_files(folder))
    table = read_source_file(path)
    if table["kind"] == "fhir":
        from smpc_ehr.data.fhir import export_files, load_fhir

        export = table.get("path", ".")
        if not isinstance(export, str):
            raise DataError(f"{path}: path must be a folder name")
        where = (folder / export).resolve()
        return FileStore(lambda: [path, *export_files(where)], lambda: load_fhir(where))
    url, schema = table.get("url"), table.get("schema")
    if not isinstance(url, str) or not url:
        raise DataError(f"{path}: url must be a database URL (e.g. sqlite:///cdm.sqlite)")
    if schema is not None and not isinstance(schema, str):
        raise DataError(f"{path}: schema must be a string")
    from smpc_ehr.data.engines import read_only_engine
    from smpc_ehr.data.omop import read_omop

    engine, file = read_only_engine(_anchored(url, folder))
    return DatabaseStore(engine, lambda connection: read_omop(connection, schema), file=file)


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


def _anchored(url: str, folder: Path) -> str:
    """A relative SQLite file path read from `folder`, any other URL as given."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
        return prefix + str((folder / url[len(prefix) :]).resolve())
    return url
