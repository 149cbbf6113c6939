"""A running local federation: the analyst's certificate revoked in a new signed roster
is refused after SIGHUP, without a restart; a certificate re-issued from the analyst's
own CSR is accepted (slow tier)."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import pytest
from cryptography import x509

from smpc_ehr.client import Client
from smpc_ehr.config.analyst import write_analyst_config
from smpc_ehr.config.roster import load_roster, write_roster
from smpc_ehr.config.roster_sig import sign_roster
from smpc_ehr.local.federation import LocalFederation
from smpc_ehr.pki.requests import fingerprint, make_request, sign_request
from tests.federations import COUNT_TEMPLATE

PARTIES = ("hospital-1", "hospital-2", "hospital-3")


def wait_for_line(log: Path, text: str, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while text not in log.read_text():
        assert time.monotonic() < end, f"{log} never said {text!r}"
        time.sleep(0.1)


def reload_coordinator(fed: LocalFederation, version: int, revoked: frozenset[str]) -> None:
    """The operator's steps: new roster version, sign it, SIGHUP; wait until in force."""
    state = fed.state_dir
    roster = load_roster(state / "roster.toml")
    before = roster.version
    write_roster(dataclasses.replace(roster, version=version, revoked=revoked), roster.source)
    sign_roster(roster.source, state / "certs" / "ca.key")
    os.kill(fed.pids["coordinator"], signal.SIGHUP)
    wait_for_line(
        state / "logs" / "coordinator.log", f"roster reloaded: version {before} -> {version}"
    )


def test_revoked_analyst_is_refused_after_sighup_and_a_reissued_one_works(
    fed3: LocalFederation, tmp_path: Path
) -> None:
    state = fed3.state_dir
    roster = load_roster(state / "roster.toml")
    old = x509.load_pem_x509_certificate((state / "certs" / "analyst.pem").read_bytes())
    reload_coordinator(fed3, roster.version + 1, frozenset({fingerprint(old)}))
    try:
        with Client.from_state(state) as client, pytest.raises(Exception) as refused:
            client.run(COUNT_TEMPLATE, {"codes": ["E11"]})
        assert "certificate revoked" in str(refused.value)
        log = (state / "logs" / "coordinator.log").read_text()
        assert "refused Submit from analyst: certificate revoked" in log

        # Re-issue: the analyst makes a new key and CSR in its own folder; the operator
        # signs it; the running federation accepts it at once.
        site = tmp_path / "analyst-site"
        request = make_request("analyst", "analyst", roster.federation, site)
        cert = sign_request(
            state / "certs" / "ca.pem", state / "certs" / "ca.key", roster, request.csr
        )
        config = write_analyst_config(
            site / "analyst.toml", id="analyst", roster=roster.source, key=request.key, cert=cert
        )
        with Client.from_config(config) as client:
            assert client.run(COUNT_TEMPLATE, {"codes": ["E11"]}).parties == PARTIES
    finally:  # the session's federation serves other tests: lift the revocation
        reload_coordinator(fed3, roster.version + 2, frozenset())
