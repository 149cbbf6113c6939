"""The audit log's hash chain and signed heads: each kind of tampering is named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from smpc_ehr.audit.chain import GENESIS, AuditError, AuditLog, canonical
from smpc_ehr.audit.heads import (
    ADVANCE,
    FORK,
    HeadStore,
    HeldHead,
    SignedHead,
    check_head,
    sign_head,
)
from smpc_ehr.audit.verify import read_chain, verify_log
from smpc_ehr.cli import main
from smpc_ehr.config.party import write_party_config
from smpc_ehr.pki.certs import PkiPaths, init_federation_pki
from tests.test_pki import roster_at

PARTY = "hospital-a"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    folder = tmp_path_factory.mktemp("audit-fed")
    return init_federation_pki(roster_at(folder), folder / "certs")


def write_log(path: Path, n: int = 5) -> AuditLog:
    log = AuditLog(path)
    for i in range(n):
        log.append("job_received", {"job": f"j{i}", "params": {"age": "40"}})
    return log


def head_of(pki: PkiPaths, party: str, seq: int, hash: str) -> SignedHead:
    return sign_head(
        party, seq, hash, pki.key_for(party).read_bytes(), pki.cert_for(party).read_bytes()
    )


def held(head: SignedHead, holder: str = "hospital-b") -> HeldHead:
    return HeldHead(holder, Path(f"{holder}/heads/{head.party}.jsonl"), 1, head)


def test_entries_chain_with_independently_computed_hashes(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_log(path, 3)
    prev = GENESIS
    for seq, line in enumerate(path.read_bytes().splitlines(), start=1):
        value = json.loads(line)
        assert line == json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        assert value["seq"] == seq and value["prev"] == prev
        body = {k: v for k, v in value.items() if k != "hash"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        assert value["hash"] == hashlib.sha256(text).hexdigest()
        prev = value["hash"]
    entries, problem = read_chain(path)
    assert problem is None and [e.seq for e in entries] == [1, 2, 3]


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    first = write_log(path, 2)
    again = AuditLog(path)
    assert again.head == first.head
    again.append("process_start")
    entries, problem = read_chain(path)
    assert problem is None and entries[-1].seq == 3 and entries[-1].prev == first.head[1]


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_one_changed_byte_is_named(tmp_path: Path, pki: PkiPaths) -> None:
    path = tmp_path / "a.jsonl"
    write_log(path)
    data = bytearray(path.read_bytes())
    third = sum(len(line) for line in lines_of(path)[:2])
    at = data.index(b'"age":"40"', third) + len(b'"age":"')
    data[at] = ord("5")  # age 40 -> 50 in entry 3
    path.write_bytes(bytes(data))
    entries, problems = verify_log(path, PARTY, [], pki.ca_cert.read_bytes())
    assert len(entries) == 2
    assert (problems[0].line, problems[0].seq) == (3, 3)
    assert "hash does not match" in problems[0].message


def test_changed_whitespace_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_log(path)
    lines = lines_of(path)
    lines[1] = lines[1].replace(b",", b", ", 1)
    path.write_bytes(b"".join(lines))
    _, problem = read_chain(path)
    assert problem is not None and (problem.line, problem.seq) == (2, 2)
    assert "canonical" in problem.message


def test_removed_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_log(path)
    lines = lines_of(path)
    del lines[2]
    path.write_bytes(b"".join(lines))
    _, problem = read_chain(path)
    assert problem is not None and (problem.line, problem.seq) == (3, 3)
    assert "seq 4 where seq 3 belongs" in problem.message


def test_reordered_entries_are_named(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_log(path)
    lines = lines_of(path)
    lines[1], lines[3] = lines[3], lines[1]
    path.write_bytes(b"".join(lines))
    _, problem = read_chain(path)
    assert problem is not None and (problem.line, problem.seq) == (2, 2)


def test_partial_last_line_is_named_and_not_appended_after(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    write_log(path, 3)
    path.write_bytes(path.read_bytes() + b'{"fields":{"job":')  # a crash mid-write
    _, problem = read_chain(path)
    assert problem is not None and (problem.line, problem.seq) == (4, 4)
    assert "partial" in problem.message
    with pytest.raises(AuditError, match=r"line 4 seq 4: partial"):
        AuditLog(path)


def test_truncation_is_detected_from_a_head_another_party_holds(
    tmp_path: Path, pki: PkiPaths
) -> None:
    path = tmp_path / "a.jsonl"
    log = write_log(path, 5)
    head = head_of(pki, PARTY, *log.head)
    path.write_bytes(b"".join(lines_of(path)[:3]))  # entries 4 and 5 dropped: a valid chain
    assert read_chain(path)[1] is None
    _, problems = verify_log(path, PARTY, [held(head)], pki.ca_cert.read_bytes())
    assert len(problems) == 1 and (problems[0].line, problems[0].seq) == (4, 4)
    assert "truncated" in problems[0].message and "hospital-b" in problems[0].message


def test_a_rechained_rewrite_differs_from_a_held_head(tmp_path: Path, pki: PkiPaths) -> None:
    path = tmp_path / "a.jsonl"
    log = write_log(path, 4)
    head = head_of(pki, PARTY, 3, read_chain(path)[0][2].hash)
    assert log.head[0] == 4
    # Rewrite from entry 2 on with a valid chain: only the head shows it.
    path.write_bytes(b"".join(lines_of(path)[:1]))
    rewritten = AuditLog(path)
    for i in range(3):
        rewritten.append("job_received", {"job": f"other{i}"})
    _, problems = verify_log(path, PARTY, [held(head)], pki.ca_cert.read_bytes())
    assert len(problems) == 1 and (problems[0].line, problems[0].seq) == (3, 3)
    assert "rewritten" in problems[0].message


def test_head_signatures(pki: PkiPaths) -> None:
    ca = pki.ca_cert.read_bytes()
    head = head_of(pki, PARTY, 7, "ab" * 32)
    check_head(head, ca)
    assert SignedHead.from_json(head.to_json()) == head
    with pytest.raises(ValueError, match="signature does not verify"):
        check_head(SignedHead(**{**head.__dict__, "seq": 8}), ca)
    with pytest.raises(ValueError, match="certificate is 'hospital-b'"):
        other = head_of(pki, "hospital-b", 7, "ab" * 32)
        check_head(SignedHead(**{**other.__dict__, "party": PARTY}), ca)


def test_a_head_with_a_bad_signature_is_a_problem(tmp_path: Path, pki: PkiPaths) -> None:
    path = tmp_path / "a.jsonl"
    log = write_log(path, 2)
    head = head_of(pki, PARTY, *log.head)
    forged = SignedHead(**{**head.__dict__, "hash": "00" * 32})
    _, problems = verify_log(path, PARTY, [held(forged)], pki.ca_cert.read_bytes())
    assert len(problems) == 1 and "signature does not verify" in problems[0].message


def test_head_store_is_append_only_per_sender_and_keeps_each_certificate_once(
    tmp_path: Path, pki: PkiPaths
) -> None:
    store = HeadStore(tmp_path / "heads")
    first = head_of(pki, PARTY, 1, "11" * 32)
    second = head_of(pki, PARTY, 2, "22" * 32)
    store.record(first)
    store.record(second, FORK, "2026-12-06T10:00:00.000Z")
    rows = store.held("hospital-b")[PARTY]
    assert [r.head for r in rows] == [first, second] and [r.line for r in rows] == [1, 2]
    assert [r.kept for r in rows] == [ADVANCE, FORK]
    digest = hashlib.sha256(first.cert.encode()).hexdigest()
    lines = store.path_for(PARTY).read_bytes().splitlines()
    for line, head in zip(lines, [first, second], strict=True):
        value = json.loads(line)
        assert line == canonical(value) and value["cert_sha256"] == digest
        assert {k: value[k] for k in ("party", "seq", "hash", "time", "signature")} == {
            k: getattr(head, k) for k in ("party", "seq", "hash", "time", "signature")
        }
    assert store.certs_path(PARTY).read_bytes().count(b"BEGIN CERTIFICATE") == 1
    # A file written before certificates were stored once (whole heads) is still read.
    old = tmp_path / "old"
    old.mkdir()
    (old / f"{PARTY}.jsonl").write_bytes(canonical(first.__dict__) + b"\n")
    assert [r.head for r in HeadStore(old).held("hospital-b")[PARTY]] == [first]
    # A line naming a certificate that is not stored is unreadable, and says so.
    store.certs_path(PARTY).unlink()
    rows = HeadStore(store.folder).held("hospital-b")[PARTY]
    assert rows[0].head is None and "is not stored" in rows[0].problem


def party_config(tmp_path: Path, pki: PkiPaths, party: str) -> Path:
    """A party config over the module's federation (data need not exist: not checked)."""
    roster = pki.ca_cert.parent.parent / "roster.toml"
    return write_party_config(
        tmp_path / f"{party}.toml",
        id=party,
        roster=roster,
        key=pki.key_for(party),
        cert=pki.cert_for(party),
        data=tmp_path / "data",
        state=tmp_path / "state" / party,
    )


def test_cli_verify_config_checks_the_chain_and_held_heads(
    tmp_path: Path, pki: PkiPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    path = party_config(tmp_path, pki, PARTY)
    log = write_log(tmp_path / "state" / PARTY / "audit" / f"{PARTY}.jsonl", 3)
    store = HeadStore(tmp_path / "state" / PARTY / "audit" / "heads")
    store.record(head_of(pki, "hospital-b", 4, "cd" * 32))
    assert main(["audit", "verify", "--config", str(path)]) == 0
    assert "hospital-a: ok: 3 valid entries" in capsys.readouterr().out
    forged = head_of(pki, "hospital-b", 5, "cd" * 32)
    store.record(SignedHead(**{**forged.__dict__, "seq": 6}))
    assert main(["audit", "verify", "--config", str(path)]) == 1
    assert "hospital-b.jsonl: line 2: held head: its signature does not verify" in (
        capsys.readouterr().err
    )
    data = log.path.read_bytes()
    log.path.write_bytes(data[:-1])  # the last line loses its end: a partial entry
    assert main(["audit", "verify", "--config", str(path)]) == 1
    assert "first broken entry: " in capsys.readouterr().err.splitlines()[0]
    assert main(["audit", "show", "--config", str(path), "--json"]) == 0
    shown = capsys.readouterr()
    assert "line 3 seq 3: partial" in shown.err
    assert [r["job"] for r in json.loads(shown.out)] == ["j0", "j1"]


def test_after_a_failed_write_nothing_more_is_appended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = write_log(tmp_path / "a.jsonl", 1)

    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("smpc_ehr.audit.chain.os.write", full)
    with pytest.raises(AuditError, match="No space left"):
        log.append("job_received")
    monkeypatch.undo()
    with pytest.raises(AuditError, match="not written any more"):
        log.append("job_received")
    entries, problem = read_chain(log.path)
    assert problem is None and len(entries) == 1


def test_cli_show_prints_an_aligned_table(
    tmp_path: Path, pki: PkiPaths, capsys: pytest.CaptureFixture[str]
) -> None:
    path = party_config(tmp_path, pki, PARTY)
    log = AuditLog(tmp_path / "state" / PARTY / "audit" / f"{PARTY}.jsonl")
    log.append("job_received", {"job": "j0", "analyst": "ann", "params": {"age": "40"}})
    log.append("job_refused", {"job": "j0", "reason": "not approved"})
    log.append("job_received", {"job": "j10", "analyst": "bo", "params": {}})
    assert main(["audit", "show", "--config", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "party",
        "time",
        "job",
        "analyst",
        "template",
        "parameters",
        "outcome",
    ]
    assert set(lines[1]) == {"-", " "} and len(lines) == 4
    first, second = lines[2], lines[3]
    assert first.split()[2:4] == ["j0", "ann"] and first.endswith("refused: not approved")
    assert second.split()[2:4] == ["j10", "bo"]
    # aligned: the analyst column starts where its header does, whatever the job id
    assert first.index(" ann ") + 1 == second.index(" bo ") + 1 == lines[0].index("analyst")
