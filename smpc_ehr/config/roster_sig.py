"""The roster's detached signature: `roster.toml.sig`, made with the federation CA key.

The roster says who is a member, in which role, and which certificates are revoked, so
a member that trusts an altered roster trusts whoever altered it. The operator signs
the exact file bytes (`smpc-ehr roster sign`); a member configured with
`[tls] require_signed_roster = true` refuses a roster without a valid signature, and a
signature that does not verify is refused by every member (an altered roster is never
used, required or not). The signature is checked against the digest of the bytes that
were parsed (`Roster.digest`), so a file changed between reading and checking is caught.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from smpc_ehr.config.roster import Roster, load_roster
from smpc_ehr.errors import ConfigError

SUFFIX = ".sig"
_BEGIN = b"-----BEGIN SMPC-EHR ROSTER SIGNATURE-----"
_END = b"-----END SMPC-EHR ROSTER SIGNATURE-----"


def signature_path(roster_path: Path | str) -> Path:
    """Where a roster's signature lives: beside it, `<roster file name>.sig`."""
    path = Path(roster_path)
    return path.with_name(path.name + SUFFIX)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None


def _ca_public(ca_pem: bytes, where: Path) -> ec.EllipticCurvePublicKey:
    try:
        public = x509.load_pem_x509_certificate(ca_pem).public_key()
    except ValueError:
        raise ConfigError(f"{where} is not a PEM certificate") from None
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ConfigError(f"{where}: expected an EC CA certificate")
    return public


def sign_roster(roster_path: Path | str, ca_key: Path | str) -> Path:
    """Write `<roster>.sig` over the roster file's bytes with the CA key; returns its path.

    Refuses a roster that does not load, and a key that is not the key of the CA
    certificate the roster names (members would then refuse the signature).
    """
    roster = load_roster(roster_path)
    raw = _read(roster.source, "roster")
    if hashlib.sha256(raw).hexdigest() != roster.digest:
        raise ConfigError(f"{roster.source} changed while it was being signed; sign it again")
    try:
        key = serialization.load_pem_private_key(_read(Path(ca_key), "CA key"), password=None)
    except (ValueError, TypeError):
        raise ConfigError(f"{ca_key} is not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(f"{ca_key}: expected the CA's EC private key")
    ca_public = _ca_public(_read(roster.ca_cert, "CA certificate"), roster.ca_cert)
    if key.public_key() != ca_public:
        raise ConfigError(
            f"{ca_key} is not the key of the CA certificate {roster.ca_cert} the roster names"
        )
    signature = key.sign(raw, ec.ECDSA(hashes.SHA256()))
    out = signature_path(roster.source)
    out.write_bytes(_BEGIN + b"\n" + base64.encodebytes(signature) + _END + b"\n")
    return out


def _decode(text: bytes, where: Path) -> bytes:
    body = text.strip()
    if not (body.startswith(_BEGIN) and body.endswith(_END)):
        raise ConfigError(f"{where} is not a roster signature (made by `smpc-ehr roster sign`)")
    try:
        return base64.b64decode(body[len(_BEGIN) : -len(_END)], validate=False)
    except binascii.Error:
        raise ConfigError(f"{where}: the signature is not valid base64") from None


def check_roster_signature(roster: Roster, ca_pem: bytes | None = None) -> bool:
    """True if the roster carries a valid CA signature, False if it has none and none is
    required; ConfigError (saying what to do) if it is unsigned but required, or altered.

    `ca_pem` is the CA to check against; by default the CA certificate the roster names.
    A running member passes the CA it started with, so a reload cannot swap the CA.
    """
    sig_path = signature_path(roster.source)
    if not sig_path.exists():
        if roster.signature_required:
            raise ConfigError(
                f"{roster.source} is not signed ({sig_path} not found) and this member "
                "requires a signed roster ([tls] require_signed_roster): ask the federation "
                "operator for the roster and its signature (`smpc-ehr roster sign`)"
            )
        return False
    signature = _decode(_read(sig_path, "roster signature"), sig_path)
    if ca_pem is None:
        ca_pem = _read(roster.ca_cert, "CA certificate")
    public = _ca_public(ca_pem, roster.ca_cert)
    try:
        public.verify(
            signature,
            bytes.fromhex(roster.digest),
            ec.ECDSA(utils.Prehashed(hashes.SHA256())),
        )
    except (InvalidSignature, ValueError):
        raise ConfigError(
            f"{roster.source} does not match its signature {sig_path}: the roster was altered "
            "after it was signed, or signed with another CA key; refusing it"
        ) from None
    return True
