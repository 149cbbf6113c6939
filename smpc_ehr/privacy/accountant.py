"""The privacy accountant: composition in zero-concentrated DP (zCDP), shown as (epsilon, delta).

Why zCDP: privacy losses stated as rho add exactly under composition (Bun and Steinke
2016, Lemma 2.3), the Gaussian-type noise the MPC mechanisms add (distributed discrete
Gaussian, Skellam) is analysed in it, and converting the *total* rho to (epsilon, delta)
once is much tighter than adding the epsilons of the queries.

The conversion is the tight one of Canonne, Kamath and Steinke 2020 ("The Discrete
Gaussian for Differential Privacy", Proposition 12 / Corollary 13): rho-zCDP implies
(epsilon, delta)-DP with

    epsilon = inf over a > 1 of  a rho + (ln(1/delta) + (a - 1) ln(1 - 1/a) - ln a) / (a - 1),

which is below the textbook rho + 2 sqrt(rho ln(1/delta)). We take it from OpenDP's
maintained `make_zCDP_to_approxDP` rather than writing our own optimiser; the tests
check it against the formula above, computed independently.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

_BISECTION_STEPS = 80
"""Halvings of [0, epsilon] when inverting the conversion: far below any figure shown."""


@functools.cache
def _zcdp_to_approx() -> Any:
    """OpenDP's zCDP -> approximate-DP cast of a Gaussian of scale 1, whose rho at
    sensitivity d is d^2 / 2: a privacy profile for any rho. Built on first use (OpenDP
    loads a native library, and its "contrib" feature flag is process-wide)."""
    from opendp.combinators import make_zCDP_to_approxDP
    from opendp.domains import atom_domain
    from opendp.measurements import make_gaussian
    from opendp.metrics import absolute_distance
    from opendp.mod import enable_features

    enable_features("contrib")
    gaussian = make_gaussian(atom_domain(T=float, nan=False), absolute_distance(T=float), scale=1.0)
    return make_zCDP_to_approxDP(gaussian)


def check_delta(delta: float) -> float:
    """`delta` if it is a usable delta (0 < delta < 1), else ValueError."""
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
        raise ValueError(f"delta must be a number strictly between 0 and 1, got {delta!r}")
    return float(delta)


def _check_rho(rho: float) -> float:
    if isinstance(rho, bool) or not isinstance(rho, int | float) or not 0 <= rho < math.inf:
        raise ValueError(f"rho must be a finite number >= 0, got {rho!r}")
    return float(rho)


def epsilon_for(rho: float, delta: float) -> float:
    """The epsilon of rho-zCDP at `delta` (Canonne-Kamath-Steinke, via OpenDP)."""
    rho = _check_rho(rho)
    delta = check_delta(delta)
    if rho == 0:
        return 0.0
    # rho = d^2 / 2; nextafter keeps the rounding of sqrt from understating rho.
    sensitivity = math.nextafter(math.sqrt(2 * rho), math.inf)
    return float(_zcdp_to_approx().map(sensitivity).epsilon(delta))


@functools.lru_cache(maxsize=256)
def rho_for(epsilon: float, delta: float) -> float:
    """The largest rho (to within float bisection, from below) whose epsilon at `delta`
    is at most `epsilon`: what a query asking for (epsilon, delta) may spend, and what a
    budget of epsilon at delta holds. Never more: the result satisfies
    epsilon_for(result, delta) <= epsilon."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise ValueError(f"epsilon must be a number, got {epsilon!r}")
    if not 0 < epsilon < math.inf:
        raise ValueError(f"epsilon must be finite and > 0, got {epsilon!r}")
    delta = check_delta(delta)
    low, high = 0.0, float(epsilon)  # epsilon_for(rho) > rho, so rho = epsilon is too much
    for _ in range(_BISECTION_STEPS):
        middle = (low + high) / 2
        if epsilon_for(middle, delta) <= epsilon:
            low = middle
        else:
            high = middle
    return low


@dataclass(frozen=True)
class Charge:
    """What one query spends: `rho` is what the ledger adds up; `epsilon` and `delta`
    are what the analyst asked for (None when the query was stated as rho), kept for
    display only."""

    rho: float
    epsilon: float | None = None
    delta: float | None = None

    def __post_init__(self) -> None:
        _check_rho(self.rho)

    @classmethod
    def of_rho(cls, rho: float) -> Charge:
        """A query stated in zCDP."""
        return cls(_check_rho(rho))

    @classmethod
    def of_epsilon(cls, epsilon: float, delta: float) -> Charge:
        """A query stated as (epsilon, delta): its mechanism is calibrated to, and charged,
        the rho of `rho_for(epsilon, delta)`."""
        return cls(rho_for(epsilon, delta), float(epsilon), float(delta))

    def describe(self) -> str:
        """How the charge reads in a message."""
        if self.epsilon is None:
            return f"rho = {self.rho:.4g}"
        return f"epsilon = {self.epsilon:g} at delta = {self.delta:g} (rho = {self.rho:.4g})"
