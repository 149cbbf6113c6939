"""`smpc-ehr config check FILE`: validate a config without starting anything.

It loads the config as its process would (roster, paths, policy), then checks what a
process would find only at start-up or at its first connection: that the data folder
loads, that the key is the certificate's, that the certificate names the config's id,
is still valid and is signed by the roster's CA. Every problem is a ConfigError
naming the file and what is wrong.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes

from smpc_ehr.config.analyst import load_analyst_config
from smpc_ehr.config.coordinator import load_coordinator_config
from smpc_ehr.config.dealer import load_dealer_config
from smpc_ehr.config.party import PartyConfig, load_party_config
from smpc_ehr.config.roster import Roster
from smpc_ehr.errors import ConfigError, DataError
from smpc_ehr.transport.tls import TlsIdentity

CONFIG_ROLES = ("party", "coordinator", "dealer", "analyst")
"""The process config kinds, by their top-level table."""


class MemberConfig(Protocol):
    """What every process config has: who it is, its roster, its key and certificate."""

    @property
    def id(self) -> str: ...
    @property
    def roster(self) -> Roster: ...
    @property
    def key(self) -> Path: ...
    @property
    def cert(self) -> Path: ...


_LOADERS = {
    "party": load_party_config,
    "coordinator": load_coordinator_config,
    "dealer": load_dealer_config,
    "analyst": load_analyst_config,
}


@dataclass(frozen=True)
class CertificateFacts:
    """What `config check` found out about a member's certificate."""

    identity: str
    not_after: dt.datetime
    days_left: int
    fingerprint: str


@dataclass(frozen=True)
class CheckedConfig:
    """A config that passed every check, and what the operator should see of it."""

    role: str
    id: str
    source: Path
    roster: Roster
    certificate: CertificateFacts
    data_lines: tuple[str, ...] = ()


def config_role(path: Path | str) -> str:
    """Which process a config file is for: the one role table it has."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    roles = [role for role in CONFIG_ROLES if role in document]
    if len(roles) != 1:
        found = ", ".join(f"[{r}]" for r in roles) or "none"
        raise ConfigError(
            f"{path}: a config has exactly one of the tables "
            f"{', '.join(f'[{r}]' for r in CONFIG_ROLES)} (found {found})"
        )
    return roles[0]


def load_any_config(path: Path | str, *, check_files: bool = True) -> tuple[str, MemberConfig]:
    """(role, loaded config) for a party, coordinator, dealer or analyst config."""
    role = config_role(path)
    return role, cast(MemberConfig, _LOADERS[role](path, check_files=check_files))


def certificate_facts(
    role: str,
    ident: str,
    cert_path: Path,
    key_path: Path,
    ca_path: Path,
    now: dt.datetime | None = None,
) -> CertificateFacts:
    """Check a key/certificate pair against the config's id (as the process does when it
    starts), then that the federation CA signed it and that it is valid now."""
    tls = TlsIdentity.from_files(ident, ca_path, cert_path, key_path, role=role)
    cert = x509.load_pem_x509_certificate(tls.cert_pem)
    try:
        ca = x509.load_pem_x509_certificate(tls.ca_pem)
    except ValueError:
        raise ConfigError(f"CA certificate {ca_path} is not a PEM certificate") from None
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise ConfigError(
            f"certificate {cert_path} is not signed by the federation CA {ca_path} "
            "(issued under another CA?)"
        ) from None
    now = now or dt.datetime.now(dt.UTC)
    if now < cert.not_valid_before_utc:
        raise ConfigError(
            f"certificate {cert_path} is not valid before "
            f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (check this machine's clock)"
        )
    if now >= cert.not_valid_after_utc:
        raise ConfigError(
            f"certificate {cert_path} expired on {cert.not_valid_after_utc:%Y-%m-%d}: re-issue it"
        )
    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    return CertificateFacts(
        identity=ident,
        not_after=cert.not_valid_after_utc,
        days_left=(cert.not_valid_after_utc - now).days,
        fingerprint=fingerprint,
    )


def _data_lines(config: PartyConfig) -> tuple[str, ...]:
    """Read the party's data as the party would, and describe them: a database is
    counted in the database (its rows are not loaded), files are loaded and checked."""
    from sqlalchemy.exc import SQLAlchemyError

    from smpc_ehr.data.pushdown import source_totals
    from smpc_ehr.data.sources import open_store

    try:
        store = open_store(config.data)
        try:
            job = store.open_job()
            try:
                if job.sql is not None:
                    patients, rows, codes = source_totals(job.sql)
                    numeric = sorted(job.sql.relations.features)
                    outcomes = sorted(job.sql.relations.outcomes)
                else:
                    data = job.rows()
                    patients, rows, codes = data.n_patients, data.n_conditions, len(data.code_table)
                    numeric, outcomes = sorted(data.features), sorted(data.outcomes)
            finally:
                job.close()
        finally:
            store.close()
    except (DataError, SQLAlchemyError) as exc:
        raise ConfigError(f"{config.source}: [party] data: {exc}") from None
    return (
        f"data: {config.data}: {patients} patients, "
        f"{rows} condition rows ({codes} distinct codes), version {job.version}",
        f"  numeric columns: {', '.join(numeric) or '(none)'}",
        f"  outcome columns: {', '.join(outcomes) or '(none)'}",
    )


def check_config(path: Path | str, now: dt.datetime | None = None) -> CheckedConfig:
    """Every check `config check` makes; the first problem raises ConfigError."""
    role, config = load_any_config(path)
    facts = certificate_facts(role, config.id, config.cert, config.key, config.roster.ca_cert, now)
    lines = _data_lines(config) if isinstance(config, PartyConfig) else ()
    return CheckedConfig(role, config.id, Path(path), config.roster, facts, lines)


def report_lines(checked: CheckedConfig) -> list[str]:
    """What `config check` prints for a config that passed."""
    roster = checked.roster
    cert = checked.certificate
    lines = [
        f"{checked.source}: {checked.role} config for {checked.id!r}: OK",
        f"roster: {roster.source} (federation {roster.federation}): "
        f"{len(roster.parties)} parties ({', '.join(roster.party_ids())}), coordinator "
        f"{roster.coordinator.id}, dealer {roster.dealer.id if roster.dealer else '(none)'}, "
        f"{len(roster.analysts)} analysts",
        f"certificate: identity {cert.identity}, matches its key, signed by {roster.ca_cert}, "
        f"valid until {cert.not_after:%Y-%m-%d} ({cert.days_left} days left)",
    ]
    return lines + list(checked.data_lines)
