"""The differentially private k-means (`epsilon`, dp.py) on the in-process federation,
against a plaintext DP-free Lloyd run written here (numpy on the pooled rows).

Data: the 3 hospitals of `data3` (4,000 patients each) with two planted features, f1
and f2: three well-separated blobs (sd 3 around centres 60 apart, bounds 0..100, a few
values beyond the bounds to be clipped), every patient in one blob by its row number.
Every patient is then at least 8 sd from the boundary between two blobs' centroids,
so the noisy centroids (at most about 3 units off at epsilon 1) assign every patient
as the exact ones do, and a released centroid differs from the plaintext one only by
the last step's noise.

Tolerance. A cluster of n patients with mapped sums S and count n is released as
(S + e_s) / (n + e_c) (then mapped back by the half-width h = 50), where every e is the
released noise of sd sigma (`dp.noise_sd`, the same for counts and sums). With
|e| <= z sigma (z two-sided at ALPHA per value, so the whole check fails falsely with
probability at most k (1 + d) ALPHA) and |S / n| <= 1, the centroid is off by at most
h 2 z sigma / (n - z sigma) per coordinate (eps 1: about 2.7 units; eps 10: 0.34),
and its size by z sigma + 1/2 (rounding). The plaintext reference skips dp.py's
rounding of the mapped values to 2^-16, which moves a mean by at most 2^-17 h.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.analyses.base import JobSetting
from smpc_ehr.cli.render import render_result
from smpc_ehr.errors import TemplateError
from smpc_ehr.privacy.accountant import rho_for
from smpc_ehr.privacy.mechanism import plan_noise
from smpc_ehr.testing.federation import InProcessFederation
from tests._inprocess import CheckedFederation
from tests._render import bind, job

TEMPLATE = Path(__file__).resolve().parents[4] / "protocols" / "kmeans.toml"
THRESHOLD = 11
ALPHA = 1e-6
Z = float(stats.norm.isf(ALPHA / 2))
CENTRES = np.array([[20.0, 20.0], [80.0, 20.0], [50.0, 80.0]])
SPREAD = 3.0
LOW, HIGH = 0.0, 100.0
HALF = (HIGH - LOW) / 2
BOUNDS = "0,100,0,100"
INIT = np.array([[30.0, 30.0], [70.0, 30.0], [50.0, 70.0]])
STEPS = 5


@pytest.fixture(scope="module")
def blobs(inprocess: InProcessFederation) -> tuple[InProcessFederation, np.ndarray, np.ndarray]:
    """The federation with f1, f2 planted, its pooled rows (N x 2) and blob labels."""
    draw = np.random.default_rng(14)
    hospitals, rows, labels = [], [], []
    for hospital in inprocess.hospitals:
        n = len(hospital.data.patient_ids)
        label = np.arange(n) % 3
        x = CENTRES[label] + draw.normal(0.0, SPREAD, (n, 2))
        x[:3] = [[-40.0, 20.0], [20.0, 130.0], [80.0, -5.0]]  # beyond the bounds
        features = {**hospital.data.features, "f1": x[:, 0], "f2": x[:, 1]}
        hospitals.append(replace(hospital, data=replace(hospital.data, features=features)))
        rows.append(x)
        labels.append(label)
    return CheckedFederation(hospitals), np.concatenate(rows), np.concatenate(labels)


def mapped(x: np.ndarray) -> np.ndarray:
    """The rows clipped into the bounds and mapped onto [-1, 1]."""
    return np.clip((x - (LOW + HIGH) / 2) / HALF, -1.0, 1.0)


def lloyd(z: np.ndarray, init: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain Lloyd for a fixed number of steps: the last step's means and counts (a
    cluster with fewer than THRESHOLD patients keeps its centroid)."""
    centroids = init.copy()
    counts = np.zeros(len(init))
    for _ in range(steps):
        labels = ((z[:, None, :] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
        counts = np.bincount(labels, minlength=len(init)).astype(float)
        for c in range(len(init)):
            if counts[c] >= THRESHOLD:
                centroids[c] = z[labels == c].mean(axis=0)
    return centroids, counts


def run(fed: InProcessFederation, epsilon: float, **params: Any) -> dict[str, Any]:
    raw = {"features": "f1,f2", "k": 3, "bounds": BOUNDS, "epsilon": epsilon, **params}
    return fed.run(TEMPLATE, raw).result


def check_near(result: dict[str, Any], centroids: np.ndarray, counts: np.ndarray) -> None:
    """Released centroids (own units) and sizes within the module's noise bound of the
    mapped `centroids` and `counts`."""
    sigma = result["dp"]["noise_sd"]
    n = counts.min()
    assert n > 10 * Z * sigma, "clusters far larger than the noise"
    bound = HALF * 2 * Z * sigma / (n - Z * sigma)
    got = np.asarray(result["centroids"], dtype=float)
    want = centroids * HALF + (LOW + HIGH) / 2
    assert np.abs(got - want).max() <= bound, (got, want, bound)
    assert np.abs(np.asarray(result["sizes"]) - counts).max() <= Z * sigma + 0.5


def test_at_a_large_epsilon_it_is_plain_lloyd_from_the_seeded_start(
    blobs: tuple[InProcessFederation, np.ndarray, np.ndarray],
) -> None:
    fed, x, _ = blobs
    result = run(fed, 10.0, dp_steps=STEPS, seed=3)
    # The documented public start: uniform in the bounds box, from [seed, k, d].
    start = np.random.default_rng([3, 3, 2]).uniform(-1.0, 1.0, (3, 2))
    centroids, counts = lloyd(mapped(x), start, STEPS)
    check_near(result, centroids, counts)
    assert result["iterations"] == STEPS and result["converged"] is None
    assert result["n"] is None and result["inertia"] is None and result["missing"] is None
    plan = plan_noise((STEPS * 3) ** 0.5, 3, 1, rho=rho_for(10.0, 1e-6), dim=STEPS * 9)
    assert result["dp"]["noise_sd"] == pytest.approx(plan.released_variance**0.5, rel=1e-12)
    assert result["dp"]["rho"] == rho_for(10.0, 1e-6)


def test_at_epsilon_one_the_centroids_are_near_the_true_ones_and_noisy(
    blobs: tuple[InProcessFederation, np.ndarray, np.ndarray],
) -> None:
    fed, x, labels = blobs
    z = mapped(x)
    truth = np.array([z[labels == c].mean(axis=0) for c in range(3)])
    sizes = np.bincount(labels).astype(float)
    init = ",".join(f"{v:g}" for v in INIT.ravel())
    first, second = (run(fed, 1.0, init=init, standardize=no) for no in ("no", "yes"))
    for result in (first, second):
        check_near(result, truth, sizes)
        assert result["suppressed_clusters"] == []
    assert first["centroids"] != second["centroids"] and first["sizes"] != second["sizes"]


def test_a_cluster_whose_noisy_size_is_small_is_suppressed(
    blobs: tuple[InProcessFederation, np.ndarray, np.ndarray],
) -> None:
    """A fourth start at (100, 100), nearer to no patient than another start: its count
    is 0, and its noisy count (sd about 1.3 for one step at epsilon 10) reaches the
    threshold with probability below 1e-16; it is hidden (size and centroid)."""
    fed, _, _ = blobs
    init = ",".join(f"{v:g}" for v in [*INIT.ravel(), 100.0, 100.0])
    result = run(fed, 10.0, k=4, init=init, dp_steps=1)
    assert result["dp"]["noise_sd"] < 1.5
    assert result["suppressed_clusters"] == [3]
    assert result["sizes"][3] is None and result["centroids"][3] is None
    assert all(size > 3000 for size in result["sizes"][:3])
    assert "noisy size is below 11" in result["notes"][1]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"features": "f1,f2", "k": 3}, "needs 'bounds'"),
        ({"features": "f1,f2", "k": 3, "bounds": "0,100"}, "2 variable"),
        ({"features": "bmi", "k": 2, "bounds": "15,60", "mode": "full"}, "no differentially"),
        ({"features": "bmi", "k": 2, "bounds": "15,60", "profile": "sbp"}, "profile is not"),
    ],
)
def test_what_a_dp_run_cannot_do_is_refused(
    inprocess: InProcessFederation, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        inprocess.run(TEMPLATE, {**params, "epsilon": 1.0}, backend="crypten")


def test_a_finalised_dp_result_renders_its_noise() -> None:
    params = bind("kmeans", features="bmi,sbp", k="2", epsilon="1", bounds="15,60,80,220")
    kmeans = ANALYSES["kmeans"]
    spec = kmeans.outputs(params)
    named = {out.name: np.zeros(out.shape) for out in spec}
    named.update(
        iterations=np.array([5.0]),
        shown=np.array([1.0, 0.0]),
        sizes=np.array([812.0, 0.0]),
        centroids=np.array([[24.5, 121.0], [0.0, 0.0]]),
    )
    flat = [float(v) for out in spec for v in np.ravel(named[out.name])]
    result = kmeans.release(flat, params, THRESHOLD, JobSetting("mpyc", 3))
    assert result["sizes"] == [812, None] and result["converged"] is None
    text = render_result(job(result), "kmeans", strict=True)
    assert "5 Lloyd steps, a fixed number (differentially private)" in text
    assert "noisy size is below 11" in text
    assert "left out (missing values): NA," in text  # not released with epsilon
    assert text.splitlines()[-1].startswith("differentially private, epsilon = 1 at delta")
