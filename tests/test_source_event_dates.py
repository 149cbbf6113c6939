"""The rules by which OMOP and FHIR sources give death_date and last_contact_date
(docs/data.md, "Survival dates"), on a small synthetic party edited by hand."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from smpc_ehr.data.fhir_dates import EPISODE_FILE
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.synth import OMOP_FILE, generate_federation
from smpc_ehr.errors import DataError


@pytest.fixture(scope="module")
def party(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 200-patient party as CSV, OMOP and FHIR."""
    out = {}
    for fmt in ("csv", "omop", "fhir"):
        out[fmt] = tmp_path_factory.mktemp(fmt)
        generate_federation(["h"], 200, 5, out[fmt], fmt=fmt)
    return {fmt: folder / "h" for fmt, folder in out.items()}


def _copy(folder: Path, to: Path) -> Path:
    to.mkdir()
    for f in folder.iterdir():
        (to / f.name).write_bytes(f.read_bytes())
    return to


def _day(text: str) -> np.datetime64:
    return np.datetime64(text, "D")


def test_omop_takes_the_earliest_death_and_the_latest_observation_period(
    party: dict[str, Path], tmp_path: Path
) -> None:
    want = load_party_data(party["csv"]).dates
    folder = _copy(party["omop"], tmp_path / "omop")
    dead = int(np.flatnonzero(~np.isnat(want["death_date"]))[0])
    alive = int(np.flatnonzero(np.isnat(want["last_contact_date"]))[0])
    with sqlite3.connect(folder / OMOP_FILE) as db:  # person_id = position + 1
        db.execute("INSERT INTO death VALUES (?, '2030-01-01', NULL, 0)", (dead + 1,))
        db.execute("INSERT INTO death VALUES (?, '1999-02-03', NULL, 0)", (dead + 1,))
        db.execute(
            "INSERT INTO observation_period VALUES (99999, ?, '1990-01-01', '1995-06-07', 0)",
            (dead + 1,),
        )
        db.execute(
            "INSERT INTO observation_period VALUES (99998, ?, '1990-01-01', '2031-06-07', 0)",
            (alive + 1,),
        )
    db.close()
    got = load_party_data(folder).dates
    assert got["death_date"][dead] == _day("1999-02-03")  # the earliest of three rows
    assert got["last_contact_date"][dead] == want["last_contact_date"][dead]  # the latest
    assert got["last_contact_date"][alive] == _day("2031-06-07")  # after as_of: as stored
    others = np.ones(len(got["death_date"]), dtype=bool)
    others[[dead, alive]] = False
    for name in want:
        assert np.array_equal(got[name][others], want[name][others], equal_nan=True)


def test_an_omop_cdm_without_the_tables_has_no_date_columns(
    party: dict[str, Path], tmp_path: Path
) -> None:
    folder = _copy(party["omop"], tmp_path / "omop")
    with sqlite3.connect(folder / OMOP_FILE) as db:
        db.execute("DROP TABLE observation_period")
    db.close()
    assert list(load_party_data(folder).dates) == ["death_date"]
    with sqlite3.connect(folder / OMOP_FILE) as db:
        db.execute("INSERT INTO death VALUES (123456, '2020-01-01', NULL, 0)")
    db.close()
    with pytest.raises(DataError, match=r"table death, column person_id, person_id 123456"):
        load_party_data(folder)


def _rewrite(path: Path, edit: dict[int, dict[str, object] | None]) -> None:
    """Replace (dict) or drop (None) lines of an NDJSON file by their index."""
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = []
    for i, line in enumerate(lines):
        if i in edit:
            if edit[i] is None:
                continue
            line = json.dumps(edit[i])
        kept.append(line)
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")


def test_fhir_deaths_episodes_and_encounters(party: dict[str, Path], tmp_path: Path) -> None:
    want = load_party_data(party["csv"]).dates
    folder = _copy(party["fhir"], tmp_path / "fhir")
    patients = [json.loads(line) for line in (folder / "Patient.ndjson").read_text().splitlines()]
    dead = int(np.flatnonzero(~np.isnat(want["death_date"]))[0])
    boolean = {k: v for k, v in patients[dead].items() if k != "deceasedDateTime"}
    _rewrite(folder / "Patient.ndjson", {dead: {**boolean, "deceasedBoolean": True}})
    episodes = [json.loads(line) for line in (folder / EPISODE_FILE).read_text().splitlines()]
    first, second = episodes[0], episodes[1]
    who = [e["patient"]["reference"].removeprefix("Patient/") for e in (first, second)]
    ids = [p["id"] for p in patients]
    with (folder / EPISODE_FILE).open("a", encoding="utf-8") as out:
        older = {**first, "id": "old", "period": {"start": "1980-01-01", "end": "1981-01-01"}}
        still = {**second, "id": "open", "status": "active", "period": {"start": "2000-01-01"}}
        planned = {**first, "id": "p", "status": "planned", "period": {"end": "2040-01-01"}}
        out.write("\n".join(json.dumps(e) for e in (older, still, planned)) + "\n")
    got = load_party_data(folder).dates
    assert np.isnat(got["death_date"][dead])  # deceasedBoolean: the day is unknown
    i, j = ids.index(who[0]), ids.index(who[1])
    assert got["last_contact_date"][i] == _day(first["period"]["end"])  # the latest end
    assert np.isnat(got["last_contact_date"][j])  # an open episode: followed to as_of
    (folder / EPISODE_FILE).unlink()  # then the encounters count
    encounters = [
        json.loads(line) for line in (folder / "Encounter.ndjson").read_text().splitlines()
    ]
    latest: dict[int, np.datetime64] = {}
    for e in encounters:
        k = ids.index(e["subject"]["reference"].removeprefix("Patient/"))
        day = _day(e["period"].get("end") or e["period"]["start"])
        latest[k] = max(latest.get(k, day), day)
    contact = load_party_data(folder).dates["last_contact_date"]
    assert {k: contact[k] for k in latest} == latest
    assert np.isnat(np.delete(contact, list(latest))).all() and len(latest) > 50
    (folder / "Encounter.ndjson").unlink()  # neither: no column, the analysis is refused
    assert list(load_party_data(folder).dates) == ["death_date"]
