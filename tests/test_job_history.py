"""The coordinator's job history (SQLite): restart = reopen the file, retention, lost jobs.

Unit tests of `JobHistory` with a fake clock; the coordinator's use of it is tested in
tests/test_job_history_service.py, and a killed-and-restarted coordinator in
tests/test_job_history_restart.py.
"""

from __future__ import annotations

import sqlite3
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from smpc_ehr.config.coordinator import load_coordinator_config, write_coordinator_config
from smpc_ehr.coordinator.history import DATABASE, LOST, JobHistory
from smpc_ehr.errors import ConfigError

DAY = 86400.0


@dataclass
class Template:
    name: str = "rare_disease_count"
    canonical_hash: str = "ab" * 32
    analysis: str = "count"


@dataclass
class FakeJob:
    job_id: str
    analyst: str = "alice"
    template: Template = field(default_factory=Template)
    raw_params: dict[str, str] = field(default_factory=lambda: {"codes": "E75.22"})
    backend: str = "mpyc"
    parties: list[str] = field(default_factory=lambda: ["h1", "h2", "h3"])
    state: str = "queued"
    error: str = ""
    result: dict[str, Any] | None = None
    fetched: float | None = None


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def open_history(folder: Path, clock: Clock, keep: float = 30 * DAY, fetched: float = 7 * DAY):
    return JobHistory(folder / DATABASE, keep, fetched, clock)


def run_to(history: JobHistory, job: FakeJob, clock: Clock, *states: str) -> None:
    for state in states:
        clock.now += 10
        job.state = state
        if state == "done":
            job.result = {"count": 42}
        history.save(job)


def test_a_reopened_history_has_every_job_its_times_and_result(tmp_path: Path) -> None:
    clock = Clock()
    history = open_history(tmp_path, clock)
    t0 = clock.now
    done = FakeJob("j1")
    history.save(done)
    run_to(history, done, clock, "preparing", "running", "done")
    failed = FakeJob("j2", error="h2 refused: not approved")
    history.save(failed)
    run_to(history, failed, clock, "preparing", "failed")
    history.close()

    reopened = open_history(tmp_path, clock)
    assert reopened.recover() == []
    first = reopened.get("j1")
    assert first is not None
    assert (first.state, first.result, first.error) == ("done", {"count": 42}, "")
    assert (first.submitted, first.started, first.finished) == (t0, t0 + 10, t0 + 30)
    assert first.elapsed(clock.now) == 30
    assert first.params == {"codes": "E75.22"}
    assert first.parties == ("h1", "h2", "h3")
    assert (first.protocol, first.analysis, first.backend) == (
        "rare_disease_count",
        "count",
        "mpyc",
    )
    assert first.result_expires == t0 + 30 + 30 * DAY
    second = reopened.get("j2")
    assert second is not None
    assert (second.state, second.error, second.result) == ("failed", failed.error, None)
    assert reopened.get("nope") is None


def test_a_list_is_one_analysts_jobs_newest_first_and_limited(tmp_path: Path) -> None:
    clock = Clock()
    history = open_history(tmp_path, clock)
    for i in range(5):
        clock.now += 1
        history.save(FakeJob(f"a{i}", analyst="alice"))
        history.save(FakeJob(f"b{i}", analyst="bob"))
    assert [j.job_id for j in history.list("alice", 3)] == ["a4", "a3", "a2"]
    assert [j.job_id for j in history.list("bob", 100)] == [f"b{i}" for i in (4, 3, 2, 1, 0)]
    assert history.list("carol", 10) == []


def test_jobs_left_queued_or_running_are_marked_lost_at_start_up(tmp_path: Path) -> None:
    clock = Clock()
    history = open_history(tmp_path, clock)
    queued, running, done = FakeJob("q"), FakeJob("r"), FakeJob("d")
    for job in (queued, running, done):
        history.save(job)
    run_to(history, running, clock, "preparing", "running")
    run_to(history, done, clock, "running", "done")
    history.close()  # as if killed: nothing more was written

    clock.now += 100
    reopened = open_history(tmp_path, clock)
    assert sorted(reopened.recover()) == ["q", "r"]
    for job_id in ("q", "r"):
        lost = reopened.get(job_id)
        assert lost is not None
        assert (lost.state, lost.error, lost.result) == ("failed", LOST, None)
        assert lost.finished == clock.now
    kept = reopened.get("d")
    assert kept is not None and kept.state == "done" and kept.result == {"count": 42}
    assert reopened.recover() == []


def test_a_result_is_only_stored_with_the_state_done(tmp_path: Path) -> None:
    clock = Clock()
    history = open_history(tmp_path, clock)
    job = FakeJob("j", state="running", result={"count": 1})  # released, not yet done
    history.save(job)
    stored = history.get("j")
    assert stored is not None and stored.result is None
    job.state, job.error = "failed", "internal error"
    history.save(job)
    stored = history.get("j")
    assert stored is not None and stored.result is None


def test_a_result_expires_after_its_keep_or_sooner_once_read(tmp_path: Path) -> None:
    clock = Clock()
    history = open_history(tmp_path, clock, keep=30 * DAY, fetched=7 * DAY)
    never_read, read = FakeJob("never"), FakeJob("read")
    for job in (never_read, read):
        history.save(job)
        run_to(history, job, clock, "running", "done")
    clock.now += DAY
    history.mark_fetched("read")
    read_at = clock.now
    stored = history.get("read")
    assert stored is not None and stored.result_expires == read_at + 7 * DAY

    clock.now = read_at + 7 * DAY - 1
    assert history.expire() == 0
    clock.now = read_at + 7 * DAY
    assert history.expire() == 1
    expired = history.get("read")
    assert expired is not None
    assert (expired.state, expired.result, expired.result_expires) == ("expired", None, None)
    kept = history.get("never")
    assert kept is not None and kept.state == "done"

    clock.now = kept.finished + 30 * DAY
    gone = history.get("never")  # reads expire what is due
    assert gone is not None and gone.state == "expired" and gone.result is None
    history.close()
    with sqlite3.connect(tmp_path / DATABASE) as db:  # the results are gone from the file
        assert db.execute("SELECT count(*) FROM jobs WHERE result IS NOT NULL").fetchone() == (0,)


def test_reading_a_failed_or_running_job_does_not_start_a_retention(tmp_path: Path) -> None:
    clock = Clock()
    history = open_history(tmp_path, clock)
    job = FakeJob("j")
    history.save(job)
    history.mark_fetched("j")  # still queued: not fetched
    run_to(history, job, clock, "running", "done")
    stored = history.get("j")
    assert stored is not None and stored.fetched is None
    job.fetched = 1.0  # the coordinator's Job marks it read: saved with the history's clock
    history.save(job)
    stored = history.get("j")
    assert stored is not None and stored.fetched == clock.now


def test_a_second_coordinator_on_the_same_state_folder_is_refused(tmp_path: Path) -> None:
    first = JobHistory.in_state_folder(tmp_path / "state", DAY, DAY)
    with pytest.raises(ConfigError, match="another coordinator is using the state folder"):
        JobHistory.in_state_folder(tmp_path / "state", DAY, DAY)
    first.close()
    JobHistory.in_state_folder(tmp_path / "state", DAY, DAY).close()


def test_the_state_folder_is_created_for_its_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "coordinator" / "state"
    JobHistory.in_state_folder(state, DAY, DAY).close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_config_state_folder_and_retention_keys(tmp_path: Path) -> None:
    from smpc_ehr.config.roster import Member, Roster, write_roster

    roster = Roster(
        federation="t",
        ca_cert=tmp_path / "ca.pem",
        coordinator=Member("coordinator", "coordinator", "C", "127.0.0.1:1"),
        dealer=None,
        parties=tuple(Member(f"h{i}", "party", f"h{i}", f"127.0.0.1:{i + 2}") for i in range(3)),
        analysts=(Member("alice", "analyst", "A", None),),
        source=tmp_path / "roster.toml",
    )
    write_roster(roster, roster.source)
    kwargs: dict[str, Any] = {"id": "coordinator", "roster": roster.source, "key": "k", "cert": "c"}
    path = write_coordinator_config(tmp_path / "c.toml", **kwargs)
    config = load_coordinator_config(path, check_files=False)
    assert config.state == tmp_path / "state" / "coordinator"
    assert (config.result_keep_days, config.fetched_result_keep_days) == (30.0, 7.0)
    path = write_coordinator_config(
        tmp_path / "c.toml",
        state=tmp_path / "history",
        result_keep_days=2,
        fetched_result_keep_days=0.5,
        **kwargs,
    )
    config = load_coordinator_config(path, check_files=False)
    assert config.state == tmp_path / "history"
    assert (config.result_keep_days, config.fetched_result_keep_days) == (2.0, 0.5)
    path.write_text(path.read_text().replace("result_keep_days = 2.0", "result_keep_days = 0"))
    with pytest.raises(ConfigError, match="result_keep_days"):
        load_coordinator_config(path, check_files=False)
