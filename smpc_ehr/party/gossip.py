"""Exchanging signed audit heads with the other parties (`Party.Gossip`).

After each job and every `audit_gossip_seconds`, a party signs its audit log's head
and sends it to every other party of the roster (mutual TLS, a deadline per call);
a party that is away misses that head and gets the next one. The receiver checks the
head is the caller's own (certificate identity), that the federation CA issued the
signing certificate and that the signature verifies, then appends it to its head
store: from then on the sender cannot rewrite or truncate its log up to that head
unnoticed (`smpc-ehr audit verify`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

import grpc

from smpc_ehr.audit.heads import HeadStore, SignedHead, check_head, sign_head
from smpc_ehr.audit.trail import PartyAudit
from smpc_ehr.errors import BadRequest
from smpc_ehr.pki.trust import active as active_trust
from smpc_ehr.pki.trust import peer_fingerprint
from smpc_ehr.transport.mesh import Mesh
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import party_pb2

log = logging.getLogger(__name__)

GOSSIP_DEADLINE = 5.0
"""Seconds a Gossip call to one peer may take."""
_HASH = re.compile(r"[0-9a-f]{64}")


def to_message(head: SignedHead) -> party_pb2.AuditHead:
    return party_pb2.AuditHead(
        party=head.party,
        seq=head.seq,
        hash=head.hash,
        time=head.time,
        signature=head.signature,
        cert=head.cert,
    )


def from_message(message: party_pb2.AuditHead) -> SignedHead:
    return SignedHead(
        message.party, message.seq, message.hash, message.time, message.signature, message.cert
    )


class HeadGossip:
    """This party's side of the head exchange: sends its own heads, keeps the others'."""

    def __init__(
        self,
        tls: TlsIdentity,
        mesh: Mesh,
        audit: PartyAudit,
        store: HeadStore,
        peers: list[str],
        interval: float,
    ) -> None:
        self._tls = tls
        self._mesh = mesh
        self._audit = audit
        self.store = store
        self.peers = peers
        """Who gets this party's heads (the roster's other parties; a reload sets it)."""
        self._interval = interval
        self._sent: tuple[int, str] | None = None
        self._held: dict[str, tuple[int, str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def sign(self) -> SignedHead:
        """This party's current head, signed with its TLS key."""
        seq, hash = self._audit.log.head
        return sign_head(self._tls.identity, seq, hash, self._tls.key_pem, self._tls.cert_pem)

    async def send(self, deadline: float = GOSSIP_DEADLINE, level: int = logging.WARNING) -> None:
        """Send the current signed head to every peer; a peer that fails is logged at
        `level` (at start and stop, peers that are not up are expected: INFO)."""
        head = self.sign()
        message = to_message(head)

        async def one(peer: str) -> None:
            try:
                await self._mesh.stub(peer).Gossip(message, timeout=deadline)
            except Exception as exc:  # grpc.aio errors, a peer not in the roster
                log.log(level, "audit head %d not sent to %s: %s", head.seq, peer, _short(exc))

        await asyncio.gather(*(one(p) for p in self.peers))
        self._sent = (head.seq, head.hash)

    def send_soon(self) -> None:
        """Send the head in the background (after a job); called on the server loop."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._send_while_changed())

    async def _send_while_changed(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            await self.send()

    async def run_periodically(self) -> None:
        """Every interval, send the head if it changed since last sent."""
        while True:
            await asyncio.sleep(self._interval)
            if self._audit.log.head != self._sent:
                await self.send()

    async def stop(self) -> None:
        """Wait briefly for a send under way (the last head after a job)."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, GOSSIP_DEADLINE)

    def receive(self, caller: str, message: party_pb2.AuditHead) -> bool:
        """Check and keep a head `caller` sent; False if it was already held.
        BadRequest says what is wrong with it."""
        head = from_message(message)
        if head.party != caller:
            raise BadRequest(f"{caller} sent a head of {head.party!r}: a party sends its own")
        if not _HASH.fullmatch(head.hash):
            raise BadRequest("a head's hash is 64 lowercase hex digits")
        try:
            check_head(head, self._tls.ca_pem)
        except ValueError as exc:
            raise BadRequest(f"the audit head of {caller} is not valid: {exc}") from None
        trust = active_trust()
        if trust is not None and peer_fingerprint(head.cert.encode()) in trust.roster.revoked:
            raise BadRequest(f"the audit head of {caller} is signed with a revoked certificate")
        last = self._held.get(caller) or self._last_stored(caller)
        if last == (head.seq, head.hash):
            return False
        if last is not None and head.seq <= last[0]:
            log.warning(
                "audit head of %s goes back from seq %d to %d (kept as evidence)",
                caller,
                last[0],
                head.seq,
            )
        self.store.record(head)
        self._held[caller] = (head.seq, head.hash)
        return True

    def _last_stored(self, party: str) -> tuple[int, str] | None:
        rows = self.store.held(self._tls.identity).get(party, [])
        heads = [r.head for r in rows if r.head is not None]
        return (heads[-1].seq, heads[-1].hash) if heads else None


def _short(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__
