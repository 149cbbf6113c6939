"""The coordinator's book of jobs: a bounded queue per analyst, fair order, retention.

Why: one analyst's burst of submissions must neither push other jobs out of the book
before their results are read nor delay another analyst's job behind the whole
burst. So every analyst has its own FIFO queue of at most `max_queued` jobs, the
next job comes from the analyst served longest ago (round-robin, a newcomer first),
and a job leaves the book only once it has ended and then either its result was
fetched `fetched_retention` seconds ago or it ended `retention` seconds ago. A
queued or running job is never dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from smpc_ehr.errors import Refusal

log = logging.getLogger(__name__)

MAX_ENDED = 10_000
"""Most ended jobs kept at once; beyond it those that would expire first go first."""
_REMEMBER_EXPIRED = 10_000
"""How many expired job ids are remembered, to say "expired" rather than "no job"."""


class BookedJob(Protocol):
    """What the book reads of a job (the coordinator's `Job`)."""

    job_id: str
    analyst: str
    finished: float | None  # time.monotonic() when it ended, None while queued or running
    fetched: float | None  # time.monotonic() when its final state was first read


J = TypeVar("J", bound=BookedJob)


class JobBook(Generic[J]):
    """Every job the coordinator holds, the analysts' queues, and which job runs next.

    Call from one event loop; `next` is awaited by the single worker.
    """

    def __init__(
        self,
        max_queued: int,
        retention: float,
        fetched_retention: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_queued = max_queued
        self.retention = retention
        self.fetched_retention = fetched_retention
        self._clock = clock
        self._jobs: dict[str, J] = {}
        self._queues: dict[str, deque[tuple[int, J]]] = {}
        self._served: dict[str, int] = {}  # analyst -> turn of its last job taken
        self._turns = itertools.count()
        self._arrivals = itertools.count()
        self._expired: OrderedDict[str, None] = OrderedDict()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._jobs)

    def queued(self, analyst: str) -> int:
        """How many of `analyst`'s jobs wait to run."""
        return len(self._queues.get(analyst, ()))

    def add(self, job: J) -> None:
        """Book and queue `job`; Refusal if its analyst's queue is full."""
        self.sweep()
        queue = self._queues.setdefault(job.analyst, deque())
        if len(queue) >= self.max_queued:  # logged by the servicer, as every refusal
            raise Refusal(f"queue full for analyst {job.analyst} ({len(queue)} queued)")
        self._jobs[job.job_id] = job
        queue.append((next(self._arrivals), job))
        self._ready.set()

    def get(self, job_id: str) -> J:
        """The booked job `job_id`; KeyError saying whether it expired or never was."""
        self.sweep()
        job = self._jobs.get(job_id)
        if job is not None:
            return job
        if job_id in self._expired:
            raise KeyError(
                f"job {job_id} has expired: a result is kept {self.retention:g} s after the "
                f"job ends, or {self.fetched_retention:g} s after it was first read"
            )
        raise KeyError(f"no job {job_id}")

    def take(self) -> J | None:
        """The next job to run, or None: the head of the queue of the analyst served
        longest ago (one never served first; ties go to the earlier submission)."""
        waiting = [a for a, q in self._queues.items() if q]
        if not waiting:
            return None
        analyst = min(waiting, key=lambda a: (self._served.get(a, -1), self._queues[a][0][0]))
        _, job = self._queues[analyst].popleft()
        self._served[analyst] = next(self._turns)
        return job

    def withdraw(self, drop: Callable[[J], bool]) -> list[J]:
        """Take every queued job for which `drop(job)` holds out of the queues (they stay
        booked, so their analysts can read why they ended); returns them."""
        taken: list[J] = []
        for analyst, queue in self._queues.items():
            keep = deque(item for item in queue if not drop(item[1]))
            taken += [job for _, job in queue if drop(job)]
            self._queues[analyst] = keep
        return taken

    async def next(self) -> J:
        """Wait for the next job to run (see `take`)."""
        while (job := self.take()) is None:
            self._ready.clear()
            await self._ready.wait()
        return job

    def sweep(self) -> None:
        """Drop every ended job whose retention has passed, and the oldest ended ones
        beyond MAX_ENDED (results nobody reads must not grow the coordinator)."""
        now = self._clock()
        ended = sorted(
            (j for j in self._jobs.values() if j.finished is not None), key=self._expires
        )
        excess = {j.job_id for j in ended[: max(0, len(ended) - MAX_ENDED)]}
        for job in [
            j for j in self._jobs.values() if j.job_id in excess or self._expires(j) <= now
        ]:
            del self._jobs[job.job_id]
            self._expired[job.job_id] = None
            log.info("job %s expired from the coordinator's book", job.job_id)
        while len(self._expired) > _REMEMBER_EXPIRED:
            self._expired.popitem(last=False)

    def _expires(self, job: J) -> float:
        if job.finished is None:
            return math.inf  # queued or running: never dropped
        end = job.finished + self.retention
        if job.fetched is not None:
            end = min(end, job.fetched + self.fetched_retention)
        return end
