"""The odds ratio over real federations (3 and 5 parties, mutual TLS) on both backends,
against numpy/scipy on the pooled plaintext files (tests/_stats_truth.py); tolerances
and the job cache in tests/_stats_jobs.py. The same checks run on the in-process
federation (tests/_inprocess.py), the fast tier."""

from __future__ import annotations

from tests import _stats_truth as truth
from tests._inprocess import InProcessCombo
from tests._stats_jobs import (
    SAME,
    THRESHOLD,
    Combo,
    rel_close,
    released_or_none,
)


def test_odds_ratio(combo: Combo) -> None:
    result = combo.run("odds_ratio")
    frame = truth.cohort_frame(combo.data, condition_codes="E11")
    t = truth.table(frame, "condition", "readmit_30d")
    (d, c), (b, a) = t["counts"]  # rows condition 0, 1; columns readmit 0, 1
    assert min(a, b, c, d) >= THRESHOLD
    assert result["table"] == {
        "exposed": {"outcome_1": a, "outcome_0": b},
        "unexposed": {"outcome_1": c, "outcome_0": d},
    }
    assert result["suppressed"] == {
        "exposed": {"outcome_1": False, "outcome_0": False},
        "unexposed": {"outcome_1": False, "outcome_0": False},
    }
    assert result["missing"] == released_or_none(t["missing"])
    assert result["estimate_refused"] is None
    w = truth.woolf(a, b, c, d)
    for key in ("odds_ratio", "statistic", "p_value"):
        assert rel_close(result[key], w[key], SAME), (key, result[key], w[key])
    for got, want in zip(result["ci95"], w["ci95"], strict=True):
        assert rel_close(got, want, SAME)
    assert result["ci95"][0] < result["odds_ratio"] < result["ci95"][1]


# ------------------------------------------------------------------ in process (fast tier)


def test_odds_ratio_in_process(inprocess_combo: InProcessCombo) -> None:
    test_odds_ratio(inprocess_combo)
