"""The correlation matrix's terminal table: hand-built results of the shape finalize returns,
and a real finalised result rendered without the generic fallback."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from tests._render import (
    FOOTNOTE,
    T,
    bind,
    check_all_suppressed,
    finalised,
    render,
    render_finalised,
)


def test_correlation_matrix_with_names_and_n() -> None:
    body = {
        "variables": ["bmi", "sbp"],
        "n": 7068,
        "means": [26.732, 135.83],
        "covariance": [[32.05, 62.88], [62.88, 457.48]],
        "matrix": [[1.0, 0.5192548], [0.5192548, 1.0]],
        "suppressed": False,
        "missing": {"bmi": 268, "sbp": None},
        "missing_values": "complete-case: patients missing any listed variable are left out",
        "threshold": T,
    }
    text = render(body, "correlation")
    assert "n = 7,068" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.split() == ["bmi", "sbp"])
    assert lines[lines.index(header) + 2].split() == ["bmi", "1.000", "0.519"]
    assert "sbp       135.8  21.39      <11" in text
    assert "complete-case" in text and FOOTNOTE in text


def test_correlation_undefined_entry_is_na() -> None:
    body = {
        "variables": ["bmi", "flag"],
        "n": 50,
        "means": [26.0, 1.0],
        "covariance": [[30.0, 0.0], [0.0, 0.0]],
        "matrix": [[1.0, None], [None, 1.0]],
        "suppressed": False,
        "missing": {"bmi": 0, "flag": 0},
        "missing_values": "complete-case",
        "threshold": T,
    }
    text = render(body, "correlation")
    assert "NA: undefined" in text
    assert ["flag", "NA", "1.000"] in [line.split() for line in text.splitlines()]


def test_all_suppressed_renders() -> None:
    body = {
        "variables": ["bmi", "sbp"],
        **dict.fromkeys(("n", "means", "covariance", "matrix")),
        "suppressed": True,
        "missing": {"bmi": None, "sbp": None},
        "missing_values": "complete-case",
        "threshold": T,
    }
    check_all_suppressed(render(body, "correlation"), refused=False)


def test_a_real_finalised_correlation_renders() -> None:
    params = bind("correlation", variables="bmi,sbp")
    opened = {
        "released": [1],
        "shown": [1],
        "missing_released": [1, 0],
        "n": [7068],
        "means": [26.732, 135.83],
        "covariance": [[32.05, 62.88], [62.88, 457.48]],
        "missing": [268, 0],
    }
    text = render_finalised("correlation", opened, params)
    assert "Pearson correlation, n = 7,068 patients with all variables" in text
    assert ["bmi", "1.000", "0.519"] in [line.split() for line in text.splitlines()]
    assert FOOTNOTE in text


def test_each_pair_has_fishers_ci_and_the_p_value_scipy_gives() -> None:
    """A small sample (n = 40, moderate r): the finalised CI and p of each pair equal
    scipy.stats.pearsonr's (Fisher z CI, t-test p), and the pairs table shows them."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(40, 3)) @ np.array([[1.0, 0.4, 0.1], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    params = bind("correlation", variables="bmi,sbp,hdl")
    opened = {
        "released": [1],
        "shown": [1],
        "missing_released": [1, 1, 1],
        "n": [40],
        "means": x.mean(axis=0),
        "covariance": np.cov(x, rowvar=False, bias=True),
        "missing": [12, 15, 20],
    }
    result = finalised("correlation", opened, params)
    for i, j in [(0, 1), (0, 2), (1, 2)]:
        want = stats.pearsonr(x[:, i], x[:, j])
        assert result["ci95"][i][j] == pytest.approx(list(want.confidence_interval()), rel=1e-9)
        assert result["p_values"][i][j] == pytest.approx(want.pvalue, rel=1e-9)
        assert result["p_values"][j][i] == result["p_values"][i][j]
    text = render(result, "correlation")
    r, (lo, hi) = result["matrix"][0][1], result["ci95"][0][1]
    line = next(line for line in text.splitlines() if line.startswith("bmi - sbp"))
    p = f"{result['p_values'][0][1]:.3g}"
    assert line.split() == ["bmi", "-", "sbp", f"{r:.3f}", f"{lo:.3f}", "to", f"{hi:.3f}", p]
    assert "95% CI (Fisher z)" in text


def test_a_dp_result_says_why_it_has_no_ci() -> None:
    body = {
        "variables": ["bmi", "sbp"],
        "n": 7068,
        "means": [26.7, 135.8],
        "covariance": [[32.0, 62.9], [62.9, 457.5]],
        "matrix": [[1.0, 0.52], [0.52, 1.0]],
        "suppressed": False,
        "missing": {"bmi": 268, "sbp": 30},
        "ci95": None,
        "p_values": None,
        "inference_note": "no confidence interval or p-value with epsilon: (why)",
        "missing_values": "complete-case",
        "threshold": T,
    }
    text = render(body, "correlation")
    assert "no confidence interval or p-value with epsilon" in text and "Fisher" not in text
