"""The dealer's per-job state: seeds, who joined and left, the request counter, the checks.

Every identity here comes from the caller's certificate (the servicer passes it in),
never from a request field. The seeds of a job live only in memory, and only until
every party has left or the job's deadline passed, whichever is first.

A party runs one job at a time, so it holds at most `max_jobs_per_party` jobs at the
dealer (joined, not left): a Join beyond that ends the party's oldest held job (its
seeds forgotten, the other parties' calls for it refused), with a logged warning. So
a party that keeps joining, by a bug or from a compromised host, cannot fill the
dealer's MAX_OPEN_JOBS and lock out other jobs; a party whose Leave was lost is not
blocked by its own stale joins either.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from smpc_ehr.config.dealer import MAX_JOBS_PER_PARTY, MAX_OPEN_JOBS
from smpc_ehr.config.roster import Roster
from smpc_ehr.dealer_protocol.correlations import Request, correction
from smpc_ehr.dealer_protocol.streams import SEED_BYTES, SeedStream
from smpc_ehr.dealer_protocol.torch_setup import limit_torch_threads
from smpc_ehr.errors import BadRequest, Refusal
from smpc_ehr.pki.trust import current as current_roster

limit_torch_threads()  # see there: OpenMP threads spin against the parties

log = logging.getLogger(__name__)

MAX_DEADLINE_SECONDS = 3600.0
SWEEP_SECONDS = 1.0
_REMEMBER_ENDED = 4096
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class DealerJob:
    """What the dealer holds for one job; `streams[rank]` exists while that party is in."""

    job_id: str
    parties: tuple[str, ...]
    deadline_seconds: float
    expires: float
    streams: dict[int, SeedStream] = field(default_factory=dict)
    joined: set[int] = field(default_factory=set)
    left: set[int] = field(default_factory=set)
    sequence: int = 0
    streaming: bool = False
    """Rank 0 has the job's request stream open (one at a time)."""
    broken: str | None = None
    all_joined: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def missing(self) -> list[str]:
        """Parties that have not joined yet, in rank order."""
        return [p for i, p in enumerate(self.parties) if i not in self.joined]


class Dealer:
    """All open jobs of one dealer process. Call its methods from the server's event loop."""

    def __init__(
        self,
        roster: Roster,
        clock: Callable[[], float] = time.monotonic,
        max_jobs_per_party: int = MAX_JOBS_PER_PARTY,
    ) -> None:
        self._roster = roster
        self._clock = clock
        self._jobs: dict[str, DealerJob] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self.max_jobs_per_party = max_jobs_per_party
        self._held: dict[str, OrderedDict[str, None]] = {}  # party -> jobs joined, not left

    @property
    def _parties(self) -> frozenset[str]:
        """The roster's parties now (a reload can add one)."""
        return frozenset(current_roster(self._roster).party_ids())

    @property
    def open_jobs(self) -> int:
        return len(self._jobs)

    def _party(self, caller: str) -> None:
        if caller not in self._parties:
            raise PermissionError(f"{caller} is not a party of this federation")

    def _forget(self, job: DealerJob, why: str) -> None:
        job.streams.clear()
        job.broken = job.broken or why
        job.all_joined.set()  # a request waiting for joins wakes to the refusal
        for party in job.parties:
            self._let_go(party, job.job_id)
        self._jobs.pop(job.job_id, None)
        self._ended[job.job_id] = None
        while len(self._ended) > _REMEMBER_ENDED:
            self._ended.popitem(last=False)
        log.info("job %s: seeds forgotten (%s)", job.job_id, why)

    def _let_go(self, party: str, job_id: str) -> None:
        held = self._held.get(party)
        if held is not None:
            held.pop(job_id, None)
            if not held:
                del self._held[party]

    def _make_room(self, caller: str) -> None:
        """End `caller`'s oldest held jobs until it may join one more."""
        held = self._held.get(caller, OrderedDict())
        while len(held) >= self.max_jobs_per_party:
            oldest = self._jobs[next(iter(held))]
            log.warning(
                "job %s: ended, %s joined a newer job while holding %d (limit %d)",
                oldest.job_id,
                caller,
                len(held),
                self.max_jobs_per_party,
            )
            self._forget(
                oldest,
                f"{caller} joined newer jobs (it holds at most "
                f"{self.max_jobs_per_party} at the dealer)",
            )

    def sweep(self) -> None:
        """Forget every job whose deadline has passed."""
        now = self._clock()
        for job in [j for j in self._jobs.values() if j.expires <= now]:
            self._forget(job, f"deadline of {job.deadline_seconds:g} s passed")

    def join(
        self,
        caller: str,
        job_id: str,
        parties: Sequence[str],
        rank: int,
        seed: bytes,
        deadline_seconds: float,
    ) -> int:
        """Record `caller`'s seed for the job; returns how many parties have joined."""
        self._party(caller)
        self.sweep()
        parties = tuple(parties)
        _check_job(job_id, parties, self._parties, rank, seed, deadline_seconds)
        if parties[rank] != caller:
            raise PermissionError(
                f"{caller} cannot join job {job_id} as rank {rank}: that rank is "
                f"{parties[rank]} (a caller is who its certificate says)"
            )
        if job_id in self._ended:
            raise Refusal(f"job {job_id} has already ended at the dealer")
        job = self._jobs.get(job_id)
        if job is not None and job.parties != parties:
            raise Refusal(
                f"job {job_id}: {caller} joined with parties {list(parties)}, but the job "
                f"was opened with {list(job.parties)}"
            )
        if job is not None and rank in job.joined:
            raise Refusal(f"{caller} has already joined job {job_id}")
        if job is None and len(self._jobs) >= MAX_OPEN_JOBS:  # before anything is evicted
            raise Refusal(f"the dealer has {MAX_OPEN_JOBS} open jobs; try again later")
        self._make_room(caller)
        if job is None:
            job = DealerJob(job_id, parties, deadline_seconds, self._clock() + deadline_seconds)
            self._jobs[job_id] = job
        job.streams[rank] = SeedStream(seed)
        job.joined.add(rank)
        self._held.setdefault(caller, OrderedDict())[job_id] = None
        if len(job.joined) == len(parties):
            job.all_joined.set()
        log.info("job %s: %s joined as rank %d", job_id, caller, rank)
        return len(job.joined)

    def _job(self, job_id: str, caller: str) -> DealerJob:
        self.sweep()
        job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(f"unknown job {job_id} at the dealer (not joined, ended or expired)")
        if caller not in job.parties:
            raise PermissionError(f"{caller} is not a party of job {job_id}")
        return job

    async def correlated(
        self, caller: str, job_id: str, sequence: int, request: Request
    ) -> torch.Tensor:
        """Rank 0's correction for the job's next request, once every party has joined."""
        job = self._job(job_id, caller)
        _check_rank_0(job, caller)
        await _wait_for_joins(job, job.expires - self._clock())
        async with job.lock:
            if job.broken:
                raise Refusal(f"job {job_id} cannot continue at the dealer: {job.broken}")
            if sequence != job.sequence:
                raise Refusal(
                    f"job {job_id}: expected request number {job.sequence}, got {sequence} "
                    "(a gap or a replay is refused)"
                )
            job.sequence += 1
            streams = [job.streams[i] for i in range(len(job.parties))]
            try:
                # Off the event loop: large triples take seconds, Health must still answer.
                return await asyncio.to_thread(correction, streams, request)
            except BaseException as exc:
                job.broken = f"request {sequence} failed: {exc}"
                raise

    def open_stream(self, caller: str, job_id: str) -> None:
        """`caller` opens the job's request stream: rank 0 only, one at a time."""
        job = self._job(job_id, caller)
        _check_rank_0(job, caller)
        if job.streaming:
            raise Refusal(f"job {job_id} already has a request stream open at the dealer")
        job.streaming = True

    def close_stream(self, job_id: str) -> None:
        """The job's request stream ended (the job may be gone already)."""
        job = self._jobs.get(job_id)
        if job is not None:
            job.streaming = False

    def leave(self, caller: str, job_id: str) -> bool:
        """`caller` is done with the job; True once the dealer has forgotten it."""
        self._party(caller)
        try:
            job = self._job(job_id, caller)
        except KeyError:
            return True  # nothing held: already forgotten (or never there)
        rank = job.parties.index(caller)
        self._let_go(caller, job_id)
        job.left.add(rank)
        job.streams.pop(rank, None)
        job.broken = job.broken or f"{caller} has left the job"
        if len(job.left) == len(job.parties):
            self._forget(job, "every party left")
            return True
        return False

    async def sweep_forever(self) -> None:
        """Forget expired jobs even when no request comes in (run as a task)."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.sweep()


def _check_rank_0(job: DealerJob, caller: str) -> None:
    if caller != job.parties[0]:
        raise PermissionError(
            f"only rank 0 ({job.parties[0]}) asks the dealer for corrections of job "
            f"{job.job_id}, not {caller}"
        )


def _check_job(
    job_id: str,
    parties: tuple[str, ...],
    roster_parties: frozenset[str],
    rank: int,
    seed: bytes,
    deadline_seconds: float,
) -> None:
    """The fields of a Join that do not depend on other Joins."""
    if not _JOB_ID.match(job_id):
        raise BadRequest(f"job id {job_id!r} must be 1-128 letters, digits, '.', '_' or '-'")
    if len(parties) < 2:
        raise BadRequest(f"job {job_id} needs at least 2 parties, got {list(parties)}")
    if len(set(parties)) != len(parties):
        raise BadRequest(f"job {job_id} lists a party twice: {list(parties)}")
    strangers = sorted(set(parties) - roster_parties)
    if strangers:
        raise BadRequest(f"job {job_id}: not parties of this federation: {', '.join(strangers)}")
    if not 0 <= rank < len(parties):
        raise BadRequest(f"job {job_id}: rank {rank} outside 0..{len(parties) - 1}")
    if len(seed) != SEED_BYTES:
        raise BadRequest(f"a seed must be {SEED_BYTES} bytes, got {len(seed)}")
    if not (math.isfinite(deadline_seconds) and 0 < deadline_seconds <= MAX_DEADLINE_SECONDS):
        raise BadRequest(
            f"job {job_id}: deadline must be > 0 and at most {MAX_DEADLINE_SECONDS:g} s, "
            f"got {deadline_seconds!r}"
        )


async def _wait_for_joins(job: DealerJob, remaining: float) -> None:
    """Wait until every party has joined, at most until the job's deadline."""
    if job.all_joined.is_set():
        return
    try:
        await asyncio.wait_for(job.all_joined.wait(), timeout=max(remaining, 0.0))
    except TimeoutError:
        raise TimeoutError(
            f"job {job.job_id}: {', '.join(job.missing())} did not join the dealer within "
            f"the job's deadline ({job.deadline_seconds:g} s)"
        ) from None
