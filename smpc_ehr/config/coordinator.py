"""The coordinator's config: its identity, key and certificate, and job limits.

The job limits bound what analysts can make the coordinator hold: a queue per
analyst (`max_queued_per_analyst`) and how long a finished job's result is kept
(`job_retention_seconds` if never fetched, `fetched_retention_seconds` after the
analyst has read it). A queued or running job is never dropped.

The job history (smpc_ehr.coordinator.history) lives in the state folder (`state`,
default state/<id> beside the config) and keeps a done job's result
`result_keep_days` after the job ended or `fetched_result_keep_days` after the analyst
first read it, whichever comes first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smpc_ehr.config._common import (
    check_identity_files,
    check_log_level,
    read_identity_section,
    read_listen,
    read_log_level,
)
from smpc_ehr.config._toml import (
    rel,
    resolve,
    toml_document,
    toml_table,
    write_text,
)
from smpc_ehr.config.party import default_state
from smpc_ehr.config.roster import Roster

MAX_QUEUED_PER_ANALYST = 20
JOB_RETENTION_SECONDS = 86400.0
"""A finished job's result is kept this long if the analyst never reads it (24 h)."""
FETCHED_RETENTION_SECONDS = 600.0
"""... and this long after the analyst first read it (10 min)."""
RESULT_KEEP_DAYS = 30.0
"""The job history keeps a result at most this long after the job ended ..."""
FETCHED_RESULT_KEEP_DAYS = 7.0
"""... and at most this long after the analyst first read it."""
DAY = 86400.0


@dataclass(frozen=True)
class CoordinatorConfig:
    """A validated coordinator config."""

    id: str
    roster: Roster
    listen: str
    key: Path
    cert: Path
    job_deadline_seconds: float
    log_level: str
    source: Path
    max_queued_per_analyst: int = MAX_QUEUED_PER_ANALYST
    job_retention_seconds: float = JOB_RETENTION_SECONDS
    fetched_retention_seconds: float = FETCHED_RETENTION_SECONDS
    state: Path | None = None
    """The state folder (job history); None keeps the history in memory (tests)."""
    result_keep_days: float = RESULT_KEEP_DAYS
    fetched_result_keep_days: float = FETCHED_RESULT_KEEP_DAYS


def load_coordinator_config(path: Path | str, *, check_files: bool = True) -> CoordinatorConfig:
    """Read and validate a coordinator config; its id must be the roster's coordinator."""
    s = read_identity_section(path, "coordinator")
    listen = read_listen(s.table, s.member)
    deadline = s.table.get_number("job_deadline_seconds", 120.0, positive=True)
    max_queued = s.table.get_int("max_queued_per_analyst", MAX_QUEUED_PER_ANALYST, minimum=1)
    retention = s.table.get_number("job_retention_seconds", JOB_RETENTION_SECONDS, positive=True)
    fetched = s.table.get_number(
        "fetched_retention_seconds", FETCHED_RETENTION_SECONDS, positive=True
    )
    state_entry = s.table.get_str("state", None)
    state = default_state(s.base, s.id) if state_entry is None else resolve(s.base, state_entry)
    keep = s.table.get_number("result_keep_days", RESULT_KEEP_DAYS, positive=True)
    fetched_keep = s.table.get_number(
        "fetched_result_keep_days", FETCHED_RESULT_KEEP_DAYS, positive=True
    )
    s.table.done()
    if check_files:
        check_identity_files(s.table, s.roster, s.key, s.cert)
    log_level = read_log_level(s.top)
    s.top.done()
    return CoordinatorConfig(
        id=s.id,
        roster=s.roster,
        listen=listen,
        key=s.key,
        cert=s.cert,
        job_deadline_seconds=deadline,
        log_level=log_level,
        source=s.path,
        max_queued_per_analyst=max_queued,
        job_retention_seconds=retention,
        fetched_retention_seconds=fetched,
        state=state,
        result_keep_days=keep,
        fetched_result_keep_days=fetched_keep,
    )


def write_coordinator_config(
    path: Path | str,
    *,
    id: str,
    roster: Path | str,
    key: Path | str,
    cert: Path | str,
    listen: str | None = None,
    job_deadline_seconds: float = 120.0,
    log_level: str = "INFO",
    max_queued_per_analyst: int = MAX_QUEUED_PER_ANALYST,
    job_retention_seconds: float = JOB_RETENTION_SECONDS,
    fetched_retention_seconds: float = FETCHED_RETENTION_SECONDS,
    state: Path | str | None = None,
    result_keep_days: float = RESULT_KEEP_DAYS,
    fetched_result_keep_days: float = FETCHED_RESULT_KEEP_DAYS,
) -> Path:
    """Write a coordinator config; paths as in `write_party_config`."""
    path = Path(path)
    base = path.parent
    values = {
        "id": id,
        "roster": rel(roster, base),
        "listen": listen,
        "key": rel(key, base),
        "cert": rel(cert, base),
        "job_deadline_seconds": float(job_deadline_seconds),
        "max_queued_per_analyst": int(max_queued_per_analyst),
        "job_retention_seconds": float(job_retention_seconds),
        "fetched_retention_seconds": float(fetched_retention_seconds),
        "state": None if state is None else rel(state, base),
        "result_keep_days": float(result_keep_days),
        "fetched_result_keep_days": float(fetched_result_keep_days),
    }
    text = toml_document(
        [
            toml_table("coordinator", values),
            toml_table("log", {"level": check_log_level(log_level)}),
        ]
    )
    return write_text(path, text)
