"""The differentially private quantiles (`epsilon`) on the in-process federation: with
the noise the parties drew (recorded), every released value is rebuilt here from numpy
on the pooled plaintext (the grid cells' counts plus the noise, cumulated, and each
quantile read off as the number of grid points whose noisy count stays below q n~);
each quantile lies where its noise allows (z noise sd, tests/_dp_cells.py: ALPHA =
1e-6 per test); two runs differ; an exact run draws no noise."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from smpc_ehr.analyses.statistics.quantiles.analysis import DP_METHOD
from smpc_ehr.testing.federation import InProcessFederation
from tests import _stats_truth as truth
from tests._dp_cells import (
    THRESHOLD,
    forbid_noise,
    noisy_run,
    record_noise,
    z_bound,
)
from tests._render import render
from tests._stats_jobs import BMI_Q, template

QUANTILES = template("quantiles")
EPSILON = 1.0
LOW, HIGH, STEP = BMI_Q["low"], BMI_Q["high"], BMI_Q["step"]
POINTS = round((HIGH - LOW) / STEP) + 1
"""The grid points g_0..g_B; the cells are (-inf, g_0], ..., (g_B, inf) and missing."""


def grid_truth(data: Path) -> tuple[np.ndarray, np.ndarray]:
    """#(x <= g_k) per grid point, and the cells: per grid cell, then the missing."""
    values = truth.cohort_frame(data)["bmi"].to_numpy(dtype=float)
    known = values[~np.isnan(values)]
    points = np.round(LOW + STEP * np.arange(POINTS), 10)
    cum = np.array([np.count_nonzero(known <= g + 1e-9) for g in points])
    cells = [*np.diff(cum, prepend=0), len(known) - cum[-1], len(values) - len(known)]
    return cum, np.array(cells)


def test_dp_quantiles_are_the_noisy_histograms(
    inprocess: InProcessFederation, data3: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cum, cells = grid_truth(data3)
    n = int(cells[:-1].sum())
    qs = BMI_Q["q"]
    z = z_bound(2 * len(qs) * POINTS)  # two runs
    drawn = record_noise(monkeypatch)
    noises = []
    for _ in range(2):
        result, noise, sd = noisy_run(inprocess, QUANTILES, BMI_Q, drawn, EPSILON, len(cells))
        noisy = cells + noise
        noisy_cum = np.cumsum(noisy[:-1])
        noisy_n = int(noisy_cum[-1])
        assert result["n"] == noisy_n and result["missing"] == noisy[-1] >= THRESHOLD
        assert result["n_noise_sd"] == pytest.approx(math.sqrt(POINTS + 1) * sd, rel=1e-12)
        assert result["method"] == DP_METHOD and result["suppressed"] == [False] * len(qs)
        for i, q in enumerate(qs):
            p = round(q * 10_000)
            index = int(np.count_nonzero(10_000 * noisy_cum[:POINTS] < p * noisy_n))
            value, note = result["values"][i], result["notes"][i]
            if index == 0:
                assert value is None and note.startswith("below_range")
            elif index == POINTS:
                assert value is None and note.startswith("above_range")
            else:
                assert note is None and value == round(LOW + index * STEP, 10)
            # The statistical claim: e_k = (C~_k - C_k) - q (n~ - n) has sd
            # sd sqrt((k + 1)(1 - q)^2 + (B + 1 - k) q^2); where |e_k| <= z sd_k, every
            # k with C_k < q n - z sd_k is counted and none with C_k >= q n + z sd_k.
            k = np.arange(POINTS)
            spread = z * sd * np.sqrt((k + 1) * (1 - q) ** 2 + (POINTS - k) * q**2)
            gap = cum - q * n
            assert np.count_nonzero(gap < -spread) <= index, (q, index)
            assert index <= POINTS - np.count_nonzero(gap >= spread), (q, index)
        noises.append(noise)
    assert np.any(noises[0] != noises[1]), "the noise must really be there"
    text = render(result, "quantiles")
    assert "n: noise sd" in text
    assert text.splitlines()[-1].startswith(f"differentially private, epsilon = {EPSILON:g}")


def test_exact_quantiles_draw_no_noise(
    inprocess: InProcessFederation, monkeypatch: pytest.MonkeyPatch
) -> None:
    forbid_noise(monkeypatch)
    result = inprocess.run(QUANTILES, BMI_Q).result
    assert "dp" not in result and "n_noise_sd" not in result and result["method"] != DP_METHOD
