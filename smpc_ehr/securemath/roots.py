"""The inverse square root by Newton's iteration, on a domain where a line starts it.

y <- y (3 - v y^2) / 2 = y (1.5 + (-v/2) y^2) converges to 1/sqrt(v) from a first
guess y0 = c0 - c1 v with relative error e0; the relative error shrinks as
e <- (3 e^2 + e^3) / 2 per step, and each step corrects the roundings of the last, so
the result is within a few `product_error` of 1/sqrt(v) once e is below them. The
caller brings v into the domain (a secret power of two, or a known range).
"""

from __future__ import annotations

from dataclasses import dataclass

from smpc_ehr.securemath.ops import Secret, SecureOps


@dataclass(frozen=True)
class InverseSqrtStart:
    """A domain [low, high) for v, the line c0 - c1 v that starts Newton there, and
    the number of steps that reach the backend's precision from it."""

    low: float
    high: float
    c0: float
    c1: float
    steps: int


QUARTER_TO_ONE = InverseSqrtStart(low=0.25, high=1.0, c0=2.1328, c1=1.2187, steps=4)
"""v in [1/4, 1) from the minimax line (relative error <= 0.0860): 0.086, 0.0114,
2.0e-4, 5.7e-8, 5.0e-15 < 2^-34 after 4 steps (MPyC's sqrt, 32 fractional bits)."""
ONE_TO_FOUR = InverseSqrtStart(low=1.0, high=4.0, c0=1.2, c1=0.2, steps=5)
"""v in [1, 4) from the line 1.2 - 0.2 v (relative error at most 0.2): 0.06, 5e-3,
4e-5, 2e-9 after 5 steps (k-means' standardisation on CrypTen, 16 fractional bits)."""


def inverse_sqrt(ops: SecureOps, v: Secret, start: InverseSqrtStart) -> Secret:
    """1 / sqrt(v) for secret v in [start.low, start.high): relative error as the
    start's docstring states, plus a few `product_error` (three roundings per step,
    corrected by the next). A v outside the domain gives garbage (it cannot be checked
    in secret)."""
    y = ops.add_public(ops.mul_public(v, -start.c1), start.c0)
    minus_half = ops.mul_public(v, -0.5)
    for _ in range(start.steps):
        y = ops.mul(y, ops.add_public(ops.mul(minus_half, ops.mul(y, y)), 1.5))
    return y
