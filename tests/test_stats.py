"""Statistical analyses across analyses over real federations: a small cohort releases
nothing in any of them, and a variable one party lacks fails naming it (the per-analysis
end-to-end tests sit beside each package, smpc_ehr/analyses/statistics/*/)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest

from smpc_ehr.client import Client, JobFailed
from smpc_ehr.local.federation import LocalFederation, down
from tests import _stats_truth as truth
from tests._stats_jobs import RARE, THRESHOLD, assert_not_disclosed, run_fed3, template
from tests.federations import make_data, start_federation


def test_small_cohort_releases_nothing(fed3: LocalFederation, data3: Path) -> None:
    frame = truth.cohort_frame(data3, codes=RARE)
    bmi = frame["bmi"].dropna()
    assert 1 <= len(frame) < THRESHOLD, "the synthetic data must give a small nonzero cohort"
    secrets = [float(len(frame)), float(len(bmi)), float(bmi.mean())]

    summary = run_fed3(fed3, "summary", {"variables": "bmi", "codes": RARE})
    assert summary["variables"]["bmi"] == {
        "n": None,
        "missing": None,
        "mean": None,
        "variance": None,
        "sd": None,
        "se": None,
        "suppressed": True,
        "mean_suppressed": False,  # the whole cell is: the binary rule has nothing to add
    }
    assert_not_disclosed(summary, secrets, {float(THRESHOLD)})

    params = {"variable": "bmi", "q": [0.25, 0.5, 0.75], "low": 15, "high": 40, "step": 1}
    quantiles = run_fed3(fed3, "quantiles", {**params, "codes": RARE})
    assert quantiles["n"] is None
    assert quantiles["values"] == [None] * 3 and quantiles["suppressed"] == [True] * 3
    assert quantiles["notes"] == [None] * 3
    # Exact cohort quantiles would be grid points here: none of them may show.
    t = truth.quantiles(frame, "bmi", params["q"])
    allowed = {float(THRESHOLD), 15.0, 40.0, 1.0, *params["q"]}
    assert_not_disclosed(quantiles, secrets + [v for v in t["values"] if v not in allowed], allowed)

    ttest = run_fed3(fed3, "ttest", {"variable": "bmi", "group": "readmit_30d", "codes": RARE})
    for level in ("0", "1"):
        group = ttest["groups"][level]
        assert group["suppressed"] is True
        assert all(group[k] is None for k in ("n", "missing", "mean", "variance", "sd", "se"))
    for key in ("statistic", "df", "p_value", "estimate", "ci95"):
        assert ttest[key] is None, key
    assert "fewer than 11" in ttest["test_refused"]
    groups = truth.summary(frame, ["bmi"], "readmit_30d")
    secrets += [float(g["bmi"]["mean"]) for g in groups.values() if g["bmi"]["n"]]
    assert_not_disclosed(ttest, secrets, {float(THRESHOLD)})


LACKING = "hospital-2"


@pytest.fixture(scope="module")
def fed_without_hdl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """A tiny 3-party federation where one party's patients.csv has no hdl column."""
    data = make_data(tmp_path_factory.mktemp("data_nohdl"), 3, 500, seed=17)
    path = data / LACKING / "patients.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c != "hdl"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    state = tmp_path_factory.mktemp("fed_nohdl")
    federation = start_federation(data, state)
    yield federation
    down(state, timeout=3.0)  # nothing to keep: SIGKILL after 3 s


def test_variable_one_party_lacks_fails_naming_it(fed_without_hdl: LocalFederation) -> None:
    with Client.from_state(fed_without_hdl.state_dir) as client, pytest.raises(JobFailed) as err:
        client.run(template("summary"), {"variables": "bmi,hdl"})
    message = str(err.value)
    assert "'hdl'" in message and LACKING in message, message
