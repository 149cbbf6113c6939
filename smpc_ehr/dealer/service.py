"""The dealer's gRPC servicer: caller identity from its certificate, errors to status codes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc

from smpc_ehr.config.dealer import DealerConfig
from smpc_ehr.dealer.sessions import BadRequest, Dealer
from smpc_ehr.dealer_protocol.messages import correction_chunks, request_from_wire
from smpc_ehr.pki.trust import current as current_roster
from smpc_ehr.transport.health import health_reply
from smpc_ehr.transport.tls import fail_call, require_caller
from smpc_ehr.wire import dealer_pb2, dealer_pb2_grpc

log = logging.getLogger(__name__)


class DealerServicer(dealer_pb2_grpc.DealerServicer):
    """Thin: reads the caller's identity, calls `Dealer`, maps its errors."""

    def __init__(self, config: DealerConfig, dealer: Dealer) -> None:
        self._config = config
        self._dealer = dealer

    async def Join(self, request, context):
        caller = await require_caller(context, "Join")
        try:
            joined = self._dealer.join(
                caller,
                request.job_id,
                list(request.parties),
                request.rank,
                request.seed,
                request.deadline_seconds,
            )
        except Exception as exc:
            await fail_call(context, caller, "Join", exc)
        return dealer_pb2.JoinReply(joined=joined)

    async def Correlated(
        self, request: dealer_pb2.CorrelatedRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[dealer_pb2.CorrelatedReply]:
        caller = await require_caller(context, "Correlated")
        try:
            result = await self._correction(caller, request)
        except Exception as exc:
            await fail_call(context, caller, "Correlated", exc)
        for chunk in correction_chunks(result):
            yield chunk

    async def CorrelatedStream(
        self,
        requests: AsyncIterator[dealer_pb2.CorrelatedRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[dealer_pb2.CorrelatedReply]:
        """Rank 0's requests of one job, answered in order as they arrive (one stream
        per job at a time: `Dealer.streaming`)."""
        caller = await require_caller(context, "CorrelatedStream")
        job_id: str | None = None
        try:
            async for request in requests:
                if job_id is None:
                    job_id = request.job_id
                    self._dealer.open_stream(caller, job_id)
                elif request.job_id != job_id:
                    raise BadRequest(
                        f"a request stream carries one job's requests: job {job_id}, "
                        f"then {request.job_id}"
                    )
                result = await self._correction(caller, request)
                for chunk in correction_chunks(result, request.sequence):
                    yield chunk
        except Exception as exc:
            await fail_call(context, caller, "CorrelatedStream", exc)
        finally:
            if job_id is not None:
                self._dealer.close_stream(job_id)

    async def _correction(self, caller: str, request: dealer_pb2.CorrelatedRequest) -> Any:
        """The correction `request` asks for (Dealer.correlated checks the caller)."""
        try:
            wanted = request_from_wire(request)
        except ValueError as exc:
            raise BadRequest(f"job {request.job_id}: {exc}") from None
        return await self._dealer.correlated(caller, request.job_id, request.sequence, wanted)

    async def Leave(self, request, context):
        caller = await require_caller(context, "Leave")
        try:
            forgotten = self._dealer.leave(caller, request.job_id)
        except Exception as exc:
            await fail_call(context, caller, "Leave", exc)
        return dealer_pb2.LeaveReply(forgotten=forgotten)

    async def Health(self, request, context):
        await require_caller(
            context,
            "Health",
            frozenset(current_roster(self._config.roster).identities()),
            lambda caller: f"{caller} is not in the roster",
        )
        return health_reply(
            self._config.id,
            "dealer",
            self._config.cert,
            busy_with="" if self._dealer.open_jobs else None,
        )
