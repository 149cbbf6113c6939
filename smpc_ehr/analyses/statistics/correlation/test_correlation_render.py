"""The correlation matrix's terminal table: hand-built results of the shape finalize returns,
and a real finalised result rendered without the generic fallback."""

from __future__ import annotations

from tests._render import (
    FOOTNOTE,
    T,
    bind,
    check_all_suppressed,
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
