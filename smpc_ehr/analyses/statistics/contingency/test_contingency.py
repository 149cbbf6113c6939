"""The contingency table and its chi-square test over real federations (3 and 5
parties, mutual TLS) on both backends, against numpy/scipy on the pooled plaintext
files (tests/_stats_truth.py); tolerances and the job cache in tests/_stats_jobs.py.
The same checks run on the in-process federation (tests/_inprocess.py), the fast tier."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from smpc_ehr.local.federation import LocalFederation
from tests import _stats_truth as truth
from tests._inprocess import InProcessCombo
from tests._stats_jobs import (
    SAME,
    THRESHOLD,
    Combo,
    assert_not_disclosed,
    rel_close,
    released_or_none,
    run_fed3,
)


def test_contingency_released_with_chi_square(combo: Combo) -> None:
    result = combo.run("contingency_condition")
    frame = truth.cohort_frame(combo.data, condition_codes="E11")
    t = truth.table(frame, "condition", "readmit_30d")
    table = np.asarray(t["counts"])
    assert result["row_levels"] == ["0", "1"] and result["col_levels"] == ["0", "1"]
    assert table.min() >= THRESHOLD, "the case must release every cell"
    assert result["counts"] == t["counts"]
    assert result["suppressed"] == [[False, False], [False, False]]
    assert result["missing"] == released_or_none(t["missing"])
    assert result["row_totals"] == table.sum(axis=1).tolist()
    assert result["col_totals"] == table.sum(axis=0).tolist()
    assert result["n"] == int(table.sum())
    assert result["test_refused"] is None
    chi = truth.chi_square(t["counts"])
    test = result["test"]
    assert test["df"] == chi["df"] == 1
    assert rel_close(test["statistic"], chi["statistic"], SAME)
    assert rel_close(test["p_value"], chi["p_value"], SAME)
    assert np.allclose(result["expected"], chi["expected"], rtol=SAME, atol=0)


def check_refused_table(result: dict, t: dict) -> None:
    """A table with a suppressed cell: released cells exact, no totals, no test."""
    counts = t["counts"]
    assert result["counts"] == [[released_or_none(c) for c in line] for line in counts]
    assert result["suppressed"] == [[c < THRESHOLD for c in line] for line in counts]
    assert result["missing"] == released_or_none(t["missing"])
    assert isinstance(result["test_refused"], str) and "threshold" in result["test_refused"]
    for key in ("row_totals", "col_totals", "n", "expected", "test"):
        assert result[key] is None, key


def test_contingency_with_small_cell_refuses_test(combo: Combo) -> None:
    result = combo.run("contingency_sex")
    t = truth.table(truth.cohort_frame(combo.data), "sex", "readmit_30d")
    assert result["row_levels"] == ["F", "M", "U"] and result["col_levels"] == ["0", "1"]
    assert t["counts"][2][1] < THRESHOLD, "sex U with readmission must be a small cell"
    check_refused_table(result, t)


def test_contingency_test_refused_for_suppressed_cell(fed3: LocalFederation, data3: Path) -> None:
    # U x readmitted is below the threshold: no totals (U's row total minus its released
    # cell would give it away), no expected counts, no test.
    result = run_fed3(fed3, "contingency", {"row": "sex", "col": "readmit_30d", "sex": "U"})
    t = truth.table(truth.cohort_frame(data3, sex="U"), "sex", "readmit_30d")
    assert t["counts"][2][1] < THRESHOLD <= t["counts"][2][0]
    check_refused_table(result, t)
    secrets = [float(t["counts"][2][1]), float(sum(t["counts"][2]))]
    allowed = {float(THRESHOLD), float(t["counts"][2][0])}
    assert_not_disclosed(result, secrets, allowed | {float(result["missing"] or 0)})


# ------------------------------------------------------------------ in process (fast tier)


def test_contingency_in_process(inprocess_combo: InProcessCombo) -> None:
    test_contingency_released_with_chi_square(inprocess_combo)
    test_contingency_with_small_cell_refuses_test(inprocess_combo)
