"""A party's data folder may name where its data live instead of holding them:
`source.toml` with a `kind` (docs/data.md, "Sources").

    kind = "omop"
    url = "sqlite:///cdm.sqlite"      # or "postgresql+psycopg2://reader@host/cdm"
    schema = "cdm"                    # optional

    link_column = "person_source_value"   # optional: the person column of link ids

    kind = "fhir"                     # a FHIR R4 bulk export: Patient and Condition NDJSON
    path = "export"                   # optional, default the folder itself
    link_system = "urn:oid:..."       # optional: the Patient.identifier system of link ids

A relative SQLite or export path is taken from the folder holding `source.toml`.
Today's CSV or Parquet files need no `source.toml`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import DataError

SOURCE_FILE = "source.toml"
KEYS = {"omop": ("url", "schema", "link_column"), "fhir": ("path", "link_system")}
"""Each kind of source and the keys it takes besides `kind`."""
KINDS = tuple(KEYS)


def load_source(folder: Path) -> PartyData | None:
    """The party's data from `folder/source.toml`, or None if the folder has none."""
    path = folder / SOURCE_FILE
    if not path.is_file():
        return None
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
    if kind == "fhir":
        from smpc_ehr.data.fhir import load_fhir

        export = table.get("path", ".")
        if not isinstance(export, str):
            raise DataError(f"{path}: path must be a folder name")
        return load_fhir((folder / export).resolve(), _link_key(table, "link_system", path))
    url, schema = table.get("url"), table.get("schema")
    if not isinstance(url, str) or not url:
        raise DataError(f"{path}: url must be a database URL (e.g. sqlite:///cdm.sqlite)")
    if schema is not None and not isinstance(schema, str):
        raise DataError(f"{path}: schema must be a string")
    from smpc_ehr.data.omop import load_omop

    return load_omop(_anchored(url, folder), schema, _link_key(table, "link_column", path))


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
