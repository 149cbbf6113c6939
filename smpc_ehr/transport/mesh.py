"""The mesh as one party sees it: channels to peers and the channels of its open jobs.

Outgoing messages of a job travel on one client stream per peer (`Party.Exchange`),
opened on the first message and closed when the job ends, with the job's deadline
as the RPC deadline. Incoming streams are served by `receive_stream`, which takes
the sender from the peer certificate and files each message into its job's mailbox.
All gRPC objects live on the server's event loop; `send` and `expect` may also be
called from other threads (they cross over with `call_soon_threadsafe`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from typing import Protocol

import grpc

from smpc_ehr.errors import JobAborted, TransportError
from smpc_ehr.transport.mailbox import (
    CHUNK_BYTES,
    MAX_MESSAGE_BYTES,
    MAX_TAG_CHARS,
    JobMailbox,
    MailboxRegistry,
)
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import party_pb2, party_pb2_grpc

log = logging.getLogger(__name__)

MAX_JOB_ID_CHARS = 64
"""Longest job id a peer may name (the coordinator's are 32 hex digits)."""
PEER_ABORT = " aborted the job: "
"""How a party words an abort it received from a peer (the coordinator recognises it)."""


class PeerLink(Protocol):
    """One job's outgoing messages to one peer, in order (`Mesh.link` opens it)."""

    task: asyncio.Task[None]
    """Ends when the link has delivered everything after `finish` (or failed)."""

    def put(self, message: party_pb2.ShareMessage) -> None: ...

    def finish(self) -> None: ...


class Mesh:
    """This party's links to its peers, shared by all jobs (one TLS channel per peer)."""

    def __init__(self, tls: TlsIdentity, peer_addresses: dict[str, str]) -> None:
        self.me = tls.identity
        self._tls = tls
        self._addresses = dict(peer_addresses)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.registry = MailboxRegistry()

    def stub(self, peer: str) -> party_pb2_grpc.PartyStub:
        """A stub on the (cached) channel to `peer`; call inside the server's event loop."""
        channel = self._channels.get(peer)
        if channel is None:
            if peer not in self._addresses:
                raise TransportError(f"{peer} is not a party in the roster")
            channel = self._tls.secure_channel(self._addresses[peer], peer)
            self._channels[peer] = channel
        return party_pb2_grpc.PartyStub(channel)

    def set_addresses(self, peer_addresses: dict[str, str]) -> None:
        """Put a reloaded roster's peers in force (call on the server's event loop): a
        new party is reachable at once; a moved or removed one loses its cached channel
        (closed in the background; a job still streaming on it fails, as a lost peer)."""
        stale = [p for p in self._channels if peer_addresses.get(p) != self._addresses.get(p)]
        self._addresses = dict(peer_addresses)
        for peer in stale:
            task = asyncio.get_running_loop().create_task(self._channels.pop(peer).close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def link(
        self, peer: str, timeout: float, on_error: Callable[[str, BaseException], None]
    ) -> PeerLink:
        """A job's outgoing stream to `peer` (`Party.Exchange` over TLS); the one place
        messages leave this party (an in-memory mesh for tests replaces it)."""
        return _PeerLink(self.stub(peer), peer, timeout, on_error)

    def open_job(self, job_id: str, parties: Sequence[str], deadline: float) -> JobChannel:
        """Open the mailbox and links of a job; `deadline` is absolute (time.monotonic)."""
        peers = [p for p in parties if p != self.me]
        mailbox = self.registry.open(job_id, peers)
        return JobChannel(self, job_id, list(parties), mailbox, deadline)

    async def close(self) -> None:
        """Close every channel (at shutdown)."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


class JobChannel:
    """What a backend sees of the mesh for one job: ordered, tagged messages to and from peers.

    `send` and `expect` may be called from any thread; `close` runs on the server's
    event loop.
    """

    def __init__(
        self,
        mesh: Mesh,
        job_id: str,
        parties: list[str],
        mailbox: JobMailbox,
        deadline: float,
    ) -> None:
        self.job_id = job_id
        self.me = mesh.me
        self.parties = parties
        self.mailbox = mailbox
        self.deadline = deadline
        self._mesh = mesh
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._links: dict[str, PeerLink] = {}
        self.bytes_sent = 0
        self.messages_sent = 0
        self.hops = 0
        """The largest depth among the messages sent so far (see `send`)."""

    def send(self, to: str, tag: str, payload: bytes) -> None:
        """Queue `payload` for party `to` under `tag` (chunked); never blocks.

        The message's depth (a Lamport-style clock of message rounds) is one more than
        the largest depth among the messages of this job this party has read so far
        (`JobMailbox.read_depth`): the job's hops, the largest depth of any of its
        messages, count the sequential rounds a network's delay multiplies."""
        if self.mailbox.failure is not None:
            return
        if len(payload) > MAX_MESSAGE_BYTES:  # the peer would refuse it
            self.fail(
                TransportError(
                    f"message {tag!r} of {len(payload)} bytes exceeds the limit of "
                    f"{MAX_MESSAGE_BYTES} bytes per message"
                )
            )
            return
        chunks = max(1, -(-len(payload) // CHUNK_BYTES))
        view = memoryview(payload)
        depth = self.mailbox.read_depth + 1
        messages = [
            party_pb2.ShareMessage(
                job_id=self.job_id,
                tag=tag,
                sender=self.me,
                chunk=i,
                chunks=chunks,
                payload=bytes(view[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES]),
                depth=depth,
            )
            for i in range(chunks)
        ]
        self.bytes_sent += len(payload)
        self.messages_sent += 1
        self.hops = max(self.hops, depth)
        if threading.get_ident() == self._loop_thread:  # MPyC: already on the loop
            self._enqueue(to, messages)
        else:  # CrypTen's worker thread
            self._loop.call_soon_threadsafe(self._enqueue, to, messages)

    def expect(self, sender: str, tag: str) -> Future[bytes]:
        """The future of message `tag` from `sender`; raises the abort reason on failure."""
        return self.mailbox.expect(sender, tag)

    def fail(self, exc: BaseException) -> None:
        """Abort this job locally: pending and later reads raise `exc`. Thread-safe."""
        self.mailbox.fail(exc)

    @property
    def my_index(self) -> int:
        """This party's position in the job's party list (its MPC party number)."""
        return self.parties.index(self.me)

    @property
    def failure(self) -> BaseException | None:
        return self.mailbox.failure

    def remaining(self) -> float:
        """Seconds left until the job's deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def _enqueue(self, to: str, messages: list[party_pb2.ShareMessage]) -> None:
        link = self._links.get(to)
        if link is None:
            if to not in self.mailbox.senders:
                self.fail(TransportError(f"{to} is not a party of job {self.job_id}"))
                return
            link = self._mesh.link(to, self.remaining(), self._link_failed)
            self._links[to] = link
        for message in messages:
            link.put(message)

    def _link_failed(self, peer: str, exc: BaseException) -> None:
        self.fail(TransportError(f"link to {peer} failed: {_describe(exc)}"))

    async def close(self, abort_reason: str | None = None, grace: float = 5.0) -> None:
        """End the job's links; with `abort_reason`, tell every peer the job is aborted.

        Closes the mailbox, so later messages of this job are rejected as late.
        """
        if abort_reason is not None:
            for peer in self.mailbox.senders:
                self._enqueue(
                    peer,
                    [
                        party_pb2.ShareMessage(
                            job_id=self.job_id, sender=self.me, abort=abort_reason
                        )
                    ],
                )
        for link in self._links.values():
            link.finish()
        if self._links:
            await asyncio.wait([link.task for link in self._links.values()], timeout=grace)
        for link in self._links.values():
            link.task.cancel()
        self._mesh.registry.close(self.job_id, abort_reason or "job finished")


class _PeerLink:
    """One job's outgoing client stream to one peer, fed from a queue in order."""

    def __init__(
        self,
        stub: party_pb2_grpc.PartyStub,
        peer: str,
        timeout: float,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self.peer = peer
        self._stub = stub
        self._timeout = max(timeout, 0.001)
        self._on_error = on_error
        self._queue: asyncio.Queue[party_pb2.ShareMessage | None] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._pump())

    def put(self, message: party_pb2.ShareMessage) -> None:
        self._queue.put_nowait(message)

    def finish(self) -> None:
        self._queue.put_nowait(None)

    async def _pump(self) -> None:
        call = self._stub.Exchange(timeout=self._timeout, wait_for_ready=True)
        try:
            while (message := await self._queue.get()) is not None:
                await call.write(message)
            await call.done_writing()
            await call
        except asyncio.CancelledError:
            call.cancel()
            raise
        except Exception as exc:  # any failure of the stream fails the job
            self._on_error(self.peer, await _call_error(call, exc))


async def _call_error(call: grpc.aio.StreamUnaryCall, exc: BaseException) -> BaseException:
    """The most informative error for a failed stream: the RPC status if it has one."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc
    try:
        code = await asyncio.wait_for(call.code(), 1.0)
        details = await asyncio.wait_for(call.details(), 1.0)
        return TransportError(f"{code.name}: {details}")
    except Exception:
        return exc


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__


async def receive_stream(
    registry: MailboxRegistry,
    sender: str,
    messages: AsyncIterator[party_pb2.ShareMessage],
) -> int:
    """Serve one incoming Exchange stream from `sender` (its certificate identity).

    Every message must claim that same sender and belong to an open job this sender
    takes part in; anything else raises TransportError (the stream is refused) and the
    job it claims is not touched. If the stream breaks (the peer died), the open job
    it was carrying is failed at once, so nobody waits for a deadline. A sender
    may hold only a few streams at once (`MailboxRegistry.stream_from`), and what a
    stream can make this party hold is bounded by the job's mailbox.
    """
    with registry.stream_from(sender):
        return await _receive(registry, sender, messages)


async def _receive(
    registry: MailboxRegistry,
    sender: str,
    messages: AsyncIterator[party_pb2.ShareMessage],
) -> int:
    received = 0
    mailbox: JobMailbox | None = None
    try:
        async for message in messages:
            if message.sender != sender:
                raise PermissionError(
                    f"message claims sender {message.sender!r} but the certificate says {sender!r}"
                )
            if len(message.job_id) > MAX_JOB_ID_CHARS or len(message.tag) > MAX_TAG_CHARS:
                raise TransportError(
                    f"a message's job id or tag is too long ({len(message.job_id)} and "
                    f"{len(message.tag)} characters; limits {MAX_JOB_ID_CHARS} and {MAX_TAG_CHARS})"
                )
            try:
                box = registry.lookup(message.job_id)
            except TransportError as exc:
                raise TransportError(f"{exc} (message {message.tag!r})") from None
            if box is not mailbox and mailbox is not None:
                raise TransportError("one Exchange stream carries one job")
            mailbox = box
            if message.abort:
                box.fail(JobAborted(f"{sender}{PEER_ABORT}{message.abort}"))
                continue
            box.deliver(
                sender, message.tag, message.chunk, message.chunks, message.payload, message.depth
            )
            received += 1
    except (asyncio.CancelledError, grpc.aio.AioRpcError):
        if mailbox is not None:
            mailbox.fail(TransportError(f"connection from {sender} broke during the job"))
        raise
    return received
