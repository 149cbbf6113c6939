"""SQLAlchemy engines for database sources: read-only, one snapshot per transaction.

A party never writes to its hospital's database; the docs ask for a read-only login
too, and the engine opens read-only where the driver can (a SQLite or DuckDB file is
opened read-only; a PostgreSQL transaction is READ ONLY). Every transaction is one
snapshot: REPEATABLE READ on PostgreSQL; an explicit BEGIN on SQLite, whose Python
driver would otherwise run each SELECT in a transaction of its own.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from smpc_ehr.errors import DataError

if TYPE_CHECKING:
    import sqlalchemy as sa

DUCKDB_CONFIG = {"memory_limit": "256MB", "threads": 2}
"""DuckDB inside the party process: bounded memory (the party's own stays small) and
the two cores of a typical party host."""


def read_only_engine(url: str) -> tuple[sa.Engine, Path | None]:
    """An engine for `url` and, for a database file, its path (for the data version)."""
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise DataError(f"{url!r} is not a database URL (e.g. sqlite:///cdm.sqlite)") from None
    backend = parsed.get_backend_name()
    if backend in ("sqlite", "duckdb"):
        path = Path(parsed.database or "")
        if not path.is_file():
            raise DataError(f"database file {path} does not exist")
        if backend == "duckdb":
            config: dict[str, Any] = {"read_only": True, "config": dict(DUCKDB_CONFIG)}
            return sa.create_engine(parsed, connect_args=config), path
        return _sqlite(path), path
    options = {}
    if backend == "postgresql":
        options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    try:
        return sa.create_engine(parsed, execution_options=options), None
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise DataError(f"database URL {parsed!r}: {exc}") from None


def _sqlite(path: Path) -> sa.Engine:
    import sqlalchemy as sa

    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    engine = sa.create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
    )

    @sa.event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we say BEGIN ourselves

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    return engine
