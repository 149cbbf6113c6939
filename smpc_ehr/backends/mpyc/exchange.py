"""MPyC's per-peer message objects, carried by a job's `JobChannel`.

MPyC's message exchange is a small object per peer with `send(pc, payload)` /
`receive(pc)`. Ours sends over the job's channel, so no MPyC port is opened and every
byte goes over mutual TLS, and hands a message delivered on the loop's own thread to
MPyC at once (MPC rounds are latency-bound).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from smpc_ehr.errors import TransportError
from smpc_ehr.transport.mesh import JobChannel


def _on_loop(slot: Future[bytes], loop: asyncio.AbstractEventLoop) -> asyncio.Future[bytes]:
    """An asyncio future of `loop` that follows `slot`.

    Like `asyncio.wrap_future`, but when the message is delivered on the loop's own
    thread (the gRPC handler), it is handed over at once instead of through another
    trip round the loop: MPC rounds are latency-bound.
    """
    future: asyncio.Future[bytes] = loop.create_future()
    loop_thread = threading.get_ident()

    def copy(done: Future[bytes]) -> None:
        if future.done():
            return
        exc = done.exception()
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(done.result())

    def follow(done: Future[bytes]) -> None:
        if threading.get_ident() == loop_thread:
            copy(done)
        else:
            loop.call_soon_threadsafe(copy, done)

    slot.add_done_callback(follow)
    return future


class MeshExchange:
    """MPyC's per-peer message object, carried by the job's channel."""

    def __init__(self, channel: JobChannel, peer: str, round_seconds: float) -> None:
        self._channel = channel
        self._peer = peer
        self._round_seconds = round_seconds
        self.nbytes_sent = 0

    def send(self, pc: int, payload: bytes) -> None:
        self.nbytes_sent += len(payload)
        self._channel.send(self._peer, f"mpyc/{pc}", payload)

    def receive(self, pc: int) -> bytes | asyncio.Future[bytes]:
        slot = self._channel.expect(self._peer, f"mpyc/{pc}")
        if slot.done() and slot.exception() is None:
            return slot.result()
        loop = asyncio.get_running_loop()  # MPyC asks for messages from inside its coroutines
        future = _on_loop(slot, loop)
        timer = loop.call_later(self._round_seconds, self._round_expired, slot, pc)
        future.add_done_callback(lambda _: timer.cancel())
        return future

    def _round_expired(self, slot: Future[bytes], pc: int) -> None:
        if not slot.done():
            self._channel.fail(
                TransportError(
                    f"no message from {self._peer} within the round deadline of "
                    f"{self._round_seconds:g} s (MPyC round {pc})"
                )
            )

    def close_connection(self) -> None:
        """Links are closed by the job channel, not by MPyC."""
