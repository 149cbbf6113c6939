"""Helpers for the tests of differentially private cell counts (histogram, contingency,
odds ratio, quantiles): the noise every party draws, recorded, and the bound a noisy
cell keeps from the truth.

Recording `noise_share` (common/noise.py's one sampler) gives each party's share as
drawn, so a test can rebuild the released values exactly from the pooled plaintext and
the recorded noise, independently of the secure program; the bound checks the
statistical claim (each released value within z noise sd of the truth, failing falsely
with probability at most ALPHA per test).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

import smpc_ehr.analyses.common.noise as noise
from smpc_ehr.privacy.mechanism import plan_noise
from smpc_ehr.testing.federation import InProcessFederation

ALPHA = 1e-6
"""The false-failure rate of each test's statistical checks together."""
THRESHOLD = 11
PARTIES = 3
COLLUDERS = 1
"""The in-process federation: threshold 11, 3 parties on MPyC, (n - 1) // 2 colluders
tolerated."""


def record_noise(monkeypatch: pytest.MonkeyPatch) -> list[np.ndarray]:
    """Every share `noise_share` draws from now on (one per party and release), in
    the order drawn."""
    drawn: list[np.ndarray] = []
    real = noise.noise_share

    def recording(scale: float, size: int) -> Any:
        share = real(scale, size)
        drawn.append(np.asarray(share, dtype=np.int64))
        return share

    monkeypatch.setattr(noise, "noise_share", recording)
    return drawn


def total_noise(drawn: list[np.ndarray], cells: int) -> np.ndarray:
    """The released noise of one run of a one-release analysis: the sum of the
    parties' shares (and nothing was drawn but those)."""
    assert len(drawn) == PARTIES and all(len(share) == cells for share in drawn)
    return np.sum(drawn, axis=0)


def planned_sd(epsilon: float, cells: int) -> float:
    """The released noise sd of each of `cells` counts of L2 sensitivity 1 together."""
    plan = plan_noise(1, PARTIES, COLLUDERS, epsilon=epsilon, delta=noise.DELTA, dim=cells)
    return math.sqrt(plan.released_variance)


def z_bound(checks: int) -> float:
    """z such that `checks` two-sided normal checks all pass with probability at
    least 1 - ALPHA (Bonferroni)."""
    return float(stats.norm.isf(ALPHA / (2 * checks)))


def check_dp_block(result: dict[str, Any], epsilon: float, cells: int) -> float:
    """The result's "dp" block for one release of `cells` counts; its noise sd."""
    sd = planned_sd(epsilon, cells)
    assert result["dp"] == {
        "mechanism": "distributed discrete Gaussian",
        "epsilon": epsilon,
        "delta": noise.DELTA,
        "rho": result["dp"]["rho"],
        "noise_sd": sd,
        "colluders": COLLUDERS,
        "max_sites": 1,
    }
    return sd


def forbid_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any draw of noise fail (an exact run must draw none)."""

    def forbidden(scale: float, size: int) -> Any:
        raise AssertionError("an exact run drew noise")

    monkeypatch.setattr(noise, "noise_share", forbidden)


def check_noisy_cells(
    released: list[int | None], exact: np.ndarray, noise: np.ndarray, sd: float, z: float
) -> None:
    """Each released cell is the truth plus its noise, or None where that is below the
    threshold (suppression on the noisy count), and within z sd of the truth."""
    noisy = np.asarray(exact) + noise
    assert released == [int(n) if n >= THRESHOLD else None for n in noisy]
    for value, true in zip(released, exact, strict=True):
        assert value is None or abs(value - true) <= z * sd, (value, true, sd)


def noisy_run(
    fed: InProcessFederation,
    template: Path,
    params: dict[str, Any],
    drawn: list[np.ndarray],
    epsilon: float,
    cells: int,
) -> tuple[dict[str, Any], np.ndarray, float]:
    """One run with `epsilon` of a one-release analysis of `cells` counts, `drawn`
    recording: its result (its "dp" block checked), the noise added to each cell and
    the noise sd."""
    drawn.clear()
    result = fed.run(template, {**params, "epsilon": str(epsilon)}).result
    return result, total_noise(drawn, cells), check_dp_block(result, epsilon, cells)
