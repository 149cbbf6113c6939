"""The histogram's terminal table: hand-built results of the shape finalize returns,
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


def test_all_suppressed_renders() -> None:
    body = {
        "variable": "bmi",
        "edges": [10.0, 20.0, 30.0],
        "counts": [None, None],
        "suppressed": [True, True],
        "outside": None,
        "missing": None,
        "threshold": T,
        "missing_values": "excluded",
    }
    check_all_suppressed(render(body, "histogram"), refused=False)


def test_a_real_finalised_histogram_renders() -> None:
    params = bind("histogram", variable="bmi", edges="10,20,30")
    text = render_finalised("histogram", released_counts([120, 5, 30, 12]), params)
    lines = text.splitlines()
    assert lines[2].split() == ["[10,", "20)", "120", "#" * 40]
    assert lines[3].split() == ["[20,", "30]", "<11"]
    assert "outside [10, 30]: 30" in lines and "missing: 12" in lines
