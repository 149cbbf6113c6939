"""Attacks on the released cost (fast tier, the in-process federation): hops, messages
and bytes per party are new released numbers, so two jobs whose data differ where the
result does not show it must release the same cost. Each test runs a job on two
versions of the data (one patient fewer, or one hospital half its size) and compares.

The in-process federation runs the real mesh, coordinator and release code with the
plaintext reference standing in for the backend; its traffic, like a real backend's,
is fixed by the inputs' shapes and by what is opened, so where a real backend's bytes
would tell a private size, the reference's tell it too (`Outcome.sent`, the parties'
unreleased figures, shows the attack would work).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tests._stats_jobs as stats
from smpc_ehr.analyses.common.cost import ADAPTIVE_STEPS, ALL, RESTARTS, ROWS_SHARED
from smpc_ehr.cli.render import render_result
from smpc_ehr.client import JobResult
from smpc_ehr.coordinator.cost import UNREPORTED, cost_line, released_cost
from smpc_ehr.testing.federation import InProcessFederation, Outcome
from smpc_ehr.wire import party_pb2
from tests._inprocess import THRESHOLD
from tests.federations import COUNT_TEMPLATE, PROTOCOLS

LOGISTIC = PROTOCOLS / "logistic_regression.toml"
KMEANS = PROTOCOLS / "kmeans.toml"
RESULT = {"count": 50, "suppressed": False, "threshold": 11}


def shrunk(data: Path, out: Path, keep: int | None = None, drop_code: str = "") -> Path:
    """A copy of `data` whose hospital-1 keeps only its first `keep` patients, or loses
    its first patient with a diagnosis starting with `drop_code`."""
    shutil.copytree(data, out)
    folder = out / "hospital-1"
    patients = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    conditions = pd.read_csv(folder / "conditions.csv", dtype=str, keep_default_na=False)
    if keep is not None:
        kept = set(patients["patient_id"].iloc[:keep])
    else:
        first = conditions.loc[conditions["code"].str.startswith(drop_code), "patient_id"].iloc[0]
        kept = set(patients["patient_id"]) - {first}
    patients[patients["patient_id"].isin(kept)].to_csv(folder / "patients.csv", index=False)
    conditions = conditions[conditions["patient_id"].isin(kept)]
    conditions.to_csv(folder / "conditions.csv", index=False)
    return out


def both(a: Path, b: Path, template: Path, params: dict[str, Any], **kw: Any) -> list[Outcome]:
    return [
        InProcessFederation.from_folder(d, THRESHOLD).run(template, params, **kw) for d in (a, b)
    ]


@pytest.fixture(scope="module")
def one_fewer(data3: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data3 without one of hospital-1's patients with diagnosis E11."""
    return shrunk(data3, tmp_path_factory.mktemp("cost") / "one-fewer", drop_code="E11")


@pytest.fixture(scope="module")
def half(data3: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data3 with hospital-1 cut to 2,000 of its 4,000 patients."""
    return shrunk(data3, tmp_path_factory.mktemp("cost") / "half", keep=2000)


def test_a_count_one_patient_apart_releases_the_same_cost(data3: Path, one_fewer: Path) -> None:
    for params in (
        {"codes": "E11"},
        {"codes": "E11", "by": "sex,age_band"},
        {"codes": "E11", "epsilon": "1.0"},  # differentially private: the same path
    ):
        a, b = both(data3, one_fewer, COUNT_TEMPLATE, params)
        assert a.result != b.result  # the patient is in the cohort
        assert a.cost == b.cost and set(a.cost or ()) == {"hops", "messages", "bytes_sent"}
        assert a.cost["hops"] > 0 and min(a.cost["bytes_sent"].values()) > 0


def test_a_suppressed_cell_takes_the_path_of_a_released_one(data3: Path) -> None:
    fed = InProcessFederation.from_folder(data3, THRESHOLD)
    common = fed.run(COUNT_TEMPLATE, {"codes": "E11"})
    rare = fed.run(COUNT_TEMPLATE, {"codes": "E75.22"})
    assert rare.result["suppressed"] and not common.result["suppressed"]
    assert rare.cost == common.cost


def test_hospital_sizes_do_not_show_in_a_logistic_fit(data3: Path, half: Path) -> None:
    params = {"outcome": "readmit_30d", "features": "bmi,hba1c", "tol": 0.1}
    for mode in ("pooled", "bohning"):  # a fixed number of products per step
        a, b = both(data3, half, LOGISTIC, {**params, "mode": mode})
        assert a.result["n"] != b.result["n"]
        assert a.result["iterations"] == b.result["iterations"]
        assert a.cost == b.cost and "bytes_sent" in (a.cost or {}), mode


def test_an_iterates_fit_withholds_cost_that_follows_its_step_sizes(data3: Path) -> None:
    """Mode iterates spends 1-3 products per Newton step by the size of the last step,
    which the hospitals see and the analyst does not, so no figure is released."""
    fed = InProcessFederation.from_folder(data3, THRESHOLD)
    params = {"outcome": "readmit_30d", "tol": 0.1}
    a = fed.run(LOGISTIC, {**params, "features": "bmi,hba1c"})
    b = fed.run(LOGISTIC, {**params, "features": "bmi,sbp"})
    assert a.cost == b.cost == {"withheld": ADAPTIVE_STEPS.why}
    assert min(h for h, _, _ in a.sent.values()) > 0  # counted, kept in the parties' logs


def test_full_mode_withholds_traffic_that_tells_row_counts(data3: Path, half: Path) -> None:
    params = {"outcome": "readmit_30d", "features": "bmi,hba1c", "mode": "full", "tol": 0.1}
    a, b = both(data3, half, LOGISTIC, params, backend="crypten")
    # the attack: what hospital-1 sent differs with its row count, the others' do not
    assert a.sent["hospital-1"][2] > b.sent["hospital-1"][2]
    assert a.result["iterations"] == b.result["iterations"]
    assert a.cost == b.cost == {"hops": a.cost["hops"], "withheld": ROWS_SHARED.why}


def test_kmeans_full_mode_withholds_traffic(data3: Path, half: Path) -> None:
    params = {"features": "bmi,sbp", "k": 2, "init": "22,120,32,150", "max_iter": 2}
    a, b = both(data3, half, KMEANS, {**params, "mode": "full"}, backend="crypten")
    assert a.sent["hospital-1"][2] > b.sent["hospital-1"][2]
    assert a.result["iterations"] == b.result["iterations"]
    assert a.cost == b.cost == {"hops": a.cost["hops"], "withheld": ROWS_SHARED.why}
    a, b = both(data3, half, KMEANS, params)  # iterates mode: shapes only
    assert a.result["iterations"] == b.result["iterations"] and a.cost == b.cost
    assert "bytes_sent" in (a.cost or {})


def test_kmeans_restarts_withhold_every_figure(data3: Path) -> None:
    """Each start iterates until it stops; the result reports the winner's iterations
    only, so the hops would count the losers' (a secret of the data)."""
    fed = InProcessFederation.from_folder(data3, THRESHOLD)
    outcome = fed.run(KMEANS, {"features": "bmi,sbp", "k": 2, "n_init": 3})
    assert outcome.cost == {"withheld": RESTARTS.why}
    hops = {h for h, _, _ in outcome.sent.values()}
    assert max(hops) > 0  # counted, and kept in the parties' logs only


def test_the_release_combines_what_the_parties_report() -> None:
    costs = {
        "a": party_pb2.JobCost(hops=7, messages=3, bytes_sent=100),
        "b": party_pb2.JobCost(hops=9, messages=4, bytes_sent=2048),
    }
    assert released_cost(ALL, ["a", "b"], costs) == {
        "hops": 9,
        "messages": {"a": 3, "b": 4},
        "bytes_sent": {"a": 100, "b": 2048},
    }
    assert released_cost(ROWS_SHARED, ["a", "b"], costs) == {
        "hops": 9,
        "withheld": ROWS_SHARED.why,
    }
    assert released_cost(ALL, ["a", "b", "c"], costs) == {"withheld": UNREPORTED}
    line = cost_line(released_cost(ALL, ["a", "b"], costs))
    assert line == "cost: 9 hops, 7 messages, 2.1 KiB sent"
    job = JobResult("j", "count", "sha256:0", "mpyc", ("a", "b"), RESULT, 1.0)
    assert "hops" not in render_result(job, "count")
    with_cost = JobResult(**{**job.__dict__, "cost": {"hops": 9}})
    assert "cost: 9 hops" in render_result(with_cost, "count")
    assert with_cost.as_dict()["cost"] == {"hops": 9}


def test_a_message_counts_once_read_not_when_it_arrived() -> None:
    """Depth: a message read before a send deepens it; one that arrived early but is
    asked for only later does not (else a fast peer would add a hop per round)."""
    from smpc_ehr.transport.mailbox import JobMailbox

    box = JobMailbox("j", ["a", "b"])
    box.deliver("a", "early", 0, 1, b"x", depth=5)  # arrived, not asked for
    assert box.read_depth == 0
    box.expect("b", "later")  # asked for, not arrived
    box.deliver("b", "later", 0, 1, b"y", depth=2)
    assert box.read_depth == 2
    assert box.expect("a", "early").result() == b"x"
    assert box.read_depth == 5


@pytest.mark.parametrize("key", sorted(stats.JOBS))
def test_no_statistic_shows_hospital_sizes_in_its_cost(key: str, data3: Path, half: Path) -> None:
    name, params = stats.JOBS[key]
    a, b = both(data3, half, stats.template(name), params)
    assert a.result != b.result
    assert a.cost == b.cost and "bytes_sent" in (a.cost or {}), key
