"""The roster: who is in a federation, in which role, and where to reach them.

Every process loads the same roster. A member's id is its identity: it is written into
its certificate as the DNS SubjectAlternativeName, gRPC checks it on every connection,
and servers read it back from the TLS auth context. So ids must be DNS labels and
unique across all roles; otherwise one certificate could stand for two members.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from smpc_ehr.config._toml import (
    Table,
    read_toml_bytes,
    rel,
    resolve,
    root,
    toml_document,
    toml_table,
    write_text,
)
from smpc_ehr.errors import ConfigError

ROLES = ("party", "coordinator", "dealer", "analyst")

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_FEDERATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{64}$")


def check_fingerprint(text: str) -> str:
    """A certificate fingerprint as `certs show` prints it: `sha256:` and 64 hex digits
    (upper case and ':' between bytes accepted, returned in the printed form)."""
    value = text.strip().lower()
    if value.startswith("sha256:"):
        value = "sha256:" + value[len("sha256:") :].replace(":", "")
    if not _FINGERPRINT.match(value):
        raise ConfigError(
            f"{text!r} is not a certificate fingerprint: expected 'sha256:' and 64 hex digits, "
            "as `smpc-ehr certs show CERT` prints it"
        )
    return value


def check_identity(identity: object) -> str:
    """Return `identity` if it is a DNS label (it goes into certificates), else raise."""
    if not isinstance(identity, str) or not _DNS_LABEL.match(identity):
        raise ConfigError(
            f"id {identity!r} is not a valid identity: use 1-63 lowercase letters, digits "
            "and '-', not starting or ending with '-' (it becomes the certificate's DNS name)"
        )
    return identity


def parse_address(address: object, *, allow_port_zero: bool = False) -> tuple[str, int]:
    """Split "host:port" (IPv6 as "[::1]:port") into (host, port), checking both."""
    if not isinstance(address, str):
        raise ConfigError(f"address {address!r} must be a string 'host:port'")
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text:
        raise ConfigError(f"address {address!r} is not of the form 'host:port'")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ConfigError(f"address {address!r}: unbalanced '[' in IPv6 host")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ConfigError(f"address {address!r}: {host} is not an IPv6 address") from None
    elif ":" in host:
        raise ConfigError(f"address {address!r}: write IPv6 hosts in brackets, e.g. '[::1]:50051'")
    elif not _HOSTNAME.match(host):
        raise ConfigError(f"address {address!r}: {host!r} is not a host name or IP address")
    if not port_text.isdigit():
        raise ConfigError(f"address {address!r}: port {port_text!r} is not a number")
    port = int(port_text)
    low = 0 if allow_port_zero else 1
    if not low <= port <= 65535:
        raise ConfigError(f"address {address!r}: port must be between {low} and 65535")
    return host, port


@dataclass(frozen=True)
class Member:
    """One identity in the federation; analysts have no address (they only dial out)."""

    id: str
    role: str
    name: str
    address: str | None

    def __post_init__(self) -> None:
        check_identity(self.id)
        if self.role not in ROLES:
            raise ConfigError(f"{self.id}: unknown role {self.role!r}; expected one of {ROLES}")
        if self.role == "analyst":
            if self.address is not None:
                raise ConfigError(f"analyst {self.id!r} must not have an address")
        elif self.address is None:
            raise ConfigError(f"{self.role} {self.id!r} needs an address 'host:port'")
        else:
            parse_address(self.address)

    @property
    def host(self) -> str:
        """The host part of the address (brackets of IPv6 kept, as gRPC wants them)."""
        return parse_address(self.address)[0]

    @property
    def port(self) -> int:
        """The port part of the address."""
        return parse_address(self.address)[1]


@dataclass(frozen=True)
class Roster:
    """The validated roster; `source` is the file it came from (or is to be written to)."""

    federation: str
    ca_cert: Path
    coordinator: Member
    dealer: Member | None
    parties: tuple[Member, ...]
    analysts: tuple[Member, ...]
    source: Path
    version: int = 0
    """Raised by the operator on every change; a running member refuses a lower one."""
    revoked: frozenset[str] = frozenset()
    """SHA-256 fingerprints of certificates every member refuses (`[revoked]`)."""
    digest: str = ""
    """SHA-256 (hex) of the file bytes this roster was parsed from ("" if built in memory):
    what its detached signature is checked against, so the bytes parsed are the bytes
    checked."""
    signature_required: bool = False
    """Set by a member whose config says `[tls] require_signed_roster = true`."""

    def __post_init__(self) -> None:
        where = str(self.source)
        if not isinstance(self.federation, str) or not _FEDERATION.match(self.federation):
            raise ConfigError(
                f"{where}: [federation] name {self.federation!r} must be 1-63 letters, digits, "
                "'.', '_' or '-' (it is part of each certificate's URI)"
            )
        expected = [("coordinator", [self.coordinator])]
        expected.append(("dealer", [self.dealer] if self.dealer else []))
        expected += [("party", list(self.parties)), ("analyst", list(self.analysts))]
        for role, members in expected:
            for m in members:
                if m.role != role:
                    raise ConfigError(
                        f"{where}: {m.id!r} is listed as {role} but has role {m.role}"
                    )
        if not self.parties:
            raise ConfigError(f"{where}: the roster needs at least one [[parties]] entry")
        seen: dict[str, Member] = {}
        for m in self.members():
            if m.id in seen:
                other = seen[m.id]
                raise ConfigError(
                    f"{where}: id {m.id!r} is used by both the {other.role} and a {m.role}; "
                    "ids must be unique across all roles because each id names exactly one "
                    "certificate, and peers are authenticated by that id"
                )
            seen[m.id] = m

    def members(self) -> tuple[Member, ...]:
        """Every member: coordinator, dealer (if any), parties, analysts."""
        head = (self.coordinator,) + ((self.dealer,) if self.dealer else ())
        return head + self.parties + self.analysts

    def party_ids(self) -> tuple[str, ...]:
        """The parties' ids in roster order (the order MPC backends number them in)."""
        return tuple(p.id for p in self.parties)

    def identities(self) -> tuple[str, ...]:
        """Every id in the roster, in `members()` order."""
        return tuple(m.id for m in self.members())

    def member(self, identity: str) -> Member:
        """The member with this id; ConfigError if it is not in the roster."""
        for m in self.members():
            if m.id == identity:
                return m
        raise ConfigError(f"{self.source}: no member with id {identity!r} in the roster")

    def role_of(self, identity: str) -> str | None:
        """The role of `identity`, or None for strangers (used to authorise peers)."""
        for m in self.members():
            if m.id == identity:
                return m.role
        return None

    def party_index(self, identity: str) -> int:
        """The 0-based position of a party in the roster; ConfigError if not a party."""
        ids = self.party_ids()
        if identity not in ids:
            raise ConfigError(f"{self.source}: {identity!r} is not a party in the roster")
        return ids.index(identity)


def _member(table: Table, role: str, *, has_address: bool) -> Member:
    ident = table.get_str("id")
    name = table.get_str("name", ident)
    address = table.get_str("address") if has_address else None
    table.done()
    try:
        return Member(id=ident, role=role, name=name, address=address)
    except ConfigError as exc:
        raise table.wrap(exc) from None


def _revoked(top: Table) -> frozenset[str]:
    table = top.optional_table("revoked")
    if table is None:
        return frozenset()
    listed = table.get_str_list("fingerprints", ())
    table.done()
    try:
        return frozenset(check_fingerprint(f) for f in listed)
    except ConfigError as exc:
        raise table.wrap(exc) from None


def load_roster(path: Path | str, *, signature_required: bool = False) -> Roster:
    """Read and validate a roster file; any problem is a ConfigError naming file and key.

    The signature (config.roster_sig) is checked where the key files are, not here.
    """
    path = Path(path).resolve()
    data, raw = read_toml_bytes(path, "roster")
    top = root(data, path)
    version = top.get_int("version", 0, minimum=0)
    revoked = _revoked(top)
    fed = top.table("federation")
    federation = fed.get_str("name")
    ca_cert = resolve(path.parent, fed.get_str("ca_cert"))
    fed.done()
    coordinator = _member(top.table("coordinator"), "coordinator", has_address=True)
    dealer_table = top.optional_table("dealer")
    dealer = _member(dealer_table, "dealer", has_address=True) if dealer_table else None
    parties = tuple(_member(t, "party", has_address=True) for t in top.table_list("parties"))
    analysts = tuple(_member(t, "analyst", has_address=False) for t in top.table_list("analysts"))
    top.done()
    return Roster(
        federation=federation,
        ca_cert=ca_cert,
        coordinator=coordinator,
        dealer=dealer,
        parties=parties,
        analysts=analysts,
        source=path,
        version=version,
        revoked=revoked,
        digest=hashlib.sha256(raw).hexdigest(),
        signature_required=signature_required,
    )


def roster_to_toml(roster: Roster, base: Path | None = None) -> str:
    """The roster as TOML; `ca_cert` is written relative to `base` (default: its folder)."""
    folder = base if base is not None else roster.source.parent

    def block(m: Member, header: str, array: bool) -> str:
        return toml_table(header, {"id": m.id, "name": m.name, "address": m.address}, array=array)

    blocks = [
        toml_table(
            "federation", {"name": roster.federation, "ca_cert": rel(roster.ca_cert, folder)}
        )
    ]
    blocks.append(block(roster.coordinator, "coordinator", False))
    if roster.dealer:
        blocks.append(block(roster.dealer, "dealer", False))
    blocks += [block(p, "parties", True) for p in roster.parties]
    blocks += [block(a, "analysts", True) for a in roster.analysts]
    if roster.revoked:
        blocks.append(toml_table("revoked", {"fingerprints": sorted(roster.revoked)}))
    head = f"version = {roster.version}\n\n" if roster.version else ""
    return head + toml_document(blocks)


def write_roster(roster: Roster, path: Path | str) -> Path:
    """Write `roster` to `path` (paths made relative to its folder); returns the path."""
    path = Path(path)
    return write_text(path, roster_to_toml(roster, path.parent))
