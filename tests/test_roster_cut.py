"""A roster reload that revokes or removes a member ends that member's jobs at the
coordinator: queued ones without running, the running one by a Cancel to every
participant; other jobs are not disturbed (fast tier: the coordinator in-process, its
worker not run, the parties a recording stand-in)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from smpc_ehr.coordinator.jobs import Coordinator
from smpc_ehr.wire import party_pb2
from tests.federations import COUNT_TEMPLATE
from tests.test_job_history_service import config

REASON = "roster version 2 revoked or removed alice"


class RecordingParty:
    """A party stub that records the Cancel calls it gets."""

    def __init__(self, name: str, calls: list[tuple[str, str, str]]) -> None:
        self._name, self._calls = name, calls

    async def Cancel(self, request: party_pb2.CancelRequest, *, timeout: float) -> Any:
        self._calls.append((self._name, request.job_id, request.reason))
        return party_pb2.CancelReply(was_running=True)


def test_cut_ends_the_members_jobs_and_leaves_the_others(tmp_path: Path) -> None:
    cancels: list[tuple[str, str, str]] = []
    coordinator = Coordinator(
        config(tmp_path),
        tls=None,  # type: ignore[arg-type]
        party_client=lambda name: RecordingParty(name, cancels),  # type: ignore[arg-type,return-value]
    )
    source = COUNT_TEMPLATE.read_text()

    async def main() -> None:
        def submit(analyst: str) -> str:
            return coordinator.submit(source, {"codes": "E11"}, "", 0, analyst).job_id

        submit("bob")
        running = coordinator._book.take()
        assert running is not None
        running.set_state("running")
        coordinator.current = running
        alice = [submit("alice"), submit("alice")]
        bob_queued = submit("bob")

        coordinator.cut_members(frozenset({"alice"}), REASON)
        for job_id in alice:
            job = coordinator.job(job_id)
            assert job.state == "failed"
            assert job.error == f"cancelled before it ran: {REASON}"
        assert coordinator.job(bob_queued).state == "queued"
        await asyncio.sleep(0)
        assert cancels == [], "bob's running job does not involve alice"
        taken = coordinator._book.take()
        assert taken is not None and taken.job_id == bob_queued, "bob's queue is intact"
        assert coordinator._book.take() is None, "alice's jobs left the queue"

        # A participant cut while bob's job runs: Cancel reaches every participant.
        coordinator.cut_members(frozenset({"hospital-2"}), "roster version 3 revoked hospital-2")
        for _ in range(5):
            await asyncio.sleep(0)
        assert sorted(cancels) == [
            (p, running.job_id, "roster version 3 revoked hospital-2")
            for p in ("hospital-1", "hospital-2", "hospital-3")
        ]
        await coordinator.close()

    asyncio.run(main())
