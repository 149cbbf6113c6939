"""The dealer's gRPC servicer: caller identity from its certificate, errors to status codes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

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
            try:
                wanted = request_from_wire(request)
            except ValueError as exc:
                raise BadRequest(f"job {request.job_id}: {exc}") from None
            result = await self._dealer.correlated(caller, request.job_id, request.sequence, wanted)
        except Exception as exc:
            await fail_call(context, caller, "Correlated", exc)
        for chunk in correction_chunks(result):
            yield chunk

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
