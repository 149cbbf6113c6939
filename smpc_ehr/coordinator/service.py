"""The coordinator's gRPC servicer: analysts submit and watch; errors become status codes."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import grpc

from smpc_ehr.config.coordinator import DAY, CoordinatorConfig
from smpc_ehr.config.roster import Roster
from smpc_ehr.coordinator.approvals import collect_approvals
from smpc_ehr.coordinator.history import StoredJob
from smpc_ehr.coordinator.jobs import FINAL_STATES, Coordinator, Job
from smpc_ehr.coordinator.participants import absent_parties
from smpc_ehr.pki.trust import current as current_roster
from smpc_ehr.transport.health import health_reply
from smpc_ehr.transport.status import message_for
from smpc_ehr.transport.tls import TlsIdentity, fail_call, refuse, require_caller
from smpc_ehr.wire import coordinator_pb2, coordinator_pb2_grpc

DEFAULT_LIST = 20
"""Jobs a ListJobs call returns when it names no limit."""


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServicer):
    """Only the roster's analysts may submit or read jobs."""

    def __init__(
        self, config: CoordinatorConfig, coordinator: Coordinator, tls: TlsIdentity | None = None
    ) -> None:
        """`tls` is the coordinator's identity, for asking parties what they approve
        (None: Approvals is refused, as in-process tests need no network)."""
        self._config = config
        self._coordinator = coordinator
        self._tls = tls

    def _roster(self) -> Roster:
        """The roster in force: a reload (SIGHUP) can add or remove a member."""
        return current_roster(self._config.roster)

    def _roster_parties(self) -> tuple[str, ...]:
        return self._roster().party_ids()

    def _analysts(self) -> frozenset[str]:
        return frozenset(a.id for a in self._roster().analysts)

    async def _analyst(self, context: grpc.aio.ServicerContext, method: str) -> str:
        return await require_caller(
            context,
            method,
            self._analysts(),
            lambda caller: f"{caller} is not an analyst of this federation",
        )

    async def Submit(self, request, context):
        analyst = await self._analyst(context, "Submit")
        try:
            job = self._coordinator.submit(
                request.protocol_toml,
                dict(request.params),
                request.backend,
                request.deadline_seconds,
                analyst,
                list(request.parties),
            )
        except Exception as exc:
            await fail_call(context, analyst, "Submit", exc)
        return coordinator_pb2.SubmitReply(job_id=job.job_id)

    async def _own_job(
        self,
        context: grpc.aio.ServicerContext,
        method: str,
        job_id: str,
        expired_too: bool = False,
    ) -> Job | StoredJob:
        """The caller's job, in memory or in the history: an analyst sees only the jobs it
        submitted. A job whose result expired is refused unless `expired_too`."""
        analyst = await self._analyst(context, method)
        try:
            job = self._coordinator.job(job_id)
        except KeyError as exc:
            await refuse(context, analyst, method, message_for(exc), grpc.StatusCode.NOT_FOUND)
        if job.analyst != analyst:
            # Answered (and logged) exactly as an unknown id, so job ids of others stay hidden.
            await refuse(
                context,
                analyst,
                method,
                f"no job {job_id}",
                grpc.StatusCode.NOT_FOUND,
            )
        if job.state == "expired" and not expired_too:
            history = self._coordinator.history
            await refuse(
                context,
                analyst,
                method,
                f"job {job_id} has expired: a result is kept {history.result_keep / DAY:g} "
                f"days after the job ends, or {history.fetched_keep / DAY:g} days after it "
                "was first read",
                grpc.StatusCode.NOT_FOUND,
            )
        return job

    async def Status(self, request, context):
        job = await self._own_job(context, "Status", request.job_id)
        self._coordinator.mark_fetched(job)
        return job.status() if isinstance(job, Job) else stored_status(job, self._roster_parties())

    async def Watch(self, request, context):
        job = await self._own_job(context, "Watch", request.job_id)
        if not isinstance(job, Job):  # ended before a restart: its final state only
            self._coordinator.mark_fetched(job)
            yield coordinator_pb2.JobEvent(status=stored_status(job, self._roster_parties()))
            return
        sent = 0
        while True:
            changed = job.changed
            while sent < len(job.events):
                yield job.events[sent]
                sent += 1
            if job.state in FINAL_STATES:
                job.mark_fetched()
                return
            await changed.wait()

    async def ListJobs(self, request, context):
        analyst = await self._analyst(context, "ListJobs")
        jobs = self._coordinator.history.list(analyst, request.limit or DEFAULT_LIST)
        return coordinator_pb2.ListJobsReply(jobs=[job_record(job, result=False) for job in jobs])

    async def GetJob(self, request, context):
        job = await self._own_job(context, "GetJob", request.job_id, expired_too=True)
        self._coordinator.mark_fetched(job)
        stored = self._coordinator.history.get(request.job_id)
        if stored is None:  # its history row could not be written (logged then)
            await refuse(
                context,
                job.analyst,
                "GetJob",
                f"job {request.job_id} is not in the coordinator's history",
                grpc.StatusCode.NOT_FOUND,
            )
        return job_record(stored, result=True)

    async def Health(self, request, context):
        await require_caller(
            context,
            "Health",
            frozenset(self._roster().identities()),
            lambda caller: f"{caller} is not in the roster",
        )
        current = self._coordinator.current  # its id is for the coordinator alone
        return health_reply(
            self._config.id,
            "coordinator",
            self._config.cert,
            busy_with=current.job_id if current else None,
        )

    async def Approvals(self, request, context):
        analyst = await self._analyst(context, "Approvals")
        if self._tls is None:
            await refuse(
                context,
                analyst,
                "Approvals",
                "this coordinator does not ask parties for approvals",
                grpc.StatusCode.UNIMPLEMENTED,
            )
        return await collect_approvals(self._tls, self._roster().parties)


def _shared(job: StoredJob, result: bool) -> dict[str, Any]:
    """The fields JobStatus and JobRecord share; the result only if `result`."""
    return {
        "job_id": job.job_id,
        "state": job.state,
        "protocol": job.protocol,
        "protocol_hash": job.protocol_hash,
        "backend": job.backend,
        "parties": job.parties,
        "error": job.error,
        "result_json": json.dumps(job.result) if result and job.result is not None else "",
    }


def stored_status(job: StoredJob, roster_parties: Sequence[str]) -> coordinator_pb2.JobStatus:
    """A job of the history as `Job.status` would say it (the roster parties it left
    out, as its result said, from the roster in force)."""
    return coordinator_pb2.JobStatus(
        **_shared(job, True),
        elapsed_seconds=job.elapsed(time.time()),
        absent=absent_parties(roster_parties, job.parties),
    )


def job_record(job: StoredJob, result: bool) -> coordinator_pb2.JobRecord:
    """A row of the history for the analyst; its result only if `result`."""
    return coordinator_pb2.JobRecord(
        **_shared(job, result),
        analysis=job.analysis,
        params=job.params,
        submitted=job.submitted,
        started=job.started or 0.0,
        finished=job.finished or 0.0,
        fetched=job.fetched or 0.0,
        result_expires=job.result_expires or 0.0,
    )
