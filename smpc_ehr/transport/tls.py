"""Mutual TLS for every gRPC server and channel, and identity from the peer certificate.

Identities are DNS names in the certificate's subjectAltName. A client names the
identity it expects the server to have (`ssl_target_name_override`), so TLS checks
the server's identity; a server reads the client's identity from the auth context.
Nothing here ever listens or connects without TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from smpc_ehr.errors import ConfigError

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
    def from_files(cls, identity: str, ca: Path, cert: Path, key: Path) -> TlsIdentity:
        """Read the CA certificate, own certificate and own key; name what is missing."""
        parts = {}
        for label, path in (("CA certificate", ca), ("certificate", cert), ("private key", key)):
            try:
                parts[label] = Path(path).read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read {label} {path}: {exc.strerror}") from exc
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
    """The caller's identity: the DNS name in its certificate's subjectAltName.

    The TLS handshake already proved the certificate chains to our CA and the client
    holds its key, so this name is authenticated. Anything else (URIs) is ignored.
    """
    auth = context.auth_context()
    names = [
        value.decode("ascii", "replace")
        for value in auth.get("x509_subject_alternative_name", [])
        if b"://" not in value and b":" not in value
    ]
    if len(names) != 1:
        raise PermissionError("peer certificate does not carry exactly one identity name")
    return names[0]
