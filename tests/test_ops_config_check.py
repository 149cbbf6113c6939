"""`smpc-ehr config check` and `--version`: good configs pass and print what they hold;
each broken part (key, certificate, CA, data, roster) fails with exit 2 naming it."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import shutil
from pathlib import Path

import pytest

from smpc_ehr.cli import main
from smpc_ehr.cli.config_check import check_config
from smpc_ehr.config.analyst import write_analyst_config
from smpc_ehr.config.coordinator import write_coordinator_config
from smpc_ehr.config.dealer import write_dealer_config
from smpc_ehr.config.party import load_party_config, write_party_config
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.synth import generate_federation
from smpc_ehr.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
ROSTER = (ROOT / "parties" / "roster.toml").read_text()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """The example roster with certificates from `certs init`, data and one config per role."""
    (tmp_path / "roster.toml").write_text(ROSTER)
    assert main(["certs", "init", "--roster", str(tmp_path / "roster.toml"),
                 "--out", str(tmp_path / "certs")]) == 0  # fmt: skip
    truth = generate_federation(["hospital-a"], 50, 1, tmp_path / "data")
    assert truth.sizes["hospital-a"] > 0
    common = {"roster": tmp_path / "roster.toml"}
    for ident, writer in (
        ("coordinator", write_coordinator_config),
        ("dealer", write_dealer_config),
        ("analyst", write_analyst_config),
    ):
        writer(tmp_path / f"{ident}.toml", id=ident, key=tmp_path / f"certs/{ident}.key",
               cert=tmp_path / f"certs/{ident}.pem", **common)  # fmt: skip
    write_party_config(
        tmp_path / "hospital-a.toml",
        id="hospital-a",
        key=tmp_path / "certs/hospital-a.key",
        cert=tmp_path / "certs/hospital-a.pem",
        data=tmp_path / "data/hospital-a",
        **common,
    )
    return tmp_path


def fails(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error of a failing `config check` (exit 2)."""
    assert main(["config", "check", str(path)]) == 2
    return capsys.readouterr().err


def test_version_is_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.split() == ["smpc-ehr", importlib.metadata.version("smpc-ehr")]


@pytest.mark.parametrize("role", ["coordinator", "dealer", "analyst"])
def test_good_process_configs_pass(
    site: Path, role: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(site / f"{role}.toml")]) == 0
    out = capsys.readouterr().out
    assert f"{role} config for '{role}': OK" in out
    assert f"identity {role}, matches its key" in out
    assert "3 parties (hospital-a, hospital-b, hospital-c)" in out


def test_party_config_loads_its_data(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert not load_party_config(site / "hospital-a.toml").preload_crypten  # the default
    import pyarrow.csv as pcsv

    assert main(["config", "check", str(site / "hospital-a.toml")]) == 0
    out = capsys.readouterr().out
    patients = pcsv.read_csv(site / "data/hospital-a/patients.csv")
    assert f"{patients.num_rows} patients" in out
    assert "bmi" in out  # a numeric column of the synthetic data


def test_a_database_source_is_counted_in_the_database(
    site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DuckDB source: `config check` counts patients, condition rows and codes with
    SQL (the rows are not loaded) and they are the CSV files' of the same population."""
    generate_federation(["hospital-a"], 50, 1, site / "duck", fmt="duckdb")
    config = (site / "hospital-a.toml").read_text()
    (site / "duck.toml").write_text(config.replace("data/hospital-a", "duck/hospital-a"))
    assert main(["config", "check", str(site / "duck.toml")]) == 0
    out = capsys.readouterr().out
    csv = load_party_data(site / "data/hospital-a")
    assert (
        f"{csv.n_patients} patients, {csv.n_conditions} condition rows "
        f"({len(csv.code_table)} distinct codes), version files:"
    ) in out
    assert "outcome columns: readmit_30d" in out


def test_days_left_counts_to_expiry(site: Path) -> None:
    checked = check_config(site / "analyst.toml")
    later = checked.certificate.not_after - dt.timedelta(days=10, hours=1)
    assert check_config(site / "analyst.toml", now=later).certificate.days_left == 10
    with pytest.raises(ConfigError, match="expired on"):
        check_config(site / "analyst.toml", now=checked.certificate.not_after)


def test_someone_elses_certificate_is_named(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(site / "certs/coordinator.pem", site / "certs/dealer.pem")
    shutil.copy(site / "certs/coordinator.key", site / "certs/dealer.key")
    err = fails(site / "dealer.toml", capsys)
    assert "is for 'coordinator', but this dealer's id is 'dealer'" in err


def test_key_not_matching_certificate(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(site / "certs/coordinator.key", site / "certs/analyst.key")
    err = fails(site / "analyst.toml", capsys)
    assert "analyst.key does not match certificate" in err


def test_certificate_of_another_ca(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "init", "--roster", str(site / "roster.toml"),
                 "--out", str(site / "other")]) == 0  # fmt: skip
    capsys.readouterr()
    for suffix in ("pem", "key"):
        shutil.copy(site / f"other/analyst.{suffix}", site / f"certs/analyst.{suffix}")
    err = fails(site / "analyst.toml", capsys)
    assert "is not signed by the federation CA" in err


def test_missing_key_and_bad_data(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (site / "certs/coordinator.key").unlink()
    assert "private key not found" in fails(site / "coordinator.toml", capsys)
    patients = site / "data/hospital-a/patients.csv"
    lines = patients.read_text().splitlines()
    patients.write_text("\n".join([lines[0], lines[1].replace(",", ",,", 1), *lines[2:]]) + "\n")
    err = fails(site / "hospital-a.toml", capsys)
    assert "[party] data" in err and "patients.csv: line 2" in err


def test_not_a_process_config(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "exactly one of the tables" in fails(site / "roster.toml", capsys)
    assert "config not found" in fails(site / "nothing.toml", capsys)
    (site / "bad.toml").write_text("[party\n")
    assert "not valid TOML" in fails(site / "bad.toml", capsys)


def test_example_configs_load() -> None:
    """Every config in parties/ (the dealer's of the README's step 5 included) loads
    for the role its file is named after."""
    from smpc_ehr.cli.config_check import load_any_config

    roles = {"coordinator": "coordinator", "dealer": "dealer", "analyst": "analyst"}
    for path in sorted((ROOT / "parties").glob("*.toml")):
        if path.name == "roster.toml":
            continue
        role, config = load_any_config(path, check_files=False)
        assert role == roles.get(path.stem, "party") and config.id == path.stem
        if role == "party":  # the roster has a dealer: torch loads at start-up
            assert load_party_config(path, check_files=False).preload_crypten


def test_a_site_without_the_checkout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """parties/site-hospital-a/ filled as its README says, in a folder of its own."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "parties/site-hospital-a", site)
    shutil.copy(ROOT / "parties/roster.toml", site / "roster.toml")
    operator = tmp_path / "operator"  # the federation operator's folder, not the site
    assert main(["certs", "init", "--roster", str(site / "roster.toml"),
                 "--out", str(operator)]) == 0  # fmt: skip
    (site / "certs").mkdir()
    for name in ("ca.pem", "hospital-a.pem", "hospital-a.key"):
        shutil.copy(operator / name, site / "certs" / name)
    assert main(["roster", "sign", "--ca-key", str(operator / "ca.key"),
                 str(site / "roster.toml")]) == 0  # fmt: skip
    (site / "templates").mkdir()
    for template in (ROOT / "protocols").glob("*.toml"):
        shutil.copy(template, site / "templates" / template.name)
    generate_federation(["hospital-a"], 40, 2, tmp_path / "extract")
    shutil.copytree(tmp_path / "extract/hospital-a", site / "data")
    capsys.readouterr()
    assert main(["config", "check", str(site / "hospital-a.toml")]) == 0
    assert "party config for 'hospital-a': OK" in capsys.readouterr().out
    (site / "templates/kmeans.toml").unlink()
    assert "kmeans.toml" in fails(site / "hospital-a.toml", capsys)
