"""The in-process federation's transport: parties' meshes and servicers without sockets.

`InMemoryMesh` is a party's `Mesh` whose links feed the peer's own `receive_stream`
(the servicer's code for an incoming Exchange stream) in the same event loop, so jobs
exchange messages through the real channels and mailboxes. `ServicerClient` is what
the coordinator calls instead of a gRPC stub: the party's real `PartyServicer`, with a
call context that presents the coordinator's certificate and turns an abort into the
`grpc.aio.AioRpcError` a stub would raise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smpc_ehr.party.service import PartyServicer
from smpc_ehr.transport.mailbox import MailboxRegistry
from smpc_ehr.transport.mesh import Mesh, PeerLink, receive_stream
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import party_pb2

Switchboard = dict[str, MailboxRegistry]
"""Every party's mailboxes, by party id: where in-memory links deliver."""


def no_keys(identity: str) -> TlsIdentity:
    """An identity without key material: nothing in process dials or listens."""
    return TlsIdentity(identity, b"", b"", b"")


class InMemoryMesh(Mesh):
    """A party's mesh whose links deliver into the peers' mailboxes in this process."""

    def __init__(self, me: str, switchboard: Switchboard) -> None:
        super().__init__(no_keys(me), {})
        self._switchboard = switchboard
        switchboard[me] = self.registry

    def link(
        self, peer: str, timeout: float, on_error: Callable[[str, BaseException], None]
    ) -> PeerLink:
        return _MemoryLink(self._switchboard[peer], self.me, peer, timeout, on_error)


class _MemoryLink:
    """One job's messages to one peer, served by the peer's `receive_stream` as they come."""

    def __init__(
        self,
        receiver: MailboxRegistry,
        sender: str,
        peer: str,
        timeout: float,
        on_error: Callable[[str, BaseException], None],
    ) -> None:
        self._receiver, self._sender, self._peer = receiver, sender, peer
        self._timeout, self._on_error = max(timeout, 0.001), on_error
        self._queue: asyncio.Queue[party_pb2.ShareMessage | None] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._pump())

    def put(self, message: party_pb2.ShareMessage) -> None:
        self._queue.put_nowait(message)

    def finish(self) -> None:
        self._queue.put_nowait(None)

    async def _messages(self) -> AsyncIterator[party_pb2.ShareMessage]:
        while (message := await self._queue.get()) is not None:
            yield message

    async def _pump(self) -> None:
        stream = receive_stream(self._receiver, self._sender, self._messages())
        try:
            await asyncio.wait_for(stream, self._timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer refused the stream: the job fails, as over gRPC
            self._on_error(self._peer, exc)


class _CallContext:
    """The part of `grpc.aio.ServicerContext` a servicer uses: the caller's certificate
    and `abort`."""

    def __init__(self, caller_pem: bytes) -> None:
        self._caller_pem = caller_pem

    def auth_context(self) -> dict[str, list[bytes]]:
        return {"x509_pem_cert": [self._caller_pem]}

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        raise grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class ServicerClient:
    """A party's servicer as the coordinator's party client (`PartyClient`)."""

    def __init__(self, servicer: PartyServicer, caller: str) -> None:
        self._servicer = servicer
        self._context: Any = _CallContext(certificate_of(caller))

    async def Prepare(
        self, request: party_pb2.PrepareRequest, *, timeout: float, wait_for_ready: bool
    ) -> party_pb2.PrepareReply:
        del wait_for_ready
        return await asyncio.wait_for(self._servicer.Prepare(request, self._context), timeout)

    def Run(
        self, request: party_pb2.RunRequest, *, timeout: float
    ) -> AsyncIterator[party_pb2.RunEvent]:
        del timeout  # the coordinator waits at most the job's deadline itself
        stream: AsyncIterator[party_pb2.RunEvent] = self._servicer.Run(request, self._context)
        return stream

    async def Cancel(
        self, request: party_pb2.CancelRequest, *, timeout: float
    ) -> party_pb2.CancelReply:
        return await asyncio.wait_for(self._servicer.Cancel(request, self._context), timeout)


@functools.cache
def certificate_of(identity: str) -> bytes:
    """A self-signed certificate naming `identity` as its one DNS name (PEM): what a
    servicer reads of its caller. Signed by nobody the parties trust: nothing dials."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(identity)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)
