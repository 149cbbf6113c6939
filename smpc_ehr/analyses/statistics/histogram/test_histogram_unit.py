"""The histogram: local inputs and finalisers on small in-memory data (tests/_cells.py),
without a federation. Expected values are computed here directly with numpy/scipy,
not with the analysis's own helpers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.statistics.contingency.analysis import ContingencyAnalysis
from smpc_ehr.analyses.statistics.histogram.analysis import HistogramAnalysis
from smpc_ehr.analyses.statistics.odds_ratio.analysis import OddsRatioAnalysis
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError
from smpc_ehr.study.template import load_template
from tests._cells import (
    N,
    T,
    has_code,
    opened,
)
from tests._render import bind
from tests.federations import PROTOCOLS


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
    result = HistogramAnalysis().release(opened([5, 2, 0, 1, 9]), params, T)
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
    assert HistogramAnalysis().release(noisy, params, T) == result
    with pytest.raises(ValueError, match="8 opened values, but the outputs declare 10"):
        HistogramAnalysis().release(opened([5, 2, 0, 1]), params, T)


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
