"""`smpc-ehr health` and `templates` without a federation: whom each role checks, and
the tables built from (made-up) replies."""

from __future__ import annotations

from smpc_ehr.cli.health import HealthRow, approvals_table, health_table, members_to_check
from smpc_ehr.config.roster import load_roster
from smpc_ehr.wire import coordinator_pb2, party_pb2
from tests.federations import ROOT

ROSTER = load_roster(ROOT / "parties" / "roster.toml")
DAY = 86400


def ids(role: str, ident: str) -> list[str]:
    return [m.id for m in members_to_check(role, ident, ROSTER)]


def test_each_role_checks_whom_it_connects_to() -> None:
    assert ids("party", "hospital-b") == ["hospital-b", "hospital-a", "hospital-c", "dealer"]
    assert ids("coordinator", "coordinator") == [
        "coordinator",
        "hospital-a",
        "hospital-b",
        "hospital-c",
    ]
    assert ids("dealer", "dealer") == ["dealer"]
    assert ids("analyst", "analyst") == ["coordinator"]


def test_health_table() -> None:
    now = 1_000_000_000.0
    up = party_pb2.HealthReply(
        identity="hospital-a",
        role="party",
        version="9.9",
        backends_ready=["mpyc", "crypten"],
        cert_not_after=int(now + 40 * DAY + 5),
    )
    rows = [
        HealthRow(ROSTER.member("hospital-a"), up),
        HealthRow(ROSTER.member("hospital-b"), None, "UNAVAILABLE: refused"),
    ]
    lines = health_table(rows, now=now).splitlines()
    expected = ["hospital-a", "party", "127.0.0.1:50051", "yes", "40", "9.9", "mpyc, crypten"]
    assert lines[2].split("  ")[0] == "hospital-a"
    assert [cell.strip() for cell in lines[2].split("  ") if cell.strip()] == expected
    assert lines[3].split() == ["hospital-b", "party", "127.0.0.1:50052", "NO", "-", "-", "-"]
    assert lines[4] == "hospital-b: UNAVAILABLE: refused"


def test_approvals_table() -> None:
    count = party_pb2.ApprovedTemplate(hash="sha256:" + "1" * 64, name="count")
    pinned = party_pb2.ApprovedTemplate(hash="sha256:" + "2" * 64)
    reply = coordinator_pb2.ApprovalsReply(
        parties=[
            coordinator_pb2.PartyApprovals(party="a", reachable=True, approved=[count, pinned]),
            coordinator_pb2.PartyApprovals(party="b", reachable=True, approved=[count]),
            coordinator_pb2.PartyApprovals(party="c", reachable=False, error="DEADLINE_EXCEEDED"),
        ]
    )
    lines = approvals_table(reply).splitlines()
    assert lines[0].split() == ["template", "hash", "a", "b", "c"]
    assert lines[2].split() == ["count", count.hash, "yes", "yes", "?"]
    assert lines[3].split() == ["(by", "hash)", pinned.hash, "yes", "-", "?"]
    assert lines[4] == "0 of 2 templates are approved by every hospital"
    assert lines[5] == "c: not reachable (DEADLINE_EXCEEDED)"
