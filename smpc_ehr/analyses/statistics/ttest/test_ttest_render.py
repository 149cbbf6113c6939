"""Welch's t-test's terminal table: hand-built results of the shape finalize returns,
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
    assert "t = 17.12, df = 1,391, p < 1e-16" in lines
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


def test_all_suppressed_renders() -> None:
    none = moments(None, None, 0, 0)
    body = {
        **TTEST,
        "groups": {"0": none, "1": none},
        **dict.fromkeys(("statistic", "df", "p_value", "estimate", "ci95")),
        "test_refused": "group(s) 0, 1 have fewer than 11 patients with a value",
    }
    check_all_suppressed(render(body, "ttest"), refused=True)


def test_a_real_finalised_ttest_renders() -> None:
    params = bind("ttest", variable="hba1c", group="readmit_30d")
    opened = {
        "released": [1, 1],
        "missing_released": [1, 1],
        "shown": [1, 1],
        "n": [7132, 1059],
        "missing": [637, 94],
        "mean": [5.97333, 6.53059],
        "variance": [0.9776, 0.9774],
    }
    lines = render_finalised("ttest", opened, params).splitlines()
    assert lines[0] == "hba1c by readmit_30d"
    assert lines[3].split()[:3] == ["0", "7,132", "637"]
    assert any(line.startswith("t = 17.1") for line in lines)
    assert any(line.startswith("mean(1) - mean(0) = 0.5573 (95% CI") for line in lines)


def test_the_groups_columns_share_their_decimals() -> None:
    """Both groups' means (one variable, one unit) with one number of decimals: enough
    for 4 significant digits of each (5.973 needs 3, so 12.35 shows as 12.346)."""
    groups = {"0": moments(7132, 637, 5.97333, 0.98877), "1": moments(1059, 94, 12.3456, 10.5)}
    lines = render({**TTEST, "groups": groups}, "ttest").splitlines()
    assert lines[3].split() == ["0", "7,132", "637", "5.973", "0.9888", "0.01171"]
    assert lines[4].split() == ["1", "1,059", "94", "12.346", "10.5000", "0.32266"]
