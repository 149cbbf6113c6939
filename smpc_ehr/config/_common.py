"""Checks shared by the party, coordinator, dealer and analyst config loaders."""

from __future__ import annotations

import logging
import stat
from dataclasses import dataclass
from pathlib import Path

from smpc_ehr.config._toml import Table, read_toml, resolve, root
from smpc_ehr.config.roster import Member, Roster, load_roster, parse_address
from smpc_ehr.config.roster_sig import check_roster_signature
from smpc_ehr.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

log = logging.getLogger("smpc_ehr.config")


def existing_file(table: Table, key: str, path: Path, what: str) -> Path:
    """`path` if it is a file; ConfigError naming the key and what the file is for."""
    if not path.is_file():
        raise table.error(key, f"{what} not found: {path}")
    return path


def existing_dir(table: Table, key: str, path: Path, what: str) -> Path:
    """`path` if it is a folder."""
    if not path.is_dir():
        raise table.error(key, f"{what} folder not found: {path}")
    return path


def warn_if_key_readable(path: Path) -> None:
    """Log a warning when a private key file can be read by group or others.

    Only a warning: some deployments mount keys via secrets stores with other modes.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "private key %s is accessible to group/others (mode %o); run: chmod 600 %s",
            path,
            stat.S_IMODE(mode),
            path,
        )


def read_log_level(top: Table) -> str:
    """The optional [log] level, default INFO."""
    table = top.optional_table("log")
    if table is None:
        return "INFO"
    level = str(table.get_str("level", "INFO")).upper()
    if level not in LOG_LEVELS:
        raise table.error("level", f"must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    table.done()
    return level


def check_log_level(level: str) -> str:
    """Upper-cased `level` if it is a logging level name, for the writers."""
    if level.upper() not in LOG_LEVELS:
        raise ConfigError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    return level.upper()


def roster_member(table: Table, roster: Roster, ident: str, role: str) -> Member:
    """The roster entry for a config's id, which must have the given role."""
    actual = roster.role_of(ident)
    if actual is None:
        raise table.error("id", f"{ident!r} is not in the roster {roster.source}")
    if actual != role:
        raise table.error("id", f"{ident!r} has role {actual} in the roster, not {role}")
    return roster.member(ident)


def default_listen(member: Member) -> str:
    """Listen on all interfaces at the port the roster gives this member."""
    return f"0.0.0.0:{member.port}"


def read_listen(table: Table, member: Member) -> str:
    """The optional listen address (port 0 allowed: the OS picks one, e.g. in tests)."""
    listen = table.get_str("listen", None)
    if listen is None:
        return default_listen(member)
    try:
        parse_address(listen, allow_port_zero=True)
    except ConfigError as exc:
        raise table.error("listen", str(exc)) from None
    return str(listen)


def check_identity_files(table: Table, roster: Roster, key: Path, cert: Path) -> None:
    """Key, certificate and federation CA certificate must exist before a process starts."""
    existing_file(table, "key", key, "private key")
    existing_file(table, "cert", cert, "certificate")
    if not roster.ca_cert.is_file():
        raise ConfigError(f"{roster.source}: [federation] ca_cert not found: {roster.ca_cert}")
    check_roster_signature(roster)
    warn_if_key_readable(key)


def read_require_signed_roster(top: Table) -> bool:
    """The optional `[tls] require_signed_roster` (default false: a local federation's
    roster is written by `local up` on the same machine)."""
    table = top.optional_table("tls")
    if table is None:
        return False
    required = bool(table.get_bool("require_signed_roster", False))
    table.done()
    return required


@dataclass(frozen=True)
class IdentitySection:
    """What every process config starts with: who it is, its roster and its TLS files.

    `top` is the whole document and `table` the role's own table; the caller reads its
    extra keys from them and then calls `done()` on both (unknown keys are errors).
    """

    path: Path
    base: Path
    top: Table
    table: Table
    id: str
    roster: Roster
    member: Member
    key: Path
    cert: Path


def read_identity_section(path: Path | str, role: str) -> IdentitySection:
    """Open `path` (a `role` config), check its id has that role in the roster it names."""
    path = Path(path).resolve()
    base = path.parent
    top = root(read_toml(path, f"{role} config"), path)
    table = top.table(role)
    ident = table.get_str("id")
    roster = load_roster(
        resolve(base, table.get_str("roster")), signature_required=read_require_signed_roster(top)
    )
    member = roster_member(table, roster, ident, role)
    key = resolve(base, table.get_str("key"))
    cert = resolve(base, table.get_str("cert"))
    return IdentitySection(path, base, top, table, ident, roster, member, key, cert)
