"""Mutual TLS for every gRPC server and channel, and identity from the peer certificate.

Identities are DNS names in the certificate's subjectAltName. A client names the
identity it expects the server to have (`ssl_target_name_override`), so TLS checks
the server's identity; a server reads the client's identity from the auth context.
Nothing here ever listens or connects without TLS.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import grpc
from cryptography import x509

from smpc_ehr.errors import ConfigError
from smpc_ehr.pki.certs import check_key_pair, dns_identity
from smpc_ehr.pki.trust import active as active_trust
from smpc_ehr.transport.status import message_for, status_for

log = logging.getLogger(__name__)

UNAUTHENTICATED = "unauthenticated"
"""How a refusal log line names a caller whose certificate carries no usable identity."""

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
"""gRPC message size limit on both ends; the mesh chunks payloads well below it."""

KEEPALIVE_MS = 20_000
KEEPALIVE_TIMEOUT_MS = 10_000

# Both ends agree: pings every 20 s even without calls (so an idle federation stays
# connected and a dead peer is noticed), and the server permits pings that often.
_KEEPALIVE_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", KEEPALIVE_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_MS // 2),
    ("grpc.http2.min_time_between_pings_ms", KEEPALIVE_MS // 2),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
)

SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    *_KEEPALIVE_OPTIONS,
    # gRPC sets SO_REUSEPORT by default, which lets a second server share a port silently.
    ("grpc.so_reuseport", 0),
)


@dataclass(frozen=True)
class TlsIdentity:
    """One identity's key material under the federation CA (PEM bytes)."""

    identity: str
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    @classmethod
    def from_files(
        cls, identity: str, ca: Path, cert: Path, key: Path, role: str = "member"
    ) -> TlsIdentity:
        """Read the CA certificate, own certificate and own key; name what is missing.

        Checks, before anything listens or connects, that the key is the certificate's
        and that the certificate's DNS name is `identity` (this `role`'s configured id):
        otherwise gRPC reports a wrong pair only as a port it cannot bind.
        """
        parts = {}
        for label, path in (("CA certificate", ca), ("certificate", cert), ("private key", key)):
            try:
                parts[label] = Path(path).read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read {label} {path}: {exc.strerror}") from exc
        own = check_key_pair(cert, parts["certificate"], key, parts["private key"])
        try:
            named = dns_identity(own)
        except ValueError as exc:
            raise ConfigError(f"{cert}: {exc}") from None
        if named != identity:
            raise ConfigError(
                f"certificate {cert} is for {named!r}, but this {role}'s id is {identity!r}"
            )
        return cls(identity, parts["CA certificate"], parts["certificate"], parts["private key"])

    def server_credentials(self) -> grpc.ServerCredentials:
        """Server side: present our certificate, require and verify the client's."""
        return grpc.ssl_server_credentials(
            [(self.key_pem, self.cert_pem)],
            root_certificates=self.ca_pem,
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Client side: verify the server under our CA and present our certificate."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_pem,
            private_key=self.key_pem,
            certificate_chain=self.cert_pem,
        )

    def secure_channel(self, address: str, expected_identity: str) -> grpc.aio.Channel:
        """A grpc.aio channel to `address` that only accepts a server proving `expected_identity`.

        Must be called inside the event loop that will use the channel.
        """
        return grpc.aio.secure_channel(
            address, self.channel_credentials(), options=_client_options(expected_identity)
        )

    def blocking_channel(self, address: str, expected_identity: str) -> grpc.Channel:
        """The same as `secure_channel`, for synchronous callers (the analyst's client)."""
        return grpc.secure_channel(
            address, self.channel_credentials(), options=_client_options(expected_identity)
        )


def _client_options(expected_identity: str) -> tuple[tuple[str, Any], ...]:
    # Reconnect quickly after a peer restarts, instead of backing off for minutes.
    return (
        *_KEEPALIVE_OPTIONS,
        ("grpc.ssl_target_name_override", expected_identity),
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.min_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 3000),
    )


def peer_identity(context: grpc.aio.ServicerContext) -> str:
    """The caller's identity: the one DNS name in its certificate's subjectAltName.

    The TLS handshake already proved the certificate chains to our CA, is within its
    validity, and the client holds its key. The certificate itself is parsed here
    (not gRPC's flat list of SAN values, which mixes DNS, email and URI names): an
    email, URI or CN is never an identity, and zero or several DNS names are refused.
    """
    pems = context.auth_context().get("x509_pem_cert", [])
    if len(pems) != 1:
        raise PermissionError("the caller presented no client certificate")
    try:
        return _identity_of(pems[0])
    except ValueError as exc:
        raise PermissionError(str(exc)) from None


@functools.lru_cache(maxsize=256)
def _identity_of(cert_pem: bytes) -> str:
    # Cached: every Exchange stream and dealer call reads it, and members are few.
    return dns_identity(x509.load_pem_x509_certificate(cert_pem))


async def require_caller(
    context: grpc.aio.ServicerContext,
    method: str,
    allowed: Collection[str] | None = None,
    why_not: Callable[[str], str] = lambda caller: f"{caller} may not call this method",
    on_refuse: Callable[[str, str, str], None] | None = None,
) -> str:
    """The caller's identity, if its certificate names one, the roster in force does not
    revoke that certificate (nor drop that member), and it is in `allowed` (any identity
    when None); otherwise log the refusal (and pass method, caller and reason to
    `on_refuse`, e.g. a party's audit log) and end the call PERMISSION_DENIED."""
    try:
        caller = peer_identity(context)
    except PermissionError as exc:
        caller, reason = UNAUTHENTICATED, str(exc)
    else:
        trust = active_trust()
        problem = None
        if trust is not None:
            problem = trust.refusal(caller, context.auth_context()["x509_pem_cert"][0])
        if problem is None and allowed is not None and caller not in allowed:
            problem = why_not(caller)
        if problem is None:
            return caller
        reason = problem
    if on_refuse is not None:
        on_refuse(method, caller, reason)
    await refuse(context, caller, method, reason)


async def refuse(
    context: grpc.aio.ServicerContext,
    caller: str,
    method: str,
    reason: str,
    code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED,
) -> NoReturn:
    """Log who was refused what and why (for an audit), then end the call with `reason`."""
    log.warning("refused %s from %s: %s", method, caller, reason)
    await context.abort(code, reason)
    raise AssertionError("unreachable: abort raises")


async def fail_call(
    context: grpc.aio.ServicerContext, caller: str, method: str, exc: BaseException
) -> NoReturn:
    """End the call with the status and text for `exc`: a refusal (our own error) is
    logged as one, anything else as an internal error with its traceback."""
    code = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.error("internal error serving %s to %s", method, caller, exc_info=exc)
        await context.abort(code, message_for(exc))
    await refuse(context, caller, method, message_for(exc), code)
