"""Loader: values agree with pandas on the same files; bad input names file, line, column."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smpc_ehr.data.loader import load_party_data
from smpc_ehr.data.synth import generate_federation
from smpc_ehr.errors import DataError

PATIENTS = """patient_id,sex,birth_date,bmi,flag,score,visits,blank
p1,F,1980-02-29,27.5,1,1.0,0,
p2,M,2001-12-31,,0,0,3,
 p3 ,u,1950-01-01,31,,1,2,
p4,U,2026-01-01,19.25,1,0,1,
"""
CONDITIONS = """patient_id,code,onset_date
p1,E11.9,2010-05-01
p3,e75.22,
p1,E11.9,2011-05-01
p2,I10,2020-01-31
"""


def write(folder: Path, patients: str = PATIENTS, conditions: str | None = CONDITIONS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "patients.csv").write_text(patients, encoding="utf-8")
    if conditions is not None:
        (folder / "conditions.csv").write_text(conditions, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fed")
    generate_federation(["a", "b"], 3000, seed=11, out=out / "csv")
    generate_federation(["a", "b"], 3000, seed=11, out=out / "parquet", fmt="parquet")
    return out


def test_generated_csv_matches_pandas(generated: Path) -> None:
    folder = generated / "csv" / "a"
    data = load_party_data(folder)
    pat = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    cond = pd.read_csv(folder / "conditions.csv", dtype=str, keep_default_na=False)
    assert data.n_patients == len(pat) and data.n_conditions == len(cond)
    assert list(data.patient_ids) == list(pat.patient_id)
    assert list(data.sex) == list(pat.sex) and data.sex.dtype == np.dtype("<U1")
    assert np.array_equal(
        data.birth_date, pd.to_datetime(pat.birth_date, format="%Y-%m-%d").to_numpy("datetime64[D]")
    )
    assert data.columns("feature") == (
        *("bmi", "hba1c", "sbp", "ldl", "creatinine"),
        *("weight", "heart_rate", "hdl", "triglycerides", "egfr"),
    )
    assert data.columns("outcome") == ("readmit_30d",)
    for name in data.columns():
        expected = pd.to_numeric(pat[name].replace("", np.nan)).to_numpy(np.float64)
        np.testing.assert_array_equal(data.column(name), expected)
        assert np.isnan(data.column(name)).any()
    assert list(data.patient_ids[data.cond_patient]) == list(cond.patient_id)
    assert list(data.cond_code) == list(cond.code)
    onset = pd.to_datetime(cond.onset_date.replace("", None)).to_numpy("datetime64[D]")
    np.testing.assert_array_equal(data.cond_onset, onset)
    assert list(data.code_table) == sorted(set(cond.code))


def test_parquet_loads_the_same_as_csv(generated: Path) -> None:
    for stem in ("patients", "conditions"):  # really Parquet on one side, CSV on the other
        assert (generated / "parquet" / "b" / f"{stem}.parquet").is_file()
        assert not (generated / "parquet" / "b" / f"{stem}.csv").exists()
        assert (generated / "csv" / "b" / f"{stem}.csv").is_file()
    a = load_party_data(generated / "csv" / "b")
    b = load_party_data(generated / "parquet" / "b")
    for name in ("patient_ids", "sex", "birth_date", "cond_patient", "cond_onset", "code_table"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.cond_code, b.cond_code)
    assert a.columns("feature") == b.columns("feature")
    assert a.columns("outcome") == b.columns("outcome")
    for name in a.columns():
        np.testing.assert_array_equal(a.column(name), b.column(name))


def test_small_file_values_and_outcome_rule(tmp_path: Path) -> None:
    data = load_party_data(write(tmp_path))
    assert list(data.patient_ids) == ["p1", "p2", "p3", "p4"]
    assert list(data.sex) == ["F", "M", "U", "U"]
    # flag: integers 0/1 -> outcome; score: has "1.0" -> feature; visits: 0..3 -> feature;
    # blank: no values at all -> feature.
    assert data.columns("outcome") == ("flag",)
    assert data.columns("feature") == ("bmi", "score", "visits", "blank")
    np.testing.assert_array_equal(data.column("flag"), [1.0, 0.0, np.nan, 1.0])
    np.testing.assert_array_equal(data.column("bmi"), [27.5, np.nan, 31.0, 19.25])
    assert np.isnan(data.column("blank")).all()
    assert list(data.cond_code) == ["E11.9", "E75.22", "E11.9", "I10"]
    assert list(data.cond_patient) == [0, 2, 0, 1]
    assert np.isnat(data.cond_onset[1]) and data.cond_onset[3] == np.datetime64("2020-01-31")


def test_onset_column_is_optional_and_bom_is_accepted(tmp_path: Path) -> None:
    folder = write(tmp_path, "\ufeff" + PATIENTS, "patient_id,code\np2,J44.9\n")
    data = load_party_data(folder)
    assert list(data.cond_code) == ["J44.9"] and np.isnat(data.cond_onset).all()


BAD_CASES = {
    "unknown sex": ("patients", "p2,M,", "p2,X,", "line 3", "sex"),
    "bad date form": ("patients", "2001-12-31", "31/12/2001", "line 3", "birth_date"),
    "impossible date": ("patients", "2001-12-31", "2001-02-30", "line 3", "birth_date"),
    "empty birth date": ("patients", "2001-12-31", "", "line 3", "birth_date"),
    "duplicate id": ("patients", "p4,U", "p2,U", "line 5", "patient_id"),
    "empty id": ("patients", "p2,M", ",M", "line 3", "patient_id"),
    "non-numeric extra": ("patients", "19.25,1", "high,1", "line 5", "bmi"),
    "nan text": ("patients", "19.25,1", "nan,1", "line 5", "bmi"),
    "missing column": ("patients", "sex,birth_date", "gender,birth_date", "line 1", "sex"),
    "ragged row": ("patients", "p2,M,2001-12-31,", "p2,M,2001-12-31,,,", "line 3", None),
    "unknown patient": ("conditions", "p2,I10", "p9,I10", "line 5", "patient_id"),
    "bad code": ("conditions", "p2,I10", "p2,I-10", "line 5", "code"),
    "short code": ("conditions", "p2,I10", "p2,I1", "line 5", "code"),
    "bad onset": ("conditions", "2011-05-01", "2011-5-1", "line 4", "onset_date"),
    "missing code column": ("conditions", "code,onset", "icd,onset", "line 1", "code"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_names_file_line_and_column(tmp_path: Path, case: str) -> None:
    which, old, new, line, column = BAD_CASES[case]
    texts = {"patients": PATIENTS, "conditions": CONDITIONS}
    assert old in texts[which]
    texts[which] = texts[which].replace(old, new, 1)
    folder = write(tmp_path, texts["patients"], texts["conditions"])
    with pytest.raises(DataError) as info:
        load_party_data(folder)
    message = str(info.value)
    assert f"{which}.csv" in message and line in message
    if column is not None:
        assert f"'{column}'" in message


def test_crlf_files_load_like_lf_files(tmp_path: Path) -> None:
    lf = load_party_data(write(tmp_path / "lf"))
    folder = write(tmp_path / "crlf")
    for name in ("patients", "conditions"):
        path = folder / f"{name}.csv"
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    crlf = load_party_data(folder)
    assert list(crlf.patient_ids) == list(lf.patient_ids)
    assert list(crlf.cond_code) == list(lf.cond_code)


def test_blank_line_keeps_line_numbers(tmp_path: Path) -> None:
    folder = write(tmp_path, PATIENTS.replace("p4,U", "\np4,U"))
    with pytest.raises(DataError, match=r"patients\.csv: line 5, column 'patient_id': empty"):
        load_party_data(folder)


def test_missing_and_ambiguous_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_party_data(tmp_path / "nowhere")
    folder = write(tmp_path / "x", conditions=None)
    with pytest.raises(DataError, match=r"conditions\.csv"):
        load_party_data(folder)
    write(folder)
    shutil.copy(folder / "conditions.csv", folder / "conditions.parquet")
    with pytest.raises(DataError, match=r"both conditions\.csv and conditions\.parquet"):
        load_party_data(folder)


def test_parquet_errors_give_row_numbers(tmp_path: Path) -> None:
    folder = write(tmp_path)
    pat = pd.read_csv(folder / "patients.csv", dtype=str, keep_default_na=False)
    pat.loc[2, "sex"] = "Q"
    pat.to_parquet(folder / "patients.parquet", index=False)
    (folder / "patients.csv").unlink()
    with pytest.raises(DataError, match=r"patients\.parquet: row 3, column 'sex'"):
        load_party_data(folder)


def test_loaded_arrays_are_read_only(tmp_path: Path) -> None:
    data = load_party_data(write(tmp_path))
    with pytest.raises(ValueError):
        data.sex[0] = "M"
    with pytest.raises(TypeError):
        data.features["bmi"] = np.zeros(4)  # type: ignore[index]


def test_unreadable_parquet_is_a_data_error(tmp_path: Path) -> None:
    folder = write(tmp_path)
    (folder / "patients.csv").unlink()
    (folder / "patients.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"patients\.parquet"):
        load_party_data(folder)


def test_bad_byte_on_a_data_line_names_that_line_not_the_header(tmp_path: Path) -> None:
    """The text reader decodes a whole block at once, so a bad byte on line 4 used to be
    reported as "line 1 (header)"."""
    folder = write(tmp_path)
    raw = PATIENTS.encode().replace(b" p3 ,u,", b" p3 ,u\xff,")
    (folder / "patients.csv").write_bytes(raw)
    with pytest.raises(DataError) as info:
        load_party_data(folder)
    assert str(info.value) == (
        f"{folder / 'patients.csv'}: line 4, column 'sex', character 7: not UTF-8 text "
        "(byte ff: invalid start byte); save the file as UTF-8"
    )


def test_bad_byte_far_into_a_large_file_names_its_line(tmp_path: Path) -> None:
    rows = [f"p{i},F,1980-01-01,{20 + i % 17}" for i in range(30_000)]
    rows[25_000] = "p25000,F,1980-01-01,2\xe95"  # é in Latin-1: one byte, not UTF-8
    folder = tmp_path / "big"
    folder.mkdir()
    text = "patient_id,sex,birth_date,bmi\n" + "\n".join(rows) + "\n"
    (folder / "patients.csv").write_bytes(text.encode("latin-1"))
    (folder / "conditions.csv").write_text("patient_id,code\np1,E11\n")
    with pytest.raises(DataError, match=r"patients\.csv: line 25002, column 'bmi', character 22: "):
        load_party_data(folder)


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
@pytest.mark.parametrize(
    ("which", "old", "new", "expected"),
    [
        ("patients", "p2,M,", '"p2\nx",M,', r"patients\.csv: line 3, column 'patient_id'"),
        ("patients", "p2,M,", '"p2\r",M,', r"patients\.csv: line 3, column 'patient_id'"),
        ("conditions", "p3,e75.22", 'p3,"e75.22\n"', r"conditions\.csv: line 3, column 'code'"),
    ],
)
def test_quoted_line_break_in_a_value_is_refused(
    tmp_path: Path, which: str, old: str, new: str, expected: str, line_end: str
) -> None:
    """A quoted newline used to be accepted, and every later line number was one off."""
    texts = {"patients": PATIENTS, "conditions": CONDITIONS}
    texts = {name: text.replace("\n", line_end) for name, text in texts.items()}
    texts[which] = texts[which].replace(old, new, 1)
    later = {"patients": ("p4,U,", "p4,Q,"), "conditions": ("p2,I10", "p2,I-10")}[which]
    texts[which] = texts[which].replace(*later)  # a bad value on a later line
    folder = write(tmp_path)
    for name, text in texts.items():  # written as is: no newline translation
        (folder / f"{name}.csv").write_bytes(text.encode())
    with pytest.raises(DataError, match=expected + ": a value holds a line break"):
        load_party_data(folder)


@pytest.mark.parametrize("line_end", ["\n", "\r\n"])
def test_a_line_break_in_a_column_not_read_is_refused_at_its_line(
    tmp_path: Path, line_end: str
) -> None:
    """conditions.csv's extra columns are not read, but a quoted line break there would
    still shift every later line number: refused, naming the row's first line."""
    conditions = "patient_id,code,onset_date,note\np1,E11.9,2010-05-01,ok\n"
    conditions += 'p3,e75.22,,"two\nlines"\np2,,2020-01-31,\n'  # the empty code: line 5
    folder = write(tmp_path, conditions=None)
    (folder / "conditions.csv").write_bytes(conditions.replace("\n", line_end).encode())
    with pytest.raises(DataError, match=r"conditions\.csv: line 3: a value holds a line break"):
        load_party_data(folder)
