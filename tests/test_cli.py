"""The command line as a user types it: local up, run (table and JSON), errors, local down."""

from __future__ import annotations

import csv
import json
import socket
import struct
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from smpc_ehr.client import Client
from smpc_ehr.errors import BadRequest
from smpc_ehr.local import federation as federation_module
from smpc_ehr.local.federation import LocalFederation, down
from smpc_ehr.wire import coordinator_pb2
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, ROOT, start_federation

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
        assert output["parameters"]["codes"] == ["E11"] and output["parameters"]["by"] is None
        assert output["template_hash"] == output["protocol_hash"]
        assert output["software_version"] and output["timestamp"].endswith("Z")
        assert sorted(output["data_versions"]) == output["parties"]
        # stderr is a pipe here, not a terminal: one line per phase, no bar
        progress = total.stderr.splitlines()
        assert f"smpc-ehr run: job {output['job_id']} queued" in progress[0]
        assert f"smpc-ehr run: job {output['job_id']} done in " in progress[-1]
        assert "\r" not in total.stderr and "\033" not in total.stderr

        csv_file = tmp_path / "by_sex.csv"
        table = smpc(
            "run", str(COUNT_TEMPLATE), "--set", "codes=E11", "--set", "by=sex", "--state", state,
            "--csv", str(csv_file), "--quiet",
        )  # fmt: skip
        assert table.stderr == ""
        truth = truth_counts(data3, ["E11"], by=("sex",))
        lines = {line.split()[0]: line.split()[1] for line in table.stdout.splitlines()[3:6]}
        assert lines == {sex: f"{n:,}" if n >= 11 else "suppressed" for (sex,), n in truth.items()}
        rows = list(csv.DictReader(csv_file.open()))
        cells = {
            r["group"]: (r["value"], r["suppressed"]) for r in rows if r["statistic"] == "count"
        }
        assert cells == {
            f"sex={sex}": (str(n), "false") if n >= 11 else ("", "true")
            for (sex,), n in truth.items()
        }
        assert {r["analysis"] for r in rows} == {"count"}

        png = tmp_path / "km.png"  # a real run drawn by the CLI (figures: tests/test_plot.py)
        km = smpc(
            "run", str(COUNT_TEMPLATE.parent / "kaplan_meier.toml"), "--set", "codes=E11,I50",
            "--set", "group=sex", "--set", "time_unit=year", "--set", "horizon=30",
            "--plot", str(png), "--state", state, "--quiet",
        )  # fmt: skip
        assert "group F" in km.stdout and "log-rank test" in km.stdout
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", head[16:24])[0] == 1050

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


@pytest.mark.parametrize("deadline", ["-1", "0", "nan", "inf", "-inf"])
def test_bad_deadline_is_refused_before_anything_is_read_or_sent(
    tmp_path: Path, deadline: str
) -> None:
    """`--deadline -1`, `0` and `nan` used to reach the coordinator (accepted, or reported
    as "Deadline Exceeded"). Refused here before even the state folder is looked at."""
    done = smpc(
        "run",
        str(COUNT_TEMPLATE),
        "--set",
        "codes=E11",
        f"--deadline={deadline}",
        "--state",
        str(tmp_path / "no-federation"),
        check=False,
    )
    assert done.returncode == 2
    assert "argument --deadline: the job deadline must be a positive, finite number of seconds" in (
        done.stderr
    )
    assert "no local federation" not in done.stderr


class _NoWire:
    """Stands in for the coordinator stub: any call is a test failure."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the client called {name} on the coordinator")


@pytest.mark.parametrize("deadline", [-1, 0, -0.0, float("nan"), float("inf")])
def test_client_refuses_a_bad_deadline_without_sending(deadline: float) -> None:
    client = Client.__new__(Client)
    client._stub = _NoWire()  # type: ignore[assignment]
    with pytest.raises(BadRequest, match="positive, finite number of seconds"):
        client.submit(COUNT_TEMPLATE, {"codes": "E11"}, deadline_seconds=deadline)
    with pytest.raises(BadRequest, match="positive, finite number of seconds"):
        client.run(COUNT_TEMPLATE, {"codes": "E11"}, deadline_seconds=deadline)


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        (-1.0, "the job deadline must be a positive, finite number of seconds, got -1.0"),
        (float("nan"), "the job deadline must be a positive, finite number of seconds, got nan"),
        (float("inf"), "the job deadline must be a positive, finite number of seconds, got inf"),
        (1e9, "a job deadline of 1e+09 s exceeds this coordinator's limit of 120 s"),
    ],
)
def test_coordinator_refuses_a_bad_deadline_in_a_raw_submit(
    fed3: LocalFederation, deadline: float, expected: str
) -> None:
    """An analyst's own gRPC request, past any client-side check."""
    request = coordinator_pb2.SubmitRequest(
        protocol_toml=COUNT_TEMPLATE.read_text(),
        params={"codes": "E11"},
        deadline_seconds=deadline,
    )
    with Client.from_state(fed3.state_dir) as client, pytest.raises(grpc.RpcError) as info:
        client._stub.Submit(request, timeout=15)
    assert info.value.code() in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert info.value.details() == expected


@pytest.mark.parametrize("value", [str(2**40), "0", "many"])
def test_local_up_refuses_a_min_cell_count_the_backends_cannot_count(
    tmp_path: Path, value: str
) -> None:
    done = smpc(
        "local",
        "up",
        "--data",
        str(tmp_path / "data"),
        "--state",
        str(tmp_path / "s"),
        "--min-cell-count",
        value,
        check=False,
    )
    assert done.returncode == 2
    assert "argument --min-cell-count:" in done.stderr
    if value != "many":
        assert "must be between 1 and 1073741823" in done.stderr
    assert not (tmp_path / "s").exists()


def test_local_up_require_dp_and_budget_survive_down_and_up(data3: Path, tmp_path: Path) -> None:
    # The end-to-end check, on the count template (its DP variant).
    state = str(tmp_path / "state")
    flags = ("--require-dp", "--epsilon-budget", "1")
    run = ("run", str(COUNT_TEMPLATE), "--set", "codes=E11", "--state", state)
    smpc("local", "up", "--data", str(data3), "--state", state, *flags)
    try:
        exact = smpc(*run, check=False)
        assert exact.returncode == 1 and "requires differential privacy" in exact.stderr
        noisy = smpc(*run, "--set", "epsilon=1").stdout
        assert "differentially private, epsilon = 1" in noisy
        spent = smpc(*run, "--set", "epsilon=1", check=False)
        assert spent.returncode == 1
        assert "the privacy budget of hospital-1 does not allow this job" in spent.stderr
    finally:
        smpc("local", "down", "--state", state)
    report = smpc("budget", "--state", state).stdout
    for party in ("hospital-1", "hospital-2", "hospital-3"):
        assert f"privacy budget of {party}" in report
    rows = [line.split() for line in report.splitlines()]
    analyst = [row for row in rows if row[:1] == ["analyst"] and row[1] != "epsilon"]
    assert len(analyst) == 3  # one per party
    assert all(row[2] == "1" and float(row[3]) < 1e-6 for row in analyst)  # nothing remains
    smpc("local", "up", "--data", str(data3), "--state", state, *flags)
    try:
        again = smpc(*run, "--set", "epsilon=1", check=False)
        assert "the privacy budget of hospital-2 does not allow this job" in again.stderr
    finally:
        smpc("local", "down", "--state", state)
    one = smpc("budget", "--config", str(Path(state) / "hospital-3.toml")).stdout
    assert one.startswith("privacy budget of hospital-3")
    assert "hospital-1" not in one
