"""certs request / sign / show: the member's key stays in its folder, the roster decides."""

from __future__ import annotations

import base64
import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from smpc_ehr.cli import main
from smpc_ehr.errors import ConfigError
from smpc_ehr.pki.certs import PkiPaths, check_key_pair, init_federation_pki
from smpc_ehr.pki.requests import describe, make_request, sign_request
from smpc_ehr.transport.tls import TlsIdentity
from tests.test_pki import roster_at


@pytest.fixture()
def pki(tmp_path: Path) -> PkiPaths:
    return init_federation_pki(roster_at(tmp_path / "op"), tmp_path / "op" / "certs")


def test_signed_request_gives_a_working_identity_and_sign_never_reads_the_key(
    pki: PkiPaths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site-b"
    paths = make_request("hospital-b", "party", "net-one", site)
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o600
    assert sorted(p.name for p in site.iterdir()) == ["hospital-b.csr", "hospital-b.key"]

    read: list[Path] = []
    real_read = Path.read_bytes

    def spy(self: Path) -> bytes:
        read.append(self.resolve())
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", spy)
    roster = roster_at(tmp_path / "op")
    cert_path = sign_request(pki.ca_cert, pki.ca_key, roster, paths.csr, days=90)
    monkeypatch.undo()
    assert paths.key.resolve() not in read
    assert paths.csr.resolve() in read  # the spy did see what sign read

    assert cert_path == site / "hospital-b.pem"
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    leaf = x509.load_pem_x509_certificate(cert_path.read_bytes())
    leaf.verify_directly_issued_by(ca)
    days = (leaf.not_valid_after_utc - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    assert 89.9 < days <= 90
    check_key_pair(cert_path, cert_path.read_bytes(), paths.key, paths.key.read_bytes())
    tls = TlsIdentity.from_files("hospital-b", pki.ca_cert, cert_path, paths.key, role="party")
    assert tls.identity == "hospital-b"

    # Same names, usages and subject as the certificate `certs init` made for this id.
    made = x509.load_pem_x509_certificate(pki.cert_for("hospital-b").read_bytes())
    assert leaf.subject == made.subject
    for ext in (x509.SubjectAlternativeName, x509.KeyUsage, x509.ExtendedKeyUsage):
        assert (
            leaf.extensions.get_extension_for_class(ext).value
            == made.extensions.get_extension_for_class(ext).value
        )


def test_request_for_an_id_not_in_the_roster_or_another_role_is_refused(
    pki: PkiPaths, tmp_path: Path
) -> None:
    roster = roster_at(tmp_path / "op")
    stranger = make_request("hospital-x", "party", "net-one", tmp_path / "x")
    with pytest.raises(ConfigError, match="'hospital-x' is not in the roster"):
        sign_request(pki.ca_cert, pki.ca_key, roster, stranger.csr)
    wrong = make_request("analyst", "party", "net-one", tmp_path / "y")
    with pytest.raises(ConfigError, match=r"asks for role party, but the roster .* as analyst"):
        sign_request(pki.ca_cert, pki.ca_key, roster, wrong.csr)
    other_fed = make_request("analyst", "analyst", "net-two", tmp_path / "z")
    with pytest.raises(ConfigError, match="federation 'net-two'"):
        sign_request(pki.ca_cert, pki.ca_key, roster, other_fed.csr)
    assert [p for d in ("x", "y", "z") for p in (tmp_path / d).glob("*.pem")] == []


def test_altered_request_is_refused(pki: PkiPaths, tmp_path: Path) -> None:
    paths = make_request("hospital-a", "party", "net-one", tmp_path / "a")
    csr = x509.load_pem_x509_csr(paths.csr.read_bytes())
    # One bit flipped in the self-signature: it no longer verifies.
    der = bytearray(csr.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature
    paths.csr.write_bytes(
        b"-----BEGIN CERTIFICATE REQUEST-----\n"
        + base64.encodebytes(bytes(der))
        + b"-----END CERTIFICATE REQUEST-----\n"
    )
    with pytest.raises(ConfigError, match="signature does not verify"):
        sign_request(pki.ca_cert, pki.ca_key, roster_at(tmp_path / "op"), paths.csr)


def test_request_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    make_request("analyst", "analyst", "net-one", tmp_path)
    with pytest.raises(ConfigError, match="refusing to overwrite existing key"):
        make_request("analyst", "analyst", "net-one", tmp_path)


def test_cli_request_sign_show(
    pki: PkiPaths, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = str(tmp_path / "op" / "roster.toml")
    site = tmp_path / "analyst-site"
    # As the brief's member types it: no roster at the member's site, no federation.
    assert main(["certs", "request", "--id", "analyst", "--role", "analyst",
                 "--out", str(site)]) == 0  # fmt: skip
    csr = site / "analyst.csr"
    assert main(["certs", "show", str(csr)]) == 0
    shown = capsys.readouterr().out
    assert "identity:    analyst" in shown and "role:        analyst" in shown
    assert "federation:  (not named" in shown
    out = tmp_path / "issued.pem"
    assert main(["certs", "sign", "--ca", str(pki.ca_cert), "--ca-key", str(pki.ca_key),
                 "--roster", roster, str(csr), "--out", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["certs", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    leaf = x509.load_pem_x509_certificate(out.read_bytes())
    assert f"fingerprint: sha256:{leaf.fingerprint(hashes.SHA256()).hex()}" in shown
    assert "days left:   364" in shown and "federation:  net-one" in shown
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "smpc-ehr://net-one/analyst/analyst"
    ]
    assert shown.strip().splitlines() == describe(out)
    # A CSR naming an id the roster lacks: one line naming it, exit 2, no certificate.
    make_request("hospital-z", "party", "net-one", tmp_path / "z")
    code = main(["certs", "sign", "--ca", str(pki.ca_cert), "--ca-key", str(pki.ca_key),
                 "--roster", roster, str(tmp_path / "z" / "hospital-z.csr")])  # fmt: skip
    assert code == 2
    assert "'hospital-z' is not in the roster" in capsys.readouterr().err
    assert not (tmp_path / "z" / "hospital-z.pem").exists()
