"""What a party logs for operators: the backend of each accepted job, a local-step time
without the backend's library loading, and why a server stopped."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
from concurrent.futures import Executor

import pytest

from smpc_ehr.testing.backend import ReferenceBackend
from smpc_ehr.testing.federation import InProcessFederation
from smpc_ehr.transport.server import serve_until_signalled
from tests.federations import COUNT_TEMPLATE

LOADING_SECONDS = 0.4


def test_accepted_line_names_backend_and_loading_is_not_local_step(
    inprocess: InProcessFederation,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def slow_preload(self: ReferenceBackend, worker: Executor) -> None:
        worker.submit(time.sleep, LOADING_SECONDS)  # as torch loads for CrypTen's first job

    monkeypatch.setattr(ReferenceBackend, "preload", slow_preload, raising=False)
    caplog.set_level(logging.INFO, logger="smpc_ehr.party.jobs")
    inprocess.run(COUNT_TEMPLATE, {"codes": "E11"}, backend="crypten")
    lines = [r.getMessage() for r in caplog.records if r.name == "smpc_ehr.party.jobs"]
    accepted = [x for x in lines if " accepted: " in x]
    assert len(accepted) == len(inprocess.hospitals)
    assert all(x.endswith("from analyst, backend crypten") for x in accepted), accepted
    steps = [x for x in lines if ": local step " in x]
    assert len(steps) == len(inprocess.hospitals)
    for line in steps:
        match = re.search(r"local step ([0-9.]+) ms, .* \(waited (\d+) ms for the backend", line)
        assert match, line
        assert float(match.group(1)) < 1000 * LOADING_SECONDS / 2
        # The wait is the loading left when the job's step starts: the loading began at
        # Prepare, so on a loaded machine less of it is left (the note shows only above
        # LOADING_NOTE_SECONDS); never more than the loading itself.
        assert 0 < int(match.group(2)) <= 1000 * LOADING_SECONDS * 1.1


class _Idle:
    """A server that serves until stopped (what serve_until_signalled needs of one)."""

    def __init__(self) -> None:
        self.stopped = asyncio.Event()

    async def wait_for_termination(self) -> None:
        await self.stopped.wait()

    async def stop(self, grace: float) -> None:
        self.stopped.set()


def test_stop_logs_the_signal(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, os.kill, os.getpid(), signal.SIGTERM)
        await serve_until_signalled(_Idle())  # type: ignore[arg-type]

    caplog.set_level(logging.INFO, logger="smpc_ehr.transport.server")
    asyncio.run(main())
    assert "shutting down: received SIGTERM" in caplog.messages
