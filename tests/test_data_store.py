"""A party reads its data per job: files again when they changed, a database in one
snapshot per job (SQLite read-only; a real PostgreSQL server at REPEATABLE READ), and
every job's result names the version of each party's data. The last test changes a
running federation's files and sees the next count follow without a restart, and a
broken file fail the job without its row reaching the analyst."""

from __future__ import annotations

import csv
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from smpc_ehr.client import Client
from smpc_ehr.client.client import JobFailed
from smpc_ehr.data.cohort import CohortFilter, count_cells
from smpc_ehr.data.engines import read_only_engine
from smpc_ehr.data.loader import data_files
from smpc_ehr.data.sources import open_store
from smpc_ehr.data.store import VERSION_KEY_FILE, files_version
from smpc_ehr.data.synth import OMOP_FILE, generate_federation
from smpc_ehr.local.federation import down
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, start_federation
from tests.test_data_sources import copy_to_postgres

PARTIES = ["hospital-1", "hospital-2", "hospital-3"]
E11 = CohortFilter(codes=("E11",))


def e11_total(rows: object) -> int:
    return int(count_cells(rows, E11)[1].sum())  # type: ignore[arg-type]


def add_copies(folder: Path, code: str, copies: int) -> None:
    """`copies` new patients at the CSV folder, each a copy of the first patient with
    `code` under a new id, with that one condition row."""
    with (folder / "conditions.csv").open(newline="") as f:
        conditions = list(csv.DictReader(f))
    first = next(row for row in conditions if row["code"].startswith(code))
    with (folder / "patients.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        patient = next(row for row in reader if row["patient_id"] == first["patient_id"])
    with (folder / "patients.csv").open("a", newline="") as f:
        writer = csv.DictWriter(f, fields)
        for i in range(copies):
            writer.writerow({**patient, "patient_id": f"copy-{i}"})
    with (folder / "conditions.csv").open("a", newline="") as f:
        writer = csv.DictWriter(f, list(first))
        for i in range(copies):
            writer.writerow({**first, "patient_id": f"copy-{i}"})


@pytest.fixture()
def csv_folder(tmp_path: Path) -> Path:
    generate_federation(["h"], 400, 5, tmp_path, fmt="csv")
    return tmp_path / "h"


def test_files_are_read_again_only_when_they_change(csv_folder: Path) -> None:
    store = open_store(csv_folder)
    first, again = store.open_job(), store.open_job()
    assert first.version == again.version and first.version.startswith("sha256:")
    assert first.rows() is again.rows()  # unchanged files: not read twice
    before = e11_total(first.rows())
    time.sleep(0.01)  # a new modification time even on coarse clocks
    add_copies(csv_folder, "E11", 2)
    later = store.open_job()
    assert later.version != first.version
    assert e11_total(later.rows()) == before + 2
    assert e11_total(first.rows()) == before  # a job keeps what it read


def test_a_sqlite_source_is_read_only_in_one_snapshot_per_job(tmp_path: Path) -> None:
    generate_federation(["h"], 300, 6, tmp_path, fmt="omop")
    store = open_store(tmp_path / "h")
    job = store.open_job()
    assert job.version.startswith(f"{OMOP_FILE} modified ")
    assert job.sql is not None and job.sql.version == job.version  # push-down queries it
    before = e11_total(job.rows())
    job.close()
    engine, _ = read_only_engine(f"sqlite:///{tmp_path / 'h' / OMOP_FILE}")
    with pytest.raises(sa.exc.OperationalError, match="readonly"), engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM person"))
    engine.dispose()
    with sqlite3.connect(tmp_path / "h" / OMOP_FILE) as db:
        db.execute("DELETE FROM condition_occurrence WHERE condition_source_value LIKE 'E11%'")
    db.close()
    time.sleep(0.01)
    later = store.open_job()
    assert e11_total(later.rows()) == 0 < before
    later.close()
    store.close()


def test_a_postgresql_job_sees_one_snapshot_and_the_next_job_the_change(
    tmp_path: Path, postgres: str
) -> None:
    generate_federation(["h"], 300, 7, tmp_path, fmt="omop")
    copy_to_postgres(tmp_path / "h" / OMOP_FILE, postgres, "snap")
    folder = tmp_path / "pg"
    folder.mkdir()
    (folder / "source.toml").write_text(
        f'kind = "omop"\nurl = "{postgres}"\nschema = "snap"\n', encoding="utf-8"
    )
    store = open_store(folder)
    job = store.open_job()
    assert job.version.startswith("postgresql snapshot ")
    before_write = job.version
    writer = sa.create_engine(postgres)
    with writer.begin() as connection:  # committed while the job is open
        connection.execute(
            sa.text(
                "DELETE FROM snap.condition_occurrence WHERE condition_source_value LIKE :code"
            ),
            {"code": "E11%"},
        )
    writer.dispose()
    assert e11_total(job.rows()) > 0  # read after the commit, still the job's snapshot
    job.close()
    engine, _ = read_only_engine(postgres)
    with pytest.raises(sa.exc.InternalError, match="read-only"), engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM snap.person"))
    engine.dispose()
    later = store.open_job()
    assert later.version != before_write
    assert e11_total(later.rows()) == 0
    later.close()
    store.close()


@pytest.fixture()
def small_federation(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    data = tmp_path / "data"
    generate_federation(PARTIES, 900, 8, data, fmt="csv")
    fed = start_federation(data, tmp_path / "state")
    try:
        yield data, fed.state_dir
    finally:
        down(fed.state_dir)


@pytest.mark.slow
def test_a_running_federation_follows_its_files_and_names_their_versions(
    small_federation: tuple[Path, Path],
) -> None:
    data, state = small_federation
    with Client.from_state(state) as client:
        first = client.run(COUNT_TEMPLATE, {"codes": "E11"})
        truth = truth_counts(data, ["E11"])[()]
        assert first.result["count"] == truth
        assert set(first.data_versions) == set(PARTIES)
        assert first.as_dict()["data_versions"] == first.data_versions
        for party in PARTIES:  # an analyst holding the exact files cannot confirm them;
            files = data_files(data / party)  # the hospital, holding its key, can
            released = first.data_versions[party]
            assert released.startswith("hmac-sha256:")
            assert released.split(":")[1] != files_version(files).split(":")[1]
            key = (state / "state" / party / VERSION_KEY_FILE).read_bytes()
            assert released == files_version(files, key)

        time.sleep(0.01)
        add_copies(data / PARTIES[1], "E11", 3)
        second = client.run(COUNT_TEMPLATE, {"codes": "E11"})
        assert second.result["count"] == truth + 3  # no restart
        changed = {p for p in PARTIES if second.data_versions[p] != first.data_versions[p]}
        assert changed == {PARTIES[1]}

        with (data / PARTIES[2] / "conditions.csv").open("a") as f:
            f.write("patient-that-does-not-exist,E11.9,2020-01-01\n")
        with pytest.raises(JobFailed) as failed:
            client.run(COUNT_TEMPLATE, {"codes": "E11"})
    message = str(failed.value)
    assert "hospital-3" in message and "data source cannot be read" in message
    assert "patient-that-does-not-exist" not in message and "line" not in message


def test_a_duckdb_source_is_described_once_per_version(tmp_path: Path) -> None:
    generate_federation(["h"], 200, 9, tmp_path, fmt="duckdb")
    store = open_store(tmp_path / "h")
    first, again = store.open_job(), store.open_job()
    assert first.sql is not None and again.sql is not None
    assert first.sql.relations is again.sql.relations  # not scanned again
    first.close()
    again.close()
    time.sleep(0.01)
    generate_federation(["h"], 201, 9, tmp_path, fmt="duckdb")  # new files: described anew
    later = store.open_job()
    assert later.sql is not None and later.version != first.version
    assert later.sql.relations is not first.sql.relations
    later.close()
