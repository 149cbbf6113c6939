"""Shares look random: over many sharings, the share any single party receives for
secret 0 and for secret 1 are statistically indistinguishable, for both backends.

Why in process, calling each backend's own sharing routine: a party's share is made
by that routine (MPyC: `thresha.random_split`, which `Runtime.input` calls with our
`mix32_64bit` setting; CrypTen: the `ArithmeticSharedTensor` constructor, a
pseudo-random sharing of zero plus the secret at its source, drawn from the backend's
AES-256-CTR pairwise generators that replace CrypTen's Mersenne Twisters). The
transport only carries those numbers as raw little-endian bytes of checked length,
so what a party receives over mutual TLS is exactly what the routine produced; the
conformance tests check separately that shares travel and recombine. In process,
20000 sharings per secret take a second; as federation jobs they would take hours.

The test: for each party, two samples (its shares of 0, its shares of 1) are
compared with two statistics: a two-sample Kolmogorov-Smirnov test on share/modulus
(the high-order bits) and a chi-square test of homogeneity on share mod 256 (the low
bits). Each case asserts every p-value > ALPHA / k (Bonferroni over its k tests), so
a case fails by chance with probability below ALPHA = 0.001. Controls show the test
can fail: a Shamir sharing of degree 0 (the share is the secret) and an additive
sharing whose mask is small noise are both detected.

A statistical test cannot show cryptographic strength: MPyC draws its coefficients
from `secrets` (the OS CSPRNG); CrypTen's zero-sharings come from AES-256-CTR on
fresh 32-byte seeds (`smpc_ehr.backends.crypten.prng`; tests/test_crypten_backend.py
checks they are exactly that keystream). CrypTen's upstream generator, a Mersenne
Twister, would pass these statistical tests too: they are no evidence either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from scipy.stats import chi2_contingency, ks_2samp

ALPHA = 1e-5
"""Probability that a case fails although its sharing is fine (family-wise). The
shares are drawn afresh each run, so a fine sharing fails at this rate: 1e-3 made
the suite fail about once in 200 runs; the leaky controls give p-values far below
1e-5 (a real leak of this size is not near the boundary)."""
SAMPLES = 20_000
"""Sharings per secret; a KS test then sees a shift of the share distribution of ~2 %."""
LOW_BINS = 256

Sharer = Callable[[int], list[list[int]]]
"""Shares SAMPLES sharings of one secret: result[party][sample], as integers."""


def p_values(zero: Sequence[int], one: Sequence[int], modulus: int) -> list[float]:
    """KS on the shares' position in [0, modulus) and chi-square on their low 8 bits."""
    ks = ks_2samp([s / modulus for s in zero], [s / modulus for s in one]).pvalue
    table = np.array(
        [np.bincount([s % LOW_BINS for s in side], minlength=LOW_BINS) for side in (zero, one)]
    )
    seen = table[:, table.sum(axis=0) > 0]  # a bin neither sample hit carries no information
    return [float(ks), float(chi2_contingency(seen).pvalue)]


def smallest_p(share: Sharer, modulus: int, n: int) -> tuple[float, int]:
    """The smallest p-value over every party's view, and how many tests that was."""
    zeros, ones = share(0), share(1)
    found = [p for party in range(n) for p in p_values(zeros[party], ones[party], modulus)]
    return min(found), len(found)


def assert_indistinguishable(share: Sharer, modulus: int, n: int) -> None:
    smallest, tests = smallest_p(share, modulus, n)
    assert smallest > ALPHA / tests, f"shares of 0 and 1 differ (p = {smallest:.2e})"


def assert_distinguishable(share: Sharer, modulus: int, n: int) -> None:
    smallest, tests = smallest_p(share, modulus, n)
    assert smallest <= ALPHA / tests, f"the test missed a leaky sharing (p = {smallest:.2e})"


# -- MPyC: Shamir over the job's field --------------------------------------------------


def mpyc_field(kind: str) -> Any:
    """The prime field of the backend's secure integers or fixed-point numbers."""
    from smpc_ehr.backends.mpyc.library import import_mpyc
    from smpc_ehr.backends.mpyc.ops import FXP_BITS, FXP_FRAC_BITS

    runtime = import_mpyc().mpc
    if kind == "int":
        return runtime.SecInt(32).field
    return runtime.SecFxp(FXP_BITS, FXP_FRAC_BITS).field


def shamir_sharer(field: Any, n: int, degree: int) -> Sharer:
    from mpyc import thresha

    def share(secret: int) -> list[list[int]]:
        secrets = field.array(np.full(SAMPLES, secret, dtype=object))
        rows = thresha.random_split(field, secrets, degree, n)
        return [[int(v) for v in row] for row in rows]

    return share


@pytest.mark.parametrize("kind", ["int", "fixed"])
@pytest.mark.parametrize("n", [3, 5])
def test_mpyc_shares_of_0_and_1_are_indistinguishable(kind: str, n: int) -> None:
    field = mpyc_field(kind)
    modulus = int(field.modulus)
    assert_indistinguishable(shamir_sharer(field, n, (n - 1) // 2), modulus, n)


def test_mpyc_control_degree_zero_is_detected() -> None:
    field = mpyc_field("int")
    assert_distinguishable(shamir_sharer(field, 3, 0), int(field.modulus), 3)


# -- CrypTen: additive over Z_2^64 ------------------------------------------------------

RING = 2**64


def crypten_sharer(n: int) -> Sharer:
    """Party 0 inputs the secret; every party runs CrypTen's own constructor with the
    pairwise generators `crypten.init()` would give it (next seed sent to rank + 1)."""
    import torch

    from smpc_ehr.backends.crypten import backend, prng  # importing backend installs prng

    crypten = backend.crypten
    arithmetic = crypten.mpc.primitives.ArithmeticSharedTensor
    cpu = torch.device("cpu")
    generator = prng.StreamGenerator

    def share(secret: int) -> list[list[int]]:
        next_seeds = [os.urandom(32) for _ in range(n)]
        views: list[list[int]] = []
        with pytest.MonkeyPatch.context() as patch:
            for rank in range(n):
                stub = SimpleNamespace(get_rank=lambda r=rank: r, get_world_size=lambda: n)
                patch.setattr(crypten.communicator, "get", lambda s=stub: s)
                patch.setattr(
                    crypten,
                    "generators",
                    {
                        "prev": {cpu: generator(next_seeds[(rank - 1) % n])},
                        "next": {cpu: generator(next_seeds[rank])},
                    },
                )
                values = torch.full((SAMPLES,), float(secret), dtype=torch.float64)
                tensor = arithmetic(values if rank == 0 else torch.zeros_like(values), src=0)
                views.append([int(v) for v in tensor.share.numpy().astype(np.uint64)])
        total = np.sum(np.array(views, dtype=object), axis=0) % RING
        assert set(total) == {secret * 2**16}, "these are not shares of the secret"
        return views

    return share


@pytest.mark.parametrize("n", [2, 3, 5])
def test_crypten_shares_of_0_and_1_are_indistinguishable(n: int) -> None:
    assert_indistinguishable(crypten_sharer(n), RING, n)


def test_crypten_control_small_noise_mask_is_detected() -> None:
    rng = np.random.default_rng(0)

    def leaky(secret: int) -> list[list[int]]:
        noise = [int(v) for v in rng.integers(0, 2**20, SAMPLES)]
        share = [(secret * 2**16 + r) % RING for r in noise]
        return [share, [(-s) % RING for s in share]]

    assert_distinguishable(leaky, RING, 2)
