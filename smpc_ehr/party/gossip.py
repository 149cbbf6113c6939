"""Exchanging signed audit heads with the other parties (`Party.Gossip`).

After each job and every `audit_gossip_seconds`, a party signs its audit log's head
and sends it to every other party of the roster (mutual TLS, a deadline per call);
a party that is away misses that head and gets the next one. The receiver checks the
head is the caller's own (certificate identity), that the federation CA issued the
signing certificate and that the signature verifies, then keeps it in its head
store: from then on the sender cannot rewrite or truncate its log up to that head
unnoticed (`smpc-ehr audit verify`).

A head for a seq already held with another hash is a fork (the sender shows different
histories to different peers); one with a lower seq than the latest held goes back.
Both are kept as evidence, logged and written to the receiver's own audit log.
Storage per sender is bounded (a member holds its own key and could sign heads
without end): KEEP_PER_DAY advancing heads a day in the history (the latest is
always kept: the hash chain means it pins every earlier entry), MAX_EVIDENCE
evidence heads and MAX_CERTS certificates; a head beyond those is refused.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable

import grpc

from smpc_ehr.audit.heads import (
    ADVANCE,
    FORK,
    MAX_HEAD_BYTES,
    MAX_LINE_BYTES,
    ROLLBACK,
    HeadStore,
    SignedHead,
    cert_digest,
    check_head,
    sign_head,
    stored_line,
)
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
KEEP_PER_DAY = 144
"""Advancing heads of one sender kept in its history file per 24 h (receiver's clock):
one per 10 minutes on average; beyond, a head only replaces the latest."""
DAY = 86400.0
MAX_EVIDENCE = 64
"""Heads of one sender kept as evidence (forks, heads going back); beyond, refused."""
MAX_CERTS = 8
"""Certificates of one sender stored; a head signed with yet another is refused."""
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._tls = tls
        self._mesh = mesh
        self._audit = audit
        self.store = store
        self.peers = peers
        """Who gets this party's heads (the roster's other parties; a reload sets it)."""
        self._interval = interval
        self._sent: tuple[int, str] | None = None
        self._clock = clock
        self._held: dict[str, _Sender] = {}
        self._lock = threading.Lock()
        self._sending = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._load()

    def sign(self) -> SignedHead:
        """This party's current head, signed with its TLS key."""
        seq, hash = self._audit.log.head
        return sign_head(self._tls.identity, seq, hash, self._tls.key_pem, self._tls.cert_pem)

    async def send(self, deadline: float = GOSSIP_DEADLINE, level: int = logging.WARNING) -> None:
        """Send the current signed head to every peer; a peer that fails is logged at
        `level` (at start and stop, peers that are not up are expected: INFO). Sends
        do not overlap, so a peer gets this party's heads in order (none goes back)."""
        async with self._sending:
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
        BadRequest says what is wrong with it, or which bound it exceeds (module doc).
        Thread-safe (called in worker threads)."""
        head = from_message(message)
        if head.party != caller:
            raise BadRequest(f"{caller} sent a head of {head.party!r}: a party sends its own")
        if not _HASH.fullmatch(head.hash):
            raise BadRequest("a head's hash is 64 lowercase hex digits")
        if len(head.cert) > MAX_HEAD_BYTES or (
            len(stored_line(head, ROLLBACK, _text(0.0))) > MAX_LINE_BYTES
        ):
            raise BadRequest(
                f"the audit head of {caller} is too large (at most {MAX_LINE_BYTES} bytes "
                f"stored, its certificate at most {MAX_HEAD_BYTES})"
            )
        try:
            check_head(head, self._tls.ca_pem)
        except ValueError as exc:
            raise BadRequest(f"the audit head of {caller} is not valid: {exc}") from None
        trust = active_trust()
        if trust is not None and peer_fingerprint(head.cert.encode()) in trust.roster.revoked:
            raise BadRequest(f"the audit head of {caller} is signed with a revoked certificate")
        with self._lock:
            return self._keep(head)

    def _keep(self, head: SignedHead) -> bool:
        sender = self._held.setdefault(head.party, _Sender())
        if head.hash in sender.hashes.get(head.seq, ()):
            return False
        certs = self.store.certs(head.party)
        if cert_digest(head.cert) not in certs and len(certs) >= MAX_CERTS:
            raise BadRequest(
                f"already holding {MAX_CERTS} certificates of {head.party}: a head signed "
                "with another one is not kept"
            )
        now = self._clock()
        received = _text(now)
        if sender.latest is None or head.seq > sender.latest[0]:
            in_history = sender.has_room(now)
            if in_history:
                self.store.record(head, ADVANCE, received)
                sender.kept.append(now)
            self.store.set_latest(head, received)
            sender.advance(head.seq, head.hash, in_history)
            return True
        if sender.evidence >= MAX_EVIDENCE:
            raise BadRequest(
                f"already holding {MAX_EVIDENCE} heads of {head.party} that go back or fork; "
                f"its head for seq {head.seq} is not kept"
            )
        held = sender.hashes.get(head.seq)
        self.store.record(head, FORK if held else ROLLBACK, received)
        sender.evidence += 1
        sender.hashes.setdefault(head.seq, []).append(head.hash)
        if held:
            log.error(
                "FORK: %s signed two different audit heads for seq %d: %s (held) and %s "
                "(kept as evidence; see `smpc-ehr audit verify`)",
                head.party,
                head.seq,
                held[0],
                head.hash,
            )
            self._audit.head_fork(head.party, head.seq, held[0], head.hash)
        else:
            log.warning(
                "audit head of %s goes back from seq %d to %d (kept as evidence)",
                head.party,
                sender.latest[0],
                head.seq,
            )
            self._audit.head_rollback(head.party, head.seq, head.hash, sender.latest)
        return True

    def _load(self) -> None:
        """What the store holds, read once: later receives use (and update) memory."""
        for party, rows in self.store.held(self._tls.identity).items():
            sender = self._held.setdefault(party, _Sender())
            for row in rows:
                if row.head is None:
                    continue
                seq, hash = row.head.seq, row.head.hash
                if row.kept in (FORK, ROLLBACK):
                    sender.evidence += 1
                    sender.hashes.setdefault(seq, []).append(hash)
                    continue
                if row.kept == ADVANCE and row.path.suffix == ".jsonl" and row.received:
                    with contextlib.suppress(ValueError):
                        sender.kept.append(_epoch(row.received))
                if sender.latest is None or seq > sender.latest[0]:
                    sender.advance(seq, hash, row.path.suffix == ".jsonl")
                elif hash not in sender.hashes.get(seq, ()):
                    sender.hashes.setdefault(seq, []).append(hash)


class _Sender:
    """What a receiver knows of one sender's stored heads (kept in memory)."""

    def __init__(self) -> None:
        self.latest: tuple[int, str] | None = None
        self.latest_in_history = False
        self.hashes: dict[int, list[str]] = {}
        """seq -> the hashes stored for it (more than one: a fork)."""
        self.evidence = 0
        self.kept: collections.deque[float] = collections.deque()
        """When the advancing heads in the history were received (epoch seconds)."""

    def has_room(self, now: float) -> bool:
        """Whether the history takes another advancing head (KEEP_PER_DAY a day)."""
        while self.kept and self.kept[0] <= now - DAY:
            self.kept.popleft()
        return len(self.kept) < KEEP_PER_DAY

    def advance(self, seq: int, hash: str, in_history: bool) -> None:
        """A head with a higher seq is the latest; the one it replaces is forgotten
        unless the history holds it (memory holds what the disk holds)."""
        if self.latest is not None and not self.latest_in_history:
            old_seq, old_hash = self.latest
            hashes = self.hashes.get(old_seq, [])
            if old_hash in hashes:
                hashes.remove(old_hash)
            if not hashes:
                self.hashes.pop(old_seq, None)
        self.latest, self.latest_in_history = (seq, hash), in_history
        self.hashes.setdefault(seq, []).append(hash)


def _text(epoch: float) -> str:
    """An epoch time as the ISO text heads use."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def _short(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__
