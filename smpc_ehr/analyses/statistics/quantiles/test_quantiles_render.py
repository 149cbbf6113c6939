"""The quantiles's terminal table: hand-built results of the shape finalize returns,
and a real finalised result rendered without the generic fallback."""

from __future__ import annotations

from tests._render import (
    T,
    bind,
    check_all_suppressed,
    render,
    render_finalised,
)


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


def test_all_suppressed_renders() -> None:
    body = {
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
    }
    check_all_suppressed(render(body, "quantiles"), refused=False)


def test_a_real_finalised_quantiles_renders() -> None:
    params = bind("quantiles", variable="bmi", q="0.1,0.5,0.9", low="10", high="40", step="0.5")
    opened = {
        "released": [1, 1, 1],
        "indices": [0, 33, 61],  # below low, a grid point, above high (60 steps)
        "counts_released": [1, 1],
        "counts": [500, 20],
    }
    text = render_finalised("quantiles", opened, params)
    assert "bmi: n = 500 patients with a value, missing: 20" in text
    rows = {line.split()[0]: line.split(maxsplit=1)[1] for line in text.splitlines()[3:6]}
    assert rows == {"0.1": "<= 10", "0.5": "26.5", "0.9": "> 40"}
