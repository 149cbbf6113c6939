"""Synthetic federation: reproducible, sized as asked, and faithful to its truth.json."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smpc_ehr.data.synth import FederationTruth, generate_federation


def read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / f"{name}.csv", dtype=str, keep_default_na=False)


def files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    ids = ["h1", "h2", "h3"]
    generate_federation(ids, 800, seed=3, out=tmp_path / "a")
    generate_federation(ids, 800, seed=3, out=tmp_path / "b")
    generate_federation(ids, 800, seed=4, out=tmp_path / "c")
    names = files(tmp_path / "a")
    assert names == files(tmp_path / "b") == files(tmp_path / "c")
    assert len(names) == 1 + 3 * 3
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)
    assert not mismatch and not errors
    for name in ("h1/patients.csv", "h2/conditions.csv", "h3/truth_phenotypes.csv"):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()


def test_sizes_default_and_explicit(tmp_path: Path) -> None:
    ids = ["a", "b", "c", "d"]
    truth = generate_federation(ids, 500, seed=1, out=tmp_path / "x")
    sizes = [truth.sizes[p] for p in ids]
    assert sum(sizes) == 2000 and len(set(sizes)) > 1
    assert all(0.4 * 500 <= s <= 1.6 * 500 for s in sizes)
    for p in ids:
        assert len(read(tmp_path / "x" / p, "patients")) == truth.sizes[p]
    truth = generate_federation(["a", "b"], 500, seed=1, out=tmp_path / "y", sizes=[10, 300])
    assert truth.sizes == {"a": 10, "b": 300}
    assert len(read(tmp_path / "y" / "b", "patients")) == 300
    assert (tmp_path / "y" / "truth.json").is_file()
    assert FederationTruth.load(tmp_path / "y" / "truth.json") == truth


@pytest.mark.parametrize(
    "kwargs",
    [
        {"party_ids": []},
        {"party_ids": ["a", "a"]},
        {"party_ids": ["../x"]},
        {"patients": 0},
        {"sizes": [1]},
        {"fmt": "xlsx"},
        {"seed": -1},
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    args = {"party_ids": ["a", "b"], "patients": 10, "seed": 1, "out": tmp_path, **kwargs}
    with pytest.raises(ValueError):
        generate_federation(**args)


Frames = dict[str, tuple[pd.DataFrame, pd.DataFrame]]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[FederationTruth, Path]:
    out = tmp_path_factory.mktemp("big")
    return generate_federation(["gen", "ref"], 100_000, seed=21, out=out), out


@pytest.fixture(scope="module")
def frames(big: tuple[FederationTruth, Path]) -> Frames:
    """(patients, conditions) per party, read once as text."""
    truth, out = big
    return {p: (read(out / p, "patients"), read(out / p, "conditions")) for p in truth.party_ids}


def distinct_patients(cond: pd.DataFrame, prefix: str) -> int:
    return cond[cond.code.str.startswith(prefix)].patient_id.nunique()


def within(observed: float, expected: float, sd: float, k: float = 4.0) -> bool:
    return abs(observed - expected) <= k * sd


def test_truth_json_is_complete(big: tuple[FederationTruth, Path]) -> None:
    truth, out = big
    raw = json.loads((out / "truth.json").read_text())
    assert raw["seed"] == 21 and raw["roles"] == {"gen": "general", "ref": "referral"}
    assert 20 <= raw["lsd_enrichment"] <= 50
    assert {t["name"] for t in raw["readmit_model"]["terms"]} >= {"age", "bmi", "diabetes"}
    assert set(raw["phenotypes"]["adult_centres"]) == {"bmi", "hba1c", "sbp", "ldl", "creatinine"}
    assert FederationTruth.load(out / "truth.json") == truth


def test_rare_disease_prevalence(big: tuple[FederationTruth, Path], frames: Frames) -> None:
    truth = big[0]
    rare = truth.prevalence["rare"]
    assert set(rare) == {"E75.22", "E75.21", "E74.02"}  # the loop below checks each of them
    for party in ("gen", "ref"):
        n = truth.sizes[party]
        cond = frames[party][1]
        factor = truth.lsd_enrichment if party == "ref" else 1.0
        for code, p in rare.items():
            expected = n * p * factor
            observed = distinct_patients(cond, code)
            assert within(observed, expected, np.sqrt(expected) + 1), (party, code)


def test_cystic_fibrosis_prevalence_follows_age(
    big: tuple[FederationTruth, Path], frames: Frames
) -> None:
    truth = big[0]
    by_age = truth.prevalence["cystic_fibrosis_by_age"]
    for party in ("gen", "ref"):
        pat, cond = frames[party]
        birth = pd.to_datetime(pat.birth_date, format="%Y-%m-%d")
        age = (pd.Timestamp(truth.as_of) - birth).dt.days / 365.2425
        p = np.where(age < 30, by_age["0-29"], np.where(age < 45, by_age["30-44"], by_age["45+"]))
        observed = distinct_patients(cond, "E84")
        assert within(observed, p.sum(), np.sqrt((p * (1 - p)).sum()) + 1), party


def test_readmission_follows_the_truth_model(
    big: tuple[FederationTruth, Path], frames: Frames
) -> None:
    truth = big[0]
    model = truth.readmit_model
    for party in ("gen", "ref"):
        pat, cond = frames[party]
        birth = pd.to_datetime(pat.birth_date, format="%Y-%m-%d")
        as_of = pd.Timestamp(truth.as_of)
        before = (birth.dt.month > as_of.month) | (
            (birth.dt.month == as_of.month) & (birth.dt.day > as_of.day)
        )
        x = {"age": as_of.year - birth.dt.year - before, "male": pat.sex == "M"}
        for col in ("bmi", "hba1c", "sbp"):
            x[col] = pd.to_numeric(pat[col].replace("", np.nan))
        for flag, prefix in (("diabetes", "E11"), ("ckd", "N18"), ("heart_failure", "I50")):
            x[flag] = pat.patient_id.isin(cond[cond.code.str.startswith(prefix)].patient_id)
        eta = pd.Series(model["intercept"], index=pat.index)
        for t in model["terms"]:
            eta += t["coef"] * (x[t["name"]].astype(float) - t["center"]) / t["scale"]
        prob = 1 / (1 + np.exp(-eta))
        y = pd.to_numeric(pat.readmit_30d.replace("", np.nan))
        ok = prob.notna() & y.notna()
        assert 0.85 * len(pat) < ok.sum() < len(pat)
        for subset in (ok, ok & x["diabetes"], ok & (x["age"] >= 70), ok & (x["age"] < 40)):
            p, obs = prob[subset], y[subset]
            sd = np.sqrt((p * (1 - p)).sum()) / len(p)
            assert within(obs.mean(), p.mean(), sd), party
        assert 0.05 < y.mean() < 0.3


def test_missingness_phenotypes_and_onsets(
    big: tuple[FederationTruth, Path], frames: Frames
) -> None:
    truth, out = big
    folder = out / "gen"
    pat, cond = frames["gen"]
    n = len(pat)
    assert set(truth.missing_rates) == {
        *("bmi", "hba1c", "sbp", "ldl", "creatinine", "readmit_30d"),
        *("weight", "heart_rate", "hdl", "triglycerides", "egfr"),
    }
    for col, rate in truth.missing_rates.items():
        assert 0.0 < rate <= 0.12
        assert within((pat[col] == "").mean(), rate, np.sqrt(rate * (1 - rate) / n)), col
    assert "phenotype" not in pat.columns
    phen = read(folder, "truth_phenotypes")
    assert list(phen.patient_id) == list(pat.patient_id)
    names = truth.phenotypes["names"]
    assert set(phen.phenotype.astype(int)) == set(range(len(names)))
    adults = pd.to_datetime(pat.birth_date, format="%Y-%m-%d") < pd.Timestamp("1990-01-01")
    hba1c = pd.to_numeric(pat.hba1c.replace("", np.nan))[adults].groupby(phen.phenotype).mean()
    centres = truth.phenotypes["adult_centres"]["hba1c"]
    assert np.argmax(hba1c.to_numpy()) == int(np.argmax(centres))
    merged = cond.merge(pat[["patient_id", "birth_date"]], on="patient_id")
    known = merged[merged.onset_date != ""]
    assert 0.05 < 1 - len(known) / len(merged) < 0.15
    assert (known.onset_date >= known.birth_date).all()
    assert (known.onset_date <= truth.as_of).all()
    assert cond.duplicated(["patient_id", "code"]).any()
