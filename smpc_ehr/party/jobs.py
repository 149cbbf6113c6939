"""A party's jobs: checked and reserved on Prepare, computed on Run, aborted on Cancel.

One job runs at a time (the coordinator queues them, and MPyC and CrypTen both keep
global state). The local plaintext step runs on a worker thread; the job's backend
(`smpc_ehr.backends.BACKENDS`) decides where its own computation runs.

A job with an `epsilon` parameter (a differentially private run) has its privacy
charge reserved in this hospital's ledger (policy/ledger.py, in the party's state
folder) before the party accepts it; the charge is committed when the party's output
shares are ready, released when the job is dropped before its secure step started,
and kept as spent when the secure step started and then failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import Analysis
from smpc_ehr.analyses.common.local_checks import UnusableValues, guarded
from smpc_ehr.audit.trail import PartyAudit
from smpc_ehr.backends import get_backend
from smpc_ehr.backends.backend import Backend, JobContext
from smpc_ehr.config.party import PartyConfig
from smpc_ehr.data.records import PartyData
from smpc_ehr.data.store import DataStore, MemoryStore
from smpc_ehr.errors import DataError, JobAborted, Refusal
from smpc_ehr.pki.trust import current as current_roster
from smpc_ehr.policy.approval import check_deadline, check_job, effective_threshold
from smpc_ehr.policy.ledger import PrivacyLedger
from smpc_ehr.policy.partial import check_partial_job
from smpc_ehr.policy.privacy import check_exact_run
from smpc_ehr.privacy.accountant import Charge
from smpc_ehr.securemath.ops import OutputShareSet, ProgressSink, SecureProgram
from smpc_ehr.transport.mesh import MAX_JOB_ID_CHARS, JobChannel, Mesh
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import common_pb2, party_pb2

log = logging.getLogger(__name__)

LOADING_NOTE_SECONDS = 0.05
"""A job's timing line says how long it waited for its backend's library beyond this."""


@dataclass
class PreparedJob:
    """A job this party agreed to run, with its open channel."""

    spec: common_pb2.JobSpec
    analysis: Analysis
    params: Any
    backend: Backend
    channel: JobChannel
    running: bool = False
    charged: bool = False
    """A privacy charge is reserved for this job in the party's ledger."""
    secure_started: bool = False
    """The backend has started the secure step: from then on noise may be revealed."""


def job_charge(analysis: Analysis, params: Mapping[str, Any]) -> Charge | None:
    """What a job spends: None for an exact run (no `epsilon`), else the rho its
    analysis calibrates the noise to. Refusal for unusable values or an analysis
    without a DP variant."""
    try:
        return analysis.charge(params)
    except ValueError as exc:
        raise Refusal(f"unusable privacy parameters: {exc}") from None


def channel_cost(channel: JobChannel) -> party_pb2.JobCost:
    """What this party has sent on a job's channel: the deepest message's depth (hops),
    the messages and their payload bytes."""
    return party_pb2.JobCost(
        hops=channel.hops, messages=channel.messages_sent, bytes_sent=channel.bytes_sent
    )


class JobRunner:
    """Owns the party's current job and runs it; all methods run on the server loop."""

    def __init__(
        self,
        config: PartyConfig,
        data: DataStore | PartyData,
        mesh: Mesh,
        tls: TlsIdentity,
        backends: Callable[[str], Backend] = get_backend,
        audit: PartyAudit | None = None,
    ) -> None:
        """`backends` finds a job's backend by name: the production registry; the
        in-process test federation (smpc_ehr.testing) passes its plaintext stand-in.
        `audit` is the party's audit log (default: the one its config names). `data` is
        read once per job (a PartyData stands for data that never change)."""
        self._config = config
        self.audit = audit or PartyAudit(config.audit_log_path, config.id)
        self._backends = backends
        self._tls = tls
        self._store = data if isinstance(data, DataStore) else MemoryStore(data)
        self._mesh = mesh
        self._current: PreparedJob | None = None
        self._ledger: PrivacyLedger | None = None
        self._dropping: asyncio.Future[None] | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mpc-job")
        self._costs: dict[str, party_pb2.JobCost] = {}
        self._versions: dict[str, str] = {}

    def take_cost(self, job_id: str) -> party_pb2.JobCost | None:
        """What this party sent in a finished job (once; None if it did not finish)."""
        return self._costs.pop(job_id, None)

    def take_data_version(self, job_id: str) -> str | None:
        """The version of the data a finished job read (once; None if it did not finish)."""
        return self._versions.pop(job_id, None)

    @property
    def current_job(self) -> str:
        return self._current.spec.job_id if self._current else ""

    @property
    def ledger(self) -> PrivacyLedger:
        """This hospital's privacy ledger, opened on first use (exact runs never need it)."""
        if self._ledger is None:
            self._ledger = PrivacyLedger.in_state_folder(
                self._config.state, self._config.id, self._config.policy.privacy
            )
        return self._ledger

    async def prepare(self, spec: common_pb2.JobSpec) -> int:
        """Check the job against this party's policy and reserve it, recording both in
        the audit log (the job is refused if the log cannot be written).

        Returns this party's small-cell threshold; raises Refusal with the reason.
        """
        try:
            self.audit.job_received(
                spec.job_id,
                spec.protocol_hash,
                spec.params,
                spec.analyst,
                spec.backend,
                spec.parties,
            )
            return await self._prepare(spec)
        except Exception as exc:
            # Never raises (`PartyAudit.note`): the coordinator and the analyst get this
            # refusal's reason even when its audit entry cannot be written.
            self.audit.job_refused(spec.job_id, str(exc) or type(exc).__name__)
            raise

    async def _prepare(self, spec: common_pb2.JobSpec) -> int:
        policy = self._config.policy
        if self._current is not None:
            if self._current.running:
                raise Refusal(f"busy with job {self._current.spec.job_id}")
            await self._drop(self._current, "replaced by a newer job before it started")
        if not 0 < len(spec.job_id) <= MAX_JOB_ID_CHARS:
            raise Refusal(f"a job id has 1 to {MAX_JOB_ID_CHARS} characters")
        parties = list(spec.parties)
        me = self._config.id
        roster = current_roster(self._config.roster)
        roster_parties = set(roster.party_ids())
        if me not in parties or len(set(parties)) != len(parties):
            raise Refusal("the job's party list is malformed or does not include this party")
        unknown = [p for p in parties if p not in roster_parties]
        if unknown:
            raise Refusal(f"the job names parties not in the roster: {', '.join(unknown)}")
        backend = self._backends(spec.backend)
        backend.check(len(parties), roster.dealer is not None)
        check_deadline(policy, spec.deadline_seconds)
        template, params = check_job(policy, spec.protocol_toml, dict(spec.params))
        analysis = ANALYSES.get(template.analysis)
        if analysis is None:
            raise Refusal(f"this party cannot run analysis {template.analysis!r}")
        analysis.validate(params)
        analysis.validate_backend(params, spec.backend)
        charge = job_charge(analysis, params)
        check_exact_run(policy.privacy, me, charge, analysis.reads_patient_data)
        check_partial_job(
            policy.allow_partial_jobs,
            me,
            parties,
            roster.party_ids(),
            charge,
            analysis.reads_patient_data,
        )
        if charge is not None:
            if not spec.analyst:
                raise Refusal("the job names no analyst, whose privacy budget it would spend")
            # Last check before accepting: a refusal above leaves nothing to give back.
            # Called on the loop, not awaited, so that no other Prepare slips in between
            # the busy check above and taking the job below (it is one short SQLite
            # transaction; only another writer of this ledger file can make it wait).
            self.ledger.reserve(spec.job_id, spec.analyst, charge)
            try:
                self.audit.budget_reserved(spec.job_id, spec.analyst, charge)
            except BaseException:
                await self._settle(spec.job_id, spent=False)
                raise
        try:
            backend.preload(self._worker)  # e.g. torch, while the other parties prepare
            deadline = time.monotonic() + spec.deadline_seconds
            channel = self._mesh.open_job(spec.job_id, parties, deadline)
        except BaseException:
            if charge is not None:
                await self._settle(spec.job_id, spent=False)
            raise
        try:
            self.audit.job_accepted(spec.job_id, template.name, template.canonical_hash)
        except BaseException:
            await channel.close("this party could not write its audit log")
            if charge is not None:
                await self._settle(spec.job_id, spent=False)
            raise
        self._current = PreparedJob(spec, analysis, params, backend, channel, charged=bool(charge))
        asyncio.get_running_loop().call_later(spec.deadline_seconds, self._expire, spec.job_id)
        log.info(
            "job %s accepted: %s %s (%s) from %s, backend %s",
            spec.job_id,
            template.name,
            dict(spec.params),
            template.canonical_hash,
            spec.analyst,
            spec.backend,
        )
        return policy.min_cell_count

    async def run(
        self, job_id: str, threshold: int, on_progress: ProgressSink | None = None
    ) -> OutputShareSet:
        """Compute this party's side of a prepared job; returns its output shares.
        `on_progress` is called in the server loop with the job's progress notes."""
        job = self._current
        if job is None or job.spec.job_id != job_id:
            raise Refusal(f"job {job_id} is not prepared on this party")
        if job.running:
            raise Refusal(f"job {job_id} is already running")
        job.running = True
        try:
            threshold = effective_threshold(self._config.policy, threshold)
            shares = await self._compute(job, threshold, on_progress)
        except BaseException as exc:
            self._costs.pop(job_id, None)
            self._versions.pop(job_id, None)
            cause = job.channel.failure or exc
            if isinstance(cause, asyncio.CancelledError):
                reason = "the coordinator withdrew the job"
            else:
                reason = str(cause) or type(cause).__name__
            log.warning("job %s failed: %s", job_id, reason)
            log.debug("job %s failure", job_id, exc_info=True)
            # Once the secure step has started, this party's noise share is an input
            # and openings may have happened (or happened at others) before the
            # failure: noise may have been revealed partially, so the charge is kept as
            # spent. Before that nothing left this party and the charge goes back.
            await self._finish(job, abort_reason=reason, spent=job.secure_started)
            self.audit.job_failed(job_id, reason)
            raise
        await self._finish(job, spent=True)
        log.info("job %s done", job_id)
        coordinator = current_roster(self._config.roster).coordinator.id
        self.audit.outputs_sent(job_id, coordinator, len(shares.values))
        return shares

    def abort_jobs_with(self, members: frozenset[str], reason: str) -> None:
        """Abort the current job if one of `members` (cut off by a roster reload: its
        certificate revoked or its id removed) takes part in it or asked for it."""
        job = self._current
        if job is None or not members & {*job.spec.parties, job.spec.analyst}:
            return
        log.warning("job %s aborted: %s", job.spec.job_id, reason)
        job.channel.fail(JobAborted(f"aborted: {reason}"))
        if not job.running:  # kept until done: the loop holds tasks only weakly
            self._dropping = asyncio.ensure_future(self._drop(job, reason))

    async def cancel(self, job_id: str, reason: str) -> bool:
        """Abort `job_id` if it is this party's current job; True if it was."""
        job = self._current
        if job is None or job.spec.job_id != job_id:
            return False
        job.channel.fail(JobAborted(f"cancelled by the coordinator: {reason}"))
        if not job.running:
            await self._drop(job, reason)
        return True

    async def _compute(
        self, job: PreparedJob, threshold: int, on_progress: ProgressSink | None
    ) -> OutputShareSet:
        """The local plaintext step (on the worker thread), then the secure program."""
        if job.channel.failure is not None:
            raise job.channel.failure
        started = time.perf_counter()
        dealer = current_roster(self._config.roster).dealer
        context = JobContext(
            self._worker, self._tls, (dealer.id, str(dealer.address)) if dealer else None
        )
        # Started before the local step: what a backend sends first (MPyC's PRSS keys)
        # travels while the party computes.
        job.secure_started = True
        backend_job = job.backend.start(job.channel, context)
        loop = asyncio.get_running_loop()
        # The worker first finishes what it has queued (a backend's library loading, from
        # its preload at Prepare): the local step is timed from here, so that the first
        # job after a start does not count loading torch as computing.
        ready = await loop.run_in_executor(self._worker, time.perf_counter)
        problem: UnusableValues | None = None
        program: SecureProgram | None = None
        try:
            local = await loop.run_in_executor(self._worker, self._local_step, job)
            program = job.analysis.flat_program(local, job.params, threshold)
        except UnusableValues as exc:  # decided jointly: stopping alone would name us
            log.warning("job %s: %s (the job is refused jointly)", job.spec.job_id, exc)
            problem = exc
        program = guarded(program, problem)
        computed = time.perf_counter()
        round_seconds = job.spec.round_seconds or 30.0
        shares = await backend_job.run(
            program,
            bits=job.analysis.bits,
            round_seconds=round_seconds,
            on_progress=on_progress,
        )
        self._costs[job.spec.job_id] = channel_cost(job.channel)
        log.info(
            "job %s: local step %.1f ms, MPC %.1f ms, %d hops, %d messages, %d bytes sent%s",
            job.spec.job_id,
            1000 * (computed - ready),
            1000 * (time.perf_counter() - computed),
            job.channel.hops,
            job.channel.messages_sent,
            job.channel.bytes_sent,
            f" (waited {1000 * (ready - started):.0f} ms for the backend to load)"
            if ready - started > LOADING_NOTE_SECONDS
            else "",
        )
        shares.public_meta["threshold"] = str(threshold)
        return shares

    def _local_step(self, job: PreparedJob) -> Any:
        """The job's local input from the data as they are now (on the worker thread):
        pushed down into the database where the analysis can, else from the rows.

        A data source that cannot be read fails the job with a message naming no row:
        the details (table, column, row id) go to this party's log, not to the analyst.
        """
        job_id = job.spec.job_id
        try:
            data = self._store.open_job()
        except DataError as exc:
            log.error("job %s: the data source cannot be read: %s", job_id, exc)
            raise DataError("this party's data source cannot be read (see its log)") from None
        try:
            self.audit.data_read(job_id, data.version)
            self._versions[job_id] = data.version
            if data.sql is not None:
                try:
                    local = job.analysis.local_input_sql(data.sql, job.params)
                except SQLAlchemyError as exc:
                    log.error("job %s: a query failed: %s", job_id, exc)
                    raise DataError("this party's database query failed (see its log)") from None
                if local is not None:
                    log.info("job %s: local step pushed down into the database", job_id)
                    return local
            try:
                rows = data.rows()
            except DataError as exc:
                log.error("job %s: the data break a rule: %s", job_id, exc)
                raise DataError(
                    "this party's data break a rule of its format (see its log)"
                ) from None
            return job.analysis.local_input(rows, job.params)
        finally:
            data.close()

    async def _finish(
        self, job: PreparedJob, abort_reason: str | None = None, *, spent: bool
    ) -> None:
        """End the job: settle its privacy charge (committed if `spent`, else released)
        and close its channel."""
        if self._current is job:
            self._current = None
        if job.charged:
            job.charged = False
            await self._settle(job.spec.job_id, spent=spent)
        await job.channel.close(abort_reason)

    async def _settle(self, job_id: str, *, spent: bool) -> None:
        """Commit or release a job's charge. A failure is logged, not raised: the charge
        then stays reserved, which the ledger counts as spent (budget lost, not privacy)."""
        try:
            if spent:
                await asyncio.to_thread(self.ledger.commit, job_id)
            else:
                await asyncio.to_thread(self.ledger.release, job_id)
        except Exception as exc:
            log.error("job %s: its privacy charge stays reserved: %s", job_id, exc)
        else:
            self.audit.budget_settled(job_id, spent=spent)

    async def _drop(self, job: PreparedJob, reason: str) -> None:
        """End a job whose secure step never started: nothing was revealed."""
        log.info("job %s dropped: %s", job.spec.job_id, reason)
        await self._finish(job, abort_reason=reason, spent=False)
        self.audit.job_dropped(job.spec.job_id, reason)

    def _expire(self, job_id: str) -> None:
        job = self._current
        if job is not None and job.spec.job_id == job_id:
            job.channel.fail(JobAborted("the job deadline passed"))
            if not job.running:
                asyncio.get_running_loop().create_task(self._drop(job, "deadline passed"))

    def shutdown(self) -> None:
        """Abort whatever runs and stop the worker. A prepared job that never started
        gives its privacy charge back; a running one's stays reserved (counted as spent)."""
        job = self._current
        if job is not None:
            job.channel.fail(JobAborted("the party is shutting down"))
            if job.charged and not job.secure_started:
                job.charged = False
                try:
                    self.ledger.release(job.spec.job_id)
                except Exception as exc:
                    log.error("job %s: its privacy charge stays reserved: %s", job.spec.job_id, exc)
                else:
                    self.audit.budget_settled(job.spec.job_id, spent=False)
            self.audit.job_failed(job.spec.job_id, "the party is shutting down")
        self._worker.shutdown(wait=False, cancel_futures=True)
