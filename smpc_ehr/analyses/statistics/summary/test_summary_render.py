"""The joint summary's terminal table: hand-built results of the shape finalize returns,
and a real finalised result rendered without the generic fallback."""

from __future__ import annotations

from tests._render import (
    FOOTNOTE,
    SUMMARY_RULE,
    T,
    bind,
    check_all_suppressed,
    moments,
    render,
    render_finalised,
)


def test_summary_with_a_suppressed_variable() -> None:
    body = {
        "variables": {
            "bmi": moments(8732, 268, 26.74275, 5.67339),
            "ldl": moments(None, 40, 0, 0),
        },
        "missing_values": SUMMARY_RULE,
        "threshold": T,
    }
    text = render(body, "summary")
    bmi = next(line for line in text.splitlines() if line.startswith("bmi"))
    assert bmi.split() == ["bmi", "8,732", "268", "26.74", "5.673", "0.06071"]
    ldl = next(line for line in text.splitlines() if line.startswith("ldl"))
    assert ldl.split() == ["ldl", "<11", "40", "-", "-", "-"]
    assert f"missing values: {SUMMARY_RULE}" in text
    assert f"small-cell threshold: {T}; {FOOTNOTE}" in text


def test_summary_and_correlation_with_a_0_1_mean_withheld() -> None:
    rare = {**moments(None, None, 0, 0), "n": 600, "suppressed": False, "mean_suppressed": True}
    body = {"variables": {"rare": rare}, "missing_values": SUMMARY_RULE, "threshold": T}
    text = render(body, "summary")
    row = next(line for line in text.splitlines() if line.startswith("rare"))
    assert row.split() == ["rare", "600", "<11", "-", "-", "-"]
    assert f"a 0/1 variable with fewer than {T} ones or zeros" in text
    body = {
        "variables": ["bmi", "rare"],
        "n": 590,
        "means": None,
        "covariance": None,
        "matrix": None,
        "suppressed": False,
        "moments_suppressed": True,
        "missing": {"bmi": 12, "rare": None},
        "threshold": T,
    }
    text = render(body, "correlation")
    assert f"n = 590 patients with all variables, a 0/1 variable has fewer than {T}" in text


def test_stratified_summary_has_a_row_per_level_and_variable() -> None:
    strata = {
        "F": {"variables": {"bmi": moments(4467, 132, 26.899, 5.6719)}},
        "U": {"variables": {"bmi": moments(47, None, 26.34, 5.781)}},
    }
    body = {"by": "sex", "strata": strata, "missing_values": SUMMARY_RULE, "threshold": T}
    lines = render(body, "summary").splitlines()
    assert lines[0].split()[:3] == ["sex", "variable", "n"]
    assert lines[2].split()[:4] == ["F", "bmi", "4,467", "132"]
    assert lines[3].split()[:5] == ["U", "bmi", "47", "<11", "26.34"]
    assert any(FOOTNOTE in line for line in lines)


def test_all_suppressed_renders() -> None:
    none = moments(None, None, 0, 0)
    body = {
        "by": "sex",
        "strata": {s: {"variables": {"bmi": none, "ldl": none}} for s in "FMU"},
        "missing_values": SUMMARY_RULE,
        "threshold": T,
    }
    check_all_suppressed(render(body, "summary"), refused=False)


def test_a_real_finalised_summary_renders() -> None:
    params = bind("summary", variables="bmi,ldl", by="sex")  # 3 strata x 2 variables
    opened = {
        "released": [1, 1, 1, 1, 0, 0],
        "missing_released": [1, 0, 1, 1, 0, 0],
        "shown": [1, 1, 0, 1, 0, 0],
        "n": [4467, 4400, 4300, 4200, 0, 0],
        "missing": [132, 0, 20, 15, 0, 0],
        "mean": [26.9, 120.5, 0, 118.0, 0, 0],
        "variance": [32.1, 900.0, 0, 850.0, 0, 0],
    }
    lines = render_finalised("summary", opened, params).splitlines()
    assert lines[2].split() == ["F", "bmi", "4,467", "132", "26.90", "5.666", "0.08478"]
    assert lines[4].split() == ["M", "bmi", "4,300", "20", "-", "-", "-"]
    assert lines[6].split() == ["U", "bmi", "<11", "<11", "-", "-", "-"]
    assert any("a 0/1 variable with fewer than" in line for line in lines)
