"""A party's blocking gRPC client of the dealer for one job (Join, CorrelatedStream, Leave).

CrypTen calls its tuple provider synchronously from the computation thread, so these
calls block, each with its own deadline. Rank 0's requests go on one stream per job
(`RequestStream`): sent as CrypTen asks, without waiting for earlier answers, each
answer awaited by its own deadline. Every failure becomes a TransportError that names
the dealer and the call, so a silent or refusing dealer is reported as such. Messages
are built and read by `smpc_ehr.dealer_protocol.messages`; this module only carries
them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

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

    def open_stream(self, seconds: float) -> RequestStream:
        """Open the job's request stream; it ends after `seconds` (and by `answer_by`)."""
        if self._answer_by is not None:
            seconds = min(seconds, self._answer_by - time.monotonic())
        return RequestStream(self._stub, self.dealer_id, self.address, max(seconds, 0.1))

    def leave(self, job_id: str) -> None:
        """Tell the dealer the job is done (best effort) and close the channel."""
        try:
            leave = dealer_pb2.LeaveRequest(job_id=job_id)
            self._stub.Leave(leave, timeout=min(self._rpc_seconds, LEAVE_SECONDS))
        except grpc.RpcError:
            pass  # the dealer forgets the job at its deadline anyway
        finally:
            self._channel.close()


_END = object()
"""What the reader queues when the dealer ends the stream."""


class RequestStream:
    """Rank 0's requests of one job on one CorrelatedStream call, replies in order.

    `send` queues a request for gRPC's sending thread and returns at once; a reader
    thread queues the replies as they arrive; `reply` takes the next one, waiting at
    most the seconds given, and cancels the stream if none comes in time. The call
    itself ends at the deadline given when opening it.
    """

    def __init__(
        self, stub: dealer_pb2_grpc.DealerStub, dealer_id: str, address: str, seconds: float
    ) -> None:
        self._dealer_id = dealer_id
        self._address = address
        self._requests: queue.Queue[dealer_pb2.CorrelatedRequest | None] = queue.Queue()
        self._replies: queue.Queue[object] = queue.Queue()
        self._failure: TransportError | None = None
        self._closed = False
        self._call = stub.CorrelatedStream(self._outgoing(), timeout=seconds)
        self._reader = threading.Thread(target=self._read, name="dealer-replies", daemon=True)
        self._reader.start()

    def _outgoing(self) -> Iterator[dealer_pb2.CorrelatedRequest]:
        while (request := self._requests.get()) is not None:
            yield request

    def _read(self) -> None:
        try:
            for reply in self._call:
                self._replies.put(reply)
            self._replies.put(_END)
        except grpc.RpcError as exc:
            self._replies.put(exc)

    def send(self, request: dealer_pb2.CorrelatedRequest, what: str) -> None:
        """Queue `request` on the stream; a stream that already failed says so."""
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise TransportError(f"the request stream to the dealer is closed ({what})")
        self._requests.put(request)

    def reply(self, seconds: float, what: str) -> dealer_pb2.CorrelatedReply:
        """The next reply, which answers `what`, within `seconds`; a TransportError naming
        the dealer and `what` if it fails, ends or is late (the stream is then cancelled)."""
        if self._failure is not None:
            raise self._failure
        try:
            item = self._replies.get(timeout=max(seconds, 0.0))
        except queue.Empty:
            text = f"the dealer ({self._dealer_id}) did not answer {what} in time"
            raise self.fail(TransportError(f"{text} ({seconds:.1f} s)")) from None
        if isinstance(item, dealer_pb2.CorrelatedReply):
            return item
        if isinstance(item, grpc.RpcError):
            raise self.fail(_dealer_failure(self._dealer_id, self._address, what, item))
        text = f"the dealer ({self._dealer_id}) ended the request stream before {what}"
        raise self.fail(TransportError(text))

    def fail(self, error: TransportError) -> TransportError:
        """End the stream (late, failed or wrong replies); returns the first failure,
        which every later call raises."""
        if self._failure is None:
            self._failure = error
        self.close()
        self._call.cancel()
        return self._failure

    def close(self) -> None:
        """No more requests: the dealer ends the stream once it has answered them."""
        if not self._closed:
            self._closed = True
            self._requests.put(None)
