"""The logistic function 1 / (1 + e^-u) on secret values, as a piecewise polynomial.

Why this form: MPC has no cheap exp or division, and one polynomial over a wide range
is either inaccurate or overflows fixed point. By the symmetry sigma(u) = 1 - sigma(-u)
only |u| is approximated: one batch of comparisons gives the sign and, from u^2, the
segment of |u| between BREAKS; on each segment a Chebyshev-fitted polynomial of degree
DEGREE in the segment's own variable t in [-1, 1] (every coefficient below 1, so fixed
point keeps them); beyond the last break, 1.

Error bound: the approximation itself is within MAX_ERROR of the logistic function for
every real u (checked on a fine grid by test_sigmoid_unit.py); the backend adds its
product roundings (a few units of its fixed-point resolution, 2^-f). Cost per element:
one batch of comparisons and seven rounds of products on up to 2 x the elements.
"""

from __future__ import annotations

import itertools

import numpy as np

from smpc_ehr.securemath.ops import Secret, SecureOps

BREAKS = np.array([0.0, 4.0, 14.0])
"""Segments of |u|; beyond 14, 1 - sigma(14) ~ 8.3e-7 is dropped."""
DEGREE = 8
MAX_ERROR = 1.1e-5
"""The approximation's largest error over all reals (a test checks it is also tight)."""


def _logistic(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * u))  # = 1 / (1 + e^-u), without overflow


def _fit(low: float, high: float) -> np.ndarray:
    """Power-basis coefficients (in t = (2u - low - high) / (high - low)) of the
    degree-DEGREE Chebyshev fit of the logistic function on [low, high]."""
    u = np.linspace(low, high, 4001)
    t = (2 * u - low - high) / (high - low)
    chebyshev = np.polynomial.chebyshev.chebfit(t, _logistic(u), DEGREE)
    return np.asarray(np.polynomial.chebyshev.cheb2poly(chebyshev), dtype=float)


COEFFICIENTS = np.array([_fit(a, b) for a, b in itertools.pairwise(BREAKS)])
"""SEGMENTS x (DEGREE + 1): coefficient of t^i for each segment, lowest power first."""
SEGMENTS = len(BREAKS) - 1
_CENTRES = (BREAKS[:-1] + BREAKS[1:]) / 2
_HALF_WIDTHS = (BREAKS[1:] - BREAKS[:-1]) / 2


def plain_sigmoid(u: np.ndarray) -> np.ndarray:
    """The same approximation in plain numpy: what the secure version computes, up to
    its roundings (for tests and for stating the error)."""
    u = np.asarray(u, dtype=float)
    magnitude = np.abs(u)
    result = (magnitude >= BREAKS[-1]).astype(float)
    for s in range(SEGMENTS):
        inside = (magnitude >= BREAKS[s]) & (magnitude < BREAKS[s + 1])
        t = (magnitude[inside] - _CENTRES[s]) / _HALF_WIDTHS[s]
        result[inside] = np.polynomial.polynomial.polyval(t, COEFFICIENTS[s])
    return np.where(u >= 0, result, 1.0 - result)


def _segments(length: int, values: np.ndarray) -> np.ndarray:
    """A per-segment constant repeated along `length` elements (SEGMENTS x length)."""
    return np.broadcast_to(np.asarray(values, dtype=float)[:, None], (SEGMENTS, length))


def secure_sigmoid(ops: SecureOps, u: Secret, length: int) -> Secret:
    """The approximate logistic function of a secret vector u of `length` elements:
    within MAX_ERROR plus the backend's product roundings."""
    return sigmoid_and_saturation(ops, u, length)[0]


def sigmoid_and_saturation(ops: SecureOps, u: Secret, length: int) -> tuple[Secret, Secret]:
    """The approximate logistic function of u (within MAX_ERROR plus the backend's
    product roundings), and the secret bits [|u| >= the last break] where it is exactly
    0 or 1 (a fit whose rows all saturate has a zero gradient: the full-MPC logistic
    regression's separation test). The bits are exact (comparisons)."""
    inner = len(BREAKS) - 1  # the breaks above 0
    square = ops.mul(u, u)
    levels = np.broadcast_to(np.r_[0.0, BREAKS[1:] ** 2][:, None], (1 + inner, length))
    bits = ops.ge_public(ops.add_public(ops.stack([u] + [square] * inner), -levels), 0.0)
    positive, above = bits[0], bits[1:]  # [u >= 0]; [u^2 >= b_i^2] = [|u| >= b_i], i = 1..
    sign = ops.add_public(ops.mul_public(positive, 2.0), -1.0)  # +-1
    magnitude = ops.mul(sign, u)
    ones = ops.add_public(ops.mul_public(above[0:1], 0.0), 1.0)  # [|u| >= 0]
    inside = ops.sub(ops.concatenate([ones, above[0 : inner - 1]]), above)  # one-hot segment
    t = ops.add_public(
        ops.mul_public(ops.stack([magnitude] * SEGMENTS), _segments(length, 1 / _HALF_WIDTHS)),
        _segments(length, -_CENTRES / _HALF_WIDTHS),
    )
    # Powers in three rounds of products: t^2; t^3, t^4; t^5 .. t^8.
    t2 = ops.mul(t, t)
    second = ops.mul(ops.stack([t2, t2]), ops.stack([t, t2]))
    t3, t4 = second[0], second[1]
    third = ops.mul(ops.stack([t2, t3, t3, t4]), ops.stack([t3, t3, t4, t4]))
    powers = ops.concatenate([ops.stack([t, t2]), second, third])  # t^1 .. t^8
    coefficients = np.broadcast_to(COEFFICIENTS.T[1:, :, None], (DEGREE, SEGMENTS, length))
    value = ops.add_public(
        ops.weighted_sum(powers, coefficients), _segments(length, COEFFICIENTS[:, 0])
    )
    half = ops.add(ops.sum(ops.mul(inside, value), axis=0), above[inner - 1])  # sigma(|u|)
    sigma = ops.add(ops.add_public(ops.mul_public(positive, -1.0), 1.0), ops.mul(sign, half))
    return sigma, above[inner - 1]
