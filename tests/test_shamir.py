"""Output-share recombination at the coordinator, checked against direct evaluation."""

from __future__ import annotations

import random

import pytest

from smpc_ehr.backends.shamir import recombine, split, to_signed

P = 2**61 - 1  # a Mersenne prime


@pytest.mark.parametrize(("n", "t"), [(3, 1), (5, 2), (7, 3)])
def test_recombine_recovers_secrets_from_all_shares(n: int, t: int) -> None:
    rng = random.Random(n * 10 + t)
    secrets = [rng.randrange(P) for _ in range(5)] + [0, 1, P - 1]
    per_secret = [split(s, t, n, P, rng) for s in secrets]
    shares = {x: [sh[x] for sh in per_secret] for x in range(1, n + 1)}
    assert recombine(shares, t, P) == secrets


def test_an_inconsistent_share_is_detected_not_released() -> None:
    rng = random.Random(1)
    shares = {x: [v] for x, v in split(42, 1, 3, P, rng).items()}
    shares[3][0] = (shares[3][0] + 1) % P
    with pytest.raises(ValueError, match="inconsistent"):
        recombine(shares, 1, P)


def test_too_few_shares_are_refused() -> None:
    rng = random.Random(2)
    shares = {x: [v] for x, v in split(7, 2, 5, P, rng).items() if x <= 2}
    with pytest.raises(ValueError, match="cannot open"):
        recombine(shares, 2, P)


def test_to_signed_maps_upper_half_to_negatives() -> None:
    assert to_signed(5, P) == 5
    assert to_signed(P - 5, P) == -5
