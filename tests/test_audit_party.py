"""What a party writes to its audit log (fast tier, in-process federation): a job's
receipt with its parameters and analyst, acceptance with the template, the privacy
budget reserved and committed, the outputs sent to the coordinator; a refusal with its
reason; and each log is a valid chain."""

from __future__ import annotations

import dataclasses
import errno
import json
from pathlib import Path
from typing import Any

import pytest

from smpc_ehr.audit import chain
from smpc_ehr.audit.heads import HeadStore
from smpc_ehr.audit.trail import PartyAudit
from smpc_ehr.audit.verify import read_chain
from smpc_ehr.config.roster import load_roster
from smpc_ehr.errors import BadRequest
from smpc_ehr.party.gossip import HeadGossip, from_message, to_message
from smpc_ehr.pki import trust
from smpc_ehr.pki.certs import PkiPaths
from smpc_ehr.pki.trust import peer_fingerprint
from smpc_ehr.policy.privacy import PrivacyPolicy
from smpc_ehr.testing.federation import ANALYST, COORDINATOR, JobFailed
from smpc_ehr.transport.mesh import Mesh
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import party_pb2
from tests.test_audit_chain import pki
from tests.test_privacy_jobs import HOSPITALS, TEMPLATE, _ones, federation

__all__ = ["_ones", "pki"]  # fixtures: the test analysis, a federation's certificates


def entries(state: Path, hospital: str) -> list[dict[str, Any]]:
    path = state / hospital / "audit" / f"{hospital}.jsonl"
    assert read_chain(path)[1] is None
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def test_a_dp_job_and_a_refused_job_are_recorded(tmp_path: Path) -> None:
    policy = PrivacyPolicy(epsilon_budget_per_analyst=1.0, delta=1e-6)
    assert federation(tmp_path, policy).run(TEMPLATE, {"epsilon": 0.5}).result["total"] == 3
    for hospital in HOSPITALS:
        log = entries(tmp_path, hospital)
        assert [e["kind"] for e in log] == [
            "job_received",
            "budget_reserved",
            "job_accepted",
            "budget_committed",
            "outputs_sent",
        ]
        received, reserved, accepted, _, sent = log
        job = received["fields"]["job"]
        assert received["fields"]["analyst"] == ANALYST
        assert received["fields"]["params"] == {"epsilon": "0.5"}
        assert received["fields"]["parties"] == list(HOSPITALS)
        assert received["fields"]["template_hash"] == TEMPLATE.canonical_hash
        assert reserved["fields"]["epsilon"] == 0.5 and reserved["fields"]["job"] == job
        assert accepted["fields"]["template"] == "dp_ones"
        assert sent["fields"] == {"job": job, "to": COORDINATOR, "outputs": 1}
    strict = federation(tmp_path, PrivacyPolicy(), PrivacyPolicy(require_dp=True))
    with pytest.raises(JobFailed):
        strict.run(TEMPLATE)
    refused = entries(tmp_path, "hospital-2")[-1]
    assert refused["kind"] == "job_refused"
    assert "requires differential privacy" in refused["fields"]["reason"]
    assert entries(tmp_path, "hospital-1")[-1]["kind"] == "job_dropped"


def test_gossip_keeps_a_valid_head_of_its_caller_only(tmp_path: Path, pki: PkiPaths) -> None:
    def identity(ident: str) -> TlsIdentity:
        return TlsIdentity.from_files(ident, pki.ca_cert, pki.cert_for(ident), pki.key_for(ident))

    def gossip(ident: str) -> HeadGossip:
        tls = identity(ident)
        audit = PartyAudit(tmp_path / ident / "log.jsonl", ident)
        audit.must("process_start", {})
        store = HeadStore(tmp_path / ident / "heads")
        return HeadGossip(tls, Mesh(tls, {}), audit, store, [], 600.0)

    a, b = gossip("hospital-a"), gossip("hospital-b")
    head = to_message(a.sign())
    assert b.receive("hospital-a", head) is True
    assert b.receive("hospital-a", head) is False  # already held: not stored twice
    with pytest.raises(BadRequest, match="a party sends its own"):
        b.receive("coordinator", head)
    forged = party_pb2.AuditHead()
    forged.CopyFrom(head)
    forged.seq = 2
    with pytest.raises(BadRequest, match="signature does not verify"):
        b.receive("hospital-a", forged)
    rows = b.store.held("hospital-b")["hospital-a"]
    assert [r.head for r in rows] == [from_message(head)]


def test_gossip_refuses_a_head_signed_with_a_revoked_certificate(
    tmp_path: Path, pki: PkiPaths
) -> None:
    """A head is evidence only if its signing certificate is not revoked by the roster in
    force (a stolen, revoked key must not add heads)."""
    tls = TlsIdentity.from_files("hospital-a", pki.ca_cert, pki.cert_for("hospital-a"),
                                 pki.key_for("hospital-a"))  # fmt: skip
    audit = PartyAudit(tmp_path / "a" / "log.jsonl", "hospital-a")
    audit.must("process_start", {})
    a = HeadGossip(tls, Mesh(tls, {}), audit, HeadStore(tmp_path / "a" / "heads"), [], 600.0)
    other = TlsIdentity.from_files("hospital-b", pki.ca_cert, pki.cert_for("hospital-b"),
                                   pki.key_for("hospital-b"))  # fmt: skip
    b = HeadGossip(other, Mesh(other, {}), audit, HeadStore(tmp_path / "b" / "heads"), [], 600.0)
    head = to_message(a.sign())
    roster = load_roster(pki.ca_cert.parent.parent / "roster.toml")
    revoked = peer_fingerprint(pki.cert_for("hospital-a").read_bytes())
    trust.activate(dataclasses.replace(roster, revoked=frozenset({revoked})))
    try:
        with pytest.raises(BadRequest, match="signed with a revoked certificate"):
            b.receive("hospital-a", head)
    finally:
        trust.deactivate()
    assert b.receive("hospital-a", head) is True  # the same head, no longer revoked


@pytest.mark.parametrize(
    ("fails_on", "error", "policies", "reason"),
    [
        # the disk is full from the start: the refusal is job_received's failure
        (b"", OSError(errno.ENOSPC, "No space left on device"), (), "No space left on device"),
        # it fills after job_received: the policy's reason is kept
        (
            b"job_refused",
            OSError(errno.ENOSPC, "No space left on device"),
            (PrivacyPolicy(), PrivacyPolicy(require_dp=True)),
            "hospital-2 requires differential privacy",
        ),
        # an unexpected error writing job_refused does not replace the reason either
        (
            b"job_refused",
            ValueError("unexpected"),
            (PrivacyPolicy(), PrivacyPolicy(require_dp=True)),
            "hospital-2 requires differential privacy",
        ),
    ],
)
def test_a_refusal_whose_entry_cannot_be_written_keeps_its_reason(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fails_on: bytes,
    error: Exception,
    policies: tuple[PrivacyPolicy, ...],
    reason: str,
) -> None:
    """Hospital-2's log cannot be written (every write, or job_refused's): the analyst
    reads the refusal's own reason, and hospital-2's log says its entry was lost."""
    real = chain.append_line
    log_path = tmp_path / "hospital-2" / "audit" / "hospital-2.jsonl"

    def append_line(path: Path, line: bytes) -> None:
        if Path(path) == log_path and fails_on in line:
            raise error
        real(path, line)

    monkeypatch.setattr(chain, "append_line", append_line)
    with pytest.raises(JobFailed) as failed:
        federation(tmp_path, *policies).run(TEMPLATE)
    message = str(failed.value)
    assert message.startswith("hospital-2 refused: ") and reason in message, message
    assert "not written any more" not in message and "unexpected" not in message
    assert "hospital-2: could not write audit entry job_refused" in caplog.text
