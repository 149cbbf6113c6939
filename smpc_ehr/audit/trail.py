"""What a party writes to its audit log, one method per kind of event.

Entries before a job is accepted (received, accepted, budget reserved) are written
before the party says yes: if the log cannot be written the job is refused, so no
job runs unrecorded. Entries after that are written on a best-effort basis (an error
is logged): a job that ran cannot be undone by failing to note it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from smpc_ehr.audit.chain import AuditError, AuditLog
from smpc_ehr.privacy.accountant import Charge

log = logging.getLogger(__name__)

# Entry kinds, as `smpc-ehr audit show` reads them.
PROCESS_START = "process_start"
PROCESS_STOP = "process_stop"
JOB_RECEIVED = "job_received"
JOB_ACCEPTED = "job_accepted"
JOB_REFUSED = "job_refused"
JOB_DROPPED = "job_dropped"
JOB_FAILED = "job_failed"
OUTPUTS_SENT = "outputs_sent"
DATA_READ = "data_read"
BUDGET_RESERVED = "budget_reserved"
BUDGET_COMMITTED = "budget_committed"
BUDGET_RELEASED = "budget_released"
RPC_REFUSED = "rpc_refused"
ROSTER_RELOAD = "roster_reload"
AUDIT_FORK = "audit_fork"
AUDIT_ROLLBACK = "audit_rollback"


class PartyAudit:
    """One party's audit log, with a hook called when a job ends (to send heads)."""

    def __init__(self, path: Path | str, party: str) -> None:
        self.log = AuditLog(path)
        self.party = party
        self.on_job_end: Callable[[], None] | None = None

    def must(self, kind: str, fields: Mapping[str, Any]) -> None:
        """Write an entry the next step depends on; AuditError if it cannot be written."""
        self.log.append(kind, fields)

    def note(self, kind: str, fields: Mapping[str, Any]) -> None:
        """Write an entry after the fact; a failure is logged, never raised: it must not
        replace what the caller is reporting (a refusal's reason, a failure)."""
        try:
            self.log.append(kind, fields)
        except AuditError as exc:  # the disk refused (full, read-only): logged plainly
            log.error("%s: could not write audit entry %s %s: %s", self.party, kind, fields, exc)
        except Exception:  # anything else too, with its traceback
            log.exception("%s: could not write audit entry %s %s", self.party, kind, fields)

    def job_received(
        self,
        job_id: str,
        protocol_hash: str,
        params: Mapping[str, str],
        analyst: str,
        backend: str,
        parties: Sequence[str],
    ) -> None:
        self.must(
            JOB_RECEIVED,
            {
                "job": job_id,
                "template_hash": protocol_hash,
                "params": dict(params),
                "analyst": analyst,
                "backend": backend,
                "parties": list(parties),
            },
        )

    def job_accepted(self, job_id: str, template: str, template_hash: str) -> None:
        fields = {"job": job_id, "template": template, "template_hash": template_hash}
        self.must(JOB_ACCEPTED, fields)

    def job_refused(self, job_id: str, reason: str) -> None:
        """Best effort: a refusal whose entry cannot be written is still reported with
        its own reason (the failure to write it is logged)."""
        self.note(JOB_REFUSED, {"job": job_id, "reason": reason})

    def budget_reserved(self, job_id: str, analyst: str, charge: Charge) -> None:
        self.must(BUDGET_RESERVED, {"job": job_id, "analyst": analyst, **_charge(charge)})

    def budget_settled(self, job_id: str, *, spent: bool) -> None:
        self.note(BUDGET_COMMITTED if spent else BUDGET_RELEASED, {"job": job_id})

    def data_read(self, job_id: str, version: str) -> None:
        """Which version of the hospital's data a job read (docs/data.md)."""
        self.note(DATA_READ, {"job": job_id, "data_version": version})

    def outputs_sent(self, job_id: str, to: str, count: int) -> None:
        self.note(OUTPUTS_SENT, {"job": job_id, "to": to, "outputs": count})
        self._job_ended()

    def job_failed(self, job_id: str, reason: str) -> None:
        self.note(JOB_FAILED, {"job": job_id, "reason": reason})
        self._job_ended()

    def job_dropped(self, job_id: str, reason: str) -> None:
        self.note(JOB_DROPPED, {"job": job_id, "reason": reason})
        self._job_ended()

    def rpc_refused(self, method: str, caller: str, reason: str) -> None:
        self.note(RPC_REFUSED, {"method": method, "caller": caller, "reason": reason})

    def head_fork(self, sender: str, seq: int, held_hash: str, new_hash: str) -> None:
        """`sender` signed two different heads for `seq`: it forked its log."""
        fields = {"sender": sender, "seq": seq, "held_hash": held_hash, "new_hash": new_hash}
        self.note(AUDIT_FORK, fields)

    def head_rollback(self, sender: str, seq: int, hash: str, last: tuple[int, str]) -> None:
        """`sender` sent a head with a lower seq than the latest held of it (`last`)."""
        fields = {"sender": sender, "seq": seq, "hash": hash}
        self.note(AUDIT_ROLLBACK, {**fields, "last_seq": last[0], "last_hash": last[1]})

    def _job_ended(self) -> None:
        if self.on_job_end is not None:
            self.on_job_end()


def _charge(charge: Charge) -> dict[str, Any]:
    fields: dict[str, Any] = {"rho": charge.rho}
    if charge.epsilon is not None:
        fields["epsilon"] = charge.epsilon
        fields["delta"] = charge.delta
    return fields
