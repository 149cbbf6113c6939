"""The privacy ledger wired into the party's jobs (fast tier, in-process federation): a
hospital that requires DP refuses exact runs, a DP job reserves its charge at every
hospital before it runs, commits it when released, gives it back when another hospital
refuses, keeps it when the secure step failed, and the budget survives re-creating
the federation over the same state folder."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import Analysis, NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common import noise
from smpc_ehr.analyses.common.local_checks import UnusableValues
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import Refusal
from smpc_ehr.party.jobs import job_charge
from smpc_ehr.policy.ledger import LEDGER_FILE, PrivacyLedger
from smpc_ehr.policy.privacy import PrivacyPolicy
from smpc_ehr.privacy.accountant import Charge, rho_for
from smpc_ehr.securemath.ops import SecureOps
from smpc_ehr.study.template import parse_template
from smpc_ehr.testing.federation import ANALYST, Hospital, InProcessFederation, JobFailed

DELTA = 1e-6
HOSPITALS = ("hospital-1", "hospital-2", "hospital-3")
_BROKEN: Any = object()
"""A hospital's data whose local step finds its values unusable (after the job started)."""


class _Ones(Analysis):
    """Each hospital inputs a one; the total is released. Stands in for a DP analysis:
    only its template's `epsilon` parameter matters to the ledger."""

    name = "dp_ones"

    def validate(self, params: Params) -> None:
        del params

    def local_input(self, data: PartyData, params: Params) -> Any:
        if data is _BROKEN:
            raise UnusableValues("this hospital's values are unusable")
        return 1

    def outputs(self, params: Params) -> tuple[Output, ...]:
        return (Output("total", (1,)),)

    def noisy_releases(self, params: Params) -> tuple[noise.NoisyRelease, ...]:
        return (noise.NoisyRelease("total", 1, 1.0),)  # sized for the charge; none added

    def secure_program(self, local: Any, params: Params, threshold: int) -> NamedProgram:
        async def program(ops: SecureOps) -> NamedSecrets:
            return {"total": ops.sum_vectors(ops.input_ints([local], 4))}

        return program

    def finalize(self, opened: dict[str, np.ndarray], params: Params, threshold: int) -> dict:
        return {"total": int(opened["total"][0])}


TEMPLATE = parse_template(
    """
[protocol]
name = "dp_ones"
title = "A test analysis with an epsilon parameter"
analysis = "dp_ones"
version = 1
leakage = "The total of the parties' ones."

[parameters.epsilon]
type = "float"
required = false
min = 0.01
max = 10.0
help = "Privacy loss of this run; without it the run is exact"
"""
)


@pytest.fixture(autouse=True)
def _ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ANALYSES, "dp_ones", _Ones())


def federation(
    state: Path, *policies: PrivacyPolicy, data: tuple[Any, ...] = ()
) -> InProcessFederation:
    """Three hospitals over `state`, with the given privacy policies (default: none)."""
    chosen = list(policies) + [PrivacyPolicy()] * (len(HOSPITALS) - len(policies))
    datas = list(data) + [object()] * (len(HOSPITALS) - len(data))
    return InProcessFederation(
        [
            Hospital(h, d, privacy=p)
            for h, d, p in zip(HOSPITALS, datas, chosen, strict=True)  # type: ignore[arg-type]
        ],
        state=state,
    )


def charges(state: Path, hospital: str) -> list[tuple[str, str]]:
    """(analyst, state) of every charge in a hospital's ledger."""
    path = state / hospital / LEDGER_FILE
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        return db.execute("SELECT analyst, state FROM charges").fetchall()


def test_a_hospital_requiring_dp_refuses_an_exact_run_and_exact_runs_charge_nothing(
    tmp_path: Path,
) -> None:
    assert federation(tmp_path).run(TEMPLATE).result == {"total": 3}
    with pytest.raises(JobFailed, match="hospital-2 requires differential privacy"):
        federation(tmp_path, PrivacyPolicy(), PrivacyPolicy(require_dp=True)).run(TEMPLATE)
    assert all(charges(tmp_path, h) == [] for h in HOSPITALS)


def test_a_budget_of_one_query_refuses_the_second_also_after_re_creating_the_federation(
    tmp_path: Path,
) -> None:
    policy = PrivacyPolicy(epsilon_budget_per_analyst=1.0, delta=DELTA)
    assert federation(tmp_path, policy).run(TEMPLATE, {"epsilon": 1.0}).result["total"] == 3
    assert charges(tmp_path, "hospital-1") == [(ANALYST, "committed")]
    assert charges(tmp_path, "hospital-2") == [(ANALYST, "committed")]  # no budget, but a record
    report = PrivacyLedger.in_state_folder(tmp_path / "hospital-1", "hospital-1", policy).report()
    assert report.total.rho_spent == pytest.approx(rho_for(1.0, DELTA))
    assert report.total.pending == 0
    again = federation(tmp_path, policy)  # as after a restart: a new runner, the same file
    with pytest.raises(JobFailed, match="the privacy budget of hospital-1 does not allow"):
        again.run(TEMPLATE, {"epsilon": 1.0})
    # the refused job's reservations at the others were given back
    assert charges(tmp_path, "hospital-2") == [(ANALYST, "committed"), (ANALYST, "released")]


def test_a_job_another_hospital_refuses_releases_the_reservation(tmp_path: Path) -> None:
    budget = PrivacyPolicy(epsilon_budget_per_analyst=1.0)
    capped = PrivacyPolicy(max_epsilon_per_query=0.5)
    with pytest.raises(JobFailed, match=r"hospital-3 allows at most epsilon = 0\.5 per query"):
        federation(tmp_path, budget, budget, capped).run(TEMPLATE, {"epsilon": 1.0})
    assert charges(tmp_path, "hospital-1") == [(ANALYST, "released")]
    assert charges(tmp_path, "hospital-3") == []
    # the budget is whole again
    assert federation(tmp_path, budget).run(TEMPLATE, {"epsilon": 1.0}).result["total"] == 3


def test_a_job_that_failed_after_its_secure_step_started_stays_charged(tmp_path: Path) -> None:
    with pytest.raises(JobFailed):
        federation(tmp_path, data=(object(), _BROKEN)).run(TEMPLATE, {"epsilon": 1.0})
    for hospital in HOSPITALS:
        # committed, or still reserved where the federation shut down first: spent either way
        [(analyst, state)] = charges(tmp_path, hospital)
        assert analyst == ANALYST and state in ("committed", "reserved")
        ledger = PrivacyLedger.in_state_folder(tmp_path / hospital, hospital, PrivacyPolicy())
        assert ledger.report().total.rho_spent == pytest.approx(rho_for(1.0, DELTA))


def test_a_jobs_charge_is_the_rho_its_noise_is_calibrated_to() -> None:
    """One figure for the ledger and the mechanism: the analysis's charge, at the
    delta the noise is planned at, whatever the policy's delta (which only converts)."""
    count = ANALYSES["count"]
    assert job_charge(count, {"epsilon": None}) is None
    assert job_charge(count, {"epsilon": 1.0}) == Charge.of_epsilon(1.0, noise.DELTA)
    assert job_charge(count, {"epsilon": 1.0}).rho == noise.charge({"epsilon": 1.0}).rho
    with pytest.raises(Refusal, match="unusable privacy parameters"):
        job_charge(count, {"epsilon": -1.0})
    with pytest.raises(Refusal, match="no differentially private variant"):
        job_charge(ANALYSES["selftest"], {"epsilon": 1.0})
