"""Per-job mailboxes: messages keyed by (tag, sender), reassembled from chunks.

A mailbox is filled by the gRPC event loop and read by a backend, which may wait in
the same loop (MPyC) or block on another thread (a synchronous backend), so slots are
`concurrent.futures.Future`s: thread-safe, awaitable through `asyncio.wrap_future`
and blockable with a timeout. Failing a mailbox fails every pending and future
read at once: that is how an abort reaches a computation that is waiting.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future

from smpc_ehr.errors import JobAborted, TransportError

Key = tuple[str, str]  # (sender, tag)


class JobMailbox:
    """The messages other parties sent this party for one job."""

    def __init__(self, job_id: str, senders: Iterable[str]) -> None:
        self.job_id = job_id
        self.senders = frozenset(senders)
        self._lock = threading.Lock()
        self._slots: dict[Key, Future[bytes]] = {}
        self._taken: set[Key] = set()
        self._delivered: set[Key] = set()
        self._partial: dict[Key, list[bytes | None]] = {}
        self._failure: BaseException | None = None
        self._on_fail: list[Callable[[BaseException], None]] = []

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

    def deliver(self, sender: str, tag: str, chunk: int, chunks: int, payload: bytes) -> None:
        """Store one chunk; when a message is complete, hand it to its reader.

        Raises TransportError for a message this job cannot have: an unknown sender,
        bad chunk numbering, or a second copy of a message already delivered.
        """
        if sender not in self.senders:
            raise TransportError(f"{sender} is not a party of job {self.job_id}")
        if chunks < 1 or not 0 <= chunk < chunks:
            raise TransportError(f"bad chunk {chunk}/{chunks} in message {tag!r} from {sender}")
        key = (sender, tag)
        with self._lock:
            if self._failure is not None:
                return
            if key in self._delivered:
                raise TransportError(f"duplicate message {tag!r} from {sender} in {self.job_id}")
            if chunks == 1:
                data = payload
            else:
                parts = self._partial.setdefault(key, [None] * chunks)
                if len(parts) != chunks or parts[chunk] is not None:
                    raise TransportError(f"inconsistent chunks of {tag!r} from {sender}")
                parts[chunk] = payload
                if any(p is None for p in parts):
                    return
                data = b"".join(p for p in parts if p is not None)
                del self._partial[key]
            self._delivered.add(key)
            slot = self._slots.setdefault(key, Future())
            if key in self._taken:
                del self._slots[key]
        slot.set_result(data)

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
