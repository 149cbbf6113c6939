"""An analyst's past and present jobs, as the coordinator's job history reports them."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from smpc_ehr.wire import coordinator_pb2


def utc_text(seconds: float | None, iso: bool = False) -> str:
    """A Unix time as UTC text ("" for None): ISO 8601 for JSON, else for a table."""
    if seconds is None:
        return ""
    when = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ" if iso else "%Y-%m-%d %H:%M:%S")


@dataclass(frozen=True)
class JobInfo:
    """One job of the history; times are Unix seconds, None when not (yet) happened."""

    job_id: str
    state: str
    protocol: str
    protocol_hash: str
    analysis: str
    params: dict[str, str]
    backend: str
    parties: tuple[str, ...]
    submitted: float
    started: float | None
    finished: float | None
    error: str
    result: dict[str, Any] | None
    fetched: float | None
    result_expires: float | None

    @classmethod
    def from_record(cls, r: coordinator_pb2.JobRecord) -> JobInfo:
        return cls(
            job_id=r.job_id,
            state=r.state,
            protocol=r.protocol,
            protocol_hash=r.protocol_hash,
            analysis=r.analysis,
            params=dict(r.params),
            backend=r.backend,
            parties=tuple(r.parties),
            submitted=r.submitted,
            started=r.started or None,
            finished=r.finished or None,
            error=r.error,
            result=json.loads(r.result_json) if r.result_json else None,
            fetched=r.fetched or None,
            result_expires=r.result_expires or None,
        )

    @property
    def duration(self) -> float | None:
        """Seconds from submission to the end; None while it has not ended."""
        return None if self.finished is None else max(0.0, self.finished - self.submitted)

    def as_dict(self, result: bool = True) -> dict[str, Any]:
        """The JSON shape `smpc-ehr jobs show --json` prints (`jobs list` without result)."""
        out: dict[str, Any] = {
            "job_id": self.job_id,
            "state": self.state,
            "protocol": self.protocol,
            "protocol_hash": self.protocol_hash,
            "analysis": self.analysis,
            "params": self.params,
            "backend": self.backend,
            "parties": list(self.parties),
            "submitted": utc_text(self.submitted, iso=True),
            "started": utc_text(self.started, iso=True) or None,
            "finished": utc_text(self.finished, iso=True) or None,
            "duration_seconds": None if self.duration is None else round(self.duration, 3),
            "error": self.error,
            "result_expires": utc_text(self.result_expires, iso=True) or None,
        }
        if result:
            out["result"] = self.result
        return out
