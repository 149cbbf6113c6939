"""The federation's CA and one certificate per identity, made with `cryptography`.

Peers authenticate each other by the DNS SubjectAlternativeName: a client sets
ssl_target_name_override to the id it expects, gRPC checks the server's SAN against
it, and a server reads the client's SAN from the auth context. So each certificate
carries its id as the DNS SAN (and as CN, for humans), plus a URI
`smpc-ehr://<federation>/<role>/<id>` recording the role. Every process is both a
TLS server and client, hence extended key usage serverAuth and clientAuth.

`init_federation_pki` puts every identity's key in one folder; that suits a demo on
one machine. In a real federation `init_ca` makes the CA alone and each member makes
its own key (smpc_ehr.pki.requests).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from smpc_ehr.config.roster import ROLES, Roster, check_identity
from smpc_ehr.errors import ConfigError

CA_VALIDITY = dt.timedelta(days=3650)
LEAF_VALIDITY = dt.timedelta(days=730)
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock differences between sites


@dataclass(frozen=True)
class PkiPaths:
    """Where `init_federation_pki` wrote the CA and each identity's key and certificate."""

    ca_cert: Path
    ca_key: Path
    certs: Mapping[str, Path]
    keys: Mapping[str, Path]

    def cert_for(self, identity: str) -> Path:
        """The certificate file of `identity`."""
        if identity not in self.certs:
            raise ConfigError(f"no certificate was issued for {identity!r}")
        return self.certs[identity]

    def key_for(self, identity: str) -> Path:
        """The private key file of `identity`."""
        if identity not in self.keys:
            raise ConfigError(f"no key was issued for {identity!r}")
        return self.keys[identity]


def uri_for(federation: str, role: str, identity: str) -> str:
    """The URI SAN that records federation and role next to the DNS SAN."""
    return f"smpc-ehr://{federation}/{role}/{identity}"


def load_pem(path: Path | str) -> bytes:
    """Read a PEM file (certificate or key), as gRPC's credential functions want it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"PEM file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read PEM file {path}: {exc}") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{path} is not a PEM file")
    return data


def dns_identity(cert: x509.Certificate) -> str:
    """The identity `cert` stands for: its one DNS SubjectAlternativeName, nothing else.

    Email, URI and IP names and the subject's CN are never an identity: a CA-signed
    certificate whose only name is the email `analyst` is not the analyst. Raises
    ValueError saying what the certificate carries instead.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise ValueError(
            f"certificate {_subject_cn(cert)} has no subjectAltName; the identity is its "
            "DNS name (a CN is not an identity)"
        ) from None
    names = san.get_values_for_type(x509.DNSName)
    if len(names) == 1:
        return names[0]
    if not names:
        raise ValueError(
            f"certificate {_subject_cn(cert)} has no DNS name (it names {_san_text(san)}); "
            "the identity is the DNS name only"
        )
    raise ValueError(
        f"certificate {_subject_cn(cert)} has {len(names)} DNS names ({', '.join(names)}); "
        "an identity certificate has exactly one"
    )


def _subject_cn(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return f"CN={cns[0].value!s}" if cns else "without CN"


def _san_text(san: x509.SubjectAlternativeName) -> str:
    kinds = {x509.RFC822Name: "email", x509.UniformResourceIdentifier: "URI"}
    described = [f"{kinds.get(type(n), type(n).__name__)} {n.value!s}" for n in san]
    return ", ".join(described) or "nothing"


def identity_from_san(cert_pem: bytes) -> str:
    """The identity a certificate (PEM) stands for: its single DNS SubjectAlternativeName."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise ConfigError(f"not a PEM certificate: {exc}") from None
    try:
        return dns_identity(cert)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_key_pair(
    cert_path: Path | str, cert_pem: bytes, key_path: Path | str, key_pem: bytes
) -> x509.Certificate:
    """The certificate, after checking the private key is the one it certifies.

    gRPC reports a mismatched pair only as a failure to bind the port; this names the files.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ConfigError(f"certificate {cert_path} is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"private key {key_path} is not an unencrypted PEM private key") from None
    if key.public_key() != cert.public_key():
        raise ConfigError(f"private key {key_path} does not match certificate {cert_path}")
    return cert


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_key(path: Path, pem: bytes, *, force: bool) -> None:
    """Create the key file with mode 0600 before any byte is written."""
    if force:
        path.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"refusing to overwrite existing key {path} (use force)") from None
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(pem)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _refuse_existing(paths: list[Path], force: bool) -> None:
    if force:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        names = ", ".join(p.name for p in existing[:4])
        more = f" and {len(existing) - 4} more" if len(existing) > 4 else ""
        raise ConfigError(
            f"refusing to overwrite existing PKI files in {existing[0].parent}: {names}{more} "
            "(pass --force / force=True to replace them)"
        )


def _make_ca(federation: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = new_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, federation),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{federation} federation CA"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def leaf_subject(identity: str, role: str, federation: str) -> x509.Name:
    """The subject of a member's certificate (and of its certificate request)."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, federation),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, identity),
        ]
    )


def leaf_names(identity: str, role: str, federation: str) -> list[x509.GeneralName]:
    """A member's SAN names: the id as DNS name (the identity) and the role's URI."""
    return [
        x509.DNSName(identity),
        x509.UniformResourceIdentifier(uri_for(federation, role, identity)),
    ]


def make_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public: ec.EllipticCurvePublicKey,
    identity: str,
    role: str,
    federation: str,
    validity: dt.timedelta = LEAF_VALIDITY,
) -> x509.Certificate:
    """A member's certificate for `public`, valid for `validity` (never past the CA's end).

    The one place a member certificate is made: `certs init`, `issue_identity` and
    `certs sign` (for a key the member made itself) all come here.
    """
    now = dt.datetime.now(dt.UTC)
    not_after = min(now + validity, ca_cert.not_valid_after_utc)
    return _sign_leaf(
        ca_key,
        ca_cert,
        public,
        leaf_subject(identity, role, federation),
        leaf_names(identity, role, federation),
        now - _BACKDATE,
        not_after,
    )


def _sign_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public: ec.EllipticCurvePublicKey,
    subject: x509.Name,
    names: Sequence[x509.GeneralName],
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A leaf certificate for `public`, with the given subject, SAN names and validity
    (no SAN extension when `names` is empty)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return (
        builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def sign_certificate(
    ca_cert: Path | str,
    ca_key: Path | str,
    common_name: str,
    names: Sequence[x509.GeneralName],
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of a leaf with any names and validity, signed by the CA.

    For tests and audits: lets one make the certificates a federation must refuse
    (email-only, URI-only, CN-only, two DNS names, expired, not yet valid). Members'
    certificates come from `init_federation_pki` and `issue_identity`.
    """
    signing_key, ca = load_ca(ca_cert, ca_key)
    now = dt.datetime.now(dt.UTC)
    key = new_key()
    cert = _sign_leaf(
        signing_key,
        ca,
        key.public_key(),
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]),
        names,
        not_before or now - _BACKDATE,
        not_after or now + LEAF_VALIDITY,
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def load_ca(
    ca_cert: Path | str, ca_key: Path | str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The CA's signing key and certificate, checked to belong together."""
    ca = x509.load_pem_x509_certificate(load_pem(ca_cert))
    signing_key = serialization.load_pem_private_key(load_pem(ca_key), password=None)
    if not isinstance(signing_key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{ca_key}: expected an EC private key")
    if signing_key.public_key() != ca.public_key():
        raise ConfigError(f"{ca_key} is not the key of the CA certificate {ca_cert}")
    return signing_key, ca


def _issue_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    identity: str,
    role: str,
    federation: str,
    cert_path: Path,
    key_path: Path,
    force: bool,
) -> None:
    """Make one identity's key and certificate and write them (the key file is created
    exclusively unless `force`)."""
    key = new_key()
    cert = make_leaf(ca_key, ca_cert, key.public_key(), identity, role, federation)
    write_key(key_path, key_pem(key), force=force)
    _write_cert(cert_path, cert)


def _write_ca(
    federation: str, out: Path, force: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """Make the federation CA and write out/ca.pem and out/ca.key (0600)."""
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_key, ca_cert = _make_ca(federation)
    write_key(out / "ca.key", key_pem(ca_key), force=force)
    _write_cert(out / "ca.pem", ca_cert)
    return ca_key, ca_cert


def init_ca(federation: str, out: Path | str, *, force: bool = False) -> tuple[Path, Path]:
    """Make only the federation CA: out/ca.pem and out/ca.key (mode 0600); returns
    (certificate path, key path). Members then make their own keys (`certs request`)
    and the operator signs their requests. Refuses to overwrite either file unless
    `force`."""
    out = Path(out)
    ca_cert_path, ca_key_path = out / "ca.pem", out / "ca.key"
    _refuse_existing([ca_cert_path, ca_key_path], force)
    _write_ca(federation, out, force)
    return ca_cert_path, ca_key_path


def init_federation_pki(roster: Roster, out: Path | str, *, force: bool = False) -> PkiPaths:
    """Make a new CA and a key + certificate for every identity in the roster.

    Writes out/ca.pem, out/ca.key, out/<id>.pem and out/<id>.key (keys mode 0600).
    Refuses, before writing anything, if any of these exist, unless `force`.
    """
    out = Path(out)
    members = roster.members()
    ca_cert_path, ca_key_path = out / "ca.pem", out / "ca.key"
    certs = {m.id: out / f"{m.id}.pem" for m in members}
    keys = {m.id: out / f"{m.id}.key" for m in members}
    _refuse_existing([ca_cert_path, ca_key_path, *certs.values(), *keys.values()], force)
    ca_key, ca_cert = _write_ca(roster.federation, out, force)
    for m in members:
        _issue_leaf(
            ca_key, ca_cert, m.id, m.role, roster.federation, certs[m.id], keys[m.id], force
        )
    return PkiPaths(ca_cert=ca_cert_path, ca_key=ca_key_path, certs=certs, keys=keys)


def issue_identity(
    ca_cert: Path | str,
    ca_key: Path | str,
    identity: str,
    role: str,
    federation: str,
    out: Path | str,
    *,
    force: bool = False,
) -> tuple[Path, Path]:
    """Issue a key + certificate for one more identity under an existing CA.

    Writes out/<identity>.pem and out/<identity>.key; returns (cert path, key path).
    """
    check_identity(identity)
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    signing_key, ca = load_ca(ca_cert, ca_key)
    out = Path(out)
    cert_path, key_path = out / f"{identity}.pem", out / f"{identity}.key"
    _refuse_existing([cert_path, key_path], force)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    _issue_leaf(signing_key, ca, identity, role, federation, cert_path, key_path, force)
    return cert_path, key_path
