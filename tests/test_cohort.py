"""Cohort counts agree with an independent pandas computation on generated data."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smpc_ehr.data.cohort import (
    AGE_BANDS,
    DEFAULT_AS_OF,
    STRATA,
    CohortFilter,
    age_in_years,
    cohort_mask,
    count_cells,
)
from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.records import PartyData
from smpc_ehr.data.synth import generate_federation
from tests._truth import BANDS, ages


@pytest.fixture(scope="module")
def party(tmp_path_factory: pytest.TempPathFactory) -> tuple[PartyData, pd.DataFrame, pd.DataFrame]:
    out = tmp_path_factory.mktemp("fed")
    # The referral centre (second party) has enough lysosomal disease to count.
    generate_federation(["gen", "ref"], 6000, seed=5, out=out)
    folder = out / "ref"
    pat = pd.read_csv(folder / "patients.csv", keep_default_na=False, dtype=str)
    cond = pd.read_csv(folder / "conditions.csv", keep_default_na=False, dtype=str)
    return load_party_data(folder), pat, cond


def pandas_counts(
    pat: pd.DataFrame, cond: pd.DataFrame, f: CohortFilter, by: tuple[str, ...]
) -> pd.Series:
    """Distinct patients per cell, the slow obvious way (merge, filter, groupby, nunique).

    Independent of the module: the codes are the test's own raw strings (RAW_CODES),
    normalised here, and the age bands are tests/_truth.py's literal labels."""
    people = pat.assign(age=ages(pat.birth_date, f.as_of))
    people = people[people.age >= 0]
    if f.sex:
        people = people[people.sex == f.sex]
    if f.age_min is not None:
        people = people[people.age >= f.age_min]
    if f.age_max is not None:
        people = people[people.age <= f.age_max]
    raw = RAW_CODES[id(f)]
    if raw:
        prefixes = tuple(c.strip().upper().rstrip("*").rstrip(".") for c in raw)
        rows = cond[cond.code.apply(lambda c: c.startswith(prefixes))]
        onset = pd.to_datetime(rows.onset_date.replace("", None))
        if f.onset_from:
            rows = rows[onset >= pd.Timestamp(f.onset_from)]
            onset = onset[rows.index]
        if f.onset_to:
            rows = rows[onset <= pd.Timestamp(f.onset_to)]
        people = people.merge(rows[["patient_id"]], on="patient_id")
    people = people.assign(
        age_band=[BANDS[min(a // 10, 9)] for a in people.age],
        all="all",
    )
    keys = list(by) or ["all"]
    return people.groupby(keys).patient_id.nunique()


RAW_CODES: dict[int, tuple[str, ...]] = {}
"""Each filter's codes as the test wrote them, before CohortFilter normalised them."""


def cohort(*codes: str, **kwargs: object) -> CohortFilter:
    f = CohortFilter(codes=codes, **kwargs)  # type: ignore[arg-type]
    RAW_CODES[id(f)] = codes
    return f


FILTERS = [
    (cohort(), ()),
    (cohort(), ("sex", "age_band")),
    (cohort("E11"), ()),
    (cohort("e75.2"), ("sex",)),
    (cohort("E84.*", "E74.02"), ("age_band",)),
    (cohort("I10", "E78.5", sex="F", age_min=40, age_max=65), ("age_band",)),
    (
        cohort("N18*", onset_from=date(2010, 1, 1), onset_to=date(2015, 6, 30)),
        ("sex", "age_band"),
    ),
    (cohort("J45", as_of=date(2005, 3, 1), age_max=12), ("age_band", "sex")),
]


@pytest.mark.parametrize(("f", "by"), FILTERS)
def test_counts_match_pandas(party: tuple, f: CohortFilter, by: tuple[str, ...]) -> None:
    data, pat, cond = party
    labels, counts = count_cells(data, f, by)
    expected = pandas_counts(pat, cond, f, by)
    assert counts.dtype == np.int64 and len(labels) == len(counts)
    got = {
        tuple(lab[v] for v in by) or ("all",): int(c) for lab, c in zip(labels, counts, strict=True)
    }
    want = {k if isinstance(k, tuple) else (k,): int(v) for k, v in expected.items()}
    assert {k: v for k, v in got.items() if v} == want
    assert counts.sum() == cohort_mask(data, f).sum() > 0


def test_cell_layout_is_fixed_row_major(party: tuple) -> None:
    data = party[0]
    labels, counts = count_cells(data, CohortFilter(codes=("E75.22",)), ("sex", "age_band"))
    assert counts.sum() == cohort_mask(data, CohortFilter(codes=("E75.22",))).sum()
    assert labels == [
        {"sex": s, "age_band": a} for s, a in itertools.product(STRATA["sex"], AGE_BANDS)
    ]
    assert count_cells(data, CohortFilter(codes=("Z99.9",)), ())[0] == [{}]
    assert list(count_cells(data, CohortFilter(codes=("Z99.9",)), ("sex",))[1]) == [0, 0, 0]
    with pytest.raises(ValueError, match="unknown stratum"):
        count_cells(data, CohortFilter(), ("race",))


def test_duplicate_rows_count_once(party: tuple) -> None:
    data, _, cond = party
    dup = cond[cond.duplicated(["patient_id", "code"])]
    assert len(dup) > 0, "generator should plant duplicate condition rows"
    code = dup.code.iloc[0]
    exact = CohortFilter(codes=(code,))
    assert count_cells(data, exact)[1][0] == cond[cond.code == code].patient_id.nunique()
    assert count_cells(data, exact)[1][0] < (cond.code == code).sum()


def test_onset_window_excludes_unknown_onset(tmp_path: Path) -> None:
    (tmp_path / "patients.csv").write_text("patient_id,sex,birth_date\na,F,1970-01-01\n")
    (tmp_path / "conditions.csv").write_text("patient_id,code,onset_date\na,E11.9,\n")
    data = load_party_data(tmp_path)
    assert count_cells(data, CohortFilter(codes=("E11",)))[1][0] == 1
    window = CohortFilter(codes=("E11",), onset_from=date(1900, 1, 1))
    assert count_cells(data, window)[1][0] == 0


def test_pattern_matching_is_prefix_on_codes(party: tuple) -> None:
    data = party[0]
    table = list(data.code_table)
    assert {"E75.21", "E75.22"} <= set(table)
    one = cohort_mask(data, CohortFilter(codes=("E75.21",)))
    two = cohort_mask(data, CohortFilter(codes=("E75.22",)))
    assert np.array_equal(cohort_mask(data, CohortFilter(codes=("E75.2",))), one | two)
    assert np.array_equal(cohort_mask(data, CohortFilter(codes=("E75.2*", "E75.21"))), one | two)


@pytest.mark.parametrize("bad", ["E8", "E84.", "84.0", "E84.12345", "E*", "", "E84-0"])
def test_invalid_patterns_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid ICD-10-CM code pattern"):
        CohortFilter(codes=(bad,))


def test_filter_validation_and_normalisation() -> None:
    f = CohortFilter(codes=("e84.*", "E84"), sex="f")
    assert f.codes == ("E84",) and f.sex == "F" and f.as_of == DEFAULT_AS_OF == date(2026, 1, 1)
    g = CohortFilter(codes=("E84",), as_of="2020-02-29", onset_to="2019-12-31")  # type: ignore[arg-type]
    assert (g.as_of, g.onset_to) == (date(2020, 2, 29), date(2019, 12, 31))
    for kwargs in (
        {"codes": "E84"},
        {"sex": "X"},
        {"age_min": 50, "age_max": 40},
        {"age_min": -1},
        {"onset_from": date(2020, 1, 1)},
        {"codes": ("E84",), "onset_from": date(2021, 1, 1), "onset_to": date(2020, 1, 1)},
        {"as_of": "2026-13-01"},
        {"as_of": 20260101},
    ):
        with pytest.raises(ValueError):
            CohortFilter(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("birth", "as_of", "age"),
    [
        ("2000-06-15", date(2020, 6, 15), 20),  # birthday on as_of
        ("2000-06-15", date(2020, 6, 14), 19),
        ("2000-02-29", date(2021, 2, 28), 20),  # leap-day birthday, non-leap year
        ("2000-02-29", date(2021, 3, 1), 21),
        ("2000-02-29", date(2024, 2, 29), 24),
        ("1999-12-31", date(2000, 1, 1), 0),
        ("2020-01-02", date(2020, 1, 1), -1),  # born after as_of
        ("1900-03-01", date(2026, 1, 1), 125),
    ],
)
def test_age_in_years_edge_cases(birth: str, as_of: date, age: int) -> None:
    assert age_in_years(np.array([birth], dtype="datetime64[D]"), as_of)[0] == age


def test_age_in_years_matches_pandas_on_many_dates() -> None:
    days = np.arange(np.datetime64("1896-01-01"), np.datetime64("2026-12-31"), 7)
    for as_of in (date(2024, 2, 29), date(2026, 1, 1), date(2025, 12, 31)):
        expected = ages(pd.Series(days), as_of).to_numpy()
        np.testing.assert_array_equal(age_in_years(days, as_of), expected)
