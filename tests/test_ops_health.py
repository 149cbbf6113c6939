"""`smpc-ehr health` and `smpc-ehr templates` against a running local federation (slow
tier: reuses the session's fed3), and the unreachable case by a roster copy that points
one hospital at a port nobody listens on (so the shared federation is not disturbed)."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from smpc_ehr.cli import main
from smpc_ehr.config.coordinator import load_coordinator_config, write_coordinator_config
from smpc_ehr.config.roster import load_roster, write_roster
from smpc_ehr.local.federation import LocalFederation
from smpc_ehr.study.template import load_template
from tests.federations import PROTOCOLS


def rows(out: str) -> dict[str, list[str]]:
    """The health table's rows by member id (after the header and the rule)."""
    return {line.split()[0]: line.split() for line in out.splitlines()[2:] if "  " in line}


def test_health_and_templates(
    fed3: LocalFederation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = fed3.state_dir
    roster = load_roster(state / "roster.toml")
    parties = list(roster.party_ids())
    expected = {
        "coordinator": ["coordinator", *parties],
        parties[0]: [*parties, "dealer"],
        "dealer": ["dealer"],
        "analyst": ["coordinator"],
    }
    for config, members in expected.items():
        assert main(["health", "--config", str(state / f"{config}.toml")]) == 0, config
        table = rows(capsys.readouterr().out)
        assert sorted(table) == sorted(members)
        for ident in members:
            assert table[ident][2] == fed3.addresses[ident] and table[ident][3] == "yes"
            assert 700 <= int(table[ident][4]) <= 730  # `local up` certificates: 730 days
        ready = {p: " ".join(table[p][6:]).replace(",", " ").split() for p in table}
        assert all("mpyc" in ready[p] for p in parties if p in table), ready  # "mpyc, crypten"

    assert main(["templates", "--config", str(state / "analyst.toml")]) == 0
    out = capsys.readouterr().out
    for path in PROTOCOLS.glob("*.toml"):
        template = load_template(path)
        line = next(x for x in out.splitlines() if template.canonical_hash in x)
        assert line.split() == [template.name, template.canonical_hash] + ["yes"] * len(parties)

    # One hospital away: a roster copy sends it to a port bound but not listening.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{closed.getsockname()[1]}"
        away = dataclasses.replace(roster.parties[1], address=dead)
        copy = dataclasses.replace(
            roster, parties=(roster.parties[0], away, *roster.parties[2:]), source=tmp_path
        )
        coordinator = load_coordinator_config(state / "coordinator.toml")
        write_roster(copy, tmp_path / "roster.toml")
        write_coordinator_config(
            tmp_path / "coordinator.toml",
            id="coordinator",
            roster=tmp_path / "roster.toml",
            key=coordinator.key,
            cert=coordinator.cert,
        )
        assert main(["health", "--config", str(tmp_path / "coordinator.toml")]) == 1
    out = capsys.readouterr().out
    table = rows(out)
    assert table[away.id][2:4] == [dead, "NO"]
    assert [table[p][3] for p in parties if p != away.id] == ["yes"] * (len(parties) - 1)
    assert f"{away.id}: UNAVAILABLE" in out
