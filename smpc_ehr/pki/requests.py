"""Certificate requests: each member makes its own key, the operator only signs.

`certs init` makes every key in one folder, which suits a federation on one machine.
In a real federation no private key should leave its member's site, so a member runs
`make_request` (key + CSR in its own folder), sends the CSR to the federation
operator, who runs `sign_request` with the CA key and the roster (the id must be in
the roster with the role the CSR asks for), and returns the certificate. Signing never
reads a member's key: only the CSR's public key goes into the certificate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from smpc_ehr.config.roster import ROLES, Roster, check_identity
from smpc_ehr.errors import ConfigError
from smpc_ehr.pki.certs import (
    dns_identity,
    key_pem,
    leaf_names,
    leaf_subject,
    load_ca,
    load_pem,
    make_leaf,
    new_key,
    write_key,
)

DEFAULT_DAYS = 365
"""How long `certs sign` makes a certificate valid when --days is not given."""

_URI_PREFIX = "smpc-ehr://"


@dataclass(frozen=True)
class RequestPaths:
    """What `make_request` wrote: the member's key (mode 0600) and its CSR."""

    key: Path
    csr: Path


def fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint as `sha256:<hex>` (what a roster revokes)."""
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


def _request_names(
    identity: str, role: str, federation: str | None
) -> tuple[x509.Name, list[x509.GeneralName]]:
    """Subject and SAN names of a request: those of the certificate when the federation
    is known; else CN = id, OU = role and the DNS name only (signing adds the rest)."""
    if federation is not None:
        return leaf_subject(identity, role, federation), leaf_names(identity, role, federation)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, identity),
        ]
    )
    return subject, [x509.DNSName(identity)]


def make_request(identity: str, role: str, federation: str | None, out: Path | str) -> RequestPaths:
    """A new EC key (out/<id>.key, 0600, created exclusively) and a CSR for it
    (out/<id>.csr) naming the id as DNS SAN and the role as in issued certificates
    (with the federation's URI when `federation` is given)."""
    check_identity(identity)
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    out = Path(out)
    key_path, csr_path = out / f"{identity}.key", out / f"{identity}.csr"
    if key_path.exists():
        raise ConfigError(
            f"refusing to overwrite existing key {key_path}: move it away first "
            "(a re-issue with a new key needs a new CSR)"
        )
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = new_key()
    subject, names = _request_names(identity, role, federation)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_key(key_path, key_pem(key), force=False)
    csr_path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return RequestPaths(key=key_path, csr=csr_path)


def _role_uris(san: x509.SubjectAlternativeName) -> list[tuple[str, str, str]]:
    """(federation, role, id) of each `smpc-ehr://<federation>/<role>/<id>` URI name."""
    found = []
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        parts = uri[len(_URI_PREFIX) :].split("/")
        if uri.startswith(_URI_PREFIX) and len(parts) == 3:
            found.append((parts[0], parts[1], parts[2]))
    return found


@dataclass(frozen=True)
class RequestedIdentity:
    """Who a CSR asks to be: id (its DNS SAN), role and federation (from its URI SAN;
    without one, the role from the subject's OU and no federation)."""

    identity: str
    role: str
    federation: str | None


def requested_identity(csr: x509.CertificateSigningRequest, where: Path | str) -> RequestedIdentity:
    """The id, role and federation a CSR asks for; ConfigError naming `where` otherwise."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise ConfigError(
            f"{where}: the request has no subjectAltName (make it with `smpc-ehr certs request`)"
        ) from None
    names = san.get_values_for_type(x509.DNSName)
    if len(names) != 1:
        raise ConfigError(f"{where}: the request must name exactly one DNS id, it names {names}")
    parts = _role_uris(san)
    if len(parts) == 1 and parts[0][2] == names[0]:
        federation, role, _ = parts[0]
        return RequestedIdentity(identity=names[0], role=role, federation=federation)
    units = csr.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if parts or len(units) != 1:
        raise ConfigError(
            f"{where}: the request must name its role, as one URI "
            f"smpc-ehr://<federation>/<role>/{names[0]} or one subject OU"
        )
    return RequestedIdentity(identity=names[0], role=str(units[0].value), federation=None)


def load_request(path: Path | str) -> x509.CertificateSigningRequest:
    """A CSR from a PEM file, after checking its self-signature (proof of key possession)."""
    try:
        csr = x509.load_pem_x509_csr(load_pem(path))
    except ValueError:
        raise ConfigError(f"{path} is not a PEM certificate request") from None
    if not csr.is_signature_valid:
        raise ConfigError(f"{path}: the request's signature does not verify (altered or corrupt)")
    return csr


def sign_request(
    ca_cert: Path | str,
    ca_key: Path | str,
    roster: Roster,
    csr_path: Path | str,
    *,
    days: int = DEFAULT_DAYS,
    out: Path | str | None = None,
) -> Path:
    """Issue the certificate a CSR asks for, if the roster has its id with that role.

    Written to `out`, default beside the CSR as <id>.pem; returns that path. Reads the
    CSR and the CA, never the member's key.
    """
    if days < 1:
        raise ConfigError(f"--days must be at least 1, got {days}")
    csr = load_request(csr_path)
    wanted = requested_identity(csr, csr_path)
    listed = roster.role_of(wanted.identity)
    if listed is None:
        raise ConfigError(
            f"{csr_path}: {wanted.identity!r} is not in the roster {roster.source}; "
            "add it to the roster first"
        )
    if listed != wanted.role:
        raise ConfigError(
            f"{csr_path}: {wanted.identity!r} asks for role {wanted.role}, but the roster "
            f"{roster.source} lists it as {listed}"
        )
    if wanted.federation is not None and wanted.federation != roster.federation:
        raise ConfigError(
            f"{csr_path}: the request is for federation {wanted.federation!r}, the roster's is "
            f"{roster.federation!r}"
        )
    public = csr.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ConfigError(f"{csr_path}: expected an EC key in the request")
    signing_key, ca = load_ca(ca_cert, ca_key)
    cert = make_leaf(
        signing_key,
        ca,
        public,
        wanted.identity,
        wanted.role,
        roster.federation,
        dt.timedelta(days=days),
    )
    target = Path(out) if out is not None else Path(csr_path).with_name(f"{wanted.identity}.pem")
    target.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return target


def describe(path: Path | str, now: dt.datetime | None = None) -> list[str]:
    """Lines for `certs show`: identity, role, federation, validity, days left and
    fingerprint of a certificate; id, role, federation of a request."""
    data = load_pem(path)
    if b"CERTIFICATE REQUEST" in data:
        csr = load_request(path)
        wanted = requested_identity(csr, path)
        return [
            f"request:     {path}",
            f"identity:    {wanted.identity}",
            f"role:        {wanted.role}",
            f"federation:  {wanted.federation or '(not named: the roster signing it decides)'}",
            "signature:   valid (the requester holds the key)",
            "public key:  sha256:"
            + hashlib.sha256(
                csr.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ).hexdigest(),
        ]
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise ConfigError(f"{path} is neither a certificate nor a certificate request") from None
    now = now or dt.datetime.now(dt.UTC)
    try:
        identity = dns_identity(cert)
    except ValueError as exc:
        identity = f"none ({exc})"
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        federation, role, _ = (_role_uris(san) or [("?", "?", "?")])[0]
    except x509.ExtensionNotFound:
        federation, role = "?", "?"
    left = (cert.not_valid_after_utc - now).days
    return [
        f"certificate: {path}",
        f"identity:    {identity}",
        f"role:        {role}",
        f"federation:  {federation}",
        f"issuer:      {cert.issuer.rfc4514_string()}",
        f"valid from:  {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC",
        f"valid until: {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC",
        f"days left:   {left}" + (" (expired)" if left < 0 else ""),
        f"fingerprint: {fingerprint(cert)}",
    ]
