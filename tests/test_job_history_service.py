"""The coordinator's servicer answers from its job history after a restart.

A restart is a new `Coordinator` on the same state folder (the worker is not run: jobs
are taken and ended by hand, as tests/test_coordinator_queue.py does); the servicer is
called in-process with a caller certificate, as over mutual TLS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from smpc_ehr.config.coordinator import CoordinatorConfig
from smpc_ehr.config.roster import Member, Roster
from smpc_ehr.coordinator.history import LOST
from smpc_ehr.coordinator.jobs import Coordinator
from smpc_ehr.coordinator.service import CoordinatorServicer
from smpc_ehr.testing.memory import _CallContext, certificate_of
from smpc_ehr.wire import coordinator_pb2
from tests.federations import COUNT_TEMPLATE


def config(tmp_path: Path) -> CoordinatorConfig:
    def member(ident: str, role: str) -> Member:
        return Member(ident, role, ident, None if role == "analyst" else "127.0.0.1:1")

    roster = Roster(
        federation="history-test",
        ca_cert=tmp_path / "ca.pem",
        coordinator=member("coordinator", "coordinator"),
        dealer=None,
        parties=tuple(member(f"hospital-{i}", "party") for i in (1, 2, 3)),
        analysts=(member("alice", "analyst"), member("bob", "analyst")),
        source=tmp_path / "roster.toml",
    )
    return CoordinatorConfig(
        "coordinator",
        roster,
        "127.0.0.1:0",
        tmp_path / "k",
        tmp_path / "c",
        60.0,
        "INFO",
        tmp_path / "coordinator.toml",
        state=tmp_path / "state",
    )


def context(caller: str) -> Any:
    return _CallContext(certificate_of(caller))


def first_life(cfg: CoordinatorConfig) -> tuple[str, str, str]:
    """Submit three jobs, end one, fail one, leave one running; then stop (no more writes,
    as when killed). Returns the ids (done, failed, running)."""
    coordinator = Coordinator(cfg, tls=None)  # type: ignore[arg-type]
    source = COUNT_TEMPLATE.read_text()

    async def main() -> tuple[str, str, str]:
        ids = [
            coordinator.submit(source, {"codes": "E11"}, "", 0, "alice").job_id for _ in range(3)
        ]
        done, failed, running = (coordinator._book.take() for _ in range(3))
        assert done and failed and running
        done.set_state("running")
        done.result = {"count": 42}
        done.set_state("done")
        failed.error = "hospital-2 refused: not approved"
        failed.set_state("failed")
        running.set_state("running")
        await coordinator.close()
        return ids[0], ids[1], ids[2]

    return asyncio.run(main())


def restarted(tmp_path: Path) -> tuple[tuple[str, str, str], Coordinator, CoordinatorServicer]:
    """The jobs of `first_life`, and a new coordinator and servicer on its state folder."""
    cfg = config(tmp_path)
    ids = first_life(cfg)
    coordinator = Coordinator(cfg, tls=None)  # type: ignore[arg-type]
    return ids, coordinator, CoordinatorServicer(cfg, coordinator)


def test_after_a_restart_status_and_watch_answer_from_the_history(tmp_path: Path) -> None:
    (done, failed, running), coordinator, servicer = restarted(tmp_path)

    async def status(job_id: str, caller: str = "alice") -> coordinator_pb2.JobStatus:
        request = coordinator_pb2.StatusRequest(job_id=job_id)
        reply: coordinator_pb2.JobStatus = await servicer.Status(request, context(caller))
        return reply

    async def main() -> None:
        s = await status(done)
        assert (s.state, json.loads(s.result_json), s.protocol) == (
            "done",
            {"count": 42},
            "rare_disease_count",
        )
        assert list(s.parties) == ["hospital-1", "hospital-2", "hospital-3"]
        s = await status(failed)
        assert (s.state, s.error, s.result_json) == ("failed", failed_error, "")
        s = await status(running)
        assert (s.state, s.error) == ("failed", LOST)
        events = [
            e
            async for e in servicer.Watch(
                coordinator_pb2.WatchRequest(job_id=done), context("alice")
            )
        ]
        assert [e.status.state for e in events] == ["done"]
        with pytest.raises(grpc.aio.AioRpcError, match=f"no job {done}"):
            await status(done, caller="bob")  # another analyst's job is not there for bob
        with pytest.raises(grpc.aio.AioRpcError, match="no job nope"):
            await status("nope")
        stored = coordinator.history.get(done)
        assert stored is not None and stored.fetched is not None  # Status read it

        coordinator.history.fetched_keep = 0.0  # its read result expires now
        with pytest.raises(grpc.aio.AioRpcError, match=f"job {done} has expired"):
            await status(done)
        await coordinator.close()

    failed_error = "hospital-2 refused: not approved"
    asyncio.run(main())


def test_no_state_folder_keeps_the_history_in_memory(tmp_path: Path) -> None:
    cfg = dataclasses.replace(config(tmp_path), state=None)
    first_life(cfg)
    assert not (tmp_path / "state").exists()


def test_list_and_get_answer_with_the_callers_own_jobs_after_a_restart(tmp_path: Path) -> None:
    (done, failed, running), coordinator, servicer = restarted(tmp_path)

    async def get(job_id: str, caller: str = "alice") -> coordinator_pb2.JobRecord:
        request = coordinator_pb2.GetJobRequest(job_id=job_id)
        reply: coordinator_pb2.JobRecord = await servicer.GetJob(request, context(caller))
        return reply

    async def main() -> None:
        listing = await servicer.ListJobs(coordinator_pb2.ListJobsRequest(), context("alice"))
        assert {j.job_id for j in listing.jobs} == {done, failed, running}
        assert [j.submitted for j in listing.jobs] == sorted(
            (j.submitted for j in listing.jobs), reverse=True
        )
        assert all(j.result_json == "" for j in listing.jobs)  # a listing reads no result
        assert {j.job_id: j.state for j in listing.jobs}[done] == "done"
        one = await servicer.ListJobs(coordinator_pb2.ListJobsRequest(limit=1), context("alice"))
        assert len(one.jobs) == 1
        none = await servicer.ListJobs(coordinator_pb2.ListJobsRequest(), context("bob"))
        assert list(none.jobs) == []

        stored = coordinator.history.get(done)
        assert stored is not None and stored.fetched is None
        record = await get(done)
        assert (record.state, json.loads(record.result_json)) == ("done", {"count": 42})
        assert (record.analysis, dict(record.params)) == ("count", {"codes": "E11"})
        assert record.submitted <= record.started <= record.finished
        assert record.fetched > 0  # reading it starts the shorter retention
        assert record.result_expires == record.fetched + 7 * 86400
        lost = await get(running)
        assert (lost.state, lost.error, lost.result_json) == ("failed", LOST, "")
        with pytest.raises(grpc.aio.AioRpcError, match=f"no job {done}"):
            await get(done, caller="bob")
        with pytest.raises(grpc.aio.AioRpcError, match="carol is not an analyst"):
            await servicer.ListJobs(coordinator_pb2.ListJobsRequest(), context("carol"))

        coordinator.history.fetched_keep = 0.0
        expired = await get(done)  # GetJob still shows an expired job, without its result
        assert (expired.state, expired.result_json, expired.result_expires) == ("expired", "", 0)
        await coordinator.close()

    asyncio.run(main())


def test_jobs_show_prints_the_details_and_the_result_as_run_does() -> None:
    from smpc_ehr.cli.jobs import list_table, show_text
    from smpc_ehr.client import JobInfo

    t0 = 1_780_000_000.0  # 2026-05-28 20:26:40 UTC
    job = JobInfo(
        job_id="j1",
        state="done",
        protocol="rare_disease_count",
        protocol_hash="ab" * 32,
        analysis="count",
        params={"codes": "E11"},
        backend="mpyc",
        parties=("h1", "h2", "h3"),
        submitted=t0,
        started=t0 + 1,
        finished=t0 + 2.5,
        error="",
        result={"count": 1234, "suppressed": False, "threshold": 11},
        fetched=None,
        result_expires=t0 + 30 * 86400,
    )
    text = show_text(job)
    assert "submitted: 2026-05-28 20:26:40 UTC" in text
    assert "finished:  2026-05-28 20:26:42 UTC" in text
    assert "params:    codes=E11" in text
    assert "result:    kept until 2026-06-27 20:26:40 UTC" in text
    assert "rare_disease_count on 3 parties (h1, h2, h3), backend mpyc, 2.50 s" in text
    assert text.splitlines()[-2:] == ["patients: 1,234", "small-cell threshold: 11"]
    table = list_table([job, dataclasses.replace(job, job_id="j2", state="running", finished=None)])
    assert table.splitlines()[0].split()[:3] == ["ID", "SUBMITTED", "(UTC)"]
    assert set(table.splitlines()[1]) == {"-", " "}
    assert table.splitlines()[2].split() == [
        "j1", "2026-05-28", "20:26:40", "rare_disease_count", "done", "2.5", "s"
    ]  # fmt: skip
    assert table.splitlines()[3].split()[-2:] == ["running", "-"]
    assert job.as_dict()["finished"] == "2026-05-28T20:26:42Z"


class CancelRecorder:
    """A party client that only records Cancel calls (no job runs in this test)."""

    def __init__(self, party: str, calls: list[tuple[str, str, str]]) -> None:
        self.party = party
        self.calls = calls

    async def Cancel(self, request: Any, *, timeout: float) -> Any:
        self.calls.append((self.party, request.job_id, request.reason))


def test_a_restarted_coordinator_tells_every_party_to_drop_its_lost_jobs(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    _, _, running = first_life(cfg)
    calls: list[tuple[str, str, str]] = []
    coordinator = Coordinator(
        cfg,
        tls=None,  # type: ignore[arg-type]
        party_client=lambda party: CancelRecorder(party, calls),  # type: ignore[arg-type,return-value]
    )

    async def main() -> None:
        coordinator.start()
        await asyncio.sleep(0.1)
        await coordinator.close()

    asyncio.run(main())
    # The first life's queued job was taken to end it, so only the running one was lost.
    assert sorted(calls) == [(f"hospital-{i}", running, LOST) for i in (1, 2, 3)]


def test_jobs_show_of_an_unknown_job_is_an_error_to_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import smpc_ehr.cli.jobs as jobs_cli
    from smpc_ehr.cli import main
    from smpc_ehr.client import JobFailed

    class Refusing:
        def __enter__(self) -> Refusing:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def job(self, job_id: str) -> None:
            raise JobFailed(f"no job {job_id}")

    monkeypatch.setattr(jobs_cli, "_client", lambda args: Refusing())
    assert main(["jobs", "show", "abc", "--state", "nowhere"]) == 2
    assert capsys.readouterr().err == "error: no job abc\n"


def test_a_stored_partial_job_still_names_the_hospitals_it_left_out() -> None:
    from smpc_ehr.coordinator.history import StoredJob
    from smpc_ehr.coordinator.service import stored_status

    job = StoredJob(
        job_id="j1",
        analyst="ann",
        protocol="rare_disease_count",
        protocol_hash="ab" * 32,
        analysis="count",
        params={"codes": "E11", "epsilon": "1"},
        backend="mpyc",
        parties=("hospital-1", "hospital-2", "hospital-4"),
        submitted=1.0,
        started=2.0,
        finished=3.0,
        state="done",
        error="",
        result={"count": 40},
        fetched=None,
        result_expires=None,
    )
    roster = ("hospital-1", "hospital-2", "hospital-3", "hospital-4")
    status = stored_status(job, roster)
    assert list(status.parties) == ["hospital-1", "hospital-2", "hospital-4"]
    assert list(status.absent) == ["hospital-3"]
