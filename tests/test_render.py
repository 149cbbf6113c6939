"""The terminal tables of `smpc-ehr run` (no federation): hand-built result dicts of the
shapes each analysis's finalize() returns, with suppressed cells and refused tests."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from smpc_ehr.analyses.common.text import fmt_count, fmt_num, fmt_p
from smpc_ehr.cli.render import RENDERERS, render_result
from smpc_ehr.client import JobResult
from tests.federations import PROTOCOLS, ROOT

T = 11
FOOTNOTE = f"<{T} = suppressed"


def job(body: dict[str, Any], protocol: str = "p") -> JobResult:
    return JobResult("job", protocol, "sha256:0", "mpyc", ("a", "b", "c"), body, 1.234)


def render(body: dict[str, Any], analysis: str) -> str:
    """The analysis's own renderer, called directly so that a failure is not hidden by
    render_result's generic fallback; also checks render_result gives the same text."""
    text = RENDERERS[analysis](body)
    assert render_result(job(body), analysis).endswith(text)
    return text


def moments(n: int | None, missing: int | None, mean: float, sd: float) -> dict[str, Any]:
    if n is None:
        return {"n": None, "missing": missing, "mean": None, "variance": None, "sd": None,
                "se": None, "suppressed": True}  # fmt: skip
    return {"n": n, "missing": missing, "mean": mean, "variance": sd * sd, "sd": sd,
            "se": sd / n**0.5, "suppressed": False}  # fmt: skip


SUMMARY_RULE = "excluded variable by variable (available-case)"


# ---------------------------------------------------------------- number formats


def test_number_formats() -> None:
    assert fmt_count(8732, T) == "8,732"
    assert fmt_count(0, T) == "0"
    assert fmt_count(None, T) == "<11"
    assert fmt_num(26.74275) == "26.74"
    assert fmt_num(6.04496) == "6.045"
    assert fmt_num(124.389) == "124.4"
    assert fmt_num(0.0607136) == "0.06071"
    assert fmt_num(9.99996) == "10.00"  # rounding up does not add a digit
    assert fmt_num(1296.62) == "1,297"
    assert fmt_num(1391.04, grouping=False) == "1391"
    assert fmt_num(-0.55726) == "-0.5573"
    assert fmt_num(1.5e-5) == "1.500e-05"
    assert fmt_num(0.0) == "0"
    assert fmt_num(None) == fmt_num(float("nan")) == "NA"
    assert fmt_p(9.6e-60) == "< 1e-16"
    assert fmt_p(0.0123456) == "0.0123"
    assert fmt_p(0.5) == "0.5"
    assert fmt_p(2.3456e-7) == "2.35e-07"
    assert fmt_p(None) == "NA"


# ---------------------------------------------------------------- per analysis


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


def test_histogram_bins_counts_and_bars() -> None:
    body = {
        "variable": "bmi",
        "edges": [10.0, 20.0, 25.0, 70.0],
        "counts": [1107, None, 2836],
        "suppressed": [False, True, False],
        "outside": None,
        "missing": 268,
        "threshold": T,
        "missing_values": "excluded",
    }
    lines = render(body, "histogram").splitlines()
    assert lines[0].split() == ["bmi", "patients"]
    assert lines[2].split() == ["[10,", "20)", "1,107", "#" * 16]
    assert lines[3].split() == ["[20,", "25)", "<11"]  # no bar for a suppressed bin
    assert lines[4].split() == ["[25,", "70]", "2,836", "#" * 40]  # last bin closed
    assert "outside [10, 70]: <11" in lines
    assert "missing: 268" in lines
    assert "missing values: excluded" in lines
    assert f"small-cell threshold: {T}; {FOOTNOTE}" in "\n".join(lines)


def test_quantiles_values_notes_and_suppression() -> None:
    body = {
        "variable": "bmi",
        "q": [0.01, 0.5, 0.75, 0.99],
        "values": [None, 26.900000000000002, None, None],
        "suppressed": [False, False, True, False],
        "notes": [
            "below_range: the quantile is at or below low = 20; lower `low` to see it",
            None,
            None,
            "above_range: the quantile is above high = 40; raise `high` to see it",
        ],
        "n": 8732,
        "missing": 268,
        "resolution": 0.1,
        "range": [20.0, 40.0],
        "method": "smallest grid point g with #(x <= g) >= q*n",
        "missing_values": "excluded",
        "threshold": T,
    }
    text = render(body, "quantiles")
    assert "bmi: n = 8,732 patients with a value, missing: 268" in text
    rows = {line.split()[0]: line.split(maxsplit=1)[1] for line in text.splitlines()[3:7]}
    assert rows == {"0.01": "<= 20", "0.5": "26.9", "0.75": "suppressed", "0.99": "> 40"}
    assert "q = 0.01: below_range" in text and "raise `high`" in text
    assert f"fewer than {T} patients on one side" in text
    assert "grid: step 0.1 over [20, 40]" in text and "method: smallest grid point" in text


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


TTEST = {
    "variable": "hba1c",
    "group": "readmit_30d",
    "levels": ["0", "1"],
    "groups": {"0": moments(7132, 637, 5.97333, 0.98877), "1": moments(1059, 94, 6.53059, 0.98867)},
    "method": "Welch two-sample t-test (unequal variances), two-sided",
    "estimate_is": "mean(1) - mean(0)",
    "statistic": 17.11541765715402,
    "df": 1391.0394135601884,
    "p_value": 9.608642016299645e-60,
    "estimate": 0.5572634367272258,
    "ci95": [0.49339310324900876, 0.6211337702054428],
    "test_refused": None,
    "missing_values": SUMMARY_RULE,
    "threshold": T,
}


def test_ttest_groups_and_test_line() -> None:
    text = render(TTEST, "ttest")
    lines = text.splitlines()
    assert lines[0] == "hba1c by readmit_30d"
    assert lines[3].split() == ["0", "7,132", "637", "5.973", "0.9888", "0.01171"]
    assert "t = 17.12, df = 1391, p < 1e-16" in lines
    assert "mean(1) - mean(0) = 0.5573 (95% CI 0.4934 to 0.6211)" in lines
    assert "Welch two-sample t-test" in text and SUMMARY_RULE in text


def test_ttest_refused() -> None:
    reason = "group(s) 1 have fewer than 11 patients with a value: the test would disclose them"
    body = {
        **TTEST,
        "groups": {"0": moments(39, None, 6.07, 1.2), "1": moments(None, None, 0, 0)},
        **dict.fromkeys(("statistic", "df", "p_value", "estimate", "ci95")),
        "test_refused": reason,
    }
    text = render(body, "ttest")
    assert f"test refused: {reason}" in text
    assert "t = " not in text
    assert text.splitlines()[4].split() == ["1", "<11", "<11", "-", "-", "-"]
    assert FOOTNOTE in text


ODDS = {
    "exposure": "condition",
    "outcome": "readmit_30d",
    "table": {
        "exposed": {"outcome_1": 504, "outcome_0": 1967},
        "unexposed": {"outcome_1": 649, "outcome_0": 5802},
    },
    "suppressed": {
        "exposed": {"outcome_1": False, "outcome_0": False},
        "unexposed": {"outcome_1": False, "outcome_0": False},
    },
    "missing": 78,
    "odds_ratio": 2.290652468347143,
    "ci95": [2.0172401679631506, 2.601122471224115],
    "statistic": 12.780555581642417,
    "p_value": 0.0004567,
    "method": "Wald test on log odds ratio, Woolf confidence interval",
    "estimate_refused": None,
    "threshold": T,
}


def test_odds_ratio_table_and_estimate() -> None:
    text = render(ODDS, "odds_ratio")
    lines = text.splitlines()
    assert lines[0].split() == ["readmit_30d", "=", "1", "readmit_30d", "=", "0"]
    assert lines[2].split() == ["condition", "=", "1", "504", "1,967"]
    assert lines[3].split() == ["condition", "=", "0", "649", "5,802"]
    assert "odds ratio = 2.291 (95% CI 2.017 to 2.601), z = 12.78, p = 0.000457" in text
    assert "Woolf" in text and f"small-cell threshold: {T}" in text


def test_odds_ratio_refused() -> None:
    reason = "cell(s) below the small-cell threshold; releasing the odds ratio would reveal them"
    body = {
        **ODDS,
        "table": {
            "exposed": {"outcome_1": None, "outcome_0": 15},
            "unexposed": {"outcome_1": None, "outcome_0": 29},
        },
        **dict.fromkeys(("odds_ratio", "ci95", "statistic", "p_value")),
        "estimate_refused": reason,
    }
    text = render(body, "odds_ratio")
    assert f"odds ratio refused: {reason}" in text
    assert "odds ratio =" not in text
    assert text.splitlines()[2].split()[-2:] == ["<11", "15"]
    assert FOOTNOTE in text


# ---------------------------------------------------------------- all suppressed


def _all_suppressed() -> dict[str, dict[str, Any]]:
    none = moments(None, None, 0, 0)
    return {
        "summary": {
            "by": "sex",
            "strata": {s: {"variables": {"bmi": none, "ldl": none}} for s in "FMU"},
            "missing_values": SUMMARY_RULE,
            "threshold": T,
        },
        "correlation": {
            "variables": ["bmi", "sbp"],
            **dict.fromkeys(("n", "means", "covariance", "matrix")),
            "suppressed": True,
            "missing": {"bmi": None, "sbp": None},
            "missing_values": "complete-case",
            "threshold": T,
        },
        "histogram": {
            "variable": "bmi",
            "edges": [10.0, 20.0, 30.0],
            "counts": [None, None],
            "suppressed": [True, True],
            "outside": None,
            "missing": None,
            "threshold": T,
            "missing_values": "excluded",
        },
        "quantiles": {
            "variable": "bmi",
            "q": [0.5],
            "values": [None],
            "suppressed": [True],
            "notes": [None],
            "n": None,
            "missing": None,
            "resolution": 0.25,
            "range": [10.0, 80.0],
            "method": "grid",
            "missing_values": "excluded",
            "threshold": T,
        },
        "contingency": {
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
        },
        "ttest": {
            **TTEST,
            "groups": {"0": none, "1": none},
            **dict.fromkeys(("statistic", "df", "p_value", "estimate", "ci95")),
            "test_refused": "group(s) 0, 1 have fewer than 11 patients with a value",
        },
        "odds_ratio": {
            **ODDS,
            "table": {
                "exposed": {"outcome_1": None, "outcome_0": None},
                "unexposed": {"outcome_1": None, "outcome_0": None},
            },
            "missing": None,
            **dict.fromkeys(("odds_ratio", "ci95", "statistic", "p_value")),
            "estimate_refused": "cell(s) below the small-cell threshold",
        },
    }


@pytest.mark.parametrize("analysis", sorted(RENDERERS))
def test_all_suppressed_results_render(analysis: str) -> None:
    body = _all_suppressed()[analysis]
    text = render(body, analysis)
    assert "suppressed" in text
    assert f"small-cell threshold: {T}" in text
    assert "None" not in text  # no raw Python values leak into the table
    if analysis in ("contingency", "ttest", "odds_ratio"):
        assert "refused: " in text


def test_every_analysis_has_a_renderer() -> None:
    from smpc_ehr.analyses import ANALYSES
    from smpc_ehr.analyses.base import Analysis

    own = {name for name, a in ANALYSES.items() if type(a).render is not Analysis.render}
    assert set(RENDERERS) | own == set(ANALYSES) - {"count", "selftest"}
    assert set(_all_suppressed()) == set(RENDERERS)


# ---------------------------------------------------------------- fallbacks


def test_counts_render_as_before() -> None:
    body = {
        "by": ["sex"],
        "cells": [
            {"sex": "F", "count": 1317, "suppressed": False},
            {"sex": "U", "count": None, "suppressed": True},
        ],
        "threshold": T,
    }
    for analysis in (None, "count"):
        lines = render_result(job(body, "rare_disease_count"), analysis).splitlines()
        assert lines[0] == "rare_disease_count on 3 parties (a, b, c), backend mpyc, 1.23 s"
        assert lines[1].split() == ["sex", "patients"]
        assert lines[3].split() == ["F", "1317"]
        assert lines[4] == "U    suppressed (< 11)"
        assert lines[5] == "small-cell threshold: 11"
    single = render_result(job({"count": 42, "suppressed": False, "threshold": T}))
    assert single.splitlines()[1:] == ["patients: 42", "small-cell threshold: 11"]


def test_unknown_analysis_and_unexpected_shape_fall_back_to_key_value_lines() -> None:
    body = {"ok": True, "value": 3}
    assert render_result(job(body), "selftest").splitlines()[1:] == ["ok: True", "value: 3"]
    # A known analysis whose result lacks its fields is still printed, not lost.
    assert render_result(job(body), "histogram").splitlines()[1:] == ["ok: True", "value: 3"]


# ---------------------------------------------------------------- closed pipe


def test_closed_stdout_pipe_ends_quietly() -> None:
    read, write = os.pipe()
    os.close(read)  # the reader (e.g. `head -1`) is gone before anything is written
    try:
        done = subprocess.run(
            [sys.executable, "-m", "smpc_ehr", "protocol", "show", str(PROTOCOLS / "summary.toml")],
            cwd=ROOT,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert done.returncode == 141
    assert done.stderr == ""
