"""SeedStream: deterministic AES-256-CTR draws, cut into int64 tensors the same way everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from smpc_ehr.dealer_protocol.streams import SeedStream

SEED = bytes(range(32))
OTHER = bytes(range(1, 33))


def draw_mixed(stream: SeedStream) -> list[torch.Tensor]:
    return [stream.ring((3, 4)), stream.bits(10, 1), stream.bits([2, 5], 17), stream.ring(())]


def test_same_seed_same_sequence() -> None:
    first, second = draw_mixed(SeedStream(SEED)), draw_mixed(SeedStream(SEED))
    for a, b in zip(first, second, strict=True):
        assert a.dtype == torch.int64
        assert torch.equal(a, b)


def test_different_seeds_give_different_values() -> None:
    a, b = SeedStream(SEED).ring(1000), SeedStream(OTHER).ring(1000)
    assert (a == b).sum() == 0


def test_draws_are_the_little_endian_aes_ctr_keystream() -> None:
    # Independent reference: encrypt zeros with AES-256-CTR, zero nonce, key = seed.
    n = 300_000  # more than one internal chunk
    keystream = Cipher(algorithms.AES(SEED), modes.CTR(bytes(16))).encryptor().update(bytes(8 * n))
    expected = np.frombuffer(keystream, dtype="<i8")
    assert np.array_equal(SeedStream(SEED).ring(n).numpy(), expected)


def test_split_draws_continue_the_stream() -> None:
    whole = SeedStream(SEED).ring(1000)
    stream = SeedStream(SEED)
    parts = torch.cat([stream.ring(1), stream.bits(399, 64), stream.ring((20, 30)).reshape(-1)])
    assert torch.equal(parts, whole)


def test_bits_consume_eight_bytes_per_element_and_stay_in_range() -> None:
    stream = SeedStream(SEED)
    bits = stream.bits((50, 20), 3)
    assert stream.consumed == 8 * 1000
    assert int(bits.min()) >= 0 and int(bits.max()) < 8
    # The masked value is the low bits of the same word the ring draw would give.
    assert torch.equal(bits, SeedStream(SEED).ring((50, 20)) & 7)


def test_single_bits_are_fair() -> None:
    n = 200_000
    mean = SeedStream(SEED).bits(n, 1).double().mean().item()
    assert abs(mean - 0.5) < 5 * math.sqrt(0.25 / n)  # 5 binomial standard deviations


def test_ring_covers_the_whole_int64_range() -> None:
    values = SeedStream(SEED).ring(100_000)
    assert int(values.min()) < -(2**62) and int(values.max()) > 2**62
    negative = (values < 0).double().mean().item()
    assert abs(negative - 0.5) < 5 * math.sqrt(0.25 / values.numel())
    low_bit = (values & 1).double().mean().item()
    assert abs(low_bit - 0.5) < 5 * math.sqrt(0.25 / values.numel())


def test_bad_seeds_and_bit_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SeedStream(b"short")
    with pytest.raises(ValueError, match="bitlength"):
        SeedStream(SEED).bits(3, 0)
    with pytest.raises(ValueError, match="non-negative"):
        SeedStream(SEED).ring((2, -1))
