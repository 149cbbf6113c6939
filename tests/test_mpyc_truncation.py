"""MPyC's products and truncation from PRSS masks (`backends/mpyc/truncation.py`), party
by party.

Each party's arithmetic is the module's own (`masked`, `unmasked`) on shares made as a
job makes them: Shamir shares of x (or of a and b, whose product x has degree 2t), and
PRSS shares of r_lo, r_hi and of zero from keys held by each subset of n - t parties
(MPyC's `thresha`). Opening is Lagrange recombination. The tests check what the
module's docstring claims: the result is x / 2^f within (d + 1) / 2 units and
unbiased, and what a coalition of t parties sees of the opened value's low bits does
not depend on x.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from smpc_ehr.backends.mpyc.library import import_mpyc, threshold
from smpc_ehr.backends.mpyc.ops import FXP_BITS, FXP_FRAC_BITS
from smpc_ehr.backends.mpyc.truncation import (
    masked,
    prss_subsets,
    truncation_error_units,
    unmasked,
)

F = FXP_FRAC_BITS
WIDTH = FXP_BITS + FXP_FRAC_BITS  # a product before truncation
SEC_PARAM = 40
SAMPLES = 4000
Keys = dict[tuple[int, ...], bytes]


def field() -> Any:
    return import_mpyc().mpc.SecFxp(FXP_BITS, FXP_FRAC_BITS).field


def prss_keys(n: int) -> Keys:
    return {
        subset: secrets.token_bytes(16)
        for subset in itertools.combinations(range(n), n - threshold(n))
    }


def party_prfs(keys: Keys, party: int, bound: int) -> dict[tuple[int, ...], Any]:
    from mpyc import thresha

    return {s: thresha.PRF(key, bound) for s, key in keys.items() if party in s}


def shares_of(values: np.ndarray, n: int) -> list[np.ndarray]:
    from mpyc import thresha

    gf = field()
    rows = thresha.np_random_split(gf, gf.array(values.astype(object)), threshold(n), n)
    return [np.asarray(row, dtype=object) for row in rows]


def truncate_jointly(
    x_shares: list[np.ndarray], n: int, keys: Keys, uci: bytes, double_degree: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Every party's truncation of its shares, recombined, and the opened value."""
    result, opened, _ = run_parties(x_shares, n, keys, uci, double_degree)
    return result, opened


def run_parties(
    x_shares: list[np.ndarray], n: int, keys: Keys, uci: bytes, double_degree: bool
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """`truncate_jointly`, plus the shares every party sent for opening."""
    from mpyc import thresha

    gf, size, d = field(), x_shares[0].size, prss_subsets(n)
    high_bound = 1 << max(0, ((1 << SEC_PARAM + WIDTH - F) // d).bit_length() - 1)
    sent, highs = [], []
    for i in range(n):
        low = thresha.np_pseudorandom_share(gf, n, i, party_prfs(keys, i, 1 << F), uci, size)
        high = thresha.np_pseudorandom_share(gf, n, i, party_prfs(keys, i, high_bound), uci, size)
        share = masked(x_shares[i], low.value, high.value, F, WIDTH, d)
        if double_degree:
            prfs = party_prfs(keys, i, gf.order)
            share = share + thresha.np_pseudorandom_share_0(gf, n, i, prfs, uci, size).value
        sent.append(gf.array(share).value)
        highs.append(high.value)
    opened = thresha.np_recombine(gf, [(i + 1, sent[i]) for i in range(n)]).value
    results = [unmasked(gf, opened, highs[i], F, WIDTH).value for i in range(n)]
    result = thresha.np_recombine(gf, [(i + 1, results[i]) for i in range(n)])
    return signed(result.value), opened, sent


def signed(values: np.ndarray) -> np.ndarray:
    """Field elements as the integers they stand for (above p/2: negative)."""
    p = int(field().modulus)
    return np.array([int(v) - p if int(v) > p // 2 else int(v) for v in values], dtype=float)


def check_rounding(got: np.ndarray, exact: np.ndarray, n: int) -> None:
    error = got - exact
    assert np.abs(error).max() <= truncation_error_units(n)
    # unbiased: the mean error's standard error is sqrt(d / 12 / SAMPLES) units
    assert abs(error.mean()) <= 5 * np.sqrt(prss_subsets(n) / 12 / SAMPLES)
    assert error.std() > 0.2  # it does round at random (a floor would not)


@pytest.mark.parametrize("n", [3, 5])
def test_a_truncation_is_x_over_2_to_the_f_within_the_stated_units_and_unbiased(n: int) -> None:
    x = np.random.default_rng(n).integers(-(2**40), 2**40, SAMPLES)  # |x 2^-32| < 2^8
    got, _ = truncate_jointly(shares_of(x, n), n, prss_keys(n), secrets.token_bytes(8))
    check_rounding(got, x / 2.0**F, n)


@pytest.mark.parametrize("n", [3, 5])
def test_a_product_opened_from_its_double_degree_shares_is_right(n: int) -> None:
    """a b 2^-32 from the products of the parties' degree-t shares, no resharing."""
    rng = np.random.default_rng(10 + n)
    a, b = rng.integers(-(2**36), 2**36, SAMPLES), rng.integers(-(2**36), 2**36, SAMPLES)
    products = [sa * sb for sa, sb in zip(shares_of(a, n), shares_of(b, n), strict=True)]
    keys, uci = prss_keys(n), secrets.token_bytes(8)
    got, _ = truncate_jointly(products, n, keys, uci, double_degree=True)
    exact = np.array([int(u) * int(v) for u, v in zip(a, b, strict=True)], dtype=object)
    check_rounding(got, (exact / 2**F).astype(float), n)


def low_bits_seen(x_value: int, known_subsets: int) -> list[int]:
    """Opened low 8 bits less the PRSS values of the first `known_subsets` subsets that
    hold party 0 (all of them: what party 0 knows), over SAMPLES truncations of x."""
    from mpyc import thresha

    n = 3
    keys = prss_keys(n)
    uci = secrets.token_bytes(8)
    known = [key for s, key in keys.items() if 0 in s][:known_subsets]
    if known_subsets > len(known):  # a control: the one value party 0 lacks, too
        known = list(keys.values())
    removed = sum(thresha.PRF(key, 1 << F)(uci, (SAMPLES,)) for key in known)
    _, opened = truncate_jointly(shares_of(np.full(SAMPLES, x_value), n), n, keys, uci)
    return [(int(c) - int(r)) % 256 for c, r in zip(opened, removed, strict=True)]


def differ(a: list[int], b: list[int]) -> float:
    table = np.array([np.bincount(v, minlength=256) for v in (a, b)])
    return float(chi2_contingency(table[:, table.sum(axis=0) > 0]).pvalue)


def test_what_one_party_sees_of_the_low_bits_does_not_depend_on_x() -> None:
    """Party 0 knows the PRSS values of the subsets it is in, not that of (1, 2): what
    it can compute of the opened low bits looks the same for two values of x."""
    x0, x1 = 0, 2**31 + 12345
    assert differ(low_bits_seen(x0, 2), low_bits_seen(x1, 2)) > 1e-6
    # control: knowing every subset's value (a coalition of 2 of 3) tells x's low bits
    assert differ(low_bits_seen(x0, 3), low_bits_seen(x1, 3)) < 1e-6


@pytest.mark.parametrize("with_zero_sharing", [True, False])
def test_opening_a_product_unreshared_shows_nothing_but_the_masked_value(
    with_zero_sharing: bool,
) -> None:
    """3 parties, t = 1: shares a + alpha i and b + beta i multiply to a polynomial whose
    X^2 coefficient is alpha beta; party 0 knows a + alpha and b + beta, so seeing that
    coefficient would tie a to b. The zero sharing must hide it (control: without it,
    the coefficient is exactly (a0 - a)(b0 - b) every time)."""

    n, gf, size = 3, field(), 200
    rng = np.random.default_rng(5)
    a, b = rng.integers(-(2**36), 2**36, size), rng.integers(-(2**36), 2**36, size)
    a_shares, b_shares = shares_of(a, n), shares_of(b, n)
    products = [sa * sb for sa, sb in zip(a_shares, b_shares, strict=True)]
    keys, uci = prss_keys(n), secrets.token_bytes(8)
    _, _, sent = run_parties(products, n, keys, uci, double_degree=with_zero_sharing)
    # opened values at x = 1, 2, 3: the X^2 coefficient is (y1 - 2 y2 + y3) / 2
    p = int(gf.modulus)
    top = [
        ((int(u) - 2 * int(v) + int(w)) * pow(2, -1, p)) % p for u, v, w in zip(*sent, strict=True)
    ]
    guess = [
        ((int(a0) - int(x)) * (int(b0) - int(y))) % p
        for a0, b0, x, y in zip(a_shares[0], b_shares[0], a, b, strict=True)
    ]
    matches = sum(t == g for t, g in zip(top, guess, strict=True))
    assert matches == (0 if with_zero_sharing else size)
