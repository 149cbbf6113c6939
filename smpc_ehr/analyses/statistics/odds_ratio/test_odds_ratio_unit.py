"""The odds ratio: local inputs and finalisers on small in-memory data (tests/_cells.py),
without a federation. Expected values are computed here directly with numpy/scipy,
not with the analysis's own helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from smpc_ehr.analyses.statistics.odds_ratio.analysis import OddsRatioAnalysis
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import TemplateError
from tests._cells import (
    T,
    has_code,
    opened,
)
from tests._render import bind


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
    result = OddsRatioAnalysis().release(opened([a, b, c, d, 2]), params, T)
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
    result = OddsRatioAnalysis().release(opened([40, 2, 25, 110, 7]), params, T)
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
