"""The distributed discrete Gaussian mechanism (Kairouz, Liu, Steinke, ICML 2021):
calibration and accounting in zero-concentrated DP (rho-zCDP).

Each of n parties adds an independent discrete Gaussian N_Z(0, s^2) to each released
integer. Up to t colluding parties know (and can subtract) their own shares, so the
guarantee rests on the m = n - t honest shares only: their sum is close to N_Z(0,
m s^2), and Proposition 14 of the paper (its third bound) gives rho-zCDP with

    rho = (Delta_2 / (sqrt(m) s) + sqrt(d) tau)^2 / 2,
    tau = 10 sum_{k=1}^{m-1} exp(-2 pi^2 s^2 k / (k + 1)),

for a d-dimensional release of L2 sensitivity Delta_2 (tau = 0 when m = 1: one share
is an exact discrete Gaussian; tau is negligible once s >= 1). The released value
carries all n shares, so its noise variance is n Var(N_Z(0, s^2)) <= n s^2.

Accounting is in floating point (as every accountant is); only the sampling must be
exact. rho converts to (epsilon, delta) with OpenDP's tight zCDP conversion (Canonne,
Kamath, Steinke 2020).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from opendp.mod import enable_features  # not opendp.prelude: it imports sklearn and polars

from smpc_ehr.privacy.accountant import rho_for

enable_features("contrib")

MIN_SHARE_SCALE = 0.5
"""Proposition 14 holds for shares of scale at least 1/2."""


def tolerated_colluders(backend: str, parties: int) -> int:
    """t, the most parties that may collude without learning the inputs: MPyC's Shamir
    threshold (n-1)//2; CrypTen's additive sharing, n-1. The noise is calibrated to
    stay private against the same coalitions."""
    if parties < 1:
        raise ValueError(f"need at least one party, not {parties}")
    if backend == "mpyc":
        return (parties - 1) // 2
    if backend == "crypten":
        return parties - 1
    raise ValueError(f"no collusion threshold known for backend {backend!r}")


def tau(share_scale: float, honest: int) -> float:
    """The distance of a sum of `honest` discrete Gaussian shares from one discrete
    Gaussian, as Proposition 14 charges it (0 for a single share)."""
    s2 = share_scale * share_scale
    return 10 * sum(math.exp(-2 * math.pi**2 * s2 * k / (k + 1)) for k in range(1, honest))


def rho_of(sensitivity: float, share_scale: float, honest: int, dim: int = 1) -> float:
    """The zCDP rho of releasing a d-dim sum of L2 sensitivity `sensitivity` with
    `honest` independent N_Z(0, share_scale^2) shares nobody but their owner knows."""
    if honest < 1:
        raise ValueError("the noise needs at least one honest party")
    if share_scale < MIN_SHARE_SCALE:
        raise ValueError(f"share scale {share_scale} below {MIN_SHARE_SCALE}")
    root = sensitivity / (math.sqrt(honest) * share_scale) + math.sqrt(dim) * tau(
        share_scale, honest
    )
    return root * root / 2


def discrete_gaussian_variance(scale: float) -> float:
    """Var(N_Z(0, scale^2)), summed over the support (slightly below scale^2)."""
    s2 = scale * scale
    ks = range(1, int(40 * scale) + 2)  # the tail beyond 40 scales is below 1e-300
    weights = [math.exp(-k * k / (2 * s2)) for k in ks]
    second = sum(k * k * w for k, w in zip(ks, weights, strict=True))
    return 2 * second / (1 + 2 * sum(weights))


@dataclass(frozen=True)
class NoisePlan:
    """What each party adds and what the release then carries."""

    share_scale: float
    """s: each party's share is N_Z(0, s^2), per released integer."""
    parties: int
    honest: int
    """n - t: the shares the guarantee rests on."""
    rho: float
    """The rho-zCDP the release costs (at most the target)."""
    released_variance: float
    """n Var(N_Z(0, s^2)): the noise variance of each released integer."""


def plan_noise(
    sensitivity: float,
    parties: int,
    colluders: int,
    *,
    rho: float | None = None,
    epsilon: float | None = None,
    delta: float | None = None,
    dim: int = 1,
) -> NoisePlan:
    """Each party's share scale for a release of L2 `sensitivity` at the target rho (or
    (epsilon, delta), converted), private against any `colluders` parties.

    The scale starts at the one a single Gaussian of total variance would need,
    sensitivity / sqrt(2 rho m), and grows by bisection until Proposition 14's rho,
    tau included, is within the target."""
    if rho is None:
        if epsilon is None or delta is None:
            raise ValueError("give rho, or epsilon and delta")
        rho = rho_for(epsilon, delta)
    if rho <= 0 or sensitivity <= 0:
        raise ValueError(f"need rho > 0 and sensitivity > 0, not {rho}, {sensitivity}")
    if not 0 <= colluders < parties:
        raise ValueError(f"colluders must be in [0, {parties}), not {colluders}")
    honest = parties - colluders
    low = max(sensitivity / math.sqrt(2 * rho * honest), MIN_SHARE_SCALE)
    high = low
    while rho_of(sensitivity, high, honest, dim) > rho:
        high *= 2
    if high > low:
        for _ in range(60):
            mid = (low + high) / 2
            low, high = (low, mid) if rho_of(sensitivity, mid, honest, dim) <= rho else (mid, high)
    return NoisePlan(
        share_scale=high,
        parties=parties,
        honest=honest,
        rho=rho_of(sensitivity, high, honest, dim),
        released_variance=parties * discrete_gaussian_variance(high),
    )
