"""The issue's "done when": with one hospital of four stopped, a job naming the other
three succeeds where their policies allow partial jobs, says so in its result, and is
refused with the reason where one does not (real processes, mutual TLS, MPyC)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from smpc_ehr.cli.render import render_result
from smpc_ehr.client import Client, JobFailed
from smpc_ehr.local.federation import down, party_config_path, restart
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, make_data, start_federation

THREE = ["hospital-1", "hospital-2", "hospital-3"]


def stop(pid: int) -> None:
    """Kill a party as a crash would, and reap it (it is this test's child)."""
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_a_job_over_three_of_four_hospitals_runs_without_the_stopped_one(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data", 4, 400, seed=44)
    subset = tmp_path / "three"
    subset.mkdir()
    for party in THREE:
        (subset / party).symlink_to(data / party)
    expected = truth_counts(subset, ["E11"])[()]
    state = tmp_path / "state"
    federation = start_federation(data, state, allow_partial=True)
    try:
        stop(federation.pids["hospital-4"])
        with Client.from_state(state) as client:
            result = client.run(COUNT_TEMPLATE, {"codes": "E11"}, parties=THREE)
        output = result.as_dict()  # what `smpc-ehr run --json` prints
        assert (output["parties"], output["absent"]) == (THREE, ["hospital-4"])
        assert output["result"]["count"] == expected
        table = render_result(result, "count").splitlines()
        assert table[1] == "covers only these 3 hospitals: hospital-4 did not take part"

        # hospital-1 now refuses exact jobs over a subset; a job with epsilon still runs.
        stop(federation.pids["hospital-1"])
        config = party_config_path(state, "hospital-1")
        config.write_text(config.read_text().replace("allow_partial_jobs = true", ""))
        restart(state, "hospital-1")
        with Client.from_state(state) as client:
            try:
                client.run(COUNT_TEMPLATE, {"codes": "E11"}, parties=THREE)
                raise AssertionError("an exact job over a subset ran against hospital-1's policy")
            except JobFailed as exc:
                assert str(exc) == (
                    "hospital-1 refused: hospital-1 does not allow jobs over a subset of the "
                    "hospitals: an exact result over {hospital-1, hospital-2, hospital-3, "
                    "hospital-4} minus one over {hospital-1, hospital-2, hospital-3} would "
                    "reveal hospital-4's; set allow_partial_jobs or use epsilon"
                )
            noisy = client.run(COUNT_TEMPLATE, {"codes": "E11", "epsilon": 2.0}, parties=THREE)
        assert (noisy.parties, noisy.absent) == (tuple(THREE), ("hospital-4",))
    finally:
        down(state)
