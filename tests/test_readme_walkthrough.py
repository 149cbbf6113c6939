"""The README's "Running one party per hospital for real", run exactly as written.

Every ```sh block of that section runs, in order, in `bash -euo pipefail` started in
the walk-through's `pilot/` folder (beside `parties/` and `protocols/` as in a
checkout), with `smpc-ehr` meaning this checkout's code. A failing command fails the
test. At the end no private key may sit outside its member's folder, and the
analyst's differentially private count must match pandas on the data the hospitals
loaded, within the noise the result states.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from smpc_ehr.config.roster import load_roster
from tests._truth import truth_counts
from tests.federations import ROOT

SECTION = "## Running one party per hospital for real"
MEMBERS = ("hospital-a", "hospital-b", "hospital-c", "coordinator", "dealer", "analyst")
HOSPITALS = MEMBERS[:3]
BLOCK_SECONDS = 60


def walkthrough_blocks(readme: str) -> list[str]:
    """The ```sh blocks between the section's heading and the next `## ` heading."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start : end if end >= 0 else len(readme)]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def test_the_walkthrough_makes_keys_only_where_they_stay() -> None:
    """The section uses certificate requests, never `certs init`, and stops what it starts."""
    blocks = walkthrough_blocks((ROOT / "README.md").read_text())
    text = "\n".join(blocks)
    assert len(blocks) >= 10
    assert "smpc-ehr certs ca " in blocks[0] and "certs init" not in text
    assert text.count("smpc-ehr certs request") == 2 and "smpc-ehr certs sign" in text
    assert blocks[-1].strip() == "kill $(cat */*.pid)"


def _shim(folder: Path) -> dict[str, str]:
    """An environment whose `smpc-ehr` runs this checkout with this interpreter."""
    folder.mkdir()
    shim = folder / "smpc-ehr"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m smpc_ehr "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{folder}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _logs(pilot: Path) -> str:
    return "\n".join(f"--- {log}\n{log.read_text()[-3000:]}" for log in pilot.glob("*/*.log"))


def _stop(groups: list[int]) -> None:
    """End what a block left running (each block is its own process group)."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        alive = []
        for group in groups:
            try:
                os.killpg(group, sig)
                alive.append(group)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            alive = [g for g in alive if _group_alive(g)]
        if not alive:
            return


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _run_blocks(blocks: list[str], pilot: Path, env: dict[str, str]) -> None:
    groups: list[int] = []
    try:
        for number, block in enumerate(blocks, 1):
            proc = subprocess.Popen(
                ["bash", "-euo", "pipefail", "-c", block],
                cwd=pilot,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            groups.append(proc.pid)
            try:
                out, _ = proc.communicate(timeout=BLOCK_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            assert proc.returncode == 0, (
                f"README walk-through block {number} failed (exit {proc.returncode}):\n"
                f"{block}\n--- output\n{out}\n{_logs(pilot)}"
            )
    finally:
        _stop(groups)


def _ports_free() -> None:
    """The example roster's fixed ports must be free, or the walk-through cannot start."""
    for member in load_roster(ROOT / "parties" / "roster.toml").members():
        if member.address is None:
            continue
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds
            try:
                probe.bind((member.host, member.port))
            except OSError as exc:
                pytest.fail(f"{member.id}'s port {member.address} is taken: {exc}")


def _keys(pilot: Path) -> set[tuple[str, str]]:
    """(top folder, file name) of every private key under the pilot folder."""
    return {(p.relative_to(pilot).parts[0], p.name) for p in pilot.rglob("*.key")}


@pytest.mark.slow
def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    for name in ("parties", "protocols"):  # the checkout the blocks take examples from
        (tmp_path / name).symlink_to(ROOT / name)
    pilot = tmp_path / "pilot"
    pilot.mkdir()
    blocks = walkthrough_blocks((ROOT / "README.md").read_text())
    _ports_free()
    _run_blocks(blocks, pilot, _shim(tmp_path / "bin"))

    # Each member holds its own key and no other; the operator only the CA's. A hospital's
    # party also made the key of its data versions (docs/data.md), in its state folder.
    expected = {(member, f"{member}.key") for member in MEMBERS} | {("operator", "ca.key")}
    expected |= {(hospital, "data_version.key") for hospital in HOSPITALS}
    assert _keys(pilot) == expected
    for member in MEMBERS:
        assert (pilot / member / "certs" / f"{member}.key").stat().st_mode & 0o077 == 0

    # The DP count of E11 against pandas on the three hospitals' data folders.
    pooled = tmp_path / "pooled"
    pooled.mkdir()
    for hospital in HOSPITALS:
        (pooled / hospital).symlink_to(pilot / hospital / "data")
    truth = truth_counts(pooled, ["E11"])[()]
    reply = json.loads((pilot / "analyst" / "e11.json").read_text())
    result = reply["result"]
    noise_sd = result["dp"]["noise_sd"]
    assert sorted(reply["parties"]) == list(HOSPITALS)
    assert truth - 6 * noise_sd > result["threshold"], "too few E11 patients for this check"
    assert result["suppressed"] is False
    assert abs(result["count"] - truth) <= 6 * noise_sd, (result, truth)
    assert result["dp"]["epsilon"] == pytest.approx(1.0)
