"""The differentially private histogram (`epsilon`) on the in-process federation: each
released cell is the pooled plaintext's count plus the noise the parties drew (rebuilt
here from numpy and the recorded shares) and within z noise sd of the truth
(tests/_dp_cells.py: ALPHA = 1e-6 per test); suppression is decided on the noisy count;
two runs differ; an exact run draws no noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smpc_ehr.testing.federation import InProcessFederation
from tests import _stats_truth as truth
from tests._dp_cells import (
    check_noisy_cells,
    forbid_noise,
    noisy_run,
    record_noise,
    total_noise,
    z_bound,
)
from tests._render import render
from tests._stats_jobs import BMI_EDGES, THRESHOLD, template

HISTOGRAM = template("histogram")
EPSILON = 1.0


def released_cells(result: dict) -> list[int | None]:
    return [*result["counts"], result["outside"], result["missing"]]


def test_dp_histogram_is_the_truth_plus_the_noise(
    inprocess: InProcessFederation, data3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = truth.histogram(truth.cohort_frame(data3), "bmi", BMI_EDGES)
    exact = np.array([*t["counts"], t["outside"], t["missing"]])
    z = z_bound(2 * len(exact))  # two runs
    drawn = record_noise(monkeypatch)
    params = {"variable": "bmi", "edges": BMI_EDGES}
    runs = []
    for _ in range(2):
        result, noise, sd = noisy_run(inprocess, HISTOGRAM, params, drawn, EPSILON, len(exact))
        cells = released_cells(result)
        check_noisy_cells(cells, exact, noise, sd, z)
        assert result["suppressed"] == [n is None for n in result["counts"]]
        runs.append(cells)
    assert runs[0] != runs[1], "the noise must really be there"
    lines = render(result, "histogram").splitlines()
    assert lines[-1].startswith(f"differentially private, epsilon = {EPSILON:g} at delta")


def test_suppression_uses_the_noisy_count(
    inprocess: InProcessFederation, data3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 30 bins above every bmi (true counts 0) with noise sd ~100 (epsilon 0.05): a bin
    # is released with probability ~0.46, so all 30 fall on one side with p < 1e-7.
    edges = list(range(100, 131))
    assert truth.histogram(truth.cohort_frame(data3), "bmi", edges)["counts"] == [0] * 30
    drawn = record_noise(monkeypatch)
    params = {"variable": "bmi", "edges": edges, "epsilon": "0.05"}
    result = inprocess.run(HISTOGRAM, params).result
    noise = total_noise(drawn, len(edges) + 1)[:30]
    assert result["counts"] == [int(n) if n >= THRESHOLD else None for n in noise]
    assert any(result["suppressed"]) and not all(result["suppressed"])


def test_an_exact_histogram_draws_no_noise(
    inprocess: InProcessFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_noise(monkeypatch)
    result = inprocess.run(HISTOGRAM, {"variable": "bmi", "edges": BMI_EDGES}).result
    assert "dp" not in result
    assert "differentially" not in render(result, "histogram")
