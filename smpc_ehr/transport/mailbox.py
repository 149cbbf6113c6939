"""Per-job mailboxes: messages keyed by (tag, sender), reassembled from chunks.

A mailbox is filled by the gRPC event loop and read by a backend, which may wait in
the same loop (MPyC) or block on another thread (a synchronous backend), so slots are
`concurrent.futures.Future`s: thread-safe, awaitable through `asyncio.wrap_future`
and blockable with a timeout. Failing a mailbox fails every pending and future
read at once: that is how an abort reaches a computation that is waiting.

A peer decides what it sends, so nothing it announces sizes an allocation here: a
message has at most MAX_CHUNKS chunks of at most CHUNK_BYTES each, chunks are kept as
they arrive (never a list sized by the announcement), and what a job's mailbox holds
unread (partial chunks and complete messages nobody has asked for yet, each counted
with MESSAGE_OVERHEAD for its bookkeeping) stays within JOB_BUFFER_BYTES. Crossing a
bound fails the job with the reason and raises TransportError, which the receiving
servicer logs and returns to the sender. A sender may also hold at most
MAX_STREAMS_PER_SENDER incoming streams at once (one per job is what a party uses).

Each message carries its depth (hops, transport/mesh.py); a mailbox remembers the
largest depth among the messages this party has read, a message counting as read when
it has both arrived and been asked for (whichever comes last), so that a message that
arrived early but is needed only later does not deepen what is sent before it.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future

from smpc_ehr.errors import JobAborted, TransportError

Key = tuple[str, str]  # (sender, tag)

CHUNK_BYTES = 1024 * 1024
"""Largest payload in one ShareMessage; well below the 8 MiB gRPC message limit."""
MAX_MESSAGE_BYTES = 256 * CHUNK_BYTES
"""Largest message (all its chunks) a party may send: 256 MiB, far above the largest
tensor a job exchanges (tens of MiB for 10^5 patients per party)."""
MAX_CHUNKS = MAX_MESSAGE_BYTES // CHUNK_BYTES
JOB_BUFFER_BYTES = 2 * MAX_MESSAGE_BYTES
"""Most a job's mailbox holds unread at once, over all senders: 512 MiB."""
MESSAGE_OVERHEAD = 2048
"""Bytes counted per held chunk or message besides its payload and tag (its Python
objects: about 1.9 KB measured for an unread message)."""
MAX_TAG_CHARS = 256
"""Longest message tag (the backends' tags are a few dozen characters): a peer must
not make the receiver hold, log or echo megabytes of tag."""
MAX_STREAMS_PER_SENDER = 4


class _Partial:
    """The chunks of one message received so far, by index."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.parts: dict[int, bytes] = {}
        self.held = 0


class JobMailbox:
    """The messages other parties sent this party for one job."""

    def __init__(self, job_id: str, senders: Iterable[str]) -> None:
        self.job_id = job_id
        self.senders = frozenset(senders)
        self._lock = threading.Lock()
        self._slots: dict[Key, Future[bytes]] = {}
        self._taken: set[Key] = set()
        self._delivered: set[Key] = set()
        self._partial: dict[Key, _Partial] = {}
        self._unread: dict[Key, int] = {}  # complete messages not asked for: bytes held
        self.held = 0
        """Bytes held for unread chunks and messages (with MESSAGE_OVERHEAD each)."""
        self._failure: BaseException | None = None
        self._on_fail: list[Callable[[BaseException], None]] = []
        self._depths: dict[Key, int] = {}  # arrived, not yet asked for: its depth
        self.read_depth = 0
        """The largest depth among the messages read so far (0: none)."""

    def on_fail(self, callback: Callable[[BaseException], None]) -> None:
        """Call `callback(reason)` once when the job fails (at once if it already has)."""
        with self._lock:
            if self._failure is None:
                self._on_fail.append(callback)
                return
        callback(self._failure)

    @property
    def failure(self) -> BaseException | None:
        """Why this job was aborted, or None while it is healthy."""
        return self._failure

    def deliver(
        self, sender: str, tag: str, chunk: int, chunks: int, payload: bytes, depth: int = 0
    ) -> None:
        """Store one chunk; when a message is complete, hand it to its reader.
        `depth` is the message's (hops; each chunk carries it).

        Raises TransportError for a message this job cannot have: an unknown sender,
        bad chunk numbering, or a second copy of a message already delivered; and,
        failing the job as well, for one beyond the bounds (see the module).
        """
        if sender not in self.senders:
            raise TransportError(f"{sender} is not a party of job {self.job_id}")
        if len(tag) > MAX_TAG_CHARS:
            self._refuse(
                f"{sender} sent a message tag of {len(tag)} characters (limit {MAX_TAG_CHARS})"
            )
        if chunks < 1 or not 0 <= chunk < chunks:
            raise TransportError(f"bad chunk {chunk}/{chunks} in message {tag!r} from {sender}")
        if chunks > MAX_CHUNKS or len(payload) > CHUNK_BYTES:
            self._refuse(
                f"{sender} announced message {tag!r} in {chunks} chunks, with a chunk of "
                f"{len(payload)} bytes; the limit is {MAX_CHUNKS} chunks of at most "
                f"{CHUNK_BYTES} bytes"
            )
        key = (sender, tag)
        cost = len(payload) + len(tag) + MESSAGE_OVERHEAD
        with self._lock:
            if self._failure is not None:
                return
            if key in self._delivered:
                raise TransportError(f"duplicate message {tag!r} from {sender} in {self.job_id}")
            fits = self.held + cost <= JOB_BUFFER_BYTES
            data = self._assemble(key, chunk, chunks, payload, cost) if fits else None
            if data is not None:
                self._delivered.add(key)
                slot = self._slots.setdefault(key, Future())
                if key in self._taken:
                    del self._slots[key]
                    self.read_depth = max(self.read_depth, depth)  # before its reader wakes
                else:  # held until read
                    self._depths[key] = depth
                    self._unread[key] = len(data) + len(tag) + MESSAGE_OVERHEAD
                    self.held += self._unread[key]
        if not fits:
            self._refuse(
                f"{sender} sent more than a job holds unread ({JOB_BUFFER_BYTES} bytes) "
                f"with message {tag!r}"
            )
        if data is not None:
            slot.set_result(data)

    def _assemble(
        self, key: Key, chunk: int, chunks: int, payload: bytes, cost: int
    ) -> bytes | None:
        """Keep one chunk (under the lock); the whole message once every chunk is in."""
        if chunks == 1:
            return payload
        partial = self._partial.get(key)
        if partial is None:
            partial = self._partial[key] = _Partial(chunks)
        if partial.chunks != chunks or chunk in partial.parts:
            raise TransportError(f"inconsistent chunks of {key[1]!r} from {key[0]}")
        partial.parts[chunk] = payload
        partial.held += cost
        self.held += cost
        if len(partial.parts) < chunks:
            return None
        del self._partial[key]
        self.held -= partial.held
        return b"".join(partial.parts[i] for i in range(chunks))

    def _refuse(self, reason: str) -> None:
        """Fail the job for a message beyond the bounds, and refuse that message."""
        error = TransportError(f"job {self.job_id}: {reason}")
        self.fail(error)
        raise error

    def expect(self, sender: str, tag: str) -> Future[bytes]:
        """The future holding message `tag` from `sender` (each is read exactly once)."""
        if sender not in self.senders:
            raise TransportError(f"{sender} is not a party of job {self.job_id}")
        key = (sender, tag)
        with self._lock:
            if key in self._taken:
                raise TransportError(f"message {tag!r} from {sender} was already read")
            self._taken.add(key)
            if self._failure is not None:
                failed: Future[bytes] = Future()
                failed.set_exception(self._failure)
                return failed
            slot = self._slots.setdefault(key, Future())
            if key in self._delivered:
                del self._slots[key]
                self.held -= self._unread.pop(key, 0)
                self.read_depth = max(self.read_depth, self._depths.pop(key, 0))
            return slot

    def fail(self, exc: BaseException) -> None:
        """Abort: every pending and later read raises `exc` (the first reason wins)."""
        with self._lock:
            if self._failure is None:
                self._failure = exc
            failure = self._failure
            pending = [s for s in self._slots.values() if not s.done()]
            callbacks, self._on_fail = self._on_fail, []
            self._slots.clear()
            self._partial.clear()
            self._unread.clear()
            self.held = 0
        for slot in pending:
            slot.set_exception(failure)
        for callback in callbacks:
            callback(failure)


class MailboxRegistry:
    """The mailboxes of the jobs this party has open, and a memory of finished ones.

    A message for a job that is neither open nor known is rejected as unknown; one for
    a finished job is rejected as late, so an earlier job's traffic can never reach
    the current one.
    """

    def __init__(self, remember: int = 1024) -> None:
        self._open: dict[str, JobMailbox] = {}
        self._finished: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._remember = remember
        self._lock = threading.Lock()
        self._streams: collections.Counter[str] = collections.Counter()

    @contextlib.contextmanager
    def stream_from(self, sender: str) -> Iterator[None]:
        """Count one incoming stream of `sender` while it lasts; TransportError if that
        sender already has MAX_STREAMS_PER_SENDER open (a party uses one per job)."""
        with self._lock:
            if self._streams[sender] >= MAX_STREAMS_PER_SENDER:
                raise TransportError(
                    f"{sender} already has {self._streams[sender]} open Exchange streams "
                    f"(the limit is {MAX_STREAMS_PER_SENDER})"
                )
            self._streams[sender] += 1
        try:
            yield
        finally:
            with self._lock:
                self._streams[sender] -= 1
                if not self._streams[sender]:
                    del self._streams[sender]

    def open(self, job_id: str, senders: Iterable[str]) -> JobMailbox:
        """Create the mailbox of a new job; a job id is never reused."""
        with self._lock:
            if job_id in self._open or job_id in self._finished:
                raise TransportError(f"job id {job_id} was already used")
            box = JobMailbox(job_id, senders)
            self._open[job_id] = box
            return box

    def lookup(self, job_id: str) -> JobMailbox:
        """The open mailbox of `job_id`, or TransportError saying why there is none."""
        with self._lock:
            box = self._open.get(job_id)
            if box is not None:
                return box
            if job_id in self._finished:
                raise TransportError(f"message for finished job {job_id} rejected")
        raise TransportError(f"message for unknown job {job_id} rejected")

    def get(self, job_id: str) -> JobMailbox | None:
        """The open mailbox of `job_id`, if any."""
        with self._lock:
            return self._open.get(job_id)

    def close(self, job_id: str, reason: str = "job finished") -> None:
        """Forget a job: fail its pending reads and reject its late messages from now on."""
        with self._lock:
            box = self._open.pop(job_id, None)
            self._finished[job_id] = None
            while len(self._finished) > self._remember:
                self._finished.popitem(last=False)
        if box is not None:
            box.fail(JobAborted(reason))
