"""A party's data, read per job, so that data refresh needs no restart.

Each job opens a `JobData`: the data as they are when the job starts, and the version
that names them (docs/data.md, "Data version"). Files (CSV, Parquet, a FHIR export) are
re-read when one of them changed since the last job (size or modification time); their
version is an HMAC-SHA256 of their bytes under a key of the party's own, so that no one
without it can test a guess of the files against a released version. A database is
read inside one read-only transaction per job (PostgreSQL: REPEATABLE READ, one
snapshot for every query of the job); its version is the snapshot and its time. A job
that the analysis can push down (`Analysis.local_input_sql`) gets the open transaction
as a `SqlSnapshot` and never holds a row-level table; any other job materialises the
rows through the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from smpc_ehr.data.records import PartyData
from smpc_ehr.data.relations import Relations, SqlSnapshot
from smpc_ehr.errors import DataError

if TYPE_CHECKING:
    import sqlalchemy as sa

VERSION_HEX = 16
"""Hex digits of a file source's digest kept in its version (64 bits: ample to tell
two versions of one hospital's files apart)."""
VERSION_KEY_FILE = "data_version.key"
"""In the party's state folder: the key of its file sources' versions."""
VERSION_KEY_BYTES = 32


def version_key(state: Path) -> bytes:
    """The party's key for the versions of its data files, made on first use (32 random
    bytes, mode 0600, in its state folder). Keyed, a version tells apart two states of
    the files but lets no one who guesses the files' content confirm the guess; the
    hospital, holding the key, can recompute it (`files_version`)."""
    path = state / VERSION_KEY_FILE
    state.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) != VERSION_KEY_BYTES:
            raise DataError(f"{path}: not a data version key ({VERSION_KEY_BYTES} bytes)") from None
        return key
    key = secrets.token_bytes(VERSION_KEY_BYTES)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key


class JobData:
    """What one job reads: the data version, the rows (materialised on first use) and,
    for a database source, the open snapshot that push-down queries."""

    def __init__(
        self,
        version: str,
        rows: Callable[[], PartyData],
        sql: SqlSnapshot | None = None,
        close: Callable[[], None] | None = None,
    ) -> None:
        self.version = version
        self.sql = sql
        self._read = rows
        self._rows: PartyData | None = None
        self._close = close

    def rows(self) -> PartyData:
        """The party's patients and conditions as the job sees them."""
        if self._rows is None:
            self._rows = self._read()
        return self._rows

    def close(self) -> None:
        """End the job's read (a database transaction is rolled back: it wrote nothing)."""
        close, self._close = self._close, None
        if close is not None:
            close()


class DataStore(ABC):
    """Where a party's data live; `open_job` gives one job's consistent view."""

    @abstractmethod
    def open_job(self) -> JobData:
        """The data for one job. DataError names what is wrong with them."""

    def close(self) -> None:  # noqa: B027 - only database stores hold anything
        """Release connections (at the party's shutdown)."""


class MemoryStore(DataStore):
    """Data held in memory that never change (the in-process test federation, tools)."""

    def __init__(self, data: PartyData, version: str = "in memory") -> None:
        self._data = data
        self._version = version

    def open_job(self) -> JobData:
        return JobData(self._version, lambda: self._data)


class FileStore(DataStore):
    """Data files in a folder, loaded again only when one of them changed."""

    def __init__(
        self,
        files: Callable[[], Sequence[Path]],
        load: Callable[[], PartyData],
        key: bytes | None = None,
    ):
        self._files = files
        self._load = load
        self._key = key
        self._lock = threading.Lock()
        self._seen: tuple[tuple[str, int, int], ...] | None = None
        self._data: PartyData | None = None
        self._version = ""

    def _signature(self) -> tuple[tuple[str, int, int], ...]:
        stats = [(str(p), p.stat()) for p in sorted(self._files())]
        return tuple((name, st.st_size, st.st_mtime_ns) for name, st in stats)

    def open_job(self) -> JobData:
        with self._lock:
            seen = self._signature()
            if seen != self._seen or self._data is None:
                data = self._load()
                version = files_version([Path(name) for name, _, _ in seen], self._key)
                if self._signature() != seen:  # written while we read: read it next job
                    seen = ()
                self._seen, self._data, self._version = seen, data, version
            data = self._data
            return JobData(self._version, lambda: data)


def files_version(paths: Sequence[Path], key: bytes | None = None) -> str:
    """The first hex digits of a digest of the files' names and bytes: "hmac-sha256:"
    under `key` (a party's `version_key`), else "sha256:" (tools and tests)."""
    digest = hmac.new(key, digestmod=hashlib.sha256) if key else hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        digest.update(b"\0")
    prefix = "hmac-sha256:" if key else "sha256:"
    return prefix + digest.hexdigest()[:VERSION_HEX]


class DatabaseStore(DataStore):
    """A database read in one transaction per job."""

    def __init__(
        self,
        engine: sa.Engine,
        read: Callable[[sa.Connection], PartyData],
        relations: Relations | None = None,
        file: Path | None = None,
    ) -> None:
        self._engine = engine
        self._read = read
        self._relations = relations
        self._file = file

    def open_job(self) -> JobData:
        import sqlalchemy as sa

        try:
            connection = self._engine.connect()
            transaction = connection.begin()
            version = self._version(connection)
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"database {self._engine.url!r}: {exc.__class__.__name__}") from None

        def close() -> None:
            try:
                transaction.rollback()
            finally:
                connection.close()

        relations = self._relations
        sql = SqlSnapshot(connection, relations, version) if relations is not None else None
        return JobData(version, lambda: self._read(connection), sql, close)

    def _version(self, connection: sa.Connection) -> str:
        """The PostgreSQL snapshot and its time, or a database file's modification time."""
        import sqlalchemy as sa

        if connection.dialect.name == "postgresql":
            snapshot, at = connection.execute(
                sa.select(
                    sa.cast(sa.func.pg_current_snapshot(), sa.Text),
                    sa.func.transaction_timestamp(),
                )
            ).one()
            return f"postgresql snapshot {snapshot} at {at.astimezone(UTC).isoformat()}"
        if self._file is not None:
            modified = datetime.fromtimestamp(self._file.stat().st_mtime, UTC)
            return f"{self._file.name} modified {modified.isoformat()}"
        return f"read at {datetime.now(UTC).isoformat()}"

    def close(self) -> None:
        self._engine.dispose()
