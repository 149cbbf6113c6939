"""The odds ratio's terminal table: hand-built results of the shape finalize returns,
and a real finalised result rendered without the generic fallback."""

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


def test_all_suppressed_renders() -> None:
    body = {
        **ODDS,
        "table": {
            "exposed": {"outcome_1": None, "outcome_0": None},
            "unexposed": {"outcome_1": None, "outcome_0": None},
        },
        "missing": None,
        **dict.fromkeys(("odds_ratio", "ci95", "statistic", "p_value")),
        "estimate_refused": "cell(s) below the small-cell threshold",
    }
    check_all_suppressed(render(body, "odds_ratio"), refused=True)


def test_a_real_finalised_odds_ratio_renders() -> None:
    params = bind("odds_ratio", exposure="condition", outcome="readmit_30d", condition_codes="E11")
    text = render_finalised("odds_ratio", released_counts([504, 1967, 649, 5802, 78]), params)
    lines = text.splitlines()
    assert lines[2].split() == ["condition", "=", "1", "504", "1,967"]
    assert "odds ratio = 2.291 (95% CI 2.017 to 2.601)" in text and "missing: 78" in lines
