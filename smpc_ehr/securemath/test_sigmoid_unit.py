"""The piecewise-polynomial logistic function of the full-MPC logistic regression:
its stated approximation error, against the exact function on a fine grid."""

from __future__ import annotations

import numpy as np

from smpc_ehr.securemath.sigmoid import BREAKS, COEFFICIENTS, MAX_ERROR, plain_sigmoid


def exact(u: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * u))  # 1 / (1 + e^-u) without overflow


def test_error_is_within_the_stated_bound_everywhere() -> None:
    u = np.concatenate([np.linspace(-60, 60, 1_200_001), [-1e4, -14, -4, 0, 4, 14, 1e4]])
    error = np.abs(plain_sigmoid(u) - exact(u))
    assert error.max() <= MAX_ERROR
    assert error.max() > MAX_ERROR / 10  # the bound is the measured one, not a loose one


def test_symmetry_and_range() -> None:
    u = np.linspace(0.001, 30, 30_000)
    assert np.abs(plain_sigmoid(u) + plain_sigmoid(-u) - 1).max() <= 1e-15  # by construction
    approx = plain_sigmoid(np.concatenate([-u, [0.0], u]))
    assert approx.min() >= -MAX_ERROR and approx.max() <= 1 + MAX_ERROR
    assert abs(plain_sigmoid(np.array([0.0]))[0] - 0.5) <= MAX_ERROR


def test_segments_meet_without_jumps() -> None:
    for edge in BREAKS[1:-1]:
        below, above = plain_sigmoid(np.array([edge - 1e-9, edge]))
        assert abs(above - below) <= 2 * MAX_ERROR


def test_coefficients_fit_fixed_point() -> None:
    # Every coefficient below 1 in magnitude: fixed point with 16 fractional bits keeps
    # each to 1.5e-5 (and the variable t stays in [-1, 1], so no power overflows).
    assert np.abs(COEFFICIENTS).max() <= 1.0
