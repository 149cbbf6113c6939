"""The contingency table's terminal table: hand-built results of the shape finalize
returns, and a real finalised result rendered without the generic fallback."""

from __future__ import annotations

from tests._render import (
    FOOTNOTE,
    T,
    bind,
    check_all_suppressed,
    released_counts,
    render,
    render_finalised,
)


def test_contingency_with_totals_and_chi_square() -> None:
    body = {
        "row": "condition",
        "col": "readmit_30d",
        "row_levels": ["0", "1"],
        "col_levels": ["0", "1"],
        "counts": [[5802, 649], [1967, 504]],
        "suppressed": [[False, False], [False, False]],
        "missing": 78,
        "row_totals": [6451, 2471],
        "col_totals": [7769, 1153],
        "n": 8922,
        "expected": [[5617.3, 833.7], [2151.7, 319.3]],
        "test": {
            "statistic": 169.62300349537065,
            "df": 1,
            "p_value": 8.943485496992138e-39,
            "method": "Pearson chi-square test of independence",
        },
        "test_refused": None,
        "missing_values": "patients missing either variable are left out",
        "threshold": T,
    }
    text = render(body, "contingency")
    lines = text.splitlines()
    assert lines[0].split() == ["condition", "\\", "readmit_30d", "0", "1", "total"]
    assert lines[2].split() == ["0", "5,802", "649", "6,451"]
    assert lines[4].split() == ["total", "7,769", "1,153", "8,922"]
    assert "chi-square = 169.6, df = 1, p < 1e-16 (Pearson chi-square" in text
    assert "missing: 78" in lines
    assert "patients missing either variable are left out" in text
    assert "warning" not in text and FOOTNOTE not in text


def test_contingency_small_expected_counts_warn() -> None:
    body = {
        "row": "sex",
        "col": "readmit_30d",
        "row_levels": ["F", "M"],
        "col_levels": ["0", "1"],
        "counts": [[30, 11], [40, 12]],
        "suppressed": [[False, False], [False, False]],
        "missing": 0,
        "row_totals": [41, 52],
        "col_totals": [70, 23],
        "n": 93,
        "expected": [[30.9, 4.2], [39.1, 12.9]],
        "test": {"statistic": 0.31, "df": 1, "p_value": 0.578, "method": "Pearson"},
        "test_refused": None,
        "threshold": T,
    }
    text = render(body, "contingency")
    assert "p = 0.578" in text
    assert "smallest expected count 4.20 < 5" in text


def test_contingency_refused_test() -> None:
    reason = "cell(s) below the threshold; releasing totals or the test would reveal them"
    body = {
        "row": "sex",
        "col": "readmit_30d",
        "row_levels": ["F", "M", "U"],
        "col_levels": ["0", "1"],
        "counts": [[4010, 547], [3715, 600], [44, None]],
        "suppressed": [[False, False], [False, False], [False, True]],
        "missing": 78,
        "row_totals": None,
        "col_totals": None,
        "n": None,
        "expected": None,
        "test": None,
        "test_refused": reason,
        "threshold": T,
    }
    text = render(body, "contingency")
    assert f"test refused: {reason}" in text
    assert not any(line.split()[-1:] == ["total"] for line in text.splitlines())
    assert not any(line.startswith("total") for line in text.splitlines())
    assert "chi-square =" not in text
    assert text.splitlines()[4].split() == ["U", "44", "<11"]
    assert FOOTNOTE in text


def test_all_suppressed_renders() -> None:
    body = {
        "row": "sex",
        "col": "readmit_30d",
        "row_levels": ["F", "M", "U"],
        "col_levels": ["0", "1"],
        "counts": [[None, None]] * 3,
        "suppressed": [[True, True]] * 3,
        "missing": None,
        **dict.fromkeys(("row_totals", "col_totals", "n", "expected", "test")),
        "test_refused": "cell(s) below the small-cell threshold",
        "threshold": T,
    }
    check_all_suppressed(render(body, "contingency"), refused=True)


def test_a_real_finalised_contingency_renders() -> None:
    params = bind("contingency", row="sex", col="readmit_30d")  # 3 x 2, then missing
    text = render_finalised("contingency", released_counts([400, 50, 380, 60, 30, 12, 20]), params)
    lines = text.splitlines()
    assert lines[0].split() == ["sex", "\\", "readmit_30d", "0", "1", "total"]
    assert lines[5].split() == ["total", "810", "122", "932"]
    assert "chi-square = " in text and "missing: 20" in lines
