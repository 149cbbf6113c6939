"""The roster a running process trusts now: its version, members and revoked certificates.

Every server checks each caller against it (transport.tls.require_caller): a
certificate whose SHA-256 fingerprint the roster revokes is refused, and so is an id
the current roster no longer lists. A process holds one roster, so this is one object
per process (`activate` at start-up); `RosterTrust.reload` replaces the roster without
a restart (on SIGHUP), refusing a lower version (no rollback), an unsigned roster where
one is required, an altered one, and one naming another CA (TLS keeps the CA it
started with).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Callable
from typing import Any

from cryptography import x509

from smpc_ehr.config.roster import Roster, load_roster
from smpc_ehr.config.roster_sig import check_roster_signature
from smpc_ehr.errors import ConfigError
from smpc_ehr.pki.requests import fingerprint

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=256)
def peer_fingerprint(cert_pem: bytes) -> str:
    """`sha256:<hex>` of a PEM certificate (cached: every call of a stream asks, and
    members are few)."""
    return fingerprint(x509.load_pem_x509_certificate(cert_pem))


class RosterTrust:
    """The current roster of one process, and the CA it started with."""

    def __init__(self, roster: Roster, ca_pem: bytes) -> None:
        self._roster = roster
        self._ca_pem = ca_pem
        self._started_with = frozenset(roster.identities())
        self._seen: dict[str, str] = {}  # fingerprint -> id of callers seen
        self._listeners: list[Callable[[frozenset[str], str], None]] = []
        self._reload_listeners: list[Callable[[dict[str, Any]], None]] = []

    @property
    def roster(self) -> Roster:
        """The roster in force now."""
        return self._roster

    def on_cut(self, listener: Callable[[frozenset[str], str], None]) -> None:
        """Call `listener(ids, reason)` when a reload revokes or removes members, so that
        jobs in flight with them can be aborted (ids are those whose now-revoked
        certificate has called this process, and those dropped from the roster)."""
        self._listeners.append(listener)

    def on_reload(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call `listener(fields)` after every reload attempt, accepted or refused, with
        what changed (for a party's audit log: a roster change is a policy event)."""
        self._reload_listeners.append(listener)

    def _tell(self, **fields: Any) -> None:
        for listener in self._reload_listeners:
            listener(fields)

    def refusal(self, caller: str, cert_pem: bytes) -> str | None:
        """Why this caller's certificate is not accepted now, or None if it is.

        A member removed from the roster since start-up is refused here; a stranger
        (never listed) is left to the servicer, which names what it may not do.
        """
        fp = peer_fingerprint(cert_pem)
        self._seen[fp] = caller
        if fp in self._roster.revoked:
            return "certificate revoked"
        if caller in self._started_with and self._roster.role_of(caller) is None:
            return f"{caller} is no longer in the roster (version {self._roster.version})"
        return None

    def reload(self) -> bool:
        """Read the roster file again and put it in force if it is acceptable.

        Refused (logged; the loaded roster stays in force) when it does not load, is
        unsigned where required, does not match its signature, names another CA, or has
        a lower version than the loaded one. Returns whether the new roster is in force.
        """
        old = self._roster
        try:
            fresh = load_checked(old, self._ca_pem)
        except ConfigError as exc:
            log.error("roster reload refused, keeping version %d: %s", old.version, exc)
            self._tell(accepted=False, version=old.version, reason=str(exc))
            return False
        if fresh.version < old.version:
            log.error(
                "roster reload refused, keeping version %d: %s has version %d, lower than the "
                "loaded %d (a roster is never rolled back)",
                old.version,
                fresh.source,
                fresh.version,
                old.version,
            )
            self._tell(
                accepted=False,
                version=old.version,
                reason=f"version {fresh.version} is lower than the loaded {old.version}",
            )
            return False
        self._roster = fresh
        revoked = fresh.revoked - old.revoked
        cut = {who for fp, who in self._seen.items() if fp in revoked}
        cut |= set(old.identities()) - set(fresh.identities())
        log.info(
            "roster reloaded: version %d -> %d, %d certificate(s) revoked (%d new)%s",
            old.version,
            fresh.version,
            len(fresh.revoked),
            len(revoked),
            f"; cut off: {', '.join(sorted(cut))}" if cut else "",
        )
        self._tell(
            accepted=True,
            version=fresh.version,
            previous_version=old.version,
            revoked=len(fresh.revoked),
            cut=sorted(cut),
        )
        if cut:
            reason = f"roster version {fresh.version} revoked or removed {', '.join(sorted(cut))}"
            for listener in self._listeners:
                listener(frozenset(cut), reason)
        return True


_ACTIVE: list[RosterTrust] = []


def activate(roster: Roster) -> RosterTrust:
    """Make `roster` the one this process checks callers against; returns its holder."""
    try:
        ca_pem = roster.ca_cert.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read CA certificate {roster.ca_cert}: {exc.strerror}") from None
    trust = RosterTrust(roster, ca_pem)
    _ACTIVE[:] = [trust]
    return trust


def deactivate() -> None:
    """Forget the active roster (a process that stops serving; tests)."""
    _ACTIVE.clear()


def active() -> RosterTrust | None:
    """The roster holder set by `activate`, or None (in-process tests that set none)."""
    return _ACTIVE[0] if _ACTIVE else None


def current(fallback: Roster) -> Roster:
    """The roster in force in this process (the reloaded one after a SIGHUP), else
    `fallback`, the roster the caller's config loaded (in-process tests activate none).

    Read it at each use, never keep it: a reload can add a party, move an address or
    name a new dealer, and every member must see that without a restart.
    """
    trust = active()
    return trust.roster if trust is not None else fallback


def load_checked(roster: Roster, ca_pem: bytes) -> Roster:
    """Read `roster`'s file again with its signature checked against the CA `ca_pem`."""
    fresh = load_roster(roster.source, signature_required=roster.signature_required)
    try:
        fresh_ca = fresh.ca_cert.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read CA certificate {fresh.ca_cert}: {exc.strerror}") from None
    if fresh_ca != ca_pem:
        raise ConfigError(
            f"{fresh.source} names another CA certificate ({fresh.ca_cert}); a new CA needs "
            "a restart of every member"
        )
    check_roster_signature(fresh, ca_pem)
    return fresh


def watch(roster: Roster) -> RosterTrust:
    """`activate(roster)` and reload it on SIGHUP (call inside the serving loop).

    The operator replaces roster.toml and roster.toml.sig, then sends SIGHUP
    (`kill -HUP PID`); the log says whether the new roster is in force.
    """
    trust = activate(roster)
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGHUP, trust.reload)
    return trust
