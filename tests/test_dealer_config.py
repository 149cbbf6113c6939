"""The dealer's config, the roster's rule that the dealer shares no identity, and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from smpc_ehr.cli import build_parser, main
from smpc_ehr.config.dealer import load_dealer_config, write_dealer_config
from smpc_ehr.config.roster import Member, Roster, write_roster
from smpc_ehr.errors import ConfigError


def roster(tmp_path: Path, dealer_id: str | None = "dealer") -> Roster:
    dealer = Member(dealer_id, "dealer", "D", "127.0.0.1:50059") if dealer_id else None
    return Roster(
        federation="net",
        ca_cert=tmp_path / "ca.pem",
        coordinator=Member("coordinator", "coordinator", "C", "127.0.0.1:50050"),
        dealer=dealer,
        parties=(
            Member("hospital-a", "party", "A", "127.0.0.1:50051"),
            Member("hospital-b", "party", "B", "127.0.0.1:50052"),
        ),
        analysts=(),
        source=tmp_path / "roster.toml",
    )


def files(tmp_path: Path, dealer_id: str | None = "dealer") -> Path:
    """A roster and dummy key/cert/CA files (loading checks that they exist)."""
    written = write_roster(roster(tmp_path, dealer_id), tmp_path / "roster.toml")
    for name in ("ca.pem", "dealer.key", "dealer.pem"):
        (tmp_path / name).write_text("x")
        (tmp_path / name).chmod(0o600)
    return written


def write_config(tmp_path: Path, ident: str = "dealer", **kwargs: str) -> Path:
    return write_dealer_config(
        tmp_path / "dealer.toml",
        id=ident,
        roster="roster.toml",
        key="dealer.key",
        cert="dealer.pem",
        **kwargs,
    )


def test_dealer_config_round_trips(tmp_path: Path) -> None:
    files(tmp_path)
    config = load_dealer_config(write_config(tmp_path, log_level="debug"))
    assert config.id == "dealer"
    assert config.listen == "0.0.0.0:50059"  # the roster's port on every interface
    assert config.key == tmp_path / "dealer.key" and config.cert == tmp_path / "dealer.pem"
    assert config.log_level == "DEBUG"
    assert config.roster.dealer is not None and config.roster.dealer.id == "dealer"
    config = load_dealer_config(write_config(tmp_path, listen="127.0.0.1:0"))
    assert config.listen == "127.0.0.1:0"


def test_dealer_config_must_name_the_rosters_dealer(tmp_path: Path) -> None:
    files(tmp_path)
    with pytest.raises(ConfigError, match="has role party in the roster, not dealer"):
        load_dealer_config(write_config(tmp_path, "hospital-a"))
    files(tmp_path, dealer_id=None)
    with pytest.raises(ConfigError, match="'dealer' is not in the roster"):
        load_dealer_config(write_config(tmp_path))


def test_dealer_config_rejects_unknown_keys_and_missing_files(tmp_path: Path) -> None:
    files(tmp_path)
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("[log]", "job_deadline_seconds = 5\n\n[log]"))
    with pytest.raises(ConfigError, match="unknown key"):
        load_dealer_config(path)
    path = write_config(tmp_path)
    (tmp_path / "dealer.key").unlink()
    with pytest.raises(ConfigError, match="private key not found"):
        load_dealer_config(path)


@pytest.mark.parametrize("shared", ["hospital-b", "coordinator"])
def test_dealer_sharing_an_identity_is_rejected_with_the_reason(
    tmp_path: Path, shared: str
) -> None:
    # One certificate would stand for the dealer and a party (or the coordinator):
    # the dealer must never hold a party's key, or it could unmask that party's shares.
    with pytest.raises(ConfigError) as err:
        roster(tmp_path, dealer_id=shared)
    message = str(err.value)
    assert f"id {shared!r} is used by both" in message
    assert "ids must be unique across all roles" in message
    assert "each id names exactly one certificate" in message


def test_cli_has_a_dealer_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["dealer", "--config", "d.toml"])
    assert args.command == "dealer" and args.handler.__name__ == "serve"
    assert main(["dealer", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "dealer config file not found" in capsys.readouterr().err


def test_max_jobs_per_party_must_leave_room_for_every_party(tmp_path: Path) -> None:
    """max_jobs_per_party x parties above the dealer's open jobs would let the parties'
    own bounds fill it, the lock-out the bound is there to prevent."""
    files(tmp_path)
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("max_jobs_per_party = 4", "max_jobs_per_party = 200"))
    with pytest.raises(ConfigError, match=r"max_jobs_per_party: 200 x \d+ parties exceeds"):
        load_dealer_config(path)
