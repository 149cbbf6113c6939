"""The coordinator's gRPC servicer: analysts submit and watch; errors become status codes."""

from __future__ import annotations

import grpc

from smpc_ehr import __version__
from smpc_ehr.config.coordinator import CoordinatorConfig
from smpc_ehr.coordinator.jobs import FINAL_STATES, Coordinator, Job
from smpc_ehr.pki.trust import active as active_trust
from smpc_ehr.transport.status import message_for
from smpc_ehr.transport.tls import fail_call, refuse, require_caller
from smpc_ehr.wire import coordinator_pb2, coordinator_pb2_grpc, party_pb2


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServicer):
    """Only the roster's analysts may submit or read jobs."""

    def __init__(self, config: CoordinatorConfig, coordinator: Coordinator) -> None:
        self._config = config
        self._coordinator = coordinator

    def _analysts(self) -> frozenset[str]:
        """The analysts of the roster in force: a reload (SIGHUP) can add or remove one."""
        trust = active_trust()
        roster = trust.roster if trust is not None else self._config.roster
        return frozenset(a.id for a in roster.analysts)

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
        return party_pb2.HealthReply(
            identity=self._config.id,
            role="coordinator",
            version=__version__,
            state="busy" if current else "idle",
            current_job=current.job_id if current else "",
        )
