"""An OMOP CDM source and a FHIR bulk export give the party the same data as the CSV
files of the same synthetic population: in process (OMOP from SQLite and from a real
PostgreSQL server started here; FHIR NDJSON), and through a real federation whose
parties read OMOP SQLite files, and one whose parties read FHIR exports."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import tomllib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.statistics.count.test_count import check_against_truth
from smpc_ehr.analyses.statistics.kaplan_meier.local import patient_times
from smpc_ehr.analyses.statistics.kaplan_meier.test_kaplan_meier import (
    PARAMS as KM_PARAMS,
)
from smpc_ehr.analyses.statistics.kaplan_meier.test_kaplan_meier import (
    check_against_lifelines,
)
from smpc_ehr.client import Client
from smpc_ehr.data.cohort import DEFAULT_AS_OF, CohortFilter, count_cells
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.mapping import SourceMapping, parse_mapping
from smpc_ehr.data.omop import icd10, load_omop
from smpc_ehr.data.omop_features import mapped_columns, outcome_select
from smpc_ehr.data.readmission import readmit_30d
from smpc_ehr.data.records import PartyData
from smpc_ehr.data.sources import open_store
from smpc_ehr.data.synth import OMOP_FILE, generate_federation
from smpc_ehr.data.synth_events import CODES
from smpc_ehr.errors import DataError
from smpc_ehr.local.federation import down
from smpc_ehr.study.template import load_template
from tests import _stats_truth as stats_truth
from tests._stats_jobs import check_moments, eps
from tests._truth import truth_counts
from tests.federations import COUNT_TEMPLATE, PROTOCOLS, start_federation

PARTIES = ["hospital-1", "hospital-2", "hospital-3"]
KM_TEMPLATE = PROTOCOLS / "kaplan_meier.toml"
SEED = 17


@pytest.fixture(scope="module")
def formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same population as CSV files, OMOP SQLite files, FHIR NDJSON exports and
    DuckDB files."""
    out = {}
    for fmt in ("csv", "omop", "fhir", "duckdb"):
        out[fmt] = tmp_path_factory.mktemp(fmt)
        generate_federation(PARTIES, 1500, SEED, out[fmt], fmt=fmt)
    return out


@pytest.fixture(scope="module")
def both(formats: dict[str, Path]) -> tuple[Path, Path]:
    """The CSV and the OMOP folders of the population."""
    return formats["csv"], formats["omop"]


def assert_same_records(got: PartyData, want: PartyData) -> None:
    assert list(got.features) == list(want.features)
    assert list(got.outcomes) == list(want.outcomes)
    for name in got.columns():  # the same values, missing (NaN) where the CSV's are
        assert np.array_equal(got.column(name), want.column(name), equal_nan=True), name
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
    assert list(got.dates) == list(want.dates) == ["death_date", "last_contact_date"]
    for name, want_dates in want.dates.items():  # NaT where the CSV's are empty
        assert np.array_equal(got.dates[name], want_dates, equal_nan=True), name
        assert 0 < np.count_nonzero(np.isnat(want_dates)) < len(want_dates), name


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
        assert list(want.features) == list(CODES) and list(want.outcomes) == ["readmit_30d"]
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


CDM_TABLES = {  # the CDM 5.4 columns the sources read, with PostgreSQL types
    "person": "person_id BIGINT PRIMARY KEY, gender_concept_id INTEGER NOT NULL, "
    "year_of_birth INTEGER NOT NULL, month_of_birth INTEGER, day_of_birth INTEGER, "
    "birth_datetime TIMESTAMP, person_source_value VARCHAR(50)",
    "condition_occurrence": "condition_occurrence_id BIGINT PRIMARY KEY, person_id BIGINT "
    "NOT NULL, condition_concept_id INTEGER NOT NULL, condition_start_date DATE, "
    "condition_source_value VARCHAR(50)",
    **{
        name: f"{name}_id BIGINT PRIMARY KEY, person_id BIGINT NOT NULL, {name}_concept_id "
        f"INTEGER NOT NULL, {name}_date DATE NOT NULL, value_as_number NUMERIC, "
        f"unit_source_value VARCHAR(50), {name}_source_value VARCHAR(50)"
        for name in ("measurement", "observation")
    },
    "visit_occurrence": "visit_occurrence_id BIGINT PRIMARY KEY, person_id BIGINT NOT NULL, "
    "visit_concept_id INTEGER NOT NULL, visit_start_date DATE NOT NULL, visit_end_date DATE",
    "death": "person_id BIGINT NOT NULL, death_date DATE NOT NULL, death_datetime TIMESTAMP, "
    "death_type_concept_id INTEGER NOT NULL",
    "observation_period": "observation_period_id BIGINT PRIMARY KEY, person_id BIGINT NOT NULL, "
    "observation_period_start_date DATE NOT NULL, observation_period_end_date DATE NOT NULL, "
    "period_type_concept_id INTEGER NOT NULL",
}


def cdm_tables(sqlite_file: Path) -> Iterator[tuple[str, str, list[str], list[tuple]]]:
    """Each CDM table of the SQLite file: name, column definitions, names, rows."""
    with sqlite3.connect(sqlite_file) as src:
        for table, columns in CDM_TABLES.items():
            names = [c.split()[0] for c in columns.split(", ")]
            yield (
                table,
                columns,
                names,
                src.execute(f"SELECT {', '.join(names)} FROM {table}").fetchall(),
            )
    src.close()


def copy_to_postgres(sqlite_file: Path, url: str, schema: str) -> None:
    """The SQLite CDM's tables into `schema` of the PostgreSQL database at `url`."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as dst:
        dst.execute(sa.text(f"CREATE SCHEMA {schema}"))
        for table, columns, names, rows in cdm_tables(sqlite_file):
            dst.execute(sa.text(f"CREATE TABLE {schema}.{table} ({columns})"))
            insert = sa.text(
                f"INSERT INTO {schema}.{table} VALUES ({', '.join(':' + c for c in names)})"
            )
            dst.execute(insert, [dict(zip(names, row, strict=True)) for row in rows])
    engine.dispose()


def copy_to_duckdb(sqlite_file: Path, path: Path, schema: str) -> None:
    """The same into a DuckDB file (through Arrow: row-wise inserts are slow there)."""
    import duckdb
    import pyarrow as pa

    con = duckdb.connect(str(path))
    con.execute(f"CREATE SCHEMA {schema}")
    for table, columns, names, rows in cdm_tables(sqlite_file):
        con.execute(f"CREATE TABLE {schema}.{table} ({columns})")
        data = pa.table({n: [row[i] for row in rows] for i, n in enumerate(names)})
        con.register("data", data)
        con.execute(f"INSERT INTO {schema}.{table} SELECT * FROM data")
        con.unregister("data")
    con.close()


def postgres_folder(omop: Path, url: str, schema: str, folder: Path) -> Path:
    """A party folder whose source.toml names the PostgreSQL copy of `omop`'s CDM with
    the same feature mapping."""
    lines = (omop / "source.toml").read_text(encoding="utf-8").splitlines()
    lines = [f"url = {json.dumps(url)}" if s.startswith("url =") else s for s in lines]
    lines.insert(2, f"schema = {json.dumps(schema)}")
    folder.mkdir()
    (folder / "source.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_a_postgresql_cdm_loads_the_same_records(
    both: tuple[Path, Path], postgres: str, tmp_path: Path
) -> None:
    csv, omop = both
    copy_to_postgres(omop / PARTIES[1] / OMOP_FILE, postgres, "cdm")
    folder = postgres_folder(omop / PARTIES[1], postgres, "cdm", tmp_path / "pg")
    want = load_party_data(csv / PARTIES[1])
    assert_same_records(load_party_data(folder), want)
    assert_mapped_columns_give(postgres, "cdm", omop / PARTIES[1], want)


def assert_mapped_columns_give(url: str, schema: str | None, omop: Path, want: PartyData) -> None:
    """Push-down's `mapped_columns`, run in the database, gives the loaded features and
    outcome of every person."""
    import sqlalchemy as sa

    mapping = parse_mapping(tomllib.loads((omop / "source.toml").read_text()), omop)
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(mapped_columns(mapping, schema)).all()
    engine.dispose()
    assert sorted(row.person_id for row in rows) == list(range(1, want.n_patients + 1))
    for name in want.columns():  # person_id is the patient's position + 1 in the synthetic CDM
        got = np.full(want.n_patients, np.nan)
        for row in rows:
            value = getattr(row, name)
            got[row.person_id - 1] = np.nan if value is None else float(value)
        assert np.array_equal(got, want.column(name), equal_nan=True), name


def test_mapped_columns_in_sqlite_and_duckdb_give_the_loaded_features(
    both: tuple[Path, Path], tmp_path: Path
) -> None:
    csv, omop = both
    db = omop / PARTIES[0] / OMOP_FILE
    want = load_party_data(csv / PARTIES[0])
    assert_mapped_columns_give(f"sqlite:///{db}", None, omop / PARTIES[0], want)
    copy_to_duckdb(db, tmp_path / "ehr.duckdb", "cdm")  # a schema named unlike the file
    url = f"duckdb:///{tmp_path / 'ehr.duckdb'}"
    assert_mapped_columns_give(url, "cdm", omop / PARTIES[0], want)
    mapping = parse_mapping(tomllib.loads((omop / PARTIES[0] / "source.toml").read_text()), omop)
    assert_same_records(load_omop(url, "cdm", mapping), want)  # the death dates too


@pytest.mark.parametrize("fmt", ["omop", "fhir", "duckdb"])
def test_a_federation_of_source_folders_counts_as_the_csv_population(
    formats: dict[str, Path], tmp_path: Path, fmt: str
) -> None:
    csv = formats["csv"]
    fed = start_federation(formats[fmt], tmp_path / "state")
    try:
        with Client.from_state(fed.state_dir) as client:
            result = client.run(COUNT_TEMPLATE, {"codes": "E11", "by": "sex"})
            summary = client.run(PROTOCOLS / "summary.toml", {"variables": "bmi,readmit_30d"})
            # the sources' dates: on the OMOP files (the others: same local input, above)
            survival = client.run(KM_TEMPLATE, KM_PARAMS) if fmt == "omop" else None
    finally:
        down(fed.state_dir)
    if survival is not None:
        check_against_lifelines(survival.result, csv)  # as on the CSV files, exactly
    logs = [(fed.state_dir / "logs" / f"{p}.log").read_text() for p in PARTIES]
    pushed = [log.count("local step pushed down into the database") for log in logs]
    assert pushed == ([0] * len(PARTIES) if fmt == "fhir" else [2] * len(PARTIES))
    shown, _ = check_against_truth(result.result, truth_counts(csv, ["E11"], ("sex",)))
    assert shown >= 2
    expected = stats_truth.summary(stats_truth.cohort_frame(csv), ["bmi", "readmit_30d"])[""]
    for name in ("bmi", "readmit_30d"):
        cell = summary.result["variables"][name]
        assert cell["n"] == expected[name]["n"] > 0, name  # the pooled CSV count
        check_moments(cell, expected[name], eps("mpyc", len(PARTIES)), (fmt, name))


@pytest.mark.slow
def test_a_federation_reading_postgresql_gives_the_csv_results_on_both_backends(
    formats: dict[str, Path], postgres: str, tmp_path: Path
) -> None:
    """Three hospitals, each with its CDM in its own schema of a real PostgreSQL server:
    the count and the summary (pushed down) equal the pooled CSV answers on MPyC and on
    CrypTen."""
    csv, data = formats["csv"], tmp_path / "data"
    data.mkdir()
    for i, party in enumerate(PARTIES):
        omop = formats["omop"] / party
        copy_to_postgres(omop / OMOP_FILE, postgres, f"fed{i}")
        postgres_folder(omop, postgres, f"fed{i}", data / party)
    fed = start_federation(data, tmp_path / "state")
    try:
        with Client.from_state(fed.state_dir) as client:
            runs = {
                backend: (
                    client.run(COUNT_TEMPLATE, {"codes": "E11", "by": "sex"}, backend=backend),
                    client.run(
                        PROTOCOLS / "summary.toml", {"variables": "bmi,hba1c"}, backend=backend
                    ),
                )
                for backend in ("mpyc", "crypten")
            }
    finally:
        down(fed.state_dir)
    truth = truth_counts(csv, ["E11"], ("sex",))
    expected = stats_truth.summary(stats_truth.cohort_frame(csv), ["bmi", "hba1c"])[""]
    for backend, (count, summary) in runs.items():
        check_against_truth(count.result, truth)
        assert all(v.startswith("postgresql snapshot ") for v in count.data_versions.values())
        for name in ("bmi", "hba1c"):
            cell = summary.result["variables"][name]
            assert cell["n"] == expected[name]["n"] > 0, (backend, name)
            check_moments(cell, expected[name], eps(backend, len(PARTIES)), (backend, name))


LOCAL_PARAMS = {  # one parameter set per protocol, reading features and the outcome
    "backend_selftest": {"seed": "7", "size": "4"},
    "contingency": {"row": "sex", "col": "readmit_30d"},
    "correlation": {"variables": "bmi,sbp,hdl,egfr"},
    "cox_regression": {
        "codes": "E11",
        "features": "hba1c,bmi",
        "time_unit": "year",
        "horizon": "20",
    },
    "histogram": {"variable": "hba1c", "edges": "4,5.7,6.5,8,15"},
    "kaplan_meier": {"codes": "E11", "group": "sex", "horizon": "24"},
    "kmeans": {"features": "bmi,sbp,ldl", "k": "3", "profile": "readmit_30d"},
    "logistic_regression": {
        "outcome": "readmit_30d",
        "features": "bmi,hba1c,sbp,creatinine,weight,heart_rate,triglycerides",
        "test_fraction": "0.2",
    },
    "odds_ratio": {"exposure": "condition", "condition_codes": "E11", "outcome": "readmit_30d"},
    "quantiles": {"variable": "bmi", "q": "0.1,0.5,0.9", "low": "10", "high": "40", "step": "0.5"},
    "rare_disease_count": {"codes": "E11", "by": "sex,age_band"},
    "summary": {"variables": ",".join(CODES), "by": "sex"},
    "table1": {
        "variables": "bmi,hba1c",
        "nonnormal": "hba1c",
        "grid": "3,12,0.1",
        "categorical": "sex,readmit_30d",
        "group": "age_band",
    },
    "ttest": {"variable": "hba1c", "group": "readmit_30d"},
}


def assert_same_input(got: object, want: object, where: str) -> None:
    """Equal local inputs: arrays exactly (NaN where NaN), containers item by item."""
    assert type(got) is type(want), where
    if isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype, where
        kind = want.dtype.kind in "fc"
        assert np.array_equal(got, want, equal_nan=kind), where
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for key in want:
            assert_same_input(got[key], want[key], f"{where}[{key!r}]")
    elif isinstance(want, list | tuple):
        assert isinstance(got, list | tuple) and len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_same_input(a, b, f"{where}[{i}]")
    elif dataclasses.is_dataclass(want):
        for field in dataclasses.fields(want):
            name = field.name
            assert_same_input(getattr(got, name), getattr(want, name), f"{where}.{name}")
    elif isinstance(want, float) and np.isnan(want):
        assert isinstance(got, float) and np.isnan(got), where
    else:
        assert got == want, where


@pytest.fixture(scope="module")
def loaded(formats: dict[str, Path]) -> dict[str, PartyData]:
    """The first party's data from each format."""
    return {fmt: load_party_data(folder / PARTIES[0]) for fmt, folder in formats.items()}


def test_every_analysis_gets_the_same_local_input_from_every_source(
    loaded: dict[str, PartyData], formats: dict[str, Path], postgres: str, tmp_path: Path
) -> None:
    """CSV, OMOP in SQLite and in a real PostgreSQL server, FHIR and DuckDB: the rows
    each analysis reads are the same, so is its local input (Kaplan-Meier's too: the
    death and last-contact dates of every source)."""
    omop = formats["omop"] / PARTIES[0]
    copy_to_postgres(omop / OMOP_FILE, postgres, "every")
    loaded = {
        **loaded,
        "postgresql": load_party_data(postgres_folder(omop, postgres, "every", tmp_path / "pg")),
    }
    templates = {p.stem: load_template(p) for p in sorted(PROTOCOLS.glob("*.toml"))}
    assert set(templates) == set(LOCAL_PARAMS)
    assert {t.analysis for t in templates.values()} == set(ANALYSES)
    for name, template in templates.items():
        params = template.bind(LOCAL_PARAMS[name])
        analysis = ANALYSES[template.analysis]
        analysis.validate(params)
        want = analysis.local_input(loaded["csv"], params)
        if name == "kaplan_meier":  # not vacuous: deaths and censored patients
            times = patient_times(loaded["csv"], params)
            assert 0 < np.count_nonzero(times.event) < len(times.event) // 2
        for fmt in ("omop", "postgresql", "fhir", "duckdb"):
            assert_same_input(analysis.local_input(loaded[fmt], params), want, f"{name} {fmt}")


PUSHED_DOWN = {"contingency", "correlation", "rare_disease_count", "summary", "ttest"}


@pytest.mark.parametrize("database", ["omop-sqlite", "omop-postgresql", "duckdb"])
def test_every_pushed_down_analysis_computes_the_csv_input_in_the_database(
    formats: dict[str, Path],
    loaded: dict[str, PartyData],
    database: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    folder = formats["duckdb" if database == "duckdb" else "omop"] / PARTIES[0]
    if database == "omop-postgresql":
        url = request.getfixturevalue("postgres")
        copy_to_postgres(folder / OMOP_FILE, url, "pushed")
        folder = postgres_folder(folder, url, "pushed", tmp_path / "pg")
    templates = {p.stem: load_template(p) for p in sorted(PROTOCOLS.glob("*.toml"))}
    store = open_store(folder)
    job = store.open_job()
    try:
        assert job.sql is not None
        pushed = set()
        for name, template in templates.items():
            params = template.bind(LOCAL_PARAMS[name])
            analysis = ANALYSES[template.analysis]
            got = analysis.local_input_sql(job.sql, params)
            if got is None:
                continue
            pushed.add(name)
            want = analysis.local_input(loaded["csv"], params)
            # counts exactly; means and variances up to the order of summation
            np.testing.assert_allclose(
                np.asarray(got, float), np.asarray(want, float), rtol=1e-12, atol=1e-12
            )
        assert pushed == PUSHED_DOWN
    finally:
        job.close()
        store.close()


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (
            "UPDATE measurement SET unit_source_value = 'mg/dL' "
            "WHERE measurement_source_value = '4548-4'",
            r"OMOP table measurement, column unit_source_value, measurement_id \d+: "
            r"unit 'mg/dL' is not '%' \(feature hba1c, code 4548-4\)",
        ),
        (
            "UPDATE measurement SET value_as_number = 'high' "
            "WHERE measurement_source_value = '8867-4'",
            r"OMOP table measurement, column value_as_number, measurement_id \d+: "
            r"'high' is not a finite number",
        ),
    ],
)
def test_an_omop_value_breaking_a_mapping_rule_is_named(
    tmp_path: Path, formats: dict[str, Path], update: str, message: str
) -> None:
    omop = formats["omop"] / PARTIES[0]
    (tmp_path / "source.toml").write_bytes((omop / "source.toml").read_bytes())
    db = tmp_path / OMOP_FILE
    db.write_bytes((omop / OMOP_FILE).read_bytes())
    with sqlite3.connect(db) as con:
        con.execute(update)
    con.close()
    with pytest.raises(DataError, match=message):
        load_party_data(tmp_path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            r'"code": "mm\[Hg\]"',
            '"code": "kPa"',
            r"valueQuantity: unit 'kPa' is not 'mm\[Hg\]' \(feature sbp, code 8480-6\)",
        ),
        (r'"value": [0-9.]+', '"value": "120"', r"valueQuantity.value: '120' is not a number"),
    ],
)
def test_a_fhir_value_breaking_a_mapping_rule_is_named(
    tmp_path: Path, formats: dict[str, Path], old: str, new: str, message: str
) -> None:
    fhir = formats["fhir"] / PARTIES[0]
    for name in ("source.toml", "Patient.ndjson", "Condition.ndjson", "Encounter.ndjson"):
        (tmp_path / name).write_bytes((fhir / name).read_bytes())
    lines = (fhir / "Observation.ndjson").read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines) if '"8480-6"' in line and "2025-" in line)
    lines[number] = re.sub(old, new, lines[number], count=1)  # the systolic pressure's
    (tmp_path / "Observation.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    where = rf"Observation.ndjson: line {number + 1}, (component\[0\]\.)?"
    with pytest.raises(DataError, match=where + message):
        load_party_data(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[features.bmi]\nloinc = ["39156-5"]\nunits = "kg/m2"\n',
            r"\[features.bmi\]: unknown key\(s\) units",
        ),
        ('[features.bmi]\nunit = "kg/m2"\n', r"\[features.bmi\]: give loinc codes or concept_ids"),
        ('[features.bmi]\nloinc = ["BMI"]\n', r"\[features.bmi\]: loinc must be a list of LOINC"),
        (
            '[features.a]\nloinc = ["1-8"]\ndecimals = 1\n[features.a.convert."2-6"]\nscale = 2\n',
            r"\[features.a\]: convert.2-6 is not one of its loinc codes",
        ),
        (
            '[features.a]\nloinc = ["1-8"]\n[features.a.convert."1-8"]\nscale = 2\n',
            r"\[features.a\]: a feature with convert needs decimals",
        ),
        (
            '[features.a]\nloinc = ["1-8"]\n[features.b]\nloinc = ["1-8"]\n',
            r"code 1-8 is mapped to a and b",
        ),
        ('outcomes = ["death"]\n', r"outcomes must be a list of readmit_30d"),
        ('as_of = "yesterday"\n', r"as_of must be a date"),
    ],
)
def test_a_broken_mapping_is_refused_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "source.toml").write_text('kind = "fhir"\n' + text, encoding="utf-8")
    with pytest.raises(DataError, match="source.toml: " + message):
        load_party_data(tmp_path)


def test_readmission_follows_the_index_stay_rule(tmp_path: Path) -> None:
    """Hand-made stays against the stated rule (as_of 2026-01-01, cutoff 2025-12-02)."""
    d = np.datetime64
    stays = [  # (patient, admitted, discharged or None)
        (0, "2025-11-01", "2025-11-05"), (0, "2025-11-20", "2025-12-05"),  # 15 days: 1
        (1, "2025-06-01", "2025-06-03"), (1, "2025-07-04", "2025-07-09"),  # 31 days: 0
        (2, "2025-12-10", "2025-12-12"),  # discharged after the cutoff: no index, NaN
        (3, "2025-01-01", "2025-01-02"), (3, "2025-01-10", "2025-01-12"),  # older pair
        (3, "2025-12-01", "2025-12-02"), (3, "2025-12-02", None),  # same day: 0, not 1
        (4, "2025-11-25", "2025-12-02"), (4, "2026-01-01", None),  # day 30, ongoing: 1
        (6, "2025-11-01", "2025-11-05"), (6, "2025-11-20", "2025-11-25"),  # index 11-25: 0
    ]  # fmt: skip
    patient = np.array([s[0] for s in stays])
    start = np.array([d(s[1]) for s in stays], dtype="datetime64[D]")
    end = np.array([d(s[2]) if s[2] else d("NaT") for s in stays], dtype="datetime64[D]")
    want = [1.0, 0.0, np.nan, 0.0, 1.0, np.nan, 0.0]
    got = readmit_30d(7, patient, start, end, DEFAULT_AS_OF)
    assert np.array_equal(got, want, equal_nan=True)
    # the same rule in SQL (push-down's outcome_select), with an outpatient visit between
    import sqlalchemy as sa

    db = tmp_path / "visits.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE visit_occurrence (visit_occurrence_id INTEGER, person_id "
                    "INTEGER, visit_concept_id INTEGER, visit_start_date TEXT, "
                    "visit_end_date TEXT)")  # fmt: skip
        rows = [(i, p, 9201, a, b) for i, (p, a, b) in enumerate(stays)]
        con.executemany("INSERT INTO visit_occurrence VALUES (?, ?, ?, ?, ?)", rows)
        con.execute("INSERT INTO visit_occurrence VALUES (99, 1, 9202, '2025-06-10', NULL)")
    con.close()
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as connection:
        mapping = SourceMapping(DEFAULT_AS_OF, (), ("readmit_30d",))
        found = {p: v for p, v in connection.execute(outcome_select(mapping))}
    engine.dispose()
    sql = [found.get(p, np.nan) for p in range(7)]
    assert np.array_equal(sql, want, equal_nan=True)
