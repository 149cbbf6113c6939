"""The joint summary over real federations (3 and 5 parties, mutual TLS) on both backends,
against numpy/scipy on the pooled plaintext files (tests/_stats_truth.py); tolerances
and the job cache in tests/_stats_jobs.py. The same checks run on the in-process
federation (tests/_inprocess.py), the fast tier."""

from __future__ import annotations

import pytest

from tests import _stats_truth as truth
from tests._inprocess import InProcessCombo
from tests._stats_jobs import (
    JOBS,
    Combo,
    check_moments,
    cohort_args,
)


@pytest.mark.parametrize("key", ["summary", "summary_sex", "summary_readmit"])
def test_summary(combo: Combo, key: str) -> None:
    params = JOBS[key][1]
    result = combo.run(key)
    variables = params["variables"].split(",")
    frame = truth.cohort_frame(combo.data, **cohort_args(params))
    by = params.get("by")
    expected = truth.summary(frame, variables, by)
    assert result["missing_values"] == "excluded variable by variable (available-case)"
    if by is None:
        assert set(result) == {"variables", "missing_values", "binary_rule", "threshold"}
        blocks = {"": result["variables"]}
    else:
        assert result["by"] == by
        assert list(result["strata"]) == list(truth.levels(by))
        blocks = {lvl: s["variables"] for lvl, s in result["strata"].items()}
    released = suppressed = 0
    for level, block in blocks.items():
        assert list(block) == variables
        for v in variables:
            check_moments(block[v], expected[level][v], combo.eps, (key, level, v))
            released += block[v]["n"] is not None
            suppressed += block[v]["missing"] is None
    assert released > 0
    if key == "summary_sex":
        # Sex U is rare: its missing counts are below the threshold and withheld.
        assert suppressed > 0


# ------------------------------------------------------------------ in process (fast tier)


@pytest.mark.parametrize("key", ["summary", "summary_sex", "summary_readmit"])
def test_summary_in_process(inprocess_combo: InProcessCombo, key: str) -> None:
    test_summary(inprocess_combo, key)
