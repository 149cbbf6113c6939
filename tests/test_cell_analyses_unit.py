"""Histogram, contingency table and odds ratio: local inputs and finalisers on small
in-memory data, without a federation. Expected values are computed here directly
with numpy/scipy, not with the analyses' own helpers."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.statistics.contingency.analysis import ContingencyAnalysis
from smpc_ehr.analyses.statistics.histogram.analysis import HistogramAnalysis
from smpc_ehr.analyses.statistics.odds_ratio.analysis import OddsRatioAnalysis
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError
from smpc_ehr.study.params import BoundParameters
from smpc_ehr.study.template import load_template

PROTOCOLS = Path(__file__).resolve().parent.parent / "protocols"
T = 3
N = 400


def bind(template: str, **raw: str) -> BoundParameters:
    return load_template(PROTOCOLS / f"{template}.toml").bind(raw)


@pytest.fixture(scope="module")
def data() -> PartyData:
    """N patients: sex, ages 1..89, bmi with missing and out-of-range values and
    values exactly on edges, a 0/1 readmission with missing values, diagnoses."""
    rng = np.random.default_rng(7)
    sex = rng.choice(np.array(["F", "M", "U"]), size=N, p=[0.48, 0.48, 0.04])
    birth = np.datetime64("2025-06-01") - rng.integers(365, 89 * 365, size=N).astype(
        "timedelta64[D]"
    )
    bmi = np.round(rng.uniform(5, 80, size=N), 1)
    bmi[:8] = [10, 20, 25, 30, 35, 70, 9.9, 70.1]  # on and just beyond the edges
    bmi[rng.random(N) < 0.1] = np.nan
    readmit = (rng.random(N) < 0.3).astype(float)
    readmit[rng.random(N) < 0.05] = np.nan
    codes = np.array(["E11.9", "I10", "J45"])
    cond_patient = rng.integers(0, N, size=300)
    cond_code = rng.integers(0, len(codes), size=300)
    return PartyData(
        patient_ids=np.array([f"p{i}" for i in range(N)], dtype=object),
        sex=sex,
        birth_date=birth.astype("datetime64[D]"),
        features={"bmi": bmi},
        outcomes={"readmit_30d": readmit},
        cond_patient=cond_patient,
        code_table=codes,
        cond_code_index=cond_code,
        cond_onset=np.full(300, np.datetime64("2020-01-01"), dtype="datetime64[D]"),
    )


def opened(totals: list[int], threshold: int = T) -> list[float]:
    """What the released-counts program opens for these joint totals."""
    bits = [int(t >= threshold) for t in totals]
    return [float(b) for b in bits] + [float(b * t) for b, t in zip(bits, totals, strict=True)]


def has_code(data: PartyData, prefix: str) -> np.ndarray:
    rows = np.char.startswith(data.code_table[data.cond_code_index], prefix)
    has = np.zeros(data.n_patients, dtype=bool)
    has[data.cond_patient[rows]] = True
    return has


# ------------------------------------------------------------------ histogram


def test_registered_and_templates_name_them() -> None:
    for name, cls in (
        ("histogram", HistogramAnalysis),
        ("contingency", ContingencyAnalysis),
        ("odds_ratio", OddsRatioAnalysis),
    ):
        assert isinstance(ANALYSES[name], cls)
        assert load_template(PROTOCOLS / f"{name}.toml").analysis == name


def test_histogram_local_input_follows_numpy(data: PartyData) -> None:
    params = bind("histogram", variable="bmi", edges="10,20,25,30,35,70")
    HistogramAnalysis().validate(params)
    local = HistogramAnalysis().local_input(data, params)
    bmi = data.column("bmi")
    known = bmi[~np.isnan(bmi)]
    edges = [10, 20, 25, 30, 35, 70]
    expected = np.histogram(known, bins=edges)[0].tolist()
    outside = int(np.sum((known < 10) | (known > 70)))
    assert local == [*expected, outside, int(np.isnan(bmi).sum())]
    assert sum(local) == N
    # the last bin is closed: 70 counts in it, 70.1 outside
    top = HistogramAnalysis().local_input(data, bind("histogram", variable="bmi", edges="35,70"))
    inside = (known >= 35) & (known <= 70)
    assert top == [int(inside.sum()), int((~inside).sum()), int(np.isnan(bmi).sum())]
    assert 70 in known and 70.1 in known


def test_histogram_cohort_filter(data: PartyData) -> None:
    params = bind("histogram", variable="bmi", edges="0,100", sex="F", codes="E11")
    local = HistogramAnalysis().local_input(data, params)
    chosen = (data.sex == "F") & has_code(data, "E11")
    bmi = data.column("bmi")[chosen]
    assert local == [int((~np.isnan(bmi)).sum()), 0, int(np.isnan(bmi).sum())]


def test_histogram_finalize_suppresses_small_cells() -> None:
    params = bind("histogram", variable="bmi", edges="10,20,25,30")
    result = HistogramAnalysis().finalize(opened([5, 2, 0, 1, 9]), params, T)
    assert result == {
        "variable": "bmi",
        "edges": [10.0, 20.0, 25.0, 30.0],
        "counts": [5, None, None],
        "suppressed": [False, True, True],
        "outside": None,
        "missing": 9,
        "threshold": T,
        "missing_values": "excluded; their count is missing",
    }
    noisy = [v + 1e-5 for v in opened([5, 2, 0, 1, 9])]  # fixed-point backends
    assert HistogramAnalysis().finalize(noisy, params, T) == result
    with pytest.raises(ValueError, match="expected 10 opened values"):
        HistogramAnalysis().finalize(opened([5, 2, 0, 1]), params, T)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"variable": "bmi", "edges": "10,30,20"}, "strictly increasing"),
        ({"variable": "bmi", "edges": "10,10.0"}, "strictly increasing"),
        ({"variable": "sex", "edges": "10,20"}, "numeric column"),
        ({"variable": "condition", "edges": "10,20"}, "numeric column"),
    ],
)
def test_histogram_validate_refuses(raw: dict[str, str], match: str) -> None:
    with pytest.raises(TemplateError, match=match):
        HistogramAnalysis().validate(bind("histogram", **raw))


def test_histogram_edge_count_bounds() -> None:
    with pytest.raises(TemplateError):
        bind("histogram", variable="bmi", edges="10")
    with pytest.raises(TemplateError):
        bind("histogram", variable="bmi", edges=",".join(str(i) for i in range(52)))
    params: dict[str, Any] = {"variable": "bmi", "edges": tuple(map(float, range(52)))}
    with pytest.raises(TemplateError, match="2 to 51"):
        HistogramAnalysis().validate({**params, "as_of": dt.date(2026, 1, 1)})


# ------------------------------------------------------------------ contingency


def test_contingency_local_input(data: PartyData) -> None:
    params = bind("contingency", row="sex", col="readmit_30d")
    ContingencyAnalysis().validate(params)
    local = ContingencyAnalysis().local_input(data, params)
    readmit = data.column("readmit_30d")
    expected = [
        int(np.sum((data.sex == s) & (readmit == v))) for s in ("F", "M", "U") for v in (0, 1)
    ]
    assert local == [*expected, int(np.isnan(readmit).sum())]


def test_contingency_condition_levels(data: PartyData) -> None:
    params = bind("contingency", row="condition", col="sex", condition_codes="E11")
    local = ContingencyAnalysis().local_input(data, params)
    has = has_code(data, "E11")
    expected = [int(np.sum((has == h) & (data.sex == s))) for h in (0, 1) for s in "FMU"]
    assert local == [*expected, 0]


def test_contingency_finalize_with_test() -> None:
    table = np.array([[30, 12, 7], [22, 25, 9]])
    params = bind("contingency", row="condition", col="sex", condition_codes="E11")
    result = ContingencyAnalysis().finalize(opened([*table.ravel().tolist(), 4]), params, T)
    rows, cols, n = table.sum(axis=1), table.sum(axis=0), table.sum()
    expected = np.outer(rows, cols) / n
    statistic = float(((table - expected) ** 2 / expected).sum())
    assert result["counts"] == table.tolist()
    assert result["suppressed"] == [[False] * 3] * 2
    assert (result["row_levels"], result["col_levels"]) == (["0", "1"], ["F", "M", "U"])
    assert result["missing"] == 4
    assert (result["row_totals"], result["col_totals"], result["n"]) == (
        rows.tolist(),
        cols.tolist(),
        int(n),
    )
    assert np.allclose(result["expected"], expected)
    test = result["test"]
    assert test["df"] == 2
    assert test["statistic"] == pytest.approx(statistic)
    assert test["p_value"] == pytest.approx(stats.chi2.sf(statistic, 2))
    assert test["method"] == "Pearson chi-square test of independence"
    assert result["test_refused"] is None


def test_contingency_finalize_refuses_test_when_suppressed() -> None:
    params = bind("contingency", row="sex", col="readmit_30d")
    result = ContingencyAnalysis().finalize(opened([40, 9, 38, 11, 2, 1, 1]), params, T)
    assert result["counts"] == [[40, 9], [38, 11], [None, None]]
    assert result["suppressed"] == [[False, False], [False, False], [True, True]]
    assert result["missing"] is None
    for key in ("row_totals", "col_totals", "n", "expected", "test"):
        assert result[key] is None, key
    assert "below the small-cell threshold" in result["test_refused"]
    with pytest.raises(ValueError):
        ContingencyAnalysis().finalize(opened([40, 9, 38, 11, 2, 1]), params, T)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"row": "sex", "col": "sex"}, "different"),
        ({"row": "condition", "col": "sex"}, "condition_codes"),
    ],
)
def test_contingency_validate_refuses(raw: dict[str, str], match: str) -> None:
    with pytest.raises(TemplateError, match=match):
        ContingencyAnalysis().validate(bind("contingency", **raw))


# ------------------------------------------------------------------ odds ratio


def test_odds_ratio_local_input(data: PartyData) -> None:
    params = bind("odds_ratio", exposure="condition", condition_codes="E11", outcome="readmit_30d")
    OddsRatioAnalysis().validate(params)
    local = OddsRatioAnalysis().local_input(data, params)
    e, o = has_code(data, "E11"), data.column("readmit_30d")
    a, b = int(np.sum(e & (o == 1))), int(np.sum(e & (o == 0)))
    c, d = int(np.sum(~e & (o == 1))), int(np.sum(~e & (o == 0)))
    assert local == [a, b, c, d, int(np.isnan(o).sum())]


def test_odds_ratio_finalize_estimate() -> None:
    a, b, c, d = 40, 60, 25, 110
    params = bind("odds_ratio", exposure="condition", condition_codes="E11", outcome="readmit_30d")
    result = OddsRatioAnalysis().finalize(opened([a, b, c, d, 2]), params, T)
    log_or = np.log(a * d / (b * c))
    se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    z975 = stats.norm.ppf(0.975)
    assert result["table"] == {
        "exposed": {"outcome_1": a, "outcome_0": b},
        "unexposed": {"outcome_1": c, "outcome_0": d},
    }
    assert result["suppressed"] == {
        "exposed": {"outcome_1": False, "outcome_0": False},
        "unexposed": {"outcome_1": False, "outcome_0": False},
    }
    assert result["missing"] is None
    assert result["odds_ratio"] == pytest.approx(a * d / (b * c))
    assert result["ci95"] == pytest.approx(
        [math.exp(log_or - z975 * se), math.exp(log_or + z975 * se)]
    )
    assert result["statistic"] == pytest.approx(log_or / se)
    assert result["p_value"] == pytest.approx(2 * stats.norm.sf(abs(log_or / se)))
    assert result["estimate_refused"] is None
    assert result["method"] == "Wald test on log odds ratio, Woolf confidence interval"
    assert (result["exposure"], result["outcome"], result["threshold"]) == (
        "condition",
        "readmit_30d",
        T,
    )


def test_odds_ratio_finalize_refuses_when_suppressed() -> None:
    params = bind("odds_ratio", exposure="condition", condition_codes="E11", outcome="readmit_30d")
    result = OddsRatioAnalysis().finalize(opened([40, 2, 25, 110, 7]), params, T)
    assert result["table"]["exposed"] == {"outcome_1": 40, "outcome_0": None}
    assert result["suppressed"]["exposed"] == {"outcome_1": False, "outcome_0": True}
    assert result["missing"] == 7
    for key in ("odds_ratio", "ci95", "statistic", "p_value"):
        assert result[key] is None, key
    assert "below the small-cell threshold" in result["estimate_refused"]


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        ({"exposure": "sex", "outcome": "readmit_30d"}, "'sex' is not binary"),
        ({"exposure": "readmit_30d", "outcome": "age_band"}, "'age_band' is not binary"),
        ({"exposure": "readmit_30d", "outcome": "readmit_30d"}, "must differ"),
        ({"exposure": "condition", "outcome": "readmit_30d"}, "condition_codes"),
    ],
)
def test_odds_ratio_validate_refuses(raw: dict[str, str], match: str) -> None:
    with pytest.raises(TemplateError, match=match):
        OddsRatioAnalysis().validate(bind("odds_ratio", **raw))
