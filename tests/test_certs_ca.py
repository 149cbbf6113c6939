"""`smpc-ehr certs ca`: the operator makes the CA alone; members' keys are made elsewhere."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from smpc_ehr.cli import main
from smpc_ehr.pki.certs import load_ca
from smpc_ehr.pki.requests import make_request
from tests.test_pki import roster_at


def test_certs_ca_makes_only_the_ca_and_refuses_to_replace_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    op = tmp_path / "op"
    roster_at(op)
    roster = str(op / "roster.toml")
    assert main(["certs", "ca", "--roster", roster, "--out", str(op / "certs")]) == 0
    assert sorted(p.name for p in (op / "certs").iterdir()) == ["ca.key", "ca.pem"]
    assert stat.S_IMODE((op / "certs" / "ca.key").stat().st_mode) == 0o600
    key, ca = load_ca(op / "certs" / "ca.pem", op / "certs" / "ca.key")  # they belong together
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert "net-one federation CA" in ca.subject.rfc4514_string()
    assert "keep it offline" in capsys.readouterr().out

    # A second run would orphan every certificate signed so far: refused, exit 2.
    before = (op / "certs" / "ca.pem").read_bytes()
    assert main(["certs", "ca", "--roster", roster, "--out", str(op / "certs")]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (op / "certs" / "ca.pem").read_bytes() == before

    # The CA signs a request a member made in its own folder.
    site = tmp_path / "site"
    csr = make_request("hospital-b", "party", "net-one", site).csr
    ca_pem, ca_key = str(op / "certs" / "ca.pem"), str(op / "certs" / "ca.key")
    assert main(["certs", "sign", "--ca", ca_pem, "--ca-key", ca_key,
                 "--roster", roster, str(csr)]) == 0  # fmt: skip
    leaf = x509.load_pem_x509_certificate((site / "hospital-b.pem").read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert key.public_key() == ca.public_key()
