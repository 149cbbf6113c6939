"""What a party writes to its audit log (fast tier, in-process federation): a job's
receipt with its parameters and analyst, acceptance with the template, the privacy
budget reserved and committed, the outputs sent to the coordinator; a refusal with its
reason; and each log is a valid chain."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import json
import logging
import threading
import time
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from smpc_ehr.audit import chain
from smpc_ehr.audit.heads import (
    ADVANCE,
    FORK,
    MAX_LINE_BYTES,
    ROLLBACK,
    HeadStore,
    SignedHead,
    sign_head,
)
from smpc_ehr.audit.trail import PartyAudit
from smpc_ehr.audit.verify import read_chain
from smpc_ehr.cli import main
from smpc_ehr.config.party import load_party_config
from smpc_ehr.config.roster import load_roster
from smpc_ehr.errors import BadRequest
from smpc_ehr.party.gossip import (
    DAY,
    KEEP_PER_DAY,
    MAX_CERTS,
    MAX_EVIDENCE,
    HeadGossip,
    from_message,
    to_message,
)
from smpc_ehr.party.service import PartyServicer
from smpc_ehr.pki import trust
from smpc_ehr.pki.certs import PkiPaths
from smpc_ehr.pki.trust import peer_fingerprint
from smpc_ehr.policy.privacy import PrivacyPolicy
from smpc_ehr.testing.federation import ANALYST, COORDINATOR, JobFailed
from smpc_ehr.testing.memory import _CallContext
from smpc_ehr.transport.mesh import Mesh
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import party_pb2
from tests.test_audit_chain import party_config, pki
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
            "data_read",
            "budget_committed",
            "outputs_sent",
        ]
        received, reserved, accepted, read, _, sent = log
        assert read["fields"] == {"job": received["fields"]["job"], "data_version": "in memory"}
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


def party_gossip(
    pki: PkiPaths,
    ident: str,
    log: Path,
    heads: Path,
    clock: Callable[[], float] = time.time,
) -> HeadGossip:
    """A party's gossip with its real key, its audit log at `log`, its heads in `heads`."""
    tls = TlsIdentity.from_files(ident, pki.ca_cert, pki.cert_for(ident), pki.key_for(ident))
    audit = PartyAudit(log, ident)
    audit.must("process_start", {})
    return HeadGossip(tls, Mesh(tls, {}), audit, HeadStore(heads), [], 600.0, clock)


def test_gossip_keeps_a_valid_head_of_its_caller_only(tmp_path: Path, pki: PkiPaths) -> None:
    def gossip(ident: str) -> HeadGossip:
        return party_gossip(pki, ident, tmp_path / ident / "log.jsonl", tmp_path / ident / "heads")

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


def a_head(pki: PkiPaths, seq: int, hash: str) -> SignedHead:
    """A head of hospital-a signed with its real key."""
    cert, key = pki.cert_for("hospital-a").read_bytes(), pki.key_for("hospital-a").read_bytes()
    return sign_head("hospital-a", seq, hash, key, cert)


def test_a_fork_is_kept_logged_audited_and_named_by_verify(
    tmp_path: Path,
    pki: PkiPaths,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """hospital-a signs two hashes for seq 5: hospital-b keeps both, logs an ERROR and
    writes `audit_fork` in its own log; a head going back is `audit_rollback`; `audit
    verify --config` fails naming both heads and where they are held."""
    path = party_config(tmp_path, pki, "hospital-b")
    config = load_party_config(path, check_files=False)
    b = party_gossip(pki, "hospital-b", config.audit_log_path, config.audit_heads_folder)
    h1, h2, h3 = "11" * 32, "22" * 32, "33" * 32
    assert b.receive("hospital-a", to_message(a_head(pki, 5, h1))) is True
    with caplog.at_level(logging.ERROR, logger="smpc_ehr.party.gossip"):
        assert b.receive("hospital-a", to_message(a_head(pki, 5, h2))) is True
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and all(s in errors[0] for s in ("hospital-a", "seq 5", h1, h2))
    log = read_chain(config.audit_log_path)[0]
    assert (log[-1].kind, log[-1].fields) == (
        "audit_fork",
        {"sender": "hospital-a", "seq": 5, "held_hash": h1, "new_hash": h2},
    )
    assert b.receive("hospital-a", to_message(a_head(pki, 5, h2))) is False  # held already
    assert b.receive("hospital-a", to_message(a_head(pki, 3, h3))) is True
    log = read_chain(config.audit_log_path)[0]
    assert len(log) == 3 and (log[-1].kind, log[-1].fields) == (
        "audit_rollback",
        {"sender": "hospital-a", "seq": 3, "hash": h3, "last_seq": 5, "last_hash": h1},
    )
    rows = b.store.held("hospital-b")["hospital-a"]
    assert [(r.head.seq, r.head.hash, r.kept) for r in rows if r.head] == [
        (5, h1, ADVANCE),
        (5, h2, FORK),
        (3, h3, ROLLBACK),
    ]
    # A line whose signature does not verify is no evidence of a fork.
    b.store.record(SignedHead(**{**a_head(pki, 5, h1).__dict__, "hash": "44" * 32}), FORK)
    assert main(["audit", "verify", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    history = config.audit_heads_folder / "hospital-a.jsonl"
    assert (
        f"{history}: line 1 seq 5: hospital-a signed two different heads for seq 5: {h1} "
        f"(held by hospital-b, this line) and {h2} (held by hospital-b at {history} line 2): "
        "hospital-a forked its log"
    ) in err
    assert f"{history}: line 4: held head: its signature does not verify" in err
    assert "44" * 32 not in err and err.count("forked its log") == 1
    assert main(["audit", "show", "--config", str(path), "--json"]) == 0
    outcomes = [row["outcome"] for row in json.loads(capsys.readouterr().out)]
    assert outcomes[-2:] == [
        f"FORK: hospital-a signed two different audit heads for seq 5: {h1} and {h2}",
        "audit head of hospital-a went back from seq 5 to 3",
    ]


def test_heads_beyond_the_bounds_are_refused_and_disk_use_stays_bounded(
    tmp_path: Path, pki: PkiPaths
) -> None:
    """A member spamming valid heads: per day, KEEP_PER_DAY advancing heads go into the
    history (the latest always replaces the previous latest), MAX_EVIDENCE heads that go
    back are kept, the next is refused; the certificate is stored once."""
    now = [1_000_000_000.0]
    b = party_gossip(pki, "hospital-b", tmp_path / "log.jsonl", tmp_path / "heads", lambda: now[0])
    sent = KEEP_PER_DAY + 20
    for seq in range(1000, 1000 + sent):
        now[0] += 1.0
        assert b.receive("hospital-a", to_message(a_head(pki, seq, f"{seq:064x}"))) is True
    history = b.store.path_for("hospital-a")
    assert len(history.read_bytes().splitlines()) == KEEP_PER_DAY
    latest = json.loads(b.store.latest_path("hospital-a").read_bytes())
    assert (latest["seq"], latest["hash"]) == (999 + sent, f"{999 + sent:064x}")
    now[0] += DAY  # a day later the history takes heads again
    assert b.receive("hospital-a", to_message(a_head(pki, 5000, f"{5000:064x}"))) is True
    for seq in range(1, MAX_EVIDENCE + 1):  # heads going back: evidence, up to the bound
        assert b.receive("hospital-a", to_message(a_head(pki, seq, f"{seq:064x}"))) is True
    # The next is refused, and the refusal is audited as any refused call (the servicer).
    config = load_party_config(party_config(tmp_path, pki, "hospital-b"), check_files=False)
    runner = types.SimpleNamespace(audit=b._audit)
    servicer = PartyServicer(config, runner, Mesh(b._tls, {}), b)  # type: ignore[arg-type]
    caller = _CallContext(pki.cert_for("hospital-a").read_bytes())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        asyncio.run(servicer.Gossip(to_message(a_head(pki, 999, "99" * 32)), caller))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"already holding {MAX_EVIDENCE} heads of hospital-a" in str(refused.value.details())
    last = read_chain(tmp_path / "log.jsonl")[0][-1]
    assert (last.kind, last.fields["method"], last.fields["caller"]) == (
        "rpc_refused",
        "Gossip",
        "hospital-a",
    )
    assert f"already holding {MAX_EVIDENCE} heads" in last.fields["reason"]
    lines = history.read_bytes().splitlines()
    assert len(lines) == KEEP_PER_DAY + 1 + MAX_EVIDENCE
    assert all(len(line) <= MAX_LINE_BYTES for line in lines)
    assert b.store.certs_path("hospital-a").read_bytes().count(b"BEGIN CERTIFICATE") == 1
    # The stated bound (docs/security.md): per sender, per day since its first head,
    # KEEP_PER_DAY lines, plus MAX_EVIDENCE lines and the latest, each <= 1 KiB, plus at
    # most MAX_CERTS certificates of <= 16 KiB.
    used = sum(f.stat().st_size for f in (tmp_path / "heads").rglob("*") if f.is_file())
    days = 2
    assert used <= (days * KEEP_PER_DAY + MAX_EVIDENCE + 1) * 1024 + MAX_CERTS * 16 * 1024
    cert = len(pki.cert_for("hospital-a").read_bytes())
    assert used < (len(lines) + 2) * cert  # a line (~400 bytes) does not carry the cert
    # Everything kept is readable and checkable; a restarted receiver knows the bounds.
    rows = b.store.held("hospital-b")["hospital-a"]
    assert len(rows) == len(lines) and all(r.head is not None for r in rows)  # 5000: both
    again = party_gossip(pki, "hospital-b", tmp_path / "log2.jsonl", tmp_path / "heads")
    assert again.receive("hospital-a", to_message(a_head(pki, 5000, f"{5000:064x}"))) is False
    with pytest.raises(BadRequest, match="already holding"):
        again.receive("hospital-a", to_message(a_head(pki, 998, "98" * 32)))


def test_concurrent_receives_keep_every_head(tmp_path: Path, pki: PkiPaths) -> None:
    """Gossip calls run in worker threads: heads received at once are all kept, and the
    latest is the highest."""
    b = party_gossip(pki, "hospital-b", tmp_path / "log.jsonl", tmp_path / "heads")
    heads = [a_head(pki, seq, f"{seq:064x}") for seq in range(1, 41)]
    start = threading.Barrier(4)

    def send(part: list[SignedHead]) -> list[bool]:
        start.wait()
        return [b.receive("hospital-a", to_message(h)) for h in part]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(send, [heads[i::4] for i in range(4)]))
    assert all(all(r) for r in results)
    rows = b.store.held("hospital-b")["hospital-a"]
    assert sorted((r.head.seq, r.head.hash) for r in rows if r.head) == [
        (h.seq, h.hash) for h in heads
    ]
    assert json.loads(b.store.latest_path("hospital-a").read_bytes())["seq"] == 40


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
