"""The coordinator's job history: one SQLite row per job, kept across restarts.

Why: an analyst's results must not vanish when the coordinator restarts, and an
operator must be able to say which jobs ran, for whom and how they ended. Every
state change of a job is written here as it happens (the in-memory `JobBook` only
runs the queue). What is stored is what the analyst may see: the template, the
parameter values, the backend, the parties, times, the error text and the released
result, never a share or a party's input.

Retention: a done job's result is deleted (the row stays, state "expired") once it
ended `result_keep` seconds ago, or was first read `fetched_keep` seconds ago,
whichever comes first. Rows themselves are kept (see docs/operations.md). A job that
was queued or running when the coordinator stopped is marked failed at start-up
with `LOST`; nothing partial is ever stored as a result: a result is written only
together with the state "done".
"""

from __future__ import annotations

import fcntl
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from smpc_ehr.errors import ConfigError

log = logging.getLogger(__name__)

DATABASE = "jobs.sqlite3"
"""The history's file in the coordinator's state folder."""
LOCK = "coordinator.lock"
LOST = "lost: the coordinator restarted while this job was queued or running"
LIVE_STATES = ("queued", "preparing", "running")
STARTED_STATES = frozenset({"preparing", "running"})
ENDED_STATES = frozenset({"done", "failed"})
MAX_LIST = 500
"""Most rows one listing returns."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    analyst TEXT NOT NULL,
    protocol TEXT NOT NULL,
    protocol_hash TEXT NOT NULL,
    analysis TEXT NOT NULL,
    params TEXT NOT NULL,
    backend TEXT NOT NULL,
    parties TEXT NOT NULL,
    submitted REAL NOT NULL,
    started REAL,
    finished REAL,
    state TEXT NOT NULL,
    error TEXT NOT NULL DEFAULT '',
    result TEXT,
    fetched REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_analyst ON jobs (analyst, submitted);
"""


class Template(Protocol):
    """What the history reads of a job's template (`ProtocolTemplate`)."""

    @property
    def name(self) -> str: ...

    @property
    def canonical_hash(self) -> str: ...

    @property
    def analysis(self) -> str: ...


class RecordedJob(Protocol):
    """What the history reads of a job (the coordinator's `Job`)."""

    job_id: str
    analyst: str
    raw_params: dict[str, str]
    backend: str
    parties: list[str]
    state: str
    error: str
    result: dict[str, Any] | None
    fetched: float | None

    @property
    def template(self) -> Template: ...


@dataclass(frozen=True)
class StoredJob:
    """One row of the history; times are Unix seconds (UTC), None until they happen."""

    job_id: str
    analyst: str
    protocol: str
    protocol_hash: str
    analysis: str
    params: dict[str, str]
    backend: str
    parties: tuple[str, ...]
    submitted: float
    started: float | None
    finished: float | None
    state: str
    error: str
    result: dict[str, Any] | None
    fetched: float | None
    result_expires: float | None
    """When a kept result will be deleted (None: no result kept)."""

    def elapsed(self, now: float) -> float:
        """Seconds from submission to the end (or to `now` while it runs)."""
        end = self.finished if self.finished is not None else now
        return max(0.0, end - self.submitted)


class JobHistory:
    """The SQLite store; call from one thread (the coordinator's event loop)."""

    def __init__(
        self,
        path: Path | None,
        result_keep: float,
        fetched_keep: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`path` None keeps the history in memory (the in-process test federation)."""
        self.result_keep = result_keep
        self.fetched_keep = fetched_keep
        self._clock = clock
        self._lock: IO[str] | None = None
        if path is not None:
            self._lock = _lock(path.parent)
        try:
            self._db = sqlite3.connect(":memory:" if path is None else str(path))
        except sqlite3.Error as exc:
            self._release_lock()
            raise ConfigError(f"cannot open the job history {path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        with self._db:
            self._db.execute("PRAGMA secure_delete = ON")  # deleted results are overwritten
            if path is not None:
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(_SCHEMA)

    @classmethod
    def in_state_folder(cls, state: Path, result_keep: float, fetched_keep: float) -> JobHistory:
        """Open (or create) the history in the coordinator's state folder, created
        readable by its owner only (0700, as the parties' state folders): the history
        holds analysts' results and parameters."""
        try:
            state.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"cannot create the coordinator's state folder {state}: {exc}"
            ) from exc
        return cls(state / DATABASE, result_keep, fetched_keep)

    def close(self) -> None:
        self._db.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def recover(self) -> list[str]:
        """At start-up: mark failed every job left queued or running by a coordinator
        that stopped, and return their ids."""
        now = self._clock()
        marks = ",".join("?" * len(LIVE_STATES))
        with self._db:
            rows = self._db.execute(
                f"SELECT job_id FROM jobs WHERE state IN ({marks})", LIVE_STATES
            ).fetchall()
            self._db.execute(
                f"UPDATE jobs SET state = 'failed', error = ?, result = NULL, "
                f"finished = ? WHERE state IN ({marks})",
                (LOST, now, *LIVE_STATES),
            )
        return [row["job_id"] for row in rows]

    def save(self, job: RecordedJob) -> None:
        """Write the job's current state (a new row the first time); times are set when
        the job starts, ends and is first read. A result is kept only when done."""
        now = self._clock()
        result = json.dumps(job.result) if job.state == "done" and job.result is not None else None
        with self._db:
            self._db.execute(
                """
                INSERT INTO jobs (job_id, analyst, protocol, protocol_hash, analysis, params,
                    backend, parties, submitted, started, finished, state, error, result,
                    fetched)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (job_id) DO UPDATE SET
                    state = excluded.state, error = excluded.error, result = excluded.result,
                    started = COALESCE(jobs.started, excluded.started),
                    finished = COALESCE(jobs.finished, excluded.finished),
                    fetched = COALESCE(jobs.fetched, excluded.fetched)
                """,
                (
                    job.job_id,
                    job.analyst,
                    job.template.name,
                    job.template.canonical_hash,
                    job.template.analysis,
                    json.dumps(job.raw_params, sort_keys=True),
                    job.backend,
                    json.dumps(list(job.parties)),
                    now,
                    now if job.state in STARTED_STATES else None,
                    now if job.state in ENDED_STATES else None,
                    job.state,
                    job.error,
                    result,
                    now if job.fetched is not None and job.state in ENDED_STATES else None,
                ),
            )

    def mark_fetched(self, job_id: str) -> None:
        """The analyst read the ended job: its shorter retention starts now."""
        with self._db:
            self._db.execute(
                "UPDATE jobs SET fetched = ? WHERE job_id = ? AND fetched IS NULL "
                "AND state IN ('done', 'failed')",
                (self._clock(), job_id),
            )

    def expire(self) -> int:
        """Delete every result whose retention has passed; returns how many."""
        now = self._clock()
        with self._db:
            cursor = self._db.execute(
                "UPDATE jobs SET state = 'expired', result = NULL WHERE state = 'done' "
                "AND (finished <= ? OR fetched <= ?)",
                (now - self.result_keep, now - self.fetched_keep),
            )
        if cursor.rowcount:
            log.info("deleted %d expired result(s) from the job history", cursor.rowcount)
        return cursor.rowcount

    def get(self, job_id: str) -> StoredJob | None:
        """The job's row (after expiring what is due), or None."""
        self.expire()
        row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return None if row is None else self._stored(row)

    def list(self, analyst: str, limit: int) -> list[StoredJob]:
        """`analyst`'s jobs, newest first, at most `limit` (capped at MAX_LIST)."""
        self.expire()
        rows = self._db.execute(
            "SELECT * FROM jobs WHERE analyst = ? ORDER BY submitted DESC, rowid DESC LIMIT ?",
            (analyst, max(1, min(limit, MAX_LIST))),
        ).fetchall()
        return [self._stored(row) for row in rows]

    def _stored(self, row: Mapping[str, Any]) -> StoredJob:
        result = None if row["result"] is None else json.loads(row["result"])
        expires = None
        if result is not None:
            expires = row["finished"] + self.result_keep
            if row["fetched"] is not None:
                expires = min(expires, row["fetched"] + self.fetched_keep)
        return StoredJob(
            job_id=row["job_id"],
            analyst=row["analyst"],
            protocol=row["protocol"],
            protocol_hash=row["protocol_hash"],
            analysis=row["analysis"],
            params=json.loads(row["params"]),
            backend=row["backend"],
            parties=tuple(str(p) for p in json.loads(row["parties"])),
            submitted=row["submitted"],
            started=row["started"],
            finished=row["finished"],
            state=row["state"],
            error=row["error"],
            result=result,
            fetched=row["fetched"],
            result_expires=expires,
        )


def _lock(folder: Path) -> IO[str]:
    """Hold the state folder's lock for as long as the history is open: two coordinators
    sharing one history would mark each other's running jobs lost."""
    handle = open(folder / LOCK, "a", encoding="utf-8")  # noqa: SIM115 (held while open)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise ConfigError(
            f"another coordinator is using the state folder {folder} (lock {folder / LOCK})"
        ) from exc
    return handle
