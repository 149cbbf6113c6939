"""The coordinator's gRPC servicer: analysts submit and watch; errors become status codes."""

from __future__ import annotations

import grpc

from smpc_ehr import __version__
from smpc_ehr.config.coordinator import CoordinatorConfig
from smpc_ehr.coordinator.jobs import FINAL_STATES, Coordinator, Job
from smpc_ehr.transport.status import message_for, status_for
from smpc_ehr.transport.tls import peer_identity
from smpc_ehr.wire import coordinator_pb2, coordinator_pb2_grpc, party_pb2


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServicer):
    """Only the roster's analysts may submit or read jobs."""

    def __init__(self, config: CoordinatorConfig, coordinator: Coordinator) -> None:
        self._config = config
        self._coordinator = coordinator
        self._analysts = frozenset(a.id for a in config.roster.analysts)

    async def _analyst(self, context: grpc.aio.ServicerContext) -> str:
        try:
            caller = peer_identity(context)
        except PermissionError as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        if caller not in self._analysts:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, f"{caller} is not an analyst of this federation"
            )
        return caller

    async def Submit(self, request, context):
        analyst = await self._analyst(context)
        try:
            job = self._coordinator.submit(
                request.protocol_toml,
                dict(request.params),
                request.backend,
                request.deadline_seconds,
                analyst,
            )
        except Exception as exc:
            await context.abort(status_for(exc), message_for(exc))
        return coordinator_pb2.SubmitReply(job_id=job.job_id)

    async def _own_job(self, context: grpc.aio.ServicerContext, job_id: str) -> Job:
        """The caller's job: an analyst sees only the jobs it submitted."""
        analyst = await self._analyst(context)
        try:
            job = self._coordinator.job(job_id)
        except KeyError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, message_for(exc))
        if job.analyst != analyst:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no job {job_id}")
        return job

    async def Status(self, request, context):
        job = await self._own_job(context, request.job_id)
        job.mark_fetched()
        return job.status()

    async def Watch(self, request, context):
        job = await self._own_job(context, request.job_id)
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
        caller = peer_identity(context)
        if caller not in self._config.roster.identities():
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{caller} is not in the roster")
        current = self._coordinator.current
        return party_pb2.HealthReply(
            identity=self._config.id,
            role="coordinator",
            version=__version__,
            state="busy" if current else "idle",
            current_job=current.job_id if current else "",
        )
