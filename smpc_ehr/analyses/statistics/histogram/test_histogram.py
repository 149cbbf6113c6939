"""The histogram over real federations (3 and 5 parties, mutual TLS) on both backends,
against numpy/scipy on the pooled plaintext files (tests/_stats_truth.py); tolerances
and the job cache in tests/_stats_jobs.py. The same checks run on the in-process
federation (tests/_inprocess.py), the fast tier."""

from __future__ import annotations

import pytest

from smpc_ehr.client import Client, JobFailed
from smpc_ehr.local.federation import LocalFederation
from tests import _stats_truth as truth
from tests._inprocess import InProcessCombo
from tests._stats_jobs import (
    BMI_EDGES,
    THRESHOLD,
    Combo,
    released_or_none,
    template,
)


def test_histogram(combo: Combo) -> None:
    result = combo.run("histogram")
    t = truth.histogram(truth.cohort_frame(combo.data), "bmi", BMI_EDGES)
    assert result["edges"] == [float(e) for e in BMI_EDGES]
    assert result["counts"] == [released_or_none(c) for c in t["counts"]]
    assert result["suppressed"] == [c < THRESHOLD for c in t["counts"]]
    assert result["outside"] == released_or_none(t["outside"])
    assert result["missing"] == released_or_none(t["missing"])
    assert t["outside"] > 0 and any(result["suppressed"]) and not all(result["suppressed"])
    assert "total" not in result and "n" not in result


def test_decreasing_histogram_edges_are_refused(fed3: LocalFederation) -> None:
    with Client.from_state(fed3.state_dir) as client, pytest.raises(JobFailed) as err:
        client.run(template("histogram"), {"variable": "bmi", "edges": [20, 30, 25, 40]})
    message = str(err.value)
    assert "'edges'" in message and "strictly increasing" in message, message


# ------------------------------------------------------------------ in process (fast tier)


def test_histogram_in_process(inprocess_combo: InProcessCombo) -> None:
    test_histogram(inprocess_combo)
