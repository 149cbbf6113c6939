"""Faults: a party killed mid-job or frozen makes the job fail everywhere within the
deadline, with a clear error; the others stay up and the next job succeeds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from smpc_ehr.client import Client, JobFailed
from smpc_ehr.local.federation import LocalFederation, down, health
from smpc_ehr.transport.tls import TlsIdentity
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, PROTOCOLS, start_federation

LOGISTIC_TEMPLATE = PROTOCOLS / "logistic_regression.toml"
LONG_QUERY = {"codes": "E11", "by": "sex,age_band"}  # 33 secure comparisons: not instant


@pytest.fixture
def fed(data3: Path, tmp_path: Path) -> Iterator[LocalFederation]:
    federation = start_federation(data3, tmp_path / "state")
    yield federation
    down(federation.state_dir)


def analyst_tls(fed: LocalFederation) -> TlsIdentity:
    certs = fed.state_dir / "certs"
    return TlsIdentity.from_files(
        "analyst", certs / "ca.pem", certs / "analyst.pem", certs / "analyst.key"
    )


def wait_for_state(client: Client, job_id: str, state: str, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while client.status(job_id)["state"] != state:
        assert time.monotonic() < end, f"job never reached {state}"
        time.sleep(0.002)


def restart_party(fed: LocalFederation, party: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smpc_ehr",
            "party",
            "--config",
            str(fed.state_dir / f"{party}.toml"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    end = time.monotonic() + 60
    while health(analyst_tls(fed), party, fed.addresses[party], timeout=1) is None:
        assert process.poll() is None and time.monotonic() < end, "restarted party did not come up"
        time.sleep(0.2)
    return process


def assert_idle(fed: LocalFederation, parties: list[str], within: float = 10) -> None:
    end = time.monotonic() + within
    for party in parties:
        while (reply := health(analyst_tls(fed), party, fed.addresses[party])) is None or (
            reply.state != "idle"
        ):
            assert time.monotonic() < end, f"{party} did not return to idle"
            time.sleep(0.05)


def test_party_killed_mid_job_fails_the_job_everywhere_and_next_job_succeeds(
    fed: LocalFederation, data3: Path
) -> None:
    victim = "hospital-3"
    with Client.from_state(fed.state_dir) as client:
        job_id = client.submit(COUNT_TEMPLATE, LONG_QUERY, deadline_seconds=60)
        wait_for_state(client, job_id, "running")
        os.kill(fed.pids[victim], signal.SIGKILL)
        killed_at = time.monotonic()
        with pytest.raises(JobFailed) as err:
            client.wait(job_id)
        assert time.monotonic() - killed_at < 15, "the job must fail long before its deadline"
        assert victim in str(err.value)
        assert client.status(job_id)["result"] is None  # nothing partial was released
        assert_idle(fed, ["hospital-1", "hospital-2"])

        replacement = restart_party(fed, victim)
        try:
            result = client.run(COUNT_TEMPLATE, {"codes": "E11"})
        finally:
            replacement.terminate()
            replacement.wait(10)
    assert result.result["count"] == truth_counts(data3, ["E11"])[()]


def test_frozen_party_makes_the_job_fail_within_its_deadline(
    fed: LocalFederation, data3: Path
) -> None:
    frozen = fed.pids["hospital-2"]
    os.kill(frozen, signal.SIGSTOP)
    try:
        with Client.from_state(fed.state_dir) as client:
            started = time.monotonic()
            with pytest.raises(JobFailed, match="hospital-2"):
                client.run(COUNT_TEMPLATE, {"codes": "E11"}, deadline_seconds=4)
            assert time.monotonic() - started < 4 + 6
    finally:
        os.kill(frozen, signal.SIGCONT)
    assert_idle(fed, ["hospital-1", "hospital-2", "hospital-3"])
    with Client.from_state(fed.state_dir) as client:
        result = client.run(COUNT_TEMPLATE, {"codes": "E11"})
    assert result.result["count"] == truth_counts(data3, ["E11"])[()]


def test_party_frozen_mid_job_is_cut_off_by_the_deadline(fed: LocalFederation) -> None:
    with Client.from_state(fed.state_dir) as client:
        submitted = time.monotonic()
        job_id = client.submit(COUNT_TEMPLATE, LONG_QUERY, deadline_seconds=5)
        wait_for_state(client, job_id, "running")
        os.kill(fed.pids["hospital-1"], signal.SIGSTOP)
        try:
            # Either the coordinator ("hospital-1 did not finish within the deadline") or a
            # waiting party ("the job deadline passed") reports it first.
            with pytest.raises(JobFailed, match="deadline"):
                client.wait(job_id)
            # Cut off by the deadline: not before it, and not long after it.
            assert 5 - 0.5 <= time.monotonic() - submitted < 5 + 6
        finally:
            os.kill(fed.pids["hospital-1"], signal.SIGCONT)
        assert_idle(fed, ["hospital-1", "hospital-2", "hospital-3"])
        assert client.run(COUNT_TEMPLATE, {"codes": "E11"}).result["suppressed"] is False


def test_dealer_down_fails_a_crypten_job_cleanly_and_mpyc_still_runs(
    fed: LocalFederation, data3: Path
) -> None:
    os.kill(fed.pids["dealer"], signal.SIGKILL)
    with Client.from_state(fed.state_dir) as client:
        started = time.monotonic()
        with pytest.raises(JobFailed, match="dealer") as err:
            client.run(COUNT_TEMPLATE, {"codes": "E11"}, backend="crypten", deadline_seconds=30)
        assert time.monotonic() - started < 15, "a dead dealer must not hold the job"
        assert "unreachable" in str(err.value)
        assert_idle(fed, ["hospital-1", "hospital-2", "hospital-3"])
        # The dealer serves CrypTen only: MPyC jobs are unaffected.
        result = client.run(COUNT_TEMPLATE, {"codes": "E11"})
    assert result.result["count"] == truth_counts(data3, ["E11"])[()]


def test_dealer_frozen_mid_job_is_blamed_not_a_hospital(fed: LocalFederation) -> None:
    """A paused dealer (SIGSTOP) in the middle of a CrypTen computation: the failure names
    the dealer as the cause, not a hospital's silence or a hospital's deadline."""
    dealer = fed.pids["dealer"]
    paused: list[float] = []

    def pause_dealer(_: object) -> None:  # at the first iterate: the dealer is in use
        if not paused:
            os.kill(dealer, signal.SIGSTOP)
            paused.append(time.monotonic())

    logistic = {"outcome": "readmit_30d", "features": "bmi,hba1c", "max_iter": 100, "tol": 1e-12}
    with Client.from_state(fed.state_dir) as client:
        # Warm CrypTen up on every party first, so that the timed job starts at once.
        client.run(COUNT_TEMPLATE, {"codes": "E11"}, backend="crypten", deadline_seconds=60)
        job_id = client.submit(LOGISTIC_TEMPLATE, logistic, backend="crypten", deadline_seconds=20)
        try:
            with pytest.raises(JobFailed) as err:
                client.wait(job_id, on_progress=pause_dealer)
        finally:
            os.kill(dealer, signal.SIGCONT)
        assert paused, "the job ended before the dealer was paused"
        message = str(err.value)
        assert "the dealer (dealer) did not answer" in message, message
        for blame in ("did not finish within the deadline", "no message from", "deadline passed"):
            assert blame not in message, message
        assert time.monotonic() - paused[0] < 20, "the job must end by its deadline"
        assert client.status(job_id)["result"] is None
        assert_idle(fed, ["hospital-1", "hospital-2", "hospital-3"])
