"""MPyC's truncation from PRSS masks (`backends/mpyc/truncation.py`), party by party.

Each party's arithmetic is the module's own (`mask_shares`, `unmask`) on shares made as
a job makes them: Shamir shares of x, and PRSS shares of r_lo and r_hi from keys held
by each subset of n - t parties (MPyC's `thresha`). Opening is Lagrange recombination.
The tests check what the module's docstring claims: the result is x / 2^f within
(d + 1) / 2 units and unbiased, and what a coalition of t parties sees of the opened
value's low bits does not depend on x.
"""

from __future__ import annotations

import itertools
import secrets

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from smpc_ehr.backends.mpyc.library import import_mpyc, threshold
from smpc_ehr.backends.mpyc.ops import FXP_BITS, FXP_FRAC_BITS
from smpc_ehr.backends.mpyc.truncation import (
    mask_shares,
    prss_subsets,
    truncation_error_units,
    unmask,
)

F = FXP_FRAC_BITS
WIDTH = FXP_BITS + FXP_FRAC_BITS  # a product before truncation
SEC_PARAM = 40
SAMPLES = 4000


def field() -> object:
    return import_mpyc().mpc.SecFxp(FXP_BITS, FXP_FRAC_BITS).field


def prss_keys(n: int) -> dict[tuple[int, ...], bytes]:
    return {
        subset: secrets.token_bytes(16)
        for subset in itertools.combinations(range(n), n - threshold(n))
    }


def party_prfs(keys: dict[tuple[int, ...], bytes], party: int, bound: int) -> dict:
    from mpyc import thresha

    return {s: thresha.PRF(key, bound) for s, key in keys.items() if party in s}


def truncate_jointly(
    x: np.ndarray, n: int, keys: dict[tuple[int, ...], bytes], uci: bytes
) -> tuple[np.ndarray, np.ndarray]:
    """The recombined result of every party's truncation of raw x, and the opened value."""
    from mpyc import thresha

    gf = field()
    t = threshold(n)
    d = prss_subsets(n)
    x_shares = thresha.np_random_split(gf, gf.array(x.astype(object)), t, n)
    kept, masked = [], []
    high_bound = 1 << max(0, ((1 << SEC_PARAM + WIDTH - F) // d).bit_length() - 1)
    for i in range(n):
        low = thresha.np_pseudorandom_share(gf, n, i, party_prfs(keys, i, 1 << F), uci, x.size)
        high = thresha.np_pseudorandom_share(gf, n, i, party_prfs(keys, i, high_bound), uci, x.size)
        mine = np.asarray(x_shares[i], dtype=object)
        k, m = mask_shares(mine, low.value, high.value, F, WIDTH, d)
        kept.append(k)
        masked.append(gf.array(m).value)
    points = [(i + 1, masked[i]) for i in range(n)]
    opened = thresha.np_recombine(gf, points)
    results = [unmask(gf, kept[i], opened.value, F).value for i in range(n)]
    result = thresha.np_recombine(gf, [(i + 1, results[i]) for i in range(n)])
    return np.array([int(v) for v in result.value], dtype=object), opened.value


def signed(values: np.ndarray) -> np.ndarray:
    """Field elements as the integers they stand for (above p/2: negative)."""
    p = int(field().modulus)  # type: ignore[attr-defined]
    return np.array([int(v) - p if int(v) > p // 2 else int(v) for v in values], dtype=float)


@pytest.mark.parametrize("n", [3, 5])
def test_the_result_is_x_over_2_to_the_f_within_the_stated_units_and_unbiased(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.integers(-(2**40), 2**40, SAMPLES)  # products of magnitude up to 2^8
    got, _ = truncate_jointly(x, n, prss_keys(n), secrets.token_bytes(8))
    error = signed(got) - x / 2.0**F
    assert np.abs(error).max() <= truncation_error_units(n)
    # unbiased: the mean error's standard error is sqrt(d / 12 / SAMPLES) units
    assert abs(error.mean()) <= 5 * np.sqrt(prss_subsets(n) / 12 / SAMPLES)
    assert error.std() > 0.2  # it does round at random (a floor would not)


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
    _, opened = truncate_jointly(np.full(SAMPLES, x_value), n, keys, uci)
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
