"""The analyst's Python API: submit a study protocol, follow its progress, get the result.

    from smpc_ehr.client import Client
    with Client.from_config("parties/analyst.toml") as client:
        result = client.run("protocols/rare_disease_count.toml", {"codes": "E75.22"})
        print(result.result["count"])

Parameter values are checked against the template here first (so a typo fails at
once, locally), then again by the coordinator and by every party.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from smpc_ehr import __version__
from smpc_ehr.client.jobs import JobInfo, utc_text
from smpc_ehr.config.analyst import LOCAL_ANALYST_CONFIG, AnalystConfig, load_analyst_config
from smpc_ehr.errors import SmpcEhrError
from smpc_ehr.policy.approval import job_deadline
from smpc_ehr.study.params import BoundParameters
from smpc_ehr.study.template import ProtocolTemplate, load_template, parse_template
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import coordinator_pb2, coordinator_pb2_grpc, party_pb2

RPC_SECONDS = 15.0
"""Deadline of the analyst's short RPCs (submit, status, health)."""
WAIT_SECONDS = 3600.0
"""Default deadline for following a job; a job's own deadline ends it much sooner."""


class JobFailed(SmpcEhrError):
    """The job ended without a result; the message says which party and why."""


@dataclass(frozen=True)
class Progress:
    """A progress note from a long-running job."""

    stage: str
    step: int
    total: int
    message: str


@dataclass(frozen=True)
class JobResult:
    """A released result and what produced it."""

    job_id: str
    protocol: str
    protocol_hash: str
    backend: str
    parties: tuple[str, ...]
    result: dict[str, Any]
    elapsed_seconds: float
    absent: tuple[str, ...] = ()
    """Roster parties that did not take part: the result does not cover their patients."""
    cost: dict[str, Any] | None = None
    """What the job cost in message rounds ("hops") and, where the analysis releases
    them, messages and bytes sent per party; "withheld" says what is not released."""
    data_versions: dict[str, str] = field(default_factory=dict)
    """Per party, the version of its data the job read (a file digest or a database
    snapshot and its time: docs/data.md, "Data version")."""
    analysis: str = ""
    """The template's `analysis` (which tidy rows and table the result gets); "" when
    the result was fetched by job id alone."""
    parameters: dict[str, Any] | None = None
    """The parameters as run: the template's bound values (defaults filled in), in
    JSON types (dates as ISO text, lists as lists); None when not known here."""
    finished: float | None = None
    """When the client received the final result (Unix seconds)."""

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape `smpc-ehr run --json` prints (docs/analyses.md, "Exports").
        `template_hash` repeats `protocol_hash` under the name a methods section uses."""
        return {
            "protocol": self.protocol,
            "protocol_hash": self.protocol_hash,
            "template_hash": self.protocol_hash,
            "analysis": self.analysis or None,
            "parameters": self.parameters,
            "software_version": __version__,
            "timestamp": utc_text(self.finished, iso=True) or None,
            "job_id": self.job_id,
            "backend": self.backend,
            "parties": list(self.parties),
            "absent": list(self.absent),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "result": self.result,
            "cost": self.cost,
            "data_versions": self.data_versions,
        }


def _json_value(value: Any) -> Any:
    """A bound parameter value in JSON types: dates as ISO text, tuples as lists."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_json_value(v) for v in value]
    return value


def parameters_as_run(bound: BoundParameters) -> dict[str, Any]:
    """The bound parameters (every one of the template's, None where left out) as JSON."""
    return {name: _json_value(value) for name, value in bound.items()}


def _template_of(protocol: str | Path | ProtocolTemplate) -> ProtocolTemplate:
    if isinstance(protocol, ProtocolTemplate):
        return protocol
    path = Path(protocol)
    if path.suffix == ".toml" or path.exists():
        return load_template(path)
    return parse_template(str(protocol))


class Client:
    """A connection to the coordinator under the analyst's certificate."""

    def __init__(self, coordinator_address: str, tls: TlsIdentity, coordinator_id: str) -> None:
        self._channel = tls.blocking_channel(coordinator_address, coordinator_id)
        self._stub = coordinator_pb2_grpc.CoordinatorStub(self._channel)

    @classmethod
    def from_config(cls, path: str | Path) -> Client:
        """From an analyst config (TOML: id, roster, key, cert)."""
        config: AnalystConfig = load_analyst_config(path)
        tls = TlsIdentity.from_files(config.id, config.ca_cert, config.cert, config.key)
        return cls(config.coordinator_address, tls, config.roster.coordinator.id)

    @classmethod
    def from_state(cls, state_dir: str | Path) -> Client:
        """For a local federation started with `smpc-ehr local up --state STATE_DIR`."""
        return cls.from_config(Path(state_dir) / LOCAL_ANALYST_CONFIG)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def submit(
        self,
        protocol: str | Path | ProtocolTemplate,
        params: Mapping[str, Any] | None = None,
        *,
        backend: str | None = None,
        deadline_seconds: float | None = None,
        parties: Sequence[str] = (),
    ) -> str:
        """Queue a job; returns its id. Invalid values raise TemplateError (a bad deadline
        BadRequest) before sending; None leaves the deadline to the coordinator. `parties`
        names the hospitals taking part (empty: every roster party)."""
        if deadline_seconds is not None:
            deadline_seconds = job_deadline(deadline_seconds)
        template = _template_of(protocol)
        bound = template.bind(dict(params or {}))
        return self._submit_bound(template, bound, backend, deadline_seconds, parties)

    def _submit_bound(
        self,
        template: ProtocolTemplate,
        bound: BoundParameters,
        backend: str | None,
        deadline_seconds: float | None,
        parties: Sequence[str],
    ) -> str:
        """Send a job whose values are bound and deadline checked already."""
        request = coordinator_pb2.SubmitRequest(
            protocol_toml=template.source_text,
            params=bound.encode(),
            backend=backend or "",
            deadline_seconds=deadline_seconds or 0.0,  # 0: the coordinator's default
            parties=list(parties),
        )
        reply = self._call(self._stub.Submit, request)
        return str(reply.job_id)

    def wait(
        self,
        job_id: str,
        on_progress: Callable[[Progress], None] | None = None,
        timeout: float = WAIT_SECONDS,
    ) -> JobResult:
        """Follow a job to its end; returns the result or raises JobFailed."""
        final: coordinator_pb2.JobStatus | None = None
        try:
            for event in self._stub.Watch(
                coordinator_pb2.WatchRequest(job_id=job_id), timeout=timeout
            ):
                if event.HasField("progress") and on_progress is not None:
                    p = event.progress
                    on_progress(Progress(p.stage, p.step, p.total, p.message))
                elif event.HasField("status"):
                    final = event.status
        except grpc.RpcError as exc:
            raise JobFailed(_rpc_message(exc)) from exc
        if final is None or final.state not in ("done", "failed"):
            raise JobFailed(f"lost track of job {job_id} before it ended")
        if final.state == "failed":
            raise JobFailed(final.error or "the job failed")
        return JobResult(
            job_id=final.job_id,
            protocol=final.protocol,
            protocol_hash=final.protocol_hash,
            backend=final.backend,
            parties=tuple(final.parties),
            result=json.loads(final.result_json),
            elapsed_seconds=final.elapsed_seconds,
            absent=tuple(final.absent),
            cost=json.loads(final.cost_json) if final.cost_json else None,
            data_versions=dict(final.data_versions),
            finished=time.time(),
        )

    def run(
        self,
        protocol: str | Path | ProtocolTemplate,
        params: Mapping[str, Any] | None = None,
        *,
        backend: str | None = None,
        deadline_seconds: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        parties: Sequence[str] = (),
        on_submitted: Callable[[str], None] | None = None,
    ) -> JobResult:
        """Submit and wait: the one call most analyses need. The result carries the
        parameters as run (bound here from the same template and values the coordinator
        and every party bind again) and the template's analysis. `on_submitted` gets the
        job id once the coordinator queued it."""
        if deadline_seconds is not None:
            deadline_seconds = job_deadline(deadline_seconds)
        template = _template_of(protocol)
        bound = template.bind(dict(params or {}))
        job_id = self._submit_bound(template, bound, backend, deadline_seconds, parties)
        if on_submitted is not None:
            on_submitted(job_id)
        # The coordinator ends the job by its deadline; waiting longer only covers queueing.
        wait = WAIT_SECONDS if deadline_seconds is None else deadline_seconds + WAIT_SECONDS
        result = self.wait(job_id, on_progress, timeout=wait)
        return dataclasses.replace(
            result, analysis=template.analysis, parameters=parameters_as_run(bound)
        )

    def status(self, job_id: str) -> dict[str, Any]:
        """The job's current state (and its error or result once it ended)."""
        s = self._call(self._stub.Status, coordinator_pb2.StatusRequest(job_id=job_id))
        return {
            "job_id": s.job_id,
            "state": s.state,
            "protocol": s.protocol,
            "error": s.error,
            "result": json.loads(s.result_json) if s.result_json else None,
        }

    def jobs(self, limit: int = 20) -> list[JobInfo]:
        """This analyst's jobs from the coordinator's history, newest first (no results)."""
        reply = self._call(self._stub.ListJobs, coordinator_pb2.ListJobsRequest(limit=limit))
        return [JobInfo.from_record(r) for r in reply.jobs]

    def job(self, job_id: str) -> JobInfo:
        """One of this analyst's jobs, with its result while the history keeps it (reading
        it starts the result's shorter retention, as `wait` and `status` do)."""
        record = self._call(self._stub.GetJob, coordinator_pb2.GetJobRequest(job_id=job_id))
        return JobInfo.from_record(record)

    def health(self) -> dict[str, Any]:
        """The coordinator's health reply."""
        h = self._call(self._stub.Health, party_pb2.HealthRequest())
        return {"identity": h.identity, "role": h.role, "state": h.state, "version": h.version}

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, timeout=RPC_SECONDS)
        except grpc.RpcError as exc:
            raise JobFailed(_rpc_message(exc)) from exc


def _rpc_message(exc: grpc.RpcError) -> str:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"cannot reach the coordinator: {details}"
    return str(details)
