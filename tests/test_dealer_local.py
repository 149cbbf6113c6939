"""`local up` starts a dealer next to the coordinator and the parties."""

from __future__ import annotations

from smpc_ehr.local.federation import DEALER_ID, LocalFederation, health
from smpc_ehr.transport.tls import TlsIdentity


def test_local_federation_runs_a_healthy_dealer(fed3: LocalFederation) -> None:
    assert DEALER_ID in fed3.addresses and DEALER_ID in fed3.pids
    assert (fed3.state_dir / "dealer.toml").is_file()
    certs = fed3.state_dir / "certs"
    tls = TlsIdentity.from_files(
        "hospital-1", certs / "ca.pem", certs / "hospital-1.pem", certs / "hospital-1.key"
    )
    reply = health(tls, DEALER_ID, fed3.addresses[DEALER_ID])
    assert reply is not None
    assert (reply.identity, reply.role) == (DEALER_ID, "dealer")
