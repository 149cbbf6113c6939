"""The command line as a user types it: local up, run (table and JSON), errors, local down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests._truth import truth_counts
from tests.conftest import COUNT_TEMPLATE, ROOT

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
