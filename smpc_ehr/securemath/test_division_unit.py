"""Division by counts with public bounds (`divide_by_bounded_counts`) on the plaintext
reference ops, at MPyC's precision and at CrypTen's 16 fractional bits with its finer
comparisons, against numpy's exact quotients."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from smpc_ehr.securemath.division import (
    _octave_pieces,
    bounded_start_error,
    divide_by_bounded_counts,
    fractions_of_public_total,
    newton_steps,
)
from smpc_ehr.testing.reference import REFERENCE_PRECISION, ReferenceOps


class Alone:
    """A meeting of one party: what it hands over is everyone's."""

    parties = 1

    def exchange(self, party: int, call: object, part: np.ndarray) -> list[np.ndarray]:
        del party, call
        return [part]


CRYPTEN_LIKE = dataclasses.replace(
    REFERENCE_PRECISION, frac_bits=16, product_error=3 * 2.0**-16, max_abs=2.0**31
)


def quotients(
    counts: np.ndarray, values: np.ndarray, low: int, high: int, per_octave: int, crypten: bool
) -> np.ndarray:
    ops = ReferenceOps(
        Alone(), 0, seed=3, precision=CRYPTEN_LIKE if crypten else REFERENCE_PRECISION
    )
    ops.comparisons_per_octave = per_octave

    async def run() -> np.ndarray:
        c = ops.input_values(0, counts, counts.shape)
        v = ops.input_values(0, values, values.shape)
        out = divide_by_bounded_counts(ops, v, c, values.shape[0], low, high)
        return await ops.reveal(out)

    return asyncio.run(run())


@pytest.mark.parametrize(("per_octave", "crypten"), [(1, False), (4, False), (4, True), (2, True)])
@pytest.mark.parametrize(("low", "high"), [(11, 166_613), (1, 40), (5, 5), (1, 2**29)])
def test_quotients_within_the_stated_error(
    low: int, high: int, per_octave: int, crypten: bool
) -> None:
    draw = np.random.default_rng(low + high + per_octave)
    counts = np.unique(np.r_[low, high, draw.integers(low, high + 1, 200)]).astype(float)
    # |value| <= its count, and below 2^20: the reference computes in float64, exact on
    # the 2^-32 grid only below 2^21
    values = draw.uniform(-1, 1, (3, len(counts))) * np.minimum(counts, 2.0**20)
    got = quotients(counts, values, low, high, per_octave, crypten)
    error = (CRYPTEN_LIKE if crypten else REFERENCE_PRECISION).product_error
    assert np.abs(got - values / counts).max() <= 9 * error


def test_pieces_cover_the_bounds_and_lines_start_close() -> None:
    for per_octave in (1, 2, 4):
        starts, exponents, lines = _octave_pieces(11, 166_613, per_octave)
        assert starts[0] == 11 and starts == sorted(set(starts))
        worst = 0.0
        for n in range(11, 166_614):
            i = int(np.searchsorted(starts, n, side="right")) - 1
            a = n * 2.0 ** -exponents[i]
            assert 1 <= a < 2
            c0, c1 = lines[i]
            worst = max(worst, abs(1 - a * (c0 - c1 * a)))
        bound = bounded_start_error(per_octave)
        assert 0.99 * bound < worst <= bound * (1 + 1e-12)  # the stated error, tight
    assert bounded_start_error(1) == pytest.approx(1 / 17)
    assert newton_steps(1 / 17, 2.0**-32) == 3  # as RECIPROCAL_STEPS
    assert newton_steps(bounded_start_error(4), 3 * 2.0**-16) == 1


def test_bounds_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="count bounds"):
        _octave_pieces(0, 10, 1)
    with pytest.raises(ValueError, match="count bounds"):
        _octave_pieces(10, 9, 1)


@pytest.mark.parametrize("crypten", [False, True])
@pytest.mark.parametrize("total", [1, 11, 2**16, 166_613, 2**29 + 7])
def test_fractions_of_a_public_total_within_the_stated_error(total: int, crypten: bool) -> None:
    precision = CRYPTEN_LIKE if crypten else REFERENCE_PRECISION
    ops = ReferenceOps(Alone(), 0, seed=5, precision=precision)
    draw = np.random.default_rng(total)
    counts = np.unique(np.r_[0, total, draw.integers(0, total + 1, 50)]).astype(float)

    async def run() -> np.ndarray:
        c = ops.input_values(0, counts, counts.shape)
        return await ops.reveal(fractions_of_public_total(ops, c, total))

    got = asyncio.run(run())
    # two roundings, plus the constant's encoding: half a unit relative to it
    stated = 2 * precision.product_error + 2.0 ** -(precision.frac_bits + 1)
    assert np.abs(got - counts / total).max() <= stated


def test_a_public_total_out_of_range_is_refused() -> None:
    ops = ReferenceOps(Alone(), 0)
    with pytest.raises(ValueError, match="public total"):
        fractions_of_public_total(ops, ops.input_values(0, np.ones(1), (1,)), 0)
