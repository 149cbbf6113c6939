"""The federation on separate network addresses: coordinator, dealer and three
hospitals each in its own Linux network namespace (tests/netns.py), so that every
connection crosses a real interface to a real address, TLS names are checked against
roster ids reached at those addresses, and nothing listens on 127.0.0.1. The analyst
(this test) reaches the coordinator from outside, at 10.77.0.1."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from smpc_ehr.client import Client
from smpc_ehr.local.federation import COORDINATOR_ID, DEALER_ID, down
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, start_federation
from tests.netns import SUBNET, namespaces, pids_in, why_not


def test_a_count_across_network_namespaces(data3: Path, tmp_path: Path) -> None:
    reason = why_not()
    if reason:
        pytest.skip(f"no multi-host test: {reason}")
    members = [COORDINATOR_ID, DEALER_ID, *sorted(p.name for p in data3.iterdir() if p.is_dir())]
    state = tmp_path / "state"
    with namespaces(members) as placement:
        federation = start_federation(data3, state, placement=placement)
        try:
            for ident in members:
                host, port = federation.addresses[ident].rsplit(":", 1)
                assert host == placement.hosts[ident] and host.startswith(f"{SUBNET}.")
                assert federation.pids[ident] in pids_in(placement.prefixes[ident])
                with socket.socket() as probe:  # not on this host's loopback
                    assert probe.connect_ex(("127.0.0.1", int(port))) != 0
            with Client.from_state(state) as client:
                result = client.run(COUNT_TEMPLATE, {"codes": "E11"})
            assert result.result["count"] == truth_counts(data3, ["E11"])[()]
            assert len(result.parties) == 3
        finally:
            down(state)
