"""The coordinator's gRPC servicer: analysts submit and watch; errors become status codes."""

from __future__ import annotations

import grpc

from smpc_ehr.config.coordinator import CoordinatorConfig
from smpc_ehr.coordinator.approvals import collect_approvals
from smpc_ehr.coordinator.jobs import FINAL_STATES, Coordinator, Job
from smpc_ehr.transport.health import health_reply
from smpc_ehr.transport.status import message_for
from smpc_ehr.transport.tls import TlsIdentity, fail_call, refuse, require_caller
from smpc_ehr.wire import coordinator_pb2, coordinator_pb2_grpc


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServicer):
    """Only the roster's analysts may submit or read jobs."""

    def __init__(self, config: CoordinatorConfig, coordinator: Coordinator) -> None:
        self._config = config
        self._coordinator = coordinator
        self._analysts = frozenset(a.id for a in config.roster.analysts)
        self._tls: TlsIdentity | None = None

    async def _analyst(self, context: grpc.aio.ServicerContext, method: str) -> str:
        return await require_caller(
            context,
            method,
            self._analysts,
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
            )
        except Exception as exc:
            await fail_call(context, analyst, "Submit", exc)
        return coordinator_pb2.SubmitReply(job_id=job.job_id)

    async def _own_job(self, context: grpc.aio.ServicerContext, method: str, job_id: str) -> Job:
        """The caller's job: an analyst sees only the jobs it submitted."""
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
        return job

    async def Status(self, request, context):
        job = await self._own_job(context, "Status", request.job_id)
        job.mark_fetched()
        return job.status()

    async def Watch(self, request, context):
        job = await self._own_job(context, "Watch", request.job_id)
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

    async def Health(self, request, context):
        await require_caller(
            context,
            "Health",
            frozenset(self._config.roster.identities()),
            lambda caller: f"{caller} is not in the roster",
        )
        current = self._coordinator.current
        return health_reply(
            self._config.id,
            "coordinator",
            self._config.cert,
            busy_with=current.job_id if current else None,
        )

    async def Approvals(self, request, context):
        await self._analyst(context, "Approvals")
        if self._tls is None:  # read once: only analysts asking what will run need it
            config = self._config
            self._tls = TlsIdentity.from_files(
                config.id, config.roster.ca_cert, config.cert, config.key, role="coordinator"
            )
        return await collect_approvals(self._tls, self._config.roster.parties)
