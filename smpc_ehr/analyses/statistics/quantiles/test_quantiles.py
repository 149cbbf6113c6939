"""The quantiles over real federations (3 and 5 parties, mutual TLS) on both backends,
against numpy/scipy on the pooled plaintext files (tests/_stats_truth.py); tolerances
and the job cache in tests/_stats_jobs.py. The same checks run on the in-process
federation (tests/_inprocess.py), the fast tier."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from smpc_ehr.client import Client
from smpc_ehr.errors import TemplateError
from smpc_ehr.local.federation import LocalFederation
from tests import _stats_truth as truth
from tests._inprocess import InProcessCombo
from tests._stats_jobs import (
    BMI_Q,
    SBP_Q,
    THRESHOLD,
    Combo,
    cohort_args,
    run_fed3,
    template,
)


def check_quantiles(result: dict, params: dict, t: dict) -> list[str]:
    """Each q against numpy's inverted_cdf quantile; returns what each q exercised."""
    low, high, step = params["low"], params["high"], params["step"]
    n = t["n"]
    assert result["n"] == (n if n >= THRESHOLD else None)
    assert result["q"] == list(params["q"])
    assert result["resolution"] == step and result["range"] == [low, high]
    seen = []
    for i, q in enumerate(params["q"]):
        p = round(q * 10_000)
        if min(p, 10_000 - p) * n < 10_000 * THRESHOLD:  # fewer than 11 on one side
            assert result["values"][i] is None and result["suppressed"][i] is True, q
            assert result["notes"][i] is None
            seen.append("suppressed")
            continue
        assert result["suppressed"][i] is False, q
        exact = t["values"][i]
        value, note = result["values"][i], result["notes"][i]
        if exact <= low:
            assert value is None and note.startswith("below_range"), (q, exact, note)
            seen.append("below")
        elif exact > high:
            assert value is None and note.startswith("above_range"), (q, exact, note)
            seen.append("above")
        else:
            grid_point = low + math.ceil((exact - low) / step - 1e-9) * step
            assert note is None
            assert abs(value - grid_point) <= 1e-9, (q, value, grid_point)
            assert -1e-9 <= value - exact < step, (q, value, exact)
            seen.append("on grid" if abs(value - exact) <= 1e-9 else "rounded up")
    return seen


@pytest.mark.parametrize(
    ("key", "params"), [("quantiles_bmi", BMI_Q), ("quantiles_sbp", SBP_Q)], ids=["bmi", "sbp"]
)
def test_quantiles(combo: Combo, key: str, params: dict) -> None:
    result = combo.run(key)
    t = truth.quantiles(truth.cohort_frame(combo.data), params["variable"], params["q"])
    seen = check_quantiles(result, params, t)
    # The values' resolution is half the step here (bmi: 0.1, step 0.2; sbp: whole numbers,
    # step 2), so a released quantile is numpy's to float rounding or half a step up.
    for value, exact in zip(result["values"], t["values"], strict=True):
        assert value is None or abs(value - exact) <= params["step"] / 2 + 1e-9, (value, exact)
    if key == "quantiles_bmi":
        assert set(seen) == {"on grid", "rounded up"}
    else:
        assert seen[0] == "below" and seen[-1] == "above" and "rounded up" in seen


def test_tail_quantiles_of_small_cohort_are_suppressed(fed3: LocalFederation, data3: Path) -> None:
    # 61 patients with a bmi in fed3: q*n < 11 for q <= 0.1, (1-q)*n < 11 for q >= 0.9.
    cohort = {"codes": "E66", "age": "18-30"}
    params = {"variable": "bmi", "q": [0.05, 0.1, 0.2, 0.5, 0.8, 0.9, 0.95]}
    params |= {"low": 15, "high": 40, "step": 0.5}
    result = run_fed3(fed3, "quantiles", {**params, **cohort})
    t = truth.quantiles(truth.cohort_frame(data3, **cohort_args(cohort)), "bmi", params["q"])
    assert 2 * THRESHOLD <= t["n"] < 10 * THRESHOLD, t["n"]
    seen = check_quantiles(result, params, t)
    assert seen[0] == seen[1] == seen[-2] == seen[-1] == "suppressed", seen
    assert "suppressed" not in seen[2:5], seen


@pytest.mark.parametrize("q", [0.0, 1.0])
def test_quantile_q_outside_bounds_is_refused(fed3: LocalFederation, q: float) -> None:
    params = {"variable": "bmi", "q": [q, 0.5], "low": 10, "high": 50, "step": 0.1}
    with Client.from_state(fed3.state_dir) as client, pytest.raises(TemplateError) as err:
        client.submit(template("quantiles"), params)
    message = str(err.value)
    assert "parameter 'q'" in message and "out of bounds" in message, message
    assert "0.01" in message and "0.99" in message


# ------------------------------------------------------------------ in process (fast tier)


@pytest.mark.parametrize(
    ("key", "params"), [("quantiles_bmi", BMI_Q), ("quantiles_sbp", SBP_Q)], ids=["bmi", "sbp"]
)
def test_quantiles_in_process(inprocess_combo: InProcessCombo, key: str, params: dict) -> None:
    test_quantiles(inprocess_combo, key, params)
