"""Health tells the coordinator which job a party runs, and every other roster member
only whether it is busy: another hospital, the dealer or an analyst learns no job id
(which job, whose, runs now). Servicers called in process with a caller's certificate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from smpc_ehr.config.roster import Member, Roster
from smpc_ehr.coordinator.service import CoordinatorServicer
from smpc_ehr.party.service import PartyServicer
from smpc_ehr.testing.memory import certificate_of
from smpc_ehr.wire import party_pb2

NOWHERE = Path("/nonexistent")
ADDRESS = "127.0.0.1:1"  # never dialled
ROSTER = Roster(
    federation="health-test",
    ca_cert=NOWHERE,
    coordinator=Member("coordinator", "coordinator", "Coordinator", ADDRESS),
    dealer=Member("dealer", "dealer", "Dealer", ADDRESS),
    parties=tuple(Member(p, "party", p, ADDRESS) for p in ("hospital-1", "hospital-2")),
    analysts=(Member("analyst", "analyst", "Analyst", None),),
    source=NOWHERE,
)
JOB = "job-4711"


class _Context:
    def __init__(self, caller: str) -> None:
        self._pem = certificate_of(caller)

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": [self._pem]}

    async def abort(self, code: Any, details: str) -> None:
        raise PermissionError(details)


def party_health(caller: str, job: str) -> party_pb2.HealthReply:
    config = SimpleNamespace(
        id="hospital-1",
        roster=ROSTER,
        cert=NOWHERE,
        policy=SimpleNamespace(approved_hashes=frozenset(), approved_names={}),
    )
    runner = SimpleNamespace(current_job=job, audit=SimpleNamespace(rpc_refused=print))
    servicer = PartyServicer(config, runner, mesh=None)  # type: ignore[arg-type]
    return asyncio.run(servicer.Health(party_pb2.HealthRequest(), _Context(caller)))


@pytest.mark.parametrize("caller", ["hospital-2", "dealer", "analyst"])
def test_a_party_tells_others_only_that_it_is_busy(caller: str) -> None:
    reply = party_health(caller, JOB)
    assert reply.state == "busy" and reply.current_job == ""
    assert JOB not in str(reply)
    assert party_health(caller, "").state == "idle"


def test_a_party_tells_the_coordinator_its_job() -> None:
    reply = party_health("coordinator", JOB)
    assert reply.state == "busy" and reply.current_job == JOB


def test_the_coordinator_tells_nobody_its_job() -> None:
    config = SimpleNamespace(id="coordinator", roster=ROSTER, cert=NOWHERE)
    coordinator = SimpleNamespace(current=SimpleNamespace(job_id=JOB))
    servicer = CoordinatorServicer(config, coordinator)  # type: ignore[arg-type]
    for caller in ("hospital-1", "analyst"):
        reply = asyncio.run(servicer.Health(party_pb2.HealthRequest(), _Context(caller)))
        assert reply.state == "busy" and reply.current_job == "", caller
