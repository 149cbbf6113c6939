"""A killed coordinator restarts and still knows its jobs and their results (slow tier).

Runs one job on the shared three-hospital federation, kills its coordinator with
SIGKILL (nothing is written on the way out), starts it again as `local up` does (same
config, same port), and reads the job back with `smpc-ehr jobs list|show` and the client.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from smpc_ehr.cli import main
from smpc_ehr.client import Client
from smpc_ehr.coordinator.history import DATABASE
from smpc_ehr.local.federation import COORDINATOR_ID, LocalFederation, _spawn, health, is_running
from smpc_ehr.transport.tls import TlsIdentity
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE


def restart_coordinator(fed: LocalFederation) -> None:
    """SIGKILL the coordinator, then start it again and wait until it answers."""
    state = fed.state_dir
    pid = fed.pids[COORDINATOR_ID]
    os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + 10
    while is_running(pid) and time.monotonic() < end:
        time.sleep(0.05)
    assert not is_running(pid)
    process = _spawn(COORDINATOR_ID, state / "coordinator.toml", state / "logs" / "coordinator.log")
    fed.pids[COORDINATOR_ID] = process.pid
    fed.save()  # so that the fixture's `local down` stops the new one
    certs = state / "certs"
    tls = TlsIdentity.from_files(
        "analyst", certs / "ca.pem", certs / "analyst.pem", certs / "analyst.key"
    )
    end = time.monotonic() + 60
    while health(tls, COORDINATOR_ID, fed.addresses[COORDINATOR_ID], timeout=1.0) is None:
        assert process.poll() is None, (state / "logs" / "coordinator.log").read_text()[-2000:]
        assert time.monotonic() < end, "the restarted coordinator did not answer in 60 s"
        time.sleep(0.2)


def cli(capsys: pytest.CaptureFixture[str], state: Path, *args: str) -> str:
    """`smpc-ehr jobs ARGS --state STATE`, in this process (the coordinator is the process
    that matters here)."""
    capsys.readouterr()
    assert main(["jobs", *args, "--state", str(state)]) == 0
    return capsys.readouterr().out


def test_a_killed_coordinator_restarts_with_its_jobs_and_results(
    fed3: LocalFederation, data3: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = truth_counts(data3, ["E11"])[()]
    with Client.from_state(fed3.state_dir) as client:
        ran = client.run(COUNT_TEMPLATE, {"codes": "E11"})
    assert ran.result["count"] == expected
    assert (fed3.state_dir / "state" / COORDINATOR_ID / DATABASE).is_file()

    restart_coordinator(fed3)

    listing = cli(capsys, fed3.state_dir, "list").splitlines()
    assert listing[0].split()[:4] == ["ID", "SUBMITTED", "(UTC)", "TEMPLATE"]
    row = next(line.split() for line in listing if line.startswith(ran.job_id))
    assert row[3:5] == ["rare_disease_count", "done"]
    shown = cli(capsys, fed3.state_dir, "show", ran.job_id)
    assert "state:     done" in shown
    assert f"patients: {expected:,}" in shown.splitlines()
    with Client.from_state(fed3.state_dir) as client:
        assert client.wait(ran.job_id).result == ran.result  # Watch answers from the history
        assert client.job(ran.job_id).params["codes"] == "E11"
