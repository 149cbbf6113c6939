"""The contingency table: local inputs and finalisers on small in-memory data (tests/_cells.py),
without a federation. Expected values are computed here directly with numpy/scipy,
not with the analysis's own helpers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from smpc_ehr.analyses.statistics.contingency.analysis import (
    ContingencyAnalysis,
    noise_corrected_test,
)
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError
from tests._cells import (
    T,
    has_code,
    opened,
)
from tests._render import bind


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
    result = ContingencyAnalysis().release(opened([*table.ravel().tolist(), 4]), params, T)
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
    result = ContingencyAnalysis().release(opened([40, 9, 38, 11, 2, 1, 1]), params, T)
    assert result["counts"] == [[40, 9], [38, 11], [None, None]]
    assert result["suppressed"] == [[False, False], [False, False], [True, True]]
    assert result["missing"] is None
    for key in ("row_totals", "col_totals", "n", "expected", "test"):
        assert result[key] is None, key
    assert "below the small-cell threshold" in result["test_refused"]
    with pytest.raises(ValueError):
        ContingencyAnalysis().release(opened([40, 9, 38, 11, 2, 1]), params, T)


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


@pytest.mark.parametrize("shape", [(2, 2), (3, 2), (10, 3)])
def test_noise_corrected_test_without_noise_is_pearsons(shape: tuple[int, int]) -> None:
    table = np.arange(1, shape[0] * shape[1] + 1, dtype=float).reshape(shape) * 7 + 20
    chi = stats.chi2_contingency(table, correction=False)
    test = noise_corrected_test(table, float(chi.statistic), 0.0)
    assert test["scale"] == pytest.approx(1, rel=1e-12)
    assert test["effective_df"] == pytest.approx(chi.dof, rel=1e-12)
    assert test["p_value"] == pytest.approx(chi.pvalue, rel=1e-9)
    noisy = noise_corrected_test(table, float(chi.statistic), 25.0)
    assert noisy["p_value"] > test["p_value"]  # noise explains part of the statistic
