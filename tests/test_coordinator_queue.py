"""The coordinator's job book: bounded per-analyst queues, fair order, retention.

Unit tests drive `JobBook` and `Coordinator.submit` without parties (no worker runs);
the last test runs a burst against a real local federation with two analysts.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from smpc_ehr.client import Client, JobFailed
from smpc_ehr.config.coordinator import CoordinatorConfig
from smpc_ehr.config.roster import Member, Roster
from smpc_ehr.coordinator.jobs import Coordinator
from smpc_ehr.coordinator.queue import JobBook
from smpc_ehr.errors import Refusal
from smpc_ehr.local.federation import down
from smpc_ehr.transport.tls import TlsIdentity
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, start_federation


@dataclass
class FakeJob:
    job_id: str
    analyst: str
    finished: float | None = None
    fetched: float | None = None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def book(max_queued: int = 3, clock: Clock | None = None) -> JobBook[FakeJob]:
    return JobBook(max_queued, retention=100.0, fetched_retention=10.0, clock=clock or Clock())


def test_a_full_queue_refuses_with_the_count_and_other_analysts_still_queue() -> None:
    jobs = book(max_queued=3)
    for i in range(3):
        jobs.add(FakeJob(f"a{i}", "alice"))
    with pytest.raises(Refusal) as err:
        jobs.add(FakeJob("a3", "alice"))
    assert str(err.value) == "queue full for analyst alice (3 queued)"
    jobs.add(FakeJob("b0", "bob"))  # bob's queue is his own
    assert jobs.take() is not None
    jobs.add(FakeJob("a3", "alice"))  # a job taken to run frees its place
    with pytest.raises(KeyError, match="no job a4"):
        jobs.get("a4")


def test_a_burst_does_not_delay_another_analysts_job() -> None:
    """Round-robin between analysts (one not served yet goes first), FIFO within one."""
    jobs = book(max_queued=20)
    for i in range(20):
        jobs.add(FakeJob(f"a{i}", "alice"))
    assert jobs.take().job_id == "a0"  # type: ignore[union-attr]
    jobs.add(FakeJob("b0", "bob"))
    jobs.add(FakeJob("b1", "bob"))
    jobs.add(FakeJob("c0", "carol"))
    order = [job.job_id for job in iter(jobs.take, None)]
    assert order[:6] == ["b0", "c0", "a1", "b1", "a2", "a3"]
    assert order[6:] == [f"a{i}" for i in range(4, 20)]


def test_next_waits_for_a_job() -> None:
    async def main() -> str:
        jobs = book()
        waiter = asyncio.ensure_future(jobs.next())
        await asyncio.sleep(0.05)
        assert not waiter.done()
        jobs.add(FakeJob("a0", "alice"))
        return (await asyncio.wait_for(waiter, 5)).job_id

    assert asyncio.run(main()) == "a0"


def test_jobs_are_kept_until_fetched_or_expired_and_queued_ones_never_dropped() -> None:
    clock = Clock()
    jobs = book(clock=clock)
    waiting, unread, read = (FakeJob(f"j{i}", "alice") for i in range(3))
    for job in (waiting, unread, read):
        jobs.add(job)
    unread.finished = read.finished = clock.now
    clock.now += 5
    read.fetched = clock.now
    clock.now += 9.9
    assert jobs.get("j2") is read
    clock.now += 0.2  # 10 s after it was read
    with pytest.raises(KeyError, match="job j2 has expired"):
        jobs.get("j2")
    assert jobs.get("j1") is unread
    clock.now = 1000.0 + 100.0  # 100 s after it ended, never read
    with pytest.raises(KeyError, match="job j1 has expired"):
        jobs.get("j1")
    clock.now += 10**6
    assert jobs.get("j0") is waiting  # still queued: never dropped
    assert len(jobs) == 1


def config(tmp_path: Path, max_queued: int) -> CoordinatorConfig:
    def member(ident: str, role: str) -> Member:
        return Member(ident, role, ident, None if role == "analyst" else "127.0.0.1:1")

    roster = Roster(
        federation="queue-test",
        ca_cert=tmp_path / "ca.pem",
        coordinator=member("coordinator", "coordinator"),
        dealer=None,
        parties=tuple(member(f"hospital-{i}", "party") for i in (1, 2, 3)),
        analysts=(member("alice", "analyst"),),
        source=tmp_path / "roster.toml",
    )
    return CoordinatorConfig(
        id="coordinator",
        roster=roster,
        listen="127.0.0.1:0",
        key=tmp_path / "k",
        cert=tmp_path / "c",
        job_deadline_seconds=60.0,
        log_level="INFO",
        source=tmp_path / "coordinator.toml",
        max_queued_per_analyst=max_queued,
    )


def test_a_long_burst_loses_no_job(tmp_path: Path) -> None:
    """2,200 submissions in bursts of 20 (each burst run before the next): every job is
    still there to be read, and the 21st of a burst is refused rather than lost."""
    coordinator = Coordinator(config(tmp_path, 20), tls=None)  # type: ignore[arg-type]
    source = COUNT_TEMPLATE.read_text()
    ids = []

    async def main() -> None:
        for _ in range(110):
            for _ in range(20):
                ids.append(coordinator.submit(source, {"codes": "E11"}, "", 0, "alice").job_id)
            with pytest.raises(Refusal, match=r"^queue full for analyst alice \(20 queued\)$"):
                coordinator.submit(source, {"codes": "E11"}, "", 0, "alice")
            while (job := coordinator._book.take()) is not None:
                job.result = {"n": 1}
                job.set_state("done")

    asyncio.run(main())
    assert len(ids) == 2200
    assert all(coordinator.job(i).state == "done" for i in ids)


def test_burst_refused_beyond_the_bound_and_another_analyst_goes_first(
    data3: Path, tmp_path: Path
) -> None:
    """Real federation, queue bound 3: analyst's 5th job (1 running + 3 queued) is
    refused with the exact text; analyst-b's job, submitted after the burst, ends
    before the burst's last job starts."""
    state = tmp_path / "state"
    fed = start_federation(
        data3,
        state,
        more_analysts=("analyst-b",),
        coordinator_settings={"max_queued_per_analyst": 3},
    )
    try:
        certs = state / "certs"
        b_tls = TlsIdentity.from_files(
            "analyst-b", certs / "ca.pem", certs / "analyst-b.pem", certs / "analyst-b.key"
        )
        with (
            Client.from_state(state) as a,
            Client(fed.addresses["coordinator"], b_tls, "coordinator") as b,
        ):
            first = a.submit(COUNT_TEMPLATE, {"codes": "E11"})
            end = time.monotonic() + 30
            while a.status(first)["state"] == "queued" and time.monotonic() < end:
                time.sleep(0.02)
            burst = [a.submit(COUNT_TEMPLATE, {"codes": "E11"}) for _ in range(3)]
            with pytest.raises(JobFailed, match=r"queue full for analyst analyst \(3 queued\)"):
                a.submit(COUNT_TEMPLATE, {"codes": "E11"})
            b_result = b.run(COUNT_TEMPLATE, {"codes": "E11"})
            assert a.status(burst[-1])["state"] == "queued"  # b's job did not wait for it
            results = [a.wait(job) for job in [first, *burst]]
        expected = truth_counts(data3, ["E11"])[()]
        assert [r.result["count"] for r in [*results, b_result]] == [expected] * 5
    finally:
        down(state)


def test_only_a_final_state_counts_as_fetched(tmp_path: Path) -> None:
    coordinator = Coordinator(config(tmp_path, 20), tls=None)  # type: ignore[arg-type]

    async def main() -> None:
        job = coordinator.submit(COUNT_TEMPLATE.read_text(), {"codes": "E11"}, "", 0, "alice")
        job.mark_fetched()  # read while queued: its result is still to come
        assert job.fetched is None
        job.set_state("failed")
        job.mark_fetched()
        assert job.fetched is not None and job.finished is not None
        assert job.fetched >= job.finished

    asyncio.run(main())
