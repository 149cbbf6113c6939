"""The coordinator's `Approvals` call: which templates each hospital approves, asked of
every party's Health, so an analyst sees what will run before submitting a job."""

from __future__ import annotations

import asyncio

import grpc

from smpc_ehr.config.roster import Member
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import coordinator_pb2, party_pb2, party_pb2_grpc

APPROVALS_TIMEOUT = 5.0
"""Seconds each party has to answer (an unreachable one is reported, not waited for)."""


async def _ask(tls: TlsIdentity, party: Member, timeout: float) -> coordinator_pb2.PartyApprovals:
    channel = tls.secure_channel(str(party.address), party.id)
    try:
        reply = await party_pb2_grpc.PartyStub(channel).Health(
            party_pb2.HealthRequest(), timeout=timeout
        )
    except grpc.aio.AioRpcError as exc:
        return coordinator_pb2.PartyApprovals(
            party=party.id, reachable=False, error=f"{exc.code().name}: {exc.details()}"
        )
    finally:
        await channel.close()
    return coordinator_pb2.PartyApprovals(party=party.id, reachable=True, approved=reply.approved)


async def collect_approvals(
    tls: TlsIdentity, parties: tuple[Member, ...], timeout: float = APPROVALS_TIMEOUT
) -> coordinator_pb2.ApprovalsReply:
    """Every party's approved templates, in roster order, asked at once."""
    answers = await asyncio.gather(*(_ask(tls, p, timeout) for p in parties))
    return coordinator_pb2.ApprovalsReply(parties=answers)
