"""The command line as a user types it: local up, run (table and JSON), errors, local down."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from smpc_ehr.client import Client
from smpc_ehr.local import federation as federation_module
from smpc_ehr.local.federation import down
from tests._truth import truth_counts
from tests.conftest import COUNT_TEMPLATE, ROOT, start_federation

real_free_port = federation_module.free_port

SMPC_EHR = str(Path(sys.executable).parent / "smpc-ehr")


def smpc(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([SMPC_EHR, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_local_up_run_and_down_through_the_cli(data3: Path, tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    up = smpc("local", "up", "--data", str(data3), "--state", state)
    assert "federation is up" in up.stdout
    try:
        total = smpc("run", str(COUNT_TEMPLATE), "--set", "codes=E11", "--json", "--state", state)
        output = json.loads(total.stdout)
        assert output["protocol"] == "rare_disease_count"
        assert output["backend"] == "mpyc"
        assert output["parties"] == ["hospital-1", "hospital-2", "hospital-3"]
        assert output["result"] == {
            "count": truth_counts(data3, ["E11"])[()],
            "suppressed": False,
            "threshold": 11,
        }

        table = smpc(
            "run", str(COUNT_TEMPLATE), "--set", "codes=E11", "--set", "by=sex", "--state", state
        )
        truth = truth_counts(data3, ["E11"], by=("sex",))
        lines = {line.split()[0]: line.split()[1] for line in table.stdout.splitlines()[3:6]}
        assert lines == {sex: str(n) if n >= 11 else "suppressed" for (sex,), n in truth.items()}

        bad = smpc(
            "run",
            str(COUNT_TEMPLATE),
            "--set",
            "codes=E11",
            "--set",
            "age=5-500",
            "--state",
            state,
            check=False,
        )
        assert bad.returncode == 2
        assert "age" in bad.stderr and "120" in bad.stderr

        malformed = smpc(
            "run", str(COUNT_TEMPLATE), "--set", "codes", "--state", state, check=False
        )
        assert malformed.returncode == 2 and "NAME=VALUE" in malformed.stderr.upper().replace(
            " ", ""
        )
    finally:
        down = smpc("local", "down", "--state", state)
    assert "hospital-1" in down.stdout
    after = smpc("run", str(COUNT_TEMPLATE), "--set", "codes=E11", "--state", state, check=False)
    assert after.returncode != 0


def test_party_refuses_to_start_on_malformed_data(data3: Path, tmp_path: Path) -> None:
    broken = tmp_path / "data"
    for folder in sorted(data3.iterdir()):
        if folder.is_dir():
            (broken / folder.name).mkdir(parents=True)
            for f in ("patients.csv", "conditions.csv"):
                (broken / folder.name / f).write_text((folder / f).read_text())
    patients = broken / "hospital-2" / "patients.csv"
    lines = patients.read_text().splitlines()
    row = lines[5].split(",")
    row[1] = "X"  # sex must be F, M or U
    lines[5] = ",".join(row)
    patients.write_text("\n".join(lines) + "\n")
    done = smpc("local", "up", "--data", str(broken), "--state", str(tmp_path / "s"), check=False)
    assert done.returncode == 2
    assert "hospital-2" in done.stderr
    assert "patients.csv" in done.stderr and "line 6" in done.stderr and "sex" in done.stderr


def test_local_up_retries_when_a_chosen_port_is_taken(
    data3: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another program grabs the port chosen for the coordinator before it binds it.
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    choices = iter([taken])
    monkeypatch.setattr(
        federation_module, "free_port", lambda: next(choices, None) or real_free_port()
    )
    try:
        fed = start_federation(data3, tmp_path / "state")
        try:
            assert fed.addresses["coordinator"] != f"127.0.0.1:{taken}"
            with Client.from_state(fed.state_dir) as client:
                assert client.run(COUNT_TEMPLATE, {"codes": "E11"}).result["suppressed"] is False
        finally:
            down(fed.state_dir)
    finally:
        squatter.close()
    log = (tmp_path / "state" / "logs" / "coordinator.log").read_text()
    assert "the port is in use" in log  # the first attempt really collided
