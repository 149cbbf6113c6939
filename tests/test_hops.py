"""Upper bounds on the message rounds ("hops") of the count query, of one Newton step
of the logistic regression and of one Lloyd step of k-means, on both backends (slow
tier: the shared fed3), so that a change adding rounds fails here.

Hops are counted by the mesh (transport/mesh.py: a message's depth is one more than the
deepest message its sender had read), logged by every party and released beside the
result where the analysis releases them (an exact logistic regression in mode
"iterates" withholds them: its products per step follow the step sizes; the test reads
the parties' logs). A step's hops
are the difference between two jobs that differ only in their number of steps (the
fixed phases cancel). Each bound is what was measured on this tree (2026-12-06, 3 x
4,000 patients, 2 cores) plus a little slack: CrypTen runs its rounds in lock-step
and measured the same every time, while MPyC schedules asynchronously, so a message
may be sent after reading one it does not depend on, and its hops wander by a few
per job (before the round reductions a Newton step measured 17.5 to 27, from jobs of
4 and 6 iterations, and a Lloyd step, from jobs of 1 and 2, 65 to 78; after them 11.5
and 37 in one run).
Lower a bound when a change removes rounds. Nothing here is timed.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from smpc_ehr.client.client import Client
from smpc_ehr.local.federation import LocalFederation
from tests.federations import PROTOCOLS

COUNT = ("rare_disease_count", {"codes": "E11"})
NEWTON = {"outcome": "readmit_30d", "features": "bmi,hba1c"}
LLOYD = {"features": "bmi,sbp", "k": 2, "init": "22,120,32,150", "tol": 0}

BOUNDS = {  # backend: (count, one Newton step, one Lloyd step); measured in the comments
    # MPyC: 17-19; 5.5-6; 24-29 (one-round products; before: 11.5, 37; first: 17.5-27, 65-78)
    "mpyc": (24, 9, 36),
    "crypten": (24, 10, 42),  # 22; 7; 36 (before: 15; 58)
}


def hops(fed: LocalFederation, backend: str, name: str, params: dict[str, Any]) -> tuple[int, int]:
    """The hops of one job, as the parties logged them (the released figure where the
    analysis releases it, and then the same), and its iteration count (0 for none)."""
    with Client.from_state(fed.state_dir) as client:
        job = client.run(PROTOCOLS / f"{name}.toml", params, backend=backend)
    logged = max(
        int(m.group(1))
        for log in (fed.state_dir / "logs").glob("hospital-*.log")
        for m in re.finditer(rf"job {job.job_id}: .*?, (\d+) hops, ", log.read_text())
    )
    assert job.cost is not None
    if "withheld" not in job.cost or "hops" in job.cost:
        assert job.cost["hops"] == logged, (job.cost, logged)
    return logged, int(job.result.get("iterations", 0))


@pytest.mark.parametrize("backend", ["mpyc", "crypten"])
def test_rounds_stay_within_their_bounds(fed3: LocalFederation, backend: str) -> None:
    count_bound, newton_bound, lloyd_bound = BOUNDS[backend]
    count, _ = hops(fed3, backend, *COUNT)
    assert 0 < count <= count_bound, count

    short, few = hops(fed3, backend, "logistic_regression", {**NEWTON, "tol": 0.1})
    long, many = hops(fed3, backend, "logistic_regression", NEWTON)
    assert many > few, (few, many)  # the data need more steps at the tighter tolerance
    newton = (long - short) / (many - few)
    assert 0 < newton <= newton_bound, (short, few, long, many)

    one, _ = hops(fed3, backend, "kmeans", {**LLOYD, "max_iter": 1})
    two, steps = hops(fed3, backend, "kmeans", {**LLOYD, "max_iter": 2})
    assert steps == 2
    assert 0 < two - one <= lloyd_bound, (one, two)
