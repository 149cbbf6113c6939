"""Adding a hospital to a running federation without restarting anyone (slow tier).

The steps of docs/operations.md "Adding, re-issuing and revoking a member": the
operator adds hospital-4 to the roster with a higher version and signs it; the new
site makes its key and CSR in its own folder; the operator signs the CSR; the new site
starts its party; every running process reloads on SIGHUP. Then jobs over all four
hospitals run on both backends (the dealer learns the new party from the reload too)
and give the pooled count of the four data folders.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

from smpc_ehr.client import Client
from smpc_ehr.config.party import write_party_config
from smpc_ehr.config.roster import Member, load_roster, write_roster
from smpc_ehr.config.roster_sig import sign_roster
from smpc_ehr.data.synth import generate_federation
from smpc_ehr.local.federation import down, free_port, health, is_running
from smpc_ehr.pki.requests import make_request, sign_request
from smpc_ehr.transport.tls import TlsIdentity
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, start_federation
from tests.test_revocation_live import wait_for_line

NEW = "hospital-4"


def test_a_hospital_joins_after_a_roster_reload_without_restarts(tmp_path: Path) -> None:
    everyone = tmp_path / "data"
    generate_federation([f"hospital-{i}" for i in (1, 2, 3, 4)], 1500, 44, everyone)
    first_three = tmp_path / "first-three"
    first_three.mkdir()
    for i in (1, 2, 3):
        (first_three / f"hospital-{i}").symlink_to(everyone / f"hospital-{i}")
    state = tmp_path / "state"
    fed = start_federation(first_three, state)
    newcomer: subprocess.Popen[bytes] | None = None
    try:
        # 1. The operator: the new member in the roster, a higher version, signed.
        roster = load_roster(state / "roster.toml")
        address = f"127.0.0.1:{free_port()}"
        grown = dataclasses.replace(
            roster,
            version=roster.version + 1,
            parties=(*roster.parties, Member(NEW, "party", "Hospital 4", address)),
        )
        write_roster(grown, roster.source)
        sign_roster(roster.source, state / "certs" / "ca.key")
        # 2-3. The new site's own key and CSR; the operator signs the CSR.
        site = tmp_path / "hospital-4-site"
        request = make_request(NEW, "party", roster.federation, site / "certs")
        certs = state / "certs"
        cert = sign_request(certs / "ca.pem", certs / "ca.key", grown, request.csr)
        assert not (certs / f"{NEW}.key").exists(), "the key stays at the site"
        # 4. The new site starts its party.
        config = write_party_config(
            site / "party.toml",
            id=NEW,
            roster=roster.source,
            key=request.key,
            cert=cert,
            data=everyone / NEW,
            listen=address,
            approved_protocols=[COUNT_TEMPLATE],
            audit_log=site / "audit.jsonl",
        )
        with open(site / "party.log", "ab") as log:
            newcomer = subprocess.Popen(
                [sys.executable, "-m", "smpc_ehr", "party", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        analyst = load_roster(roster.source)  # the new version, as every member now reads it
        tls = TlsIdentity.from_files(
            "analyst",
            analyst.ca_cert,
            state / "certs" / "analyst.pem",
            state / "certs" / "analyst.key",
        )
        wait_for_line(site / "party.log", "serving on port", timeout=60)
        assert health(tls, NEW, address) is not None
        # 5. Every running member reloads; nobody restarts.
        for pid in fed.pids.values():
            os.kill(pid, signal.SIGHUP)
        for member in fed.pids:
            wait_for_line(state / "logs" / f"{member}.log", "roster reloaded: version 1 -> 2")

        truth = truth_counts(everyone, ["E11"])[()]
        everyone_ids = ("hospital-1", "hospital-2", "hospital-3", NEW)
        with Client.from_state(state) as client:
            for backend in ("mpyc", "crypten"):
                result = client.run(COUNT_TEMPLATE, {"codes": ["E11"]}, backend=backend)
                assert result.parties == everyone_ids, backend
                assert result.result["count"] == truth, backend
        assert all(is_running(pid) for pid in fed.pids.values()), "nobody was restarted"
    finally:
        if newcomer is not None:
            newcomer.terminate()
            newcomer.wait(20)
        down(state)
