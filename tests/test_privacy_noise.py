"""The distributed noise (smpc_ehr/privacy): each party's exact discrete Gaussian share
and the calibration that keeps the release private against the backend's colluders.

The statistical checks use normal bounds at z = 5.33 (two-sided 1e-7 each); with the
few bounds here the false-failure rate of the file is below 1e-6."""

from __future__ import annotations

import math

import numpy as np
import opendp.prelude as dp
import pytest

from smpc_ehr.backend_names import BACKEND_NAMES
from smpc_ehr.privacy import sampling
from smpc_ehr.privacy.accountant import epsilon_for, rho_for
from smpc_ehr.privacy.mechanism import (
    discrete_gaussian_variance,
    plan_noise,
    rho_of,
    tolerated_colluders,
)
from smpc_ehr.privacy.sampling import noise_share

Z = 5.33  # P(|N(0,1)| > Z) < 1e-7
DRAWS = 20_000


def _moments(scale: float) -> tuple[float, float]:
    """Var and fourth moment of N_Z(0, scale^2), summed here independently of the code."""
    k = np.arange(-int(50 * scale) - 2, int(50 * scale) + 3, dtype=float)
    p = np.exp(-(k**2) / (2 * scale * scale))
    p /= p.sum()
    return float((p * k**2).sum()), float((p * k**4).sum())


def _check_mean_and_variance(x: np.ndarray, var: float, fourth: float) -> None:
    n = len(x)
    assert abs(x.mean()) <= Z * math.sqrt(var / n), x.mean()
    # the sample variance is asymptotically normal with variance (mu4 - var^2) / n
    assert abs(x.var(ddof=1) - var) <= Z * math.sqrt((fourth - var * var) / n), x.var()


@pytest.mark.parametrize("scale", [0.7, 3.0, 40.0])
def test_one_share_has_the_discrete_gaussians_mean_and_variance(scale: float) -> None:
    var, fourth = _moments(scale)
    assert discrete_gaussian_variance(scale) == pytest.approx(var, rel=1e-9)
    _check_mean_and_variance(noise_share(scale, DRAWS).astype(float), var, fourth)


def test_the_sum_of_the_parties_shares_has_the_released_variance() -> None:
    plan = plan_noise(1.0, 3, tolerated_colluders("mpyc", 3), epsilon=1.0, delta=1e-6)
    total = sum(noise_share(plan.share_scale, DRAWS).astype(float) for _ in range(3))
    var, fourth = _moments(plan.share_scale)
    # moments of a sum of 3 iid: var adds; 4th central moment = 3 mu4 + 3*2*var^2
    _check_mean_and_variance(total, 3 * var, 3 * fourth + 6 * var * var)
    assert plan.released_variance == pytest.approx(3 * var, rel=1e-9)


def test_collusion_thresholds_per_backend() -> None:
    assert {b: tolerated_colluders(b, 5) for b in BACKEND_NAMES} == {"mpyc": 2, "crypten": 4}
    assert tolerated_colluders("mpyc", 3) == 1
    with pytest.raises(ValueError):
        tolerated_colluders("plaintext", 3)


def _cks20_epsilon(rho: float, delta: float) -> float:
    """Canonne, Kamath, Steinke 2020, Corollary 13, minimised over a grid of orders."""
    alphas = 1 + np.geomspace(1e-4, 1e4, 200_000)
    eps = (
        alphas * rho
        + (np.log(1 / delta) + (alphas - 1) * np.log(1 - 1 / alphas)) / (alphas - 1)
        - np.log(alphas) / (alphas - 1)
    )
    return float(eps.min())


@pytest.mark.parametrize(("rho", "delta"), [(0.02, 1e-6), (0.5, 1e-6), (0.1, 1e-9)])
def test_the_zcdp_conversion_matches_an_independent_one(rho: float, delta: float) -> None:
    assert epsilon_for(rho, delta) == pytest.approx(_cks20_epsilon(rho, delta), rel=1e-3)
    assert epsilon_for(rho, delta) <= rho + 2 * math.sqrt(rho * math.log(1 / delta))
    assert rho_for(epsilon_for(rho, delta), delta) == pytest.approx(rho, rel=1e-6)


def test_one_honest_share_is_an_exact_discrete_gaussian() -> None:
    """CrypTen (t = n-1): the one honest share carries the whole noise; its rho is
    OpenDP's own for that scale, Delta^2 / (2 s^2), and the release carries n shares."""
    rho = rho_for(1.0, 1e-6)
    plan = plan_noise(2.0, 3, tolerated_colluders("crypten", 3), rho=rho)
    assert plan.honest == 1
    assert plan.share_scale == pytest.approx(2.0 / math.sqrt(2 * rho), rel=1e-9)
    space = dp.atom_domain(T="i64"), dp.absolute_distance(T="i64")
    opendp_rho = dp.m.make_gaussian(*space, scale=plan.share_scale).map(2)
    assert plan.rho == pytest.approx(opendp_rho, rel=1e-9)
    assert plan.rho <= rho


def test_shares_are_scaled_by_the_honest_parties() -> None:
    """MPyC, n = 5, t = 2: three honest shares carry the noise, so each has variance
    Delta^2 / (2 rho 3) (tau is negligible at these scales), and the release n of them."""
    rho, delta_2, dim = 0.05, 3.0, 4
    plan = plan_noise(delta_2, 5, tolerated_colluders("mpyc", 5), rho=rho, dim=dim)
    assert plan.honest == 3
    assert plan.share_scale**2 == pytest.approx(delta_2**2 / (2 * rho * 3), rel=1e-6)
    assert plan.rho <= rho
    assert rho_of(delta_2, plan.share_scale, 3, dim) == pytest.approx(rho, rel=1e-6)
    assert plan.released_variance == pytest.approx(5 * _moments(plan.share_scale)[0], rel=1e-9)


def test_tau_raises_the_scale_of_small_shares() -> None:
    """With shares near the minimum scale Proposition 14's tau term matters: the scale a
    single Gaussian would need is not enough, and the plan pays with a larger one."""
    honest, naive = 7, 0.6
    rho = 1 / (2 * honest * naive**2)  # what N_Z(0, 7 * 0.6^2) alone would cost
    assert rho_of(1.0, naive, honest, dim=10) > 1.5 * rho
    plan = plan_noise(1.0, honest, 0, rho=rho, dim=10)
    assert plan.share_scale > naive
    assert rho * (1 - 1e-6) <= plan.rho <= rho


def test_refusals() -> None:
    with pytest.raises(ValueError):
        rho_of(1.0, 0.4, 2)
    with pytest.raises(ValueError):
        plan_noise(1.0, 3, 3, rho=0.1)
    with pytest.raises(ValueError):
        plan_noise(1.0, 3, 1)
    with pytest.raises(ValueError):
        rho_for(1.0, 0.0)


def test_the_sampler_uses_no_numpy_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("numpy's generator was used")

    for name in ("default_rng", "normal", "randint", "random", "integers", "seed"):
        monkeypatch.setattr(np.random, name, refuse, raising=False)
    monkeypatch.setattr(np.random, "Generator", refuse)
    monkeypatch.setattr(np.random, "RandomState", refuse)
    assert len(sampling.noise_share(5.0, 100)) == 100


def test_two_draws_differ() -> None:
    """No seed: two shares at scale 100 over 64 cells coincide with probability < 1e-100."""
    assert not np.array_equal(noise_share(100.0, 64), noise_share(100.0, 64))
    assert noise_share(1.0, 0).shape == (0,)
