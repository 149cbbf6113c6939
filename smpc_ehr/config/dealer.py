"""The dealer's config: its identity, key and certificate (CrypTen backend only).

The id must be the roster's `[dealer]`; the roster itself refuses a dealer id that
is also a party's or the coordinator's, because one certificate would then stand
for two roles and the dealer could learn a party's seed and shares at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from smpc_ehr.config._common import (
    check_identity_files,
    check_log_level,
    read_listen,
    read_log_level,
    roster_member,
)
from smpc_ehr.config._toml import (
    read_toml,
    rel,
    resolve,
    root,
    toml_document,
    toml_table,
    write_text,
)
from smpc_ehr.config.roster import Roster, load_roster


@dataclass(frozen=True)
class DealerConfig:
    """A validated dealer config."""

    id: str
    roster: Roster
    listen: str
    key: Path
    cert: Path
    log_level: str
    source: Path


def load_dealer_config(path: Path | str, *, check_files: bool = True) -> DealerConfig:
    """Read and validate a dealer config; its id must be the roster's dealer."""
    path = Path(path).resolve()
    base = path.parent
    top = root(read_toml(path, "dealer config"), path)
    table = top.table("dealer")
    ident = table.get_str("id")
    roster = load_roster(resolve(base, table.get_str("roster")))
    member = roster_member(table, roster, ident, "dealer")
    listen = read_listen(table, member)
    key = resolve(base, table.get_str("key"))
    cert = resolve(base, table.get_str("cert"))
    table.done()
    if check_files:
        check_identity_files(table, roster, key, cert)
    log_level = read_log_level(top)
    top.done()
    return DealerConfig(
        id=ident,
        roster=roster,
        listen=listen,
        key=key,
        cert=cert,
        log_level=log_level,
        source=path,
    )


def write_dealer_config(
    path: Path | str,
    *,
    id: str,
    roster: Path | str,
    key: Path | str,
    cert: Path | str,
    listen: str | None = None,
    log_level: str = "INFO",
) -> Path:
    """Write a dealer config; paths as in `write_party_config`."""
    path = Path(path)
    base = path.parent
    values = {
        "id": id,
        "roster": rel(roster, base),
        "listen": listen,
        "key": rel(key, base),
        "cert": rel(cert, base),
    }
    text = toml_document(
        [
            toml_table("dealer", values),
            toml_table("log", {"level": check_log_level(log_level)}),
        ]
    )
    return write_text(path, text)
