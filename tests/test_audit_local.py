"""The audit trail on a real local federation (slow tier, the shared fed3): one job is
in every party's log, as is a refused call, the parties hold each other's signed
heads, and `smpc-ehr audit verify --state` names a changed byte and a truncation
(made while the federation is idle, and undone). Fast tier: `verify --state` on a
federation's files (no process) names a fork seen across two holders."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import grpc
import pytest

from smpc_ehr.audit.chain import AuditLog
from smpc_ehr.audit.heads import HeadStore, sign_head
from smpc_ehr.cli import main
from smpc_ehr.client import Client
from smpc_ehr.config.roster import load_roster
from smpc_ehr.local.federation import LocalFederation, audit_log_path, party_config_path
from smpc_ehr.pki.certs import init_federation_pki
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import party_pb2
from smpc_ehr.wire.party_pb2_grpc import PartyStub
from tests._stats_jobs import template
from tests.test_audit_chain import party_config
from tests.test_pki import ROSTER

PARTIES = ("hospital-1", "hospital-2", "hospital-3")


def heads_of(state: Path, holder: str) -> dict[str, int]:
    """The highest seq `holder` holds of each other party (0 for a file still empty:
    the holder may be writing its first head as the test reads)."""
    store = HeadStore(state / "state" / holder / "audit" / "heads")
    return {
        party: max((r.head.seq for r in rows if r.head is not None), default=0)
        for party, rows in store.held(holder).items()
    }


def log_of(state: Path, party: str) -> list[dict]:
    return [json.loads(line) for line in audit_log_path(state, party).read_bytes().splitlines()]


def test_a_job_is_logged_heads_are_exchanged_and_tampering_is_named(
    fed3: LocalFederation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    certs = fed3.state_dir / "certs"
    analyst = TlsIdentity.from_files(
        "analyst", certs / "ca.pem", certs / "analyst.pem", certs / "analyst.key"
    )
    address = fed3.addresses["hospital-1"]
    with (
        analyst.blocking_channel(address, "hospital-1") as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        PartyStub(channel).Prepare(party_pb2.PrepareRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with Client.from_state(fed3.state_dir) as client:
        client.run(template("rare_disease_count"), {"codes": "E75.22"})
    logs = {p: log_of(fed3.state_dir, p) for p in PARTIES}
    for party, log in logs.items():
        kinds = [e["kind"] for e in log]
        assert kinds[0] == "process_start"
        assert kinds[-3:] == ["job_accepted", "data_read", "outputs_sent"]
        config = party_config_path(fed3.state_dir, party).read_bytes()
        assert log[0]["fields"]["config_sha256"] == hashlib.sha256(config).hexdigest()
        received = [e for e in log if e["kind"] == "job_received"][-1]
        assert received["fields"]["params"]["codes"] == "E75.22"
        assert received["fields"]["analyst"] == "analyst"
    refusal = [e["fields"] for e in logs["hospital-1"] if e["kind"] == "rpc_refused"][-1]
    assert (refusal["method"], refusal["caller"]) == ("Prepare", "analyst")
    # After the job each party sends its head; wait until each holds the others' last.
    end = time.monotonic() + 20
    while time.monotonic() < end:
        held = {p: heads_of(fed3.state_dir, p) for p in PARTIES}
        if all(held[h].get(p) == len(logs[p]) for h in PARTIES for p in PARTIES if p != h):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"heads not exchanged: {held}")

    assert main(["audit", "verify", "--state", str(fed3.state_dir)]) == 0
    assert capsys.readouterr().out.count(": ok: ") == 3
    assert main(["audit", "show", "--state", str(fed3.state_dir), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    job = [r for r in rows if "codes=E75.22" in r["parameters"] and r["party"] == "hospital-2"]
    assert job and job[-1]["template"] == "rare_disease_count"
    assert job[-1]["outcome"] == "outputs sent to coordinator"

    # Tampering, in place while the federation is idle; the log is restored after.
    path = audit_log_path(fed3.state_dir, "hospital-2")
    original = path.read_bytes()
    lines = original.splitlines(keepends=True)
    n = len(lines)
    flipped = bytearray(lines[n - 2])
    flipped[flipped.index(b'"job":"') + 7] ^= 1  # one byte of the job id in entry n-1
    try:
        path.write_bytes(b"".join([*lines[: n - 2], bytes(flipped), lines[n - 1]]))
        assert main(["audit", "verify", "--state", str(fed3.state_dir)]) == 1
        err = capsys.readouterr().err
        assert f"hospital-2.jsonl: line {n - 1} seq {n - 1}: entry is broken" in err

        path.write_bytes(b"".join(lines[: n - 2]))  # the job's last two entries dropped
        assert main(["audit", "verify", "--state", str(fed3.state_dir)]) == 1
        err = capsys.readouterr().err
        assert f"hospital-2.jsonl: line {n - 1} seq {n - 1}: the log ends after seq {n - 2}" in err
        assert "truncated" in err
    finally:
        path.write_bytes(original)
    assert main(["audit", "verify", "--state", str(fed3.state_dir)]) == 0


def test_verify_state_names_a_fork_across_holders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """hospital-a shows hospital-b one head for seq 5 and hospital-c another (each
    holder alone sees nothing wrong): `verify --state` names both, where each is held."""
    state = tmp_path / "fed"
    state.mkdir()
    roster_path = state / "roster.toml"
    third = '[[parties]]\nid = "hospital-c"\naddress = "127.0.0.1:50053"\n'
    roster_path.write_text(ROSTER.format(fed="forked") + third)
    pki = init_federation_pki(load_roster(roster_path), state / "certs")
    for party in ("hospital-a", "hospital-b", "hospital-c"):
        assert party_config(state, pki, party) == party_config_path(state, party)
    log = AuditLog(state / "state" / "hospital-a" / "audit" / "hospital-a.jsonl")
    for i in range(5):
        log.append("job_received", {"job": f"j{i}"})
    real = log.head[1]
    other = "ab" * 32
    key, cert = pki.key_for("hospital-a").read_bytes(), pki.cert_for("hospital-a").read_bytes()
    held_by = {}
    for holder, hash in (("hospital-b", real), ("hospital-c", other)):
        store = HeadStore(state / "state" / holder / "audit" / "heads")
        store.record(sign_head("hospital-a", 5, hash, key, cert))
        held_by[holder] = store.path_for("hospital-a")
    assert main(["audit", "verify", "--state", str(state)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{held_by['hospital-b']}: line 1 seq 5: hospital-a signed two different heads for "
        f"seq 5: {real} (held by hospital-b, this line) and {other} (held by hospital-c at "
        f"{held_by['hospital-c']} line 1): hospital-a forked its log"
    ) in err
