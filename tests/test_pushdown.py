"""The local step pushed down into the database (`data.pushdown`, `common.pushdown`)
gives what the in-memory code gives on the same data: one synthetic hospital written
as CSV (plus hand-made edge cases) and loaded into SQLite tables, tables of a real
PostgreSQL server, a DuckDB file and Parquet files read in place, compared with
`load_party_data` of the CSV folder over many cohorts, strata and variables; every
value reaches SQL as a bound parameter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.common import pushdown as sql_inputs
from smpc_ehr.analyses.common.local_checks import UnusableValues
from smpc_ehr.analyses.common.moment_release import stratified_moments
from smpc_ehr.analyses.common.variables import cross_table
from smpc_ehr.analyses.statistics.correlation.analysis import complete_case_moments
from smpc_ehr.data import pushdown
from smpc_ehr.data.cohort import CohortFilter, count_cells
from smpc_ehr.data.duckdb_source import DuckDbSource, file_relations
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.records import PartyData
from smpc_ehr.data.relations import SqlSnapshot
from smpc_ehr.data.sources import sql_source
from smpc_ehr.data.synth import generate_federation
from smpc_ehr.errors import DataError, TemplateError

AS_OF = date(2026, 1, 1)
EDGES = [  # born on as_of (age 0), a day later (excluded), band edges, 29 February
    ("edge-1", "F", "2026-01-01", "30.0", "1", "E84.0", "2025-12-31"),
    ("edge-2", "M", "2026-01-02", "31.0", "0", "E84.0", "2026-01-01"),
    ("edge-3", "u", "2016-01-01", "", "", "e84.1", ""),
    ("edge-4", "M", "2016-01-02", "20.5", "1", "E84", "2010-01-01"),
    ("edge-5", "F", "1936-01-01", "22.0", "0", "E75.22", "1990-06-30"),
    ("edge-6", "F", "1936-01-02", "", "1", "E75.2", "1990-07-01"),
    ("edge-7", "M", "2000-02-29", "25.0", "", "E75.22", "2000-03-01"),
    ("edge-8", "U", "1900-05-05", "18.0", "0", "I10", ""),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic hospital's CSV files, with the edge cases appended."""
    out = tmp_path_factory.mktemp("pushdown")
    generate_federation(["h"], 600, 23, out)
    party = out / "h"
    header = (party / "patients.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    with (party / "patients.csv").open("a", encoding="utf-8") as fh:
        for pid, sex, birth, bmi, readmit, _, _ in EDGES:
            row = {"patient_id": pid, "sex": sex, "birth_date": birth}
            row.update({"bmi": bmi, "readmit_30d": readmit})
            fh.write(",".join(row.get(name, "") for name in header) + "\n")
    with (party / "conditions.csv").open("a", encoding="utf-8") as fh:
        for pid, *_, code, onset in EDGES:
            fh.write(f"{pid},{code},{onset}\n")
    return party


@pytest.fixture(scope="module")
def memory(folder: Path) -> PartyData:
    return load_party_data(folder)


def _sql(folder: Path, data: PartyData, url: str) -> Callable[[], Any]:
    """The CSV files as tables of the database at `url` (DATE and DOUBLE columns, NULL =
    missing; SQLite keeps dates as ISO text), presented by `file_relations`."""
    numeric = list(data.columns())
    meta = sa.MetaData()
    patients = sa.Table(
        "patients",
        meta,
        sa.Column("patient_id", sa.String),
        sa.Column("sex", sa.String),
        sa.Column("birth_date", sa.Date),
        *(sa.Column(name, sa.Double) for name in numeric),
    )
    conditions = sa.Table(
        "conditions",
        meta,
        sa.Column("patient_id", sa.String),
        sa.Column("code", sa.String),
        sa.Column("onset_date", sa.Date),
    )
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as connection:
        meta.drop_all(connection)
        meta.create_all(connection)
        for table in (patients, conditions):
            rows = pacsv.read_csv(folder / f"{table.name}.csv").to_pylist()
            connection.execute(table.insert(), rows)
    relations = file_relations(
        patients,
        conditions,
        data.columns("feature"),
        data.columns("outcome"),
        dialect=engine.dialect.name,
        where="test",
    )

    @contextmanager
    def snapshot() -> Iterator[SqlSnapshot]:
        with engine.connect() as connection, connection.begin():
            yield SqlSnapshot(connection, relations, "test")

    return snapshot


def _duckdb_file(folder: Path, path: Path) -> DuckDbSource:
    with duckdb.connect(str(path)) as db:
        for name in ("patients", "conditions"):
            db.read_csv(str(folder / f"{name}.csv")).create(name)
    return DuckDbSource(database=path)


def _parquet(folder: Path, out: Path) -> DuckDbSource:
    out.mkdir()
    for name in ("patients", "conditions"):
        pq.write_table(pacsv.read_csv(folder / f"{name}.csv"), out / f"{name}.parquet")
    return DuckDbSource(parquet=out)


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "duckdb", "parquet"])
def source(
    request: pytest.FixtureRequest,
    folder: Path,
    memory: PartyData,
    tmp_path_factory: pytest.TempPathFactory,
    postgres: str,
) -> Callable[[], Any]:
    """A function opening a snapshot of the folder's data in one kind of database."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        return _sql(folder, memory, f"sqlite:///{tmp / 'ehr.sqlite'}")
    if request.param == "postgresql":
        return _sql(folder, memory, postgres)
    if request.param == "duckdb":
        return _duckdb_file(folder, tmp / "ehr.duckdb").snapshot
    return _parquet(folder, tmp / "parquet").snapshot


FILTERS = [
    CohortFilter(),
    CohortFilter(codes=("E84",)),
    CohortFilter(codes=("E84.0", "I10")),
    CohortFilter(codes=("E75.2",)),
    CohortFilter(codes=("E11",), sex="F"),
    CohortFilter(codes=("E11",), onset_from=date(2010, 1, 1)),
    CohortFilter(codes=("E84", "E75"), onset_from=date(1990, 7, 1), onset_to=date(2026, 1, 1)),
    CohortFilter(codes=("E84",), onset_to=date(2025, 12, 31)),
    CohortFilter(age_min=10),
    CohortFilter(age_max=9),
    CohortFilter(age_min=90, sex="F"),
    CohortFilter(age_min=10, age_max=10),
    CohortFilter(codes=("Q99",)),  # no such code stored
    CohortFilter(as_of=date(2016, 1, 1)),
    CohortFilter(codes=("E84",), as_of=date(2016, 1, 1), age_max=0),
    CohortFilter(as_of=date(2020, 2, 29), age_min=20, age_max=20),
]


def test_counts_equal_the_in_memory_counts(source: Any, memory: PartyData) -> None:
    with source() as snap:
        for f in FILTERS:
            for by in ((), ("sex",), ("age_band",), ("sex", "age_band")):
                got = pushdown.count_cells(snap, f, by)
                want = count_cells(memory, f, by)
                assert got[0] == want[0]
                assert np.array_equal(got[1], want[1]), (f, by)
    assert count_cells(memory, CohortFilter(codes=("E84",)))[1][0] >= 4  # edges counted


def _params(**extra: Any) -> dict[str, Any]:
    return {"as_of": AS_OF, **extra}


SUMMARIES: list[tuple[dict[str, Any], list[str], str | None, tuple[str, ...] | None]] = [
    (_params(), ["bmi", "hba1c", "readmit_30d"], None, None),
    (_params(codes=["E84", "E75"]), ["bmi", "readmit_30d"], "sex", None),
    (_params(codes=["E11"]), ["bmi", "sbp"], "age_band", None),
    (_params(age=[40, 70], sex="M"), ["ldl"], "readmit_30d", None),
    (_params(condition_codes=["E11"]), ["bmi", "hba1c"], "condition", None),
    (_params(codes=["E11"]), ["hba1c"], "sex", ("F", "M")),
    (_params(codes=["Q99"]), ["bmi"], "sex", None),  # empty cohort
]


def _close(got: np.ndarray, want: np.ndarray) -> None:
    """Counts equal, floats equal up to the order of summation."""
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_summary_moments_equal_the_in_memory_ones(source: Any, memory: PartyData) -> None:
    with source() as snap:
        for params, variables, by, levels in SUMMARIES:
            got = sql_inputs.stratified_moments(snap, params, variables, by, levels)
            want = stratified_moments(memory, params, variables, by, levels)
            _close(got, want)
            assert np.array_equal(got[[0, 3, 4, 5]], want[[0, 3, 4, 5]]), (params, by)


def test_tables_and_correlation_inputs_equal_the_in_memory_ones(
    source: Any, memory: PartyData
) -> None:
    with source() as snap:
        for params, row, col in [
            (_params(), "sex", "age_band"),
            (_params(codes=["E84", "E11"]), "readmit_30d", "sex"),
            (_params(condition_codes=["E75"], age=[0, 60]), "condition", "readmit_30d"),
        ]:
            got, missing = sql_inputs.cross_table(snap, params, row, col)
            want, want_missing = cross_table(memory, params, row, col)
            assert np.array_equal(got, want) and missing == want_missing
        for params in [
            _params(variables=["bmi", "hba1c", "sbp"]),
            _params(variables=["bmi", "readmit_30d"], codes=["E11"]),
            _params(variables=["ldl", "hdl"], codes=["Q99"]),
        ]:
            got = sql_inputs.complete_case_moments(snap, params)
            want = complete_case_moments(memory, params)
            _close(got, want)


def test_analyses_push_down_the_same_local_input(source: Any, memory: PartyData) -> None:
    cases = [
        ("count", _params(codes=["E84"], by=["sex", "age_band"])),
        ("summary", _params(variables=["bmi", "ldl"], by="sex")),
        ("ttest", _params(variable="bmi", group="readmit_30d")),
        ("contingency", _params(row="sex", col="readmit_30d")),
        ("correlation", _params(variables=["bmi", "sbp"])),
    ]
    with source() as snap:
        for name, params in cases:
            analysis = ANALYSES[name]
            got = analysis.local_input_sql(snap, params)
            _close(np.asarray(got, float), np.asarray(analysis.local_input(memory, params), float))
        assert ANALYSES["summary"].local_input_sql(snap, _params(epsilon=1.0)) is None
        assert ANALYSES["kmeans"].local_input_sql(snap, _params()) is None


def test_refusals_are_the_in_memory_ones(source: Any, memory: PartyData) -> None:
    with source() as snap:
        for params, variables, by in [
            (_params(), ["bmi", "no_such"], None),
            (_params(), ["bmi"], "no_such"),
            (_params(), ["bmi"], "bmi"),  # not a 0/1 column
            (_params(), ["bmi"], "condition"),  # needs condition_codes
        ]:
            errors = []
            for run in (
                lambda: sql_inputs.stratified_moments(snap, params, variables, by),  # noqa: B023
                lambda: stratified_moments(memory, params, variables, by),  # noqa: B023
            ):
                with pytest.raises((DataError, TemplateError)) as caught:
                    run()
                errors.append((type(caught.value), str(caught.value)))
            assert errors[0] == errors[1]


def test_a_value_beyond_the_range_is_refused_on_the_whole_column(
    folder: Path, tmp_path: Path
) -> None:
    """One bmi of 20000 outside the cohort: both refuse with the same UnusableValues."""
    lines = (folder / "patients.csv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    fields = lines[-1].split(",")
    fields[header.index("bmi")] = "20000"
    lines[-1] = ",".join(fields)  # edge-8: has I10 only
    big = tmp_path / "big"
    big.mkdir()
    (big / "patients.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (big / "conditions.csv").write_bytes((folder / "conditions.csv").read_bytes())
    data = load_party_data(big)
    params = _params(codes=["E84"])
    with pytest.raises(UnusableValues) as want:
        stratified_moments(data, params, ["bmi"], "sex")
    with _duckdb_file(big, tmp_path / "big.duckdb").snapshot() as snap:
        with pytest.raises(UnusableValues) as got:
            sql_inputs.stratified_moments(snap, params, ["bmi"], "sex")
        assert str(got.value) == str(want.value)
        # the ldl column, in range, still works
        sql_inputs.stratified_moments(snap, params, ["ldl"], "sex")


def test_no_value_is_written_into_sql(folder: Path, tmp_path: Path) -> None:
    """Every statement sent: codes, dates, date keys and means only as parameters."""
    source = _duckdb_file(folder, tmp_path / "ehr.duckdb")
    sent: list[tuple[str, Any]] = []
    original = source.engine

    def engine() -> sa.Engine:
        made = original()
        sa.event.listen(
            made, "before_cursor_execute", lambda *a: sent.append((a[2], a[3])), named=False
        )
        return made

    object.__setattr__(source, "engine", engine)
    params = _params(codes=["E84.0", "E75.22"], onset_from="1990-07-01", age=[3, 77], sex="F")
    with source.snapshot() as snap:
        sql_inputs.stratified_moments(snap, params, ["bmi"], "age_band")
        pushdown.count_cells(snap, CohortFilter(codes=("E84",), age_min=18), ("sex",))
    statements = " ".join(statement for statement, _ in sent)
    values = [str(v) for _, p in sent for v in (p.values() if isinstance(p, dict) else p or ())]
    secrets = {"E84", "E75.22", "1990", "20260101", "19490102", "20230101", "30.0"}
    assert any(v.startswith(("E84", "1990-07-01")) for v in values)  # they were bound
    assert not [s for s in secrets if s in statements]
    assert "'" not in statements  # no string literal at all


def test_a_duckdb_source_folder_loads_and_validates(folder: Path, tmp_path: Path) -> None:
    _duckdb_file(folder, tmp_path / "ehr.duckdb")
    (tmp_path / "source.toml").write_text('kind = "duckdb"\ndatabase = "ehr.duckdb"\n')
    loaded, want = load_party_data(tmp_path), load_party_data(folder)
    assert list(loaded.patient_ids) == list(want.patient_ids)
    assert np.array_equal(loaded.birth_key, want.birth_key)
    assert list(loaded.cond_code) == list(want.cond_code)
    assert loaded.columns("outcome") == want.columns("outcome") == ("readmit_30d",)
    for name in want.columns():
        assert np.array_equal(loaded.column(name), want.column(name), equal_nan=True)
    found = sql_source(tmp_path)
    assert found is not None and found.database == tmp_path / "ehr.duckdb"
    with duckdb.connect(str(tmp_path / "ehr.duckdb")) as db:
        db.execute("UPDATE patients SET sex = 'X' WHERE patient_id = 'edge-5'")
    with pytest.raises(DataError, match=r"ehr.duckdb/patients: row \d+, column 'sex': 'X'"):
        load_party_data(tmp_path)
    (tmp_path / "source.toml").write_text('kind = "duckdb"\n')
    with pytest.raises(DataError, match="exactly one of database"):
        load_party_data(tmp_path)


def test_a_parquet_source_loads_in_place_and_bad_keys_are_named(
    folder: Path, memory: PartyData, tmp_path: Path
) -> None:
    _parquet(folder, tmp_path / "data")
    (tmp_path / "data" / "source.toml").write_text('kind = "duckdb"\nparquet = "."\n')
    loaded = load_party_data(tmp_path / "data")
    assert list(loaded.patient_ids) == list(memory.patient_ids)
    assert list(loaded.cond_code) == list(memory.cond_code)
    found = sql_source(tmp_path / "data")
    assert found is not None and found.parquet == tmp_path / "data"
    for extra, problem in [
        ('memory_limit = "lots"', "memory_limit must be like '256MB'"),
        ("threads = 0", "threads must be a positive whole number"),
        ('database = "x.duckdb"', "kind duckdb needs exactly one of database"),
    ]:
        (tmp_path / "data" / "source.toml").write_text(f'kind = "duckdb"\nparquet = "."\n{extra}\n')
        with pytest.raises(DataError, match=f"source.toml: {problem}"):
            sql_source(tmp_path / "data")
