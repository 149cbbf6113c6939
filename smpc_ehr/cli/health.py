"""`smpc-ehr health` and `smpc-ehr templates`: ask running members how they are.

Each role checks the members it connects to in a job, and its own server:
a party its fellow parties and the dealer, the coordinator the parties, an analyst
the coordinator (the dealer dials nobody). Every call is mutual TLS under the config's
own identity with a short deadline; a member that does not answer in time, or whose
certificate is not the roster's id, is reported unreachable with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from smpc_ehr.analyses.common.text import table
from smpc_ehr.cli.config_check import MemberConfig, load_any_config
from smpc_ehr.config.roster import Member, Roster
from smpc_ehr.errors import SmpcEhrError
from smpc_ehr.transport.tls import TlsIdentity
from smpc_ehr.wire import (
    coordinator_pb2,
    coordinator_pb2_grpc,
    dealer_pb2_grpc,
    party_pb2,
    party_pb2_grpc,
)

_STUBS: dict[str, Callable[[grpc.Channel], Any]] = {
    "party": party_pb2_grpc.PartyStub,
    "coordinator": coordinator_pb2_grpc.CoordinatorStub,
    "dealer": dealer_pb2_grpc.DealerStub,
}


@dataclass(frozen=True)
class HealthRow:
    """One member's answer (or why there was none)."""

    member: Member
    reply: party_pb2.HealthReply | None
    problem: str = ""

    @property
    def reachable(self) -> bool:
        """Answered over mutual TLS as the roster's id."""
        return self.reply is not None


def members_to_check(role: str, ident: str, roster: Roster) -> list[Member]:
    """The members a process of `role` reaches, its own server first."""
    own = [] if role == "analyst" else [roster.member(ident)]
    if role == "party":
        others = [p for p in roster.parties if p.id != ident]
        return own + others + ([roster.dealer] if roster.dealer else [])
    if role == "coordinator":
        return own + list(roster.parties)
    if role == "analyst":
        return [roster.coordinator]
    return own


def member_health(tls: TlsIdentity, member: Member, timeout: float) -> HealthRow:
    """Ask `member` for its Health, over mutual TLS, waiting at most `timeout` s."""
    with tls.blocking_channel(str(member.address), member.id) as channel:
        stub = _STUBS[member.role](channel)
        try:
            return HealthRow(member, stub.Health(party_pb2.HealthRequest(), timeout=timeout))
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            details = exc.details() if hasattr(exc, "details") else str(exc)
            return HealthRow(member, None, f"{code.name if code else 'error'}: {details}")


def _identity(config_path: Path | str) -> tuple[str, MemberConfig, TlsIdentity]:
    role, config = load_any_config(config_path)
    tls = TlsIdentity.from_files(
        config.id, config.roster.ca_cert, config.cert, config.key, role=role
    )
    return role, config, tls


def check_health(config_path: Path | str, timeout: float = 3.0) -> list[HealthRow]:
    """The Health of every member this config's role reaches, asked at once."""
    role, config, tls = _identity(config_path)
    members = members_to_check(role, config.id, config.roster)
    if not members:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(members))) as pool:
        return list(pool.map(lambda m: member_health(tls, m, timeout), members))


def _days_left(not_after: int, now: float) -> str:
    return "?" if not not_after else str(int((not_after - now) // 86400))


def health_table(rows: list[HealthRow], now: float | None = None) -> str:
    """id, role, address, reachable, certificate days left, version, backends ready."""
    now = time.time() if now is None else now
    header = ["id", "role", "address", "reachable", "cert days", "version", "backends ready"]
    lines = []
    for row in rows:
        m, r = row.member, row.reply
        if r is None:
            lines.append([m.id, m.role, str(m.address), "NO", "-", "-", "-"])
            continue
        ready = ", ".join(r.backends_ready) if m.role == "party" else "(n/a)"
        days = _days_left(r.cert_not_after, now)
        lines.append([m.id, m.role, str(m.address), "yes", days, r.version, ready or "(none)"])
    problems = [f"{row.member.id}: {row.problem}" for row in rows if row.problem]
    return "\n".join([table(header, lines, "lllllll"), *problems])


def approvals(config_path: Path | str, timeout: float = 5.0) -> coordinator_pb2.ApprovalsReply:
    """Ask the coordinator which templates each hospital approves (analysts only)."""
    role, config, tls = _identity(config_path)
    if role != "analyst":
        raise SmpcEhrError(f"{config_path}: `templates` needs an analyst config, not a {role}'s")
    coordinator = config.roster.coordinator
    with tls.blocking_channel(str(coordinator.address), coordinator.id) as channel:
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)
        try:
            reply: coordinator_pb2.ApprovalsReply = stub.Approvals(
                coordinator_pb2.ApprovalsRequest(), timeout=timeout
            )
        except grpc.RpcError as exc:
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise SmpcEhrError(
                f"cannot ask the coordinator {coordinator.address}: {details}"
            ) from None
    return reply


def approvals_table(reply: coordinator_pb2.ApprovalsReply) -> str:
    """Template name and hash by hospital: "yes" where it approves, "-" where not, "?"
    where the hospital did not answer."""
    hospitals = [p.party for p in reply.parties]
    names: dict[str, str] = {}
    for party in reply.parties:
        for t in party.approved:
            names[t.hash] = names.get(t.hash) or t.name
    approved = {p.party: {t.hash for t in p.approved} for p in reply.parties}
    reachable = {p.party: p.reachable for p in reply.parties}
    rows = []
    for h in sorted(names, key=lambda h: (names[h] or "~", h)):
        cells = [("yes" if h in approved[p] else "-") if reachable[p] else "?" for p in hospitals]
        rows.append([names[h] or "(by hash)", h, *cells])
    text = table(["template", "hash", *hospitals], rows) if rows else "no template is approved"
    notes = [f"{p.party}: not reachable ({p.error})" for p in reply.parties if not p.reachable]
    everywhere = [r for r in rows if all(c == "yes" for c in r[2:])]
    summary = f"{len(everywhere)} of {len(rows)} templates are approved by every hospital"
    return "\n".join([text, summary, *notes])
