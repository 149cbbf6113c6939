"""The party's gRPC servicer: who may call what, and errors mapped to status codes.

Coordinator-only RPCs (Prepare, Run, Cancel) check the caller's certificate identity
against the roster's coordinator; Exchange and Gossip accept only the roster's parties.
Every refused call is written to the party's audit log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from smpc_ehr.backends.output_wire import encode_output_shares
from smpc_ehr.config.party import PartyConfig
from smpc_ehr.errors import BadRequest
from smpc_ehr.party.gossip import HeadGossip
from smpc_ehr.party.jobs import JobRunner
from smpc_ehr.pki.trust import current as current_roster
from smpc_ehr.transport.health import health_reply
from smpc_ehr.transport.mesh import Mesh, receive_stream
from smpc_ehr.transport.status import message_for, status_for
from smpc_ehr.transport.tls import require_caller
from smpc_ehr.wire import party_pb2, party_pb2_grpc

log = logging.getLogger(__name__)


class PartyServicer(party_pb2_grpc.PartyServicer):
    """Thin: checks the caller, calls the job runner or the mesh, maps errors."""

    def __init__(
        self, config: PartyConfig, runner: JobRunner, mesh: Mesh, gossip: HeadGossip | None = None
    ) -> None:
        """`gossip` keeps the audit heads other parties send (None: Gossip is refused)."""
        self._config = config
        self._gossip = gossip
        self._runner = runner
        self._mesh = mesh

    @property
    def _coordinator(self) -> str:
        return current_roster(self._config.roster).coordinator.id

    @property
    def _parties(self) -> frozenset[str]:
        """The roster's parties now (a reload can add one)."""
        return frozenset(current_roster(self._config.roster).party_ids())

    async def _require(
        self, context: grpc.aio.ServicerContext, method: str, allowed: frozenset[str]
    ) -> str:
        return await require_caller(
            context,
            method,
            allowed,
            lambda caller: f"{caller} may not call {method} on party {self._config.id}",
            self._runner.audit.rpc_refused,
        )

    async def Prepare(self, request, context):
        await self._require(context, "Prepare", frozenset({self._coordinator}))
        try:
            min_cell = await self._runner.prepare(request.job)
        except Exception as exc:
            log.warning(
                "refused Prepare of job %s from %s (analyst %s): %s",
                request.job.job_id,
                self._coordinator,
                request.job.analyst or "not named",
                exc,
            )
            return party_pb2.PrepareReply(accepted=False, reason=message_for(exc))
        return party_pb2.PrepareReply(accepted=True, min_cell_count=min_cell)

    async def Run(self, request, context) -> AsyncIterator[party_pb2.RunEvent]:
        """The job's progress notes as they come, then this party's output shares."""
        await self._require(context, "Run", frozenset({self._coordinator}))
        notes: asyncio.Queue[party_pb2.Progress] = asyncio.Queue()

        def note(stage: str, step: int, total: int, message: str) -> None:
            notes.put_nowait(
                party_pb2.Progress(stage=stage, step=step, total=total, message=message)
            )

        job = asyncio.ensure_future(self._runner.run(request.job_id, request.threshold, note))
        try:
            while not job.done():
                waiting = asyncio.ensure_future(notes.get())
                await asyncio.wait({job, waiting}, return_when=asyncio.FIRST_COMPLETED)
                if waiting.done():
                    yield party_pb2.RunEvent(progress=waiting.result())
                else:
                    waiting.cancel()
            while not notes.empty():
                yield party_pb2.RunEvent(progress=notes.get_nowait())
            try:
                shares = job.result()
            except Exception as exc:
                await context.abort(status_for(exc), message_for(exc))
            cost = self._runner.take_cost(request.job_id)
            if cost is not None:
                yield party_pb2.RunEvent(cost=cost)
            version = self._runner.take_data_version(request.job_id)
            if version is not None:
                yield party_pb2.RunEvent(data_version=version)
            yield party_pb2.RunEvent(output=encode_output_shares(shares))
        finally:
            if not job.done():  # the coordinator went away: stop the computation
                job.cancel()

    async def Cancel(self, request, context):
        await self._require(context, "Cancel", frozenset({self._coordinator}))
        was = await self._runner.cancel(request.job_id, request.reason or "no reason given")
        return party_pb2.CancelReply(was_running=was)

    async def Health(self, request, context):
        roster = current_roster(self._config.roster)
        caller = await self._require(context, "Health", frozenset(roster.identities()))
        job = self._runner.current_job
        policy = self._config.policy
        return health_reply(
            self._config.id,
            "party",
            self._config.cert,
            busy_with=job or None,
            show_job=caller == roster.coordinator.id,
            approved=policy.approved_hashes,
            names=policy.approved_names,
            backends=True,
        )

    async def Exchange(self, request_iterator, context):
        sender = await self._require(context, "Exchange", self._parties - {self._config.id})
        try:
            received = await receive_stream(self._mesh.registry, sender, request_iterator)
        except Exception as exc:
            log.warning("refused Exchange from %s: %s", sender, exc)
            self._runner.audit.rpc_refused("Exchange", sender, message_for(exc))
            await context.abort(status_for(exc), message_for(exc))
        return party_pb2.ExchangeReply(received=received)

    async def Gossip(self, request, context):
        """Keep another party's signed audit head (docs/security.md, "Audit trail")."""
        sender = await self._require(context, "Gossip", self._parties - {self._config.id})
        try:
            if self._gossip is None:
                raise BadRequest(f"party {self._config.id} does not keep audit heads")
            stored = await asyncio.to_thread(self._gossip.receive, sender, request)
        except Exception as exc:
            log.warning("refused Gossip from %s: %s", sender, exc)
            self._runner.audit.rpc_refused("Gossip", sender, message_for(exc))
            await context.abort(status_for(exc), message_for(exc))
        return party_pb2.GossipReply(stored=stored)
