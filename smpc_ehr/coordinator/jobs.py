"""The coordinator's job queue: prepare on every party, run, recombine, release.

Jobs run one at a time across the federation (each party runs one MPC job at a
time, and interleaving two jobs across parties could deadlock them), taken fairly
from the analysts' bounded queues (`queue.JobBook`), which also keeps every job until
its result was read or its retention passed. The
coordinator never sees a party's input or local result: only output shares, which
it recombines into exactly what the analysis chose to open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import JobSetting, OutputMismatch
from smpc_ehr.backends import get_backend
from smpc_ehr.backends.backend import Backend
from smpc_ehr.backends.opening import open_outputs
from smpc_ehr.backends.output_wire import decode_output_shares
from smpc_ehr.config.coordinator import DAY, CoordinatorConfig
from smpc_ehr.coordinator.cost import released_cost
from smpc_ehr.coordinator.history import LOST, JobHistory, StoredJob
from smpc_ehr.coordinator.participants import absent_parties, choose_participants
from smpc_ehr.coordinator.queue import JobBook
from smpc_ehr.errors import TemplateError, TransportError
from smpc_ehr.pki.trust import current as current_roster
from smpc_ehr.policy.approval import combine_thresholds, job_deadline
from smpc_ehr.securemath.ops import OutputShareSet
from smpc_ehr.study.template import ProtocolTemplate
from smpc_ehr.transport.mesh import PEER_ABORT
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import common_pb2, coordinator_pb2, party_pb2, party_pb2_grpc

log = logging.getLogger(__name__)

FINAL_STATES = frozenset({"done", "failed"})
PREPARE_SECONDS = 10.0
"""How long a party may take to accept or refuse (it may be reconnecting)."""
CANCEL_SECONDS = 5.0
MAX_VERSION_CHARS = 200
"""A party's data version is cut to this length before it is kept and passed on."""
JOINT_GRACE_SECONDS = 2.0
"""How long the coordinator waits, after parties failed only by another's abort, for
the others' own failures: a refusal decided jointly inside MPC is raised by every
party at the same step, but a party that first received another's abort reports that
party's name (a joint refusal is reported without one)."""


@dataclass
class Job:
    """One submitted study protocol run and everything the analyst may see of it."""

    job_id: str
    template: ProtocolTemplate
    params: Any
    raw_params: dict[str, str]
    backend: str
    parties: list[str]
    deadline_seconds: float
    analyst: str
    absent: list[str] = field(default_factory=list)
    """Roster parties not taking part (never contacted; the result does not cover them)."""
    state: str = "queued"
    result: dict[str, Any] | None = None
    error: str = ""
    submitted: float = field(default_factory=time.monotonic)
    finished: float | None = None
    fetched: float | None = None
    events: list[coordinator_pb2.JobEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    on_change: Callable[[Job], None] | None = None
    """Called on every state change and when first read (the coordinator's history)."""
    party_costs: dict[str, party_pb2.JobCost] = field(default_factory=dict)
    """What each party reports it sent (never released as such: see `cost`)."""
    cost: dict[str, Any] | None = None
    """The released cost (coordinator/cost.py), beside the result."""
    data_versions: dict[str, str] = field(default_factory=dict)
    """The version of the data each party read (docs/data.md), beside the result."""

    def status(self) -> coordinator_pb2.JobStatus:
        end = self.finished if self.finished is not None else time.monotonic()
        return coordinator_pb2.JobStatus(
            job_id=self.job_id,
            state=self.state,
            protocol=self.template.name,
            protocol_hash=self.template.canonical_hash,
            backend=self.backend,
            parties=self.parties,
            result_json=json.dumps(self.result) if self.result is not None else "",
            error=self.error,
            elapsed_seconds=end - self.submitted,
            absent=self.absent,
            cost_json=json.dumps(self.cost) if self.cost is not None else "",
            data_versions=self.data_versions if self.state == "done" else {},
        )

    def _publish(self, event: coordinator_pb2.JobEvent) -> None:
        self.events.append(event)
        self.changed.set()
        self.changed = asyncio.Event()

    def set_state(self, state: str) -> None:
        self.state = state
        if state in FINAL_STATES:
            self.finished = time.monotonic()
        self._saved()
        self._publish(coordinator_pb2.JobEvent(status=self.status()))

    def _saved(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def mark_fetched(self) -> None:
        """The analyst has read the job's final state: start its short retention."""
        if self.state in FINAL_STATES and self.fetched is None:
            self.fetched = time.monotonic()
            self._saved()

    def progress(self, party: str, event: party_pb2.Progress) -> None:
        note = party_pb2.Progress(
            stage=event.stage,
            step=event.step,
            total=event.total,
            message=f"{party}: {event.message}",
        )
        self._publish(coordinator_pb2.JobEvent(progress=note))


class PartyFailure(Exception):
    """A party refused, failed or could not be reached; the message names it, except
    for a refusal decided jointly inside MPC (`joint`), which names no party."""

    def __init__(self, message: str, joint: bool = False) -> None:
        super().__init__(message)
        self.joint = joint


def _is_joint(exc: BaseException) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.OUT_OF_RANGE


def _describe(party: str, exc: BaseException, phase: str = "run") -> str:
    """What went wrong with one party, for the analyst; `phase` is "prepare" or "run"."""
    if isinstance(exc, grpc.aio.AioRpcError):
        if exc.code() == grpc.StatusCode.OUT_OF_RANGE:  # decided jointly: name no party
            return exc.details()
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return f"{party} is unreachable or stopped ({exc.details()})"
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            if phase == "prepare":
                return f"{party} did not answer (is it running and reachable?)"
            return f"{party} did not finish within the deadline"
        return f"{party}: {exc.details()}"
    return f"{party}: {exc}"


class PartyClient(Protocol):
    """The Party RPCs the coordinator calls (`party_pb2_grpc.PartyStub`'s signatures)."""

    def Prepare(
        self, request: party_pb2.PrepareRequest, *, timeout: float, wait_for_ready: bool
    ) -> Any: ...

    def Run(self, request: party_pb2.RunRequest, *, timeout: float) -> AsyncIterable[Any]: ...

    def Cancel(self, request: party_pb2.CancelRequest, *, timeout: float) -> Any: ...


class Coordinator:
    """Accepts jobs, runs them in order against the parties, keeps their outcome."""

    def __init__(
        self,
        config: CoordinatorConfig,
        tls: TlsIdentity,
        party_client: Callable[[str], PartyClient] | None = None,
        backends: Callable[[str], Backend] = get_backend,
    ) -> None:
        """`party_client` and `backends` default to gRPC over mTLS and the production
        registry; the in-process test federation (smpc_ehr.testing) passes the parties'
        servicers in the same event loop and its plaintext stand-in backend."""
        self._config = config
        self._party_client = party_client
        self._backends = backends
        self._tls = tls
        keep = config.result_keep_days * DAY
        fetched_keep = config.fetched_result_keep_days * DAY
        if config.state is None:
            self.history = JobHistory(None, keep, fetched_keep)
        else:
            self.history = JobHistory.in_state_folder(config.state, keep, fetched_keep)
        log.info("job history: %s", config.state or "in memory only")
        self._lost = self.history.recover()
        if self._lost:
            log.warning(
                "marked failed %d job(s) lost in a restart: %s",
                len(self._lost),
                ", ".join(self._lost),
            )
        # Memory holds an ended job no longer than the history holds its result.
        self._book: JobBook[Job] = JobBook(
            config.max_queued_per_analyst,
            min(config.job_retention_seconds, keep),
            min(config.fetched_retention_seconds, fetched_keep),
        )
        self._stubs: dict[tuple[str, str], party_pb2_grpc.PartyStub] = {}
        self._channels: list[grpc.aio.Channel] = []
        self.current: Job | None = None
        self._cancelling: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        for channel in self._channels:
            await channel.close()
        self.history.close()

    def submit(
        self,
        protocol_toml: str,
        raw: dict[str, str],
        backend: str,
        deadline: float,
        analyst: str,
        parties: Sequence[str] = (),
    ) -> Job:
        """Validate a submission (template, values, backend, participants: `parties`, or
        every roster party when empty) and queue it; Refusal when the analyst's queue is
        full or the participants are too few for the backend."""
        from smpc_ehr.study.template import parse_template

        template = parse_template(protocol_toml, source="submitted protocol")
        if template.analysis not in ANALYSES:
            raise TemplateError(f"unknown analysis {template.analysis!r} in {template.name}")
        params = template.bind(raw)
        ANALYSES[template.analysis].validate(params)
        backend = backend or template.backend
        ANALYSES[template.analysis].validate_backend(params, backend)
        roster = current_roster(self._config.roster)
        roster_parties = list(roster.party_ids())
        participants = choose_participants(roster_parties, parties)
        self._backends(backend).check(len(participants), roster.dealer is not None)
        limit = self._config.job_deadline_seconds
        # 0 is the wire's "not set" (the default); anything else must be a real deadline.
        deadline = job_deadline(deadline, limit, "this coordinator's") if deadline != 0 else limit
        job = Job(
            job_id=uuid.uuid4().hex,
            template=template,
            params=params,
            raw_params=dict(raw),
            backend=backend,
            parties=participants,
            deadline_seconds=deadline,
            analyst=analyst,
            absent=absent_parties(roster_parties, participants),
            on_change=self._save,
        )
        self._book.add(job)
        job.set_state("queued")
        log.info(
            "job %s queued: %s by %s over %s",
            job.job_id,
            template.name,
            analyst,
            ", ".join(participants),
        )
        return job

    def cut_members(self, members: frozenset[str], reason: str) -> None:
        """A roster reload revoked or removed `members`: their queued jobs (as analyst or
        participant) end without running, and the job running now, if it involves one
        of them, is cancelled at every participant (nothing is released). Other jobs are
        not disturbed. Called on the server's event loop."""

        def involves(job: Job) -> bool:
            return job.analyst in members or not members.isdisjoint(job.parties)

        for job in self._book.withdraw(involves):
            job.error = f"cancelled before it ran: {reason}"
            job.set_state("failed")
            log.warning("job %s cancelled before it ran: %s", job.job_id, reason)
        running = self.current
        if running is not None and involves(running):
            log.warning("job %s cancelled while running: %s", running.job_id, reason)
            task = asyncio.get_running_loop().create_task(
                self._cancel(running.job_id, running.parties, reason)
            )
            self._cancelling.add(task)
            task.add_done_callback(self._cancelling.discard)

    def job(self, job_id: str) -> Job | StoredJob:
        """A booked job, else its row in the history (after a restart, or once memory let
        it go); KeyError if there is neither."""
        try:
            return self._book.get(job_id)
        except KeyError:
            stored = self.history.get(job_id)
            if stored is None:
                raise
            return stored

    def mark_fetched(self, job: Job | StoredJob) -> None:
        """The analyst read the job (see `Job.mark_fetched`)."""
        if isinstance(job, Job):
            job.mark_fetched()
        else:
            self.history.mark_fetched(job.job_id)

    def _save(self, job: Job) -> None:
        """Persist a job's change; a failing disk is logged and never stops the queue
        (the job still ends, and its result is still served from memory)."""
        try:
            self.history.save(job)
        except sqlite3.Error:
            log.exception("could not write job %s to the job history", job.job_id)

    def _expire(self) -> None:
        try:
            self.history.expire()
        except sqlite3.Error:
            log.exception("could not expire results in the job history")

    def _stub(self, party: str) -> PartyClient:
        if self._party_client is not None:
            return self._party_client(party)
        # Keyed by address too: a reloaded roster may move a party.
        address = str(current_roster(self._config.roster).member(party).address)
        stub = self._stubs.get((party, address))
        if stub is None:
            channel = self._tls.secure_channel(address, party)
            self._channels.append(channel)
            stub = self._stubs[party, address] = party_pb2_grpc.PartyStub(channel)
        return stub

    async def _work(self) -> None:
        # A party may still run a job this coordinator lost in a restart; until told, it
        # would refuse every next job as busy.
        for job_id in self._lost:
            await self._cancel(job_id, current_roster(self._config.roster).party_ids(), LOST)
        self._lost = []
        while True:
            job = await self._book.next()
            self.current = job
            try:
                await self._run(job)
            except PartyFailure as exc:
                job.error = str(exc)
                job.set_state("failed")
            except Exception as exc:  # never let one job stop the queue
                log.exception("job %s crashed", job.job_id)
                job.error = f"internal error at the coordinator: {exc}"
                job.set_state("failed")
            finally:
                self.current = None
                self._book.sweep()
                self._expire()
            log.info("job %s %s %s", job.job_id, job.state, job.error)

    async def _run(self, job: Job) -> None:
        spec = common_pb2.JobSpec(
            job_id=job.job_id,
            protocol_toml=job.template.source_text,
            protocol_hash=job.template.canonical_hash,
            params=job.raw_params,
            backend=job.backend,
            parties=job.parties,
            deadline_seconds=job.deadline_seconds,
            round_seconds=min(30.0, job.deadline_seconds),
            analyst=job.analyst,
        )
        job.set_state("preparing")
        started = time.perf_counter()
        threshold = await self._prepare(job, spec)
        prepared = time.perf_counter()
        job.set_state("running")
        outputs = await self._execute(job, threshold)
        job.result = self._release(job, outputs, threshold)
        release = ANALYSES[job.template.analysis].cost_release(job.params)
        job.cost = released_cost(release, job.parties, job.party_costs)
        log.info(
            "job %s: prepare %.1f ms, run and release %.1f ms",
            job.job_id,
            1000 * (prepared - started),
            1000 * (time.perf_counter() - prepared),
        )
        job.set_state("done")

    async def _prepare(self, job: Job, spec: common_pb2.JobSpec) -> int:
        """Every participant checks its policy; any refusal ends the job everywhere."""
        request = party_pb2.PrepareRequest(job=spec)
        timeout = min(PREPARE_SECONDS, job.deadline_seconds)
        replies = await asyncio.gather(
            *(
                self._stub(p).Prepare(request, timeout=timeout, wait_for_ready=True)
                for p in job.parties
            ),
            return_exceptions=True,
        )
        problems = []
        for party, reply in zip(job.parties, replies, strict=True):
            if isinstance(reply, BaseException):
                problems.append(_describe(party, reply, "prepare"))
            elif not reply.accepted:
                problems.append(f"{party} refused: {reply.reason}")
        if problems:
            await self._cancel(job.job_id, job.parties, "another party refused or failed")
            raise PartyFailure("; ".join(problems))
        return combine_thresholds(
            reply.min_cell_count for reply in replies if not isinstance(reply, BaseException)
        )

    async def _execute(self, job: Job, threshold: int) -> dict[str, common_pb2.OutputShares]:
        """Run on all parties; the first failure cancels the job everywhere."""
        outputs: dict[str, common_pb2.OutputShares] = {}

        async def run_on(party: str) -> None:
            call = self._stub(party).Run(
                party_pb2.RunRequest(job_id=job.job_id, threshold=threshold),
                timeout=job.deadline_seconds,
            )
            try:
                async for event in call:
                    if event.HasField("progress"):
                        job.progress(party, event.progress)
                    elif event.HasField("cost"):
                        job.party_costs[party] = event.cost
                    elif event.HasField("data_version"):
                        job.data_versions[party] = event.data_version[:MAX_VERSION_CHARS]
                    elif event.HasField("output"):
                        outputs[party] = event.output
            except BaseException as exc:
                raise PartyFailure(_describe(party, exc), joint=_is_joint(exc)) from exc

        tasks = [asyncio.ensure_future(run_on(p)) for p in job.parties]
        done, pending = await asyncio.wait(
            tasks, timeout=job.deadline_seconds + 5, return_when=asyncio.FIRST_EXCEPTION
        )
        failures = [t.exception() for t in done if t.exception() is not None]
        if pending and failures and all(PEER_ABORT in str(e) for e in failures):
            # A party that saw another's abort (transport/mesh.py's text) before its own
            # joint refusal may answer first: give the others a moment to report theirs.
            more, pending = await asyncio.wait(pending, timeout=JOINT_GRACE_SECONDS)
            failures += [t.exception() for t in more if t.exception() is not None]
        # Every party raises a joint refusal alike; report it rather than a party that
        # only saw another's abort (which would name that other party).
        failures.sort(key=lambda exc: not getattr(exc, "joint", False))
        if failures or pending:
            # Tell every party why first; then stop waiting for the others' streams.
            await self._cancel(
                job.job_id, job.parties, str(failures[0]) if failures else "deadline passed"
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if failures:
                raise PartyFailure(str(failures[0]))
            raise PartyFailure("the job did not finish within its deadline")
        missing = [p for p in job.parties if p not in outputs]
        if missing:
            raise PartyFailure(f"no output from {', '.join(missing)}")
        return outputs

    async def _cancel(self, job_id: str, parties: Iterable[str], reason: str) -> None:
        request = party_pb2.CancelRequest(job_id=job_id, reason=reason)
        await asyncio.gather(
            *(self._stub(p).Cancel(request, timeout=CANCEL_SECONDS) for p in parties),
            return_exceptions=True,
        )

    def _release(
        self, job: Job, outputs: dict[str, common_pb2.OutputShares], threshold: int
    ) -> dict[str, Any]:
        """Recombine the output shares and let the analysis build the released result."""

        def layout(s: OutputShareSet) -> tuple[object, ...]:
            return (s.scheme, s.modulus, s.degree, len(s.values), s.public_meta)

        decoded: dict[str, OutputShareSet] = {}
        for party, message in outputs.items():
            try:
                decoded[party] = decode_output_shares(message)
            except TransportError as exc:
                raise PartyFailure(f"{party}: {exc}") from exc
        first = decoded[job.parties[0]]
        for party, out in decoded.items():
            if out.point != job.parties.index(party) + 1:
                raise PartyFailure(f"{party} sent shares for the wrong evaluation point")
            if layout(out) != layout(first):
                raise PartyFailure(f"{party} sent output shares of a different shape")
        try:
            values = open_outputs(
                first.scheme,
                {out.point: out.values for out in decoded.values()},
                first.degree,
                first.modulus,
                int(first.public_meta.get("frac_bits", "0")),
            )
        except ValueError as exc:
            raise PartyFailure(f"output shares do not fit together: {exc}") from exc
        analysis = ANALYSES[job.template.analysis]
        try:
            setting = JobSetting(job.backend, len(job.parties))
            return analysis.release(values, job.params, threshold, setting)
        except OutputMismatch as exc:
            raise PartyFailure(f"the opened outputs do not fit the analysis: {exc}") from exc
