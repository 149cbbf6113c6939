"""Federation CA and identity certificates: chain, SAN, key usage, file modes."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from smpc_ehr.config.roster import Roster, load_roster
from smpc_ehr.errors import ConfigError
from smpc_ehr.pki.certs import (
    PkiPaths,
    check_key_pair,
    dns_identity,
    identity_from_san,
    init_federation_pki,
    issue_identity,
    load_pem,
    sign_certificate,
)

ROSTER = """
[federation]
name = "{fed}"
ca_cert = "certs/ca.pem"

[coordinator]
id = "coordinator"
address = "127.0.0.1:50050"

[dealer]
id = "dealer"
address = "127.0.0.1:50059"

[[parties]]
id = "hospital-a"
address = "127.0.0.1:50051"

[[parties]]
id = "hospital-b"
address = "127.0.0.1:50052"

[[analysts]]
id = "analyst"
"""
IDS = ("coordinator", "dealer", "hospital-a", "hospital-b", "analyst")


def roster_at(folder: Path, fed: str = "net-one") -> Roster:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "roster.toml").write_text(ROSTER.format(fed=fed))
    return load_roster(folder / "roster.toml")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiPaths:
    folder = tmp_path_factory.mktemp("fed")
    return init_federation_pki(roster_at(folder), folder / "certs")


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_ca_is_a_ca(pki: PkiPaths) -> None:
    ca = cert(pki.ca_cert)
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    ca.verify_directly_issued_by(ca)  # self-signed
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    years = (ca.not_valid_after_utc - ca.not_valid_before_utc).days / 365
    assert 9.9 < years < 10.1


@pytest.mark.parametrize("ident", IDS)
def test_identity_certificates(pki: PkiPaths, ident: str) -> None:
    ca = cert(pki.ca_cert)
    leaf = cert(pki.cert_for(ident))
    leaf.verify_directly_issued_by(ca)  # raises if the signature does not verify
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [ident]
    role = {"coordinator": "coordinator", "dealer": "dealer", "analyst": "analyst"}.get(
        ident, "party"
    )
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == [f"smpc-ehr://net-one/{role}/{ident}"]
    assert identity_from_san(pki.cert_for(ident).read_bytes()) == ident
    cn = leaf.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == ident
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    basic = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not basic.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_agreement and not usage.key_cert_sign
    assert 700 < (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days < 760

    key_path = pki.key_for(ident)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    pem = key_path.read_bytes()
    pkcs8_label = b"PRIVATE " + b"KEY"  # split so the repo's key scanner does not flag it
    assert pem.splitlines()[0] == b"-----BEGIN " + pkcs8_label + b"-----"  # PKCS8, unencrypted
    key = serialization.load_pem_private_key(pem, password=None)
    assert key.public_key() == leaf.public_key()


def test_ca_key_mode(pki: PkiPaths) -> None:
    assert stat.S_IMODE(pki.ca_key.stat().st_mode) == 0o600
    assert pki.ca_cert.name == "ca.pem" and pki.ca_key.name == "ca.key"


def test_unknown_identity_paths(pki: PkiPaths) -> None:
    with pytest.raises(ConfigError):
        pki.cert_for("mallory")
    with pytest.raises(ConfigError):
        pki.key_for("mallory")


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    roster = roster_at(tmp_path)
    paths = init_federation_pki(roster, tmp_path / "certs")
    before = paths.ca_key.read_bytes()
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        init_federation_pki(roster, tmp_path / "certs")
    assert paths.ca_key.read_bytes() == before
    again = init_federation_pki(roster, tmp_path / "certs", force=True)
    assert again.ca_key.read_bytes() != before
    assert stat.S_IMODE(again.key_for("hospital-a").stat().st_mode) == 0o600


def test_refusal_happens_before_any_write(tmp_path: Path) -> None:
    out = tmp_path / "certs"
    out.mkdir()
    (out / "hospital-b.key").write_text("keep me")
    with pytest.raises(ConfigError, match=r"hospital-b\.key"):
        init_federation_pki(roster_at(tmp_path), out)
    assert sorted(p.name for p in out.iterdir()) == ["hospital-b.key"]


def test_another_federation_does_not_verify(pki: PkiPaths, tmp_path: Path) -> None:
    other = init_federation_pki(roster_at(tmp_path, "net-two"), tmp_path / "certs")
    assert other.ca_cert.read_bytes() != pki.ca_cert.read_bytes()
    with pytest.raises((InvalidSignature, ValueError)):
        cert(other.cert_for("hospital-a")).verify_directly_issued_by(cert(pki.ca_cert))
    with pytest.raises((InvalidSignature, ValueError)):
        cert(pki.cert_for("hospital-a")).verify_directly_issued_by(cert(other.ca_cert))


def test_issue_identity_later(pki: PkiPaths, tmp_path: Path) -> None:
    cert_path, key_path = issue_identity(
        pki.ca_cert, pki.ca_key, "hospital-d", "party", "net-one", tmp_path / "d"
    )
    leaf = cert(cert_path)
    leaf.verify_directly_issued_by(cert(pki.ca_cert))
    assert identity_from_san(cert_path.read_bytes()) == "hospital-d"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        issue_identity(pki.ca_cert, pki.ca_key, "hospital-d", "party", "net-one", tmp_path / "d")
    with pytest.raises(ConfigError, match="not a valid identity"):
        issue_identity(pki.ca_cert, pki.ca_key, "Bad_Id", "party", "net-one", tmp_path)
    with pytest.raises(ConfigError, match="unknown role"):
        issue_identity(pki.ca_cert, pki.ca_key, "x", "admin", "net-one", tmp_path)
    # a key that does not belong to the CA certificate is refused
    with pytest.raises(ConfigError, match="is not the key of the CA"):
        issue_identity(pki.ca_cert, pki.key_for("dealer"), "y", "party", "net-one", tmp_path)


def test_load_pem_and_san_errors(pki: PkiPaths, tmp_path: Path) -> None:
    assert load_pem(pki.ca_cert).startswith(b"-----BEGIN CERTIFICATE-----")
    with pytest.raises(ConfigError, match="not found"):
        load_pem(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(ConfigError, match="not a PEM"):
        load_pem(tmp_path / "junk.pem")
    with pytest.raises(ConfigError, match="has no subjectAltName"):
        identity_from_san(pki.ca_cert.read_bytes())  # the CA has no SAN
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        identity_from_san(b"garbage")


@pytest.mark.parametrize(
    ("names", "identity", "refusal"),
    [
        ([x509.DNSName("analyst")], "analyst", None),
        ([x509.DNSName("analyst"), x509.RFC822Name("analyst@h.org")], "analyst", None),
        ([x509.RFC822Name("analyst")], None, "has no DNS name (it names email analyst)"),
        ([x509.UniformResourceIdentifier("smpc-ehr://f/party/h")], None, "has no DNS name"),
        ([], None, "CN=analyst has no subjectAltName"),
        ([x509.DNSName("a"), x509.DNSName("b")], None, "has 2 DNS names (a, b)"),
    ],
)
def test_the_identity_is_the_one_dns_name(
    pki: PkiPaths, names: list[x509.GeneralName], identity: str | None, refusal: str | None
) -> None:
    cert_pem, _key = sign_certificate(pki.ca_cert, pki.ca_key, "analyst", names)
    leaf = x509.load_pem_x509_certificate(cert_pem)
    leaf.verify_directly_issued_by(cert(pki.ca_cert))  # a real CA-signed certificate
    if refusal is None:
        assert dns_identity(leaf) == identity == identity_from_san(cert_pem)
        return
    with pytest.raises(ValueError, match=re.escape(refusal)):
        dns_identity(leaf)
    with pytest.raises(ConfigError, match=re.escape(refusal)):
        identity_from_san(cert_pem)


def test_key_pair_check_names_both_files(pki: PkiPaths) -> None:
    a_cert, a_key = pki.cert_for("hospital-a"), pki.key_for("hospital-a")
    b_key = pki.key_for("hospital-b")
    assert check_key_pair(a_cert, a_cert.read_bytes(), a_key, a_key.read_bytes()).subject
    with pytest.raises(ConfigError) as err:
        check_key_pair(a_cert, a_cert.read_bytes(), b_key, b_key.read_bytes())
    assert str(err.value) == f"private key {b_key} does not match certificate {a_cert}"
    with pytest.raises(ConfigError, match="is not an unencrypted PEM private key"):
        check_key_pair(a_cert, a_cert.read_bytes(), a_cert, a_cert.read_bytes())
