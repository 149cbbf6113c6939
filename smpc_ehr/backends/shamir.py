"""Recombining Shamir shares at the coordinator, with a consistency check.

The coordinator receives from every party its share (x = party number + 1) of each
output, on polynomials of degree t over a prime field. t + 1 shares determine the
value; with n > t + 1 shares the rest must lie on the same polynomial, which we
check so that a corrupted or mixed-up share is noticed instead of released.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence


def lagrange_weights(points: Sequence[int], x: int, modulus: int) -> list[int]:
    """Lagrange coefficients that interpolate the value at `x` from the values at `points`."""
    coefficients = []
    for i, xi in enumerate(points):
        num, den = 1, 1
        for j, xj in enumerate(points):
            if i != j:
                num = num * (x - xj) % modulus
                den = den * (xi - xj) % modulus
        coefficients.append(num * pow(den, -1, modulus) % modulus)
    return coefficients


def _combine(weights: Sequence[int], values: Sequence[int], modulus: int) -> int:
    return sum(w * v for w, v in zip(weights, values, strict=True)) % modulus


def recombine(shares: Mapping[int, Sequence[int]], degree: int, modulus: int) -> list[int]:
    """The secrets (field elements) behind `shares` = {point: [share of each secret]}.

    Raises ValueError when there are too few shares, their lengths differ, or the
    extra shares do not lie on the degree-`degree` polynomial of the first t + 1.
    """
    points = sorted(shares)
    if len(points) < degree + 1:
        raise ValueError(f"{len(points)} shares cannot open a degree-{degree} sharing")
    lengths = {len(shares[p]) for p in points}
    if len(lengths) != 1:
        raise ValueError("parties sent different numbers of output shares")
    base = points[: degree + 1]
    at_zero = lagrange_weights(base, 0, modulus)
    at_extra = {x: lagrange_weights(base, x, modulus) for x in points[degree + 1 :]}
    secrets = []
    for k in range(lengths.pop()):
        base_values = [shares[p][k] % modulus for p in base]
        for extra, weights in at_extra.items():
            if _combine(weights, base_values, modulus) != shares[extra][k] % modulus:
                raise ValueError(f"output share of party at point {extra} is inconsistent")
        secrets.append(_combine(at_zero, base_values, modulus))
    return secrets


def to_signed(value: int, modulus: int) -> int:
    """Map a field element to the integer in (-modulus/2, modulus/2] it represents."""
    return value - modulus if value > modulus // 2 else value


def split(secret: int, degree: int, n: int, modulus: int, rng: random.Random) -> dict[int, int]:
    """Shamir-share `secret` among points 1..n (for tests and tools; MPC uses the backend's)."""
    coefficients = [secret % modulus] + [rng.randrange(modulus) for _ in range(degree)]
    return {
        x: sum(c * pow(x, e, modulus) for e, c in enumerate(coefficients)) % modulus
        for x in range(1, n + 1)
    }
