"""The dealer's gRPC servicer: caller identity from its certificate, errors to status codes."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import NoReturn

import grpc

from smpc_ehr import __version__
from smpc_ehr.backends.crypten.dealer_wire import correction_chunks, request_from_wire
from smpc_ehr.config.dealer import DealerConfig
from smpc_ehr.dealer.sessions import BadRequest, Dealer
from smpc_ehr.transport.status import message_for, status_for
from smpc_ehr.transport.tls import peer_identity
from smpc_ehr.wire import dealer_pb2, dealer_pb2_grpc, party_pb2

log = logging.getLogger(__name__)


class DealerServicer(dealer_pb2_grpc.DealerServicer):
    """Thin: reads the caller's identity, calls `Dealer`, maps its errors."""

    def __init__(self, config: DealerConfig, dealer: Dealer) -> None:
        self._config = config
        self._dealer = dealer
        self._members = frozenset(config.roster.identities())

    async def _caller(self, context: grpc.aio.ServicerContext) -> str:
        try:
            return peer_identity(context)
        except PermissionError as exc:
            await _fail(context, exc)

    async def Join(self, request, context):
        caller = await self._caller(context)
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
            await _fail(context, exc, caller)
        return dealer_pb2.JoinReply(joined=joined)

    async def Correlated(
        self, request: dealer_pb2.CorrelatedRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[dealer_pb2.CorrelatedReply]:
        caller = await self._caller(context)
        try:
            try:
                wanted = request_from_wire(request)
            except ValueError as exc:
                raise BadRequest(f"job {request.job_id}: {exc}") from None
            result = await self._dealer.correlated(caller, request.job_id, request.sequence, wanted)
        except Exception as exc:
            await _fail(context, exc, caller)
        for chunk in correction_chunks(result):
            yield chunk

    async def Leave(self, request, context):
        caller = await self._caller(context)
        try:
            forgotten = self._dealer.leave(caller, request.job_id)
        except Exception as exc:
            await _fail(context, exc, caller)
        return dealer_pb2.LeaveReply(forgotten=forgotten)

    async def Health(self, request, context):
        caller = await self._caller(context)
        if caller not in self._members:
            await _fail(context, PermissionError(f"{caller} is not in the roster"))
        return party_pb2.HealthReply(
            identity=self._config.id,
            role="dealer",
            version=__version__,
            state="busy" if self._dealer.open_jobs else "idle",
        )


async def _fail(
    context: grpc.aio.ServicerContext, exc: BaseException, caller: str | None = None
) -> NoReturn:
    """End the RPC with the status for `exc` and its message."""
    code = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("internal error serving %s", caller, exc_info=exc)
    else:
        log.warning("refused %s: %s", caller or "a caller", message_for(exc))
    await context.abort(code, message_for(exc))
    raise AssertionError("unreachable: abort raises")
