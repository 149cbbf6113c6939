"""A party's blocking gRPC client of the dealer for one job (Join, Correlated, Leave).

CrypTen calls its tuple provider synchronously from the computation thread, so these
calls block, each with its own deadline. Every failure becomes a TransportError that
names the dealer and the call, so a silent or refusing dealer is reported as such.
Messages are built and read by `smpc_ehr.dealer_protocol.messages`; this module only
carries them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import grpc

from smpc_ehr.errors import TransportError
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import dealer_pb2, dealer_pb2_grpc

LEAVE_SECONDS = 2.0
"""Leave is best effort: the dealer forgets a job's seeds at its deadline anyway."""


def _dealer_failure(dealer_id: str, address: str, what: str, exc: grpc.RpcError) -> TransportError:
    """A TransportError naming the dealer and which call failed how."""
    code, details = exc.code(), exc.details()
    if code == grpc.StatusCode.UNAVAILABLE:
        text = f"the dealer ({dealer_id}) is unreachable at {address} ({what}): {details}"
    elif code == grpc.StatusCode.DEADLINE_EXCEEDED:
        text = f"the dealer ({dealer_id}) did not answer {what} in time: {details}"
    else:
        text = f"the dealer ({dealer_id}) refused {what}: {details}"
    return TransportError(text)


class DealerClient:
    """One job's channel to the dealer; each call ends by its deadline."""

    def __init__(
        self,
        *,
        dealer_id: str,
        address: str,
        channel: grpc.Channel,
        rpc_seconds: float,
        answer_by: float | None = None,
    ) -> None:
        self.dealer_id = dealer_id
        self.address = address
        self._channel = channel
        self._stub = dealer_pb2_grpc.DealerStub(channel)
        self._rpc_seconds = rpc_seconds
        self._answer_by = answer_by

    @classmethod
    def join(
        cls,
        tls: TlsIdentity,
        dealer_id: str,
        address: str,
        request: dealer_pb2.JoinRequest,
        rpc_seconds: float,
        answer_by: float | None = None,
    ) -> DealerClient:
        """Connect (mutual TLS, the dealer proving `dealer_id`) and Join; the channel
        is closed again if Join fails.

        Each dealer call may take `rpc_seconds`, and must end by `answer_by` (a
        `time.monotonic()` instant) if given.
        """
        channel = tls.blocking_channel(address, dealer_id)
        client = cls(
            dealer_id=dealer_id,
            address=address,
            channel=channel,
            rpc_seconds=rpc_seconds,
            answer_by=answer_by,
        )
        try:
            client._stub.Join(request, timeout=client.call_seconds())
        except grpc.RpcError as exc:
            channel.close()
            raise _dealer_failure(dealer_id, address, "Join", exc) from None
        return client

    def call_seconds(self) -> float:
        """The deadline of the next dealer call: `rpc_seconds`, ending by `answer_by`."""
        if self._answer_by is None:
            return self._rpc_seconds
        return max(0.1, min(self._rpc_seconds, self._answer_by - time.monotonic()))

    def correlated(
        self, message: dealer_pb2.CorrelatedRequest, what: str
    ) -> Iterable[dealer_pb2.CorrelatedReply]:
        """Send one request now; the replies stream in as they are read (a failure
        while reading raises a TransportError naming `what`)."""
        try:
            replies = self._stub.Correlated(message, timeout=self.call_seconds())
        except grpc.RpcError as exc:
            raise _dealer_failure(self.dealer_id, self.address, what, exc) from None
        return self._read(replies, what)

    def _read(
        self, replies: Iterable[dealer_pb2.CorrelatedReply], what: str
    ) -> Iterator[dealer_pb2.CorrelatedReply]:
        try:
            yield from replies
        except grpc.RpcError as exc:
            raise _dealer_failure(self.dealer_id, self.address, what, exc) from None

    def leave(self, job_id: str) -> None:
        """Tell the dealer the job is done (best effort) and close the channel."""
        try:
            leave = dealer_pb2.LeaveRequest(job_id=job_id)
            self._stub.Leave(leave, timeout=min(self._rpc_seconds, LEAVE_SECONDS))
        except grpc.RpcError:
            pass  # the dealer forgets the job at its deadline anyway
        finally:
            self._channel.close()
