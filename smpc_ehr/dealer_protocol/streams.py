"""Seeded cryptographic random streams: what a party and the dealer both expand from a seed.

CrypTen's TTP draws its correlated randomness from `torch.Generator` (a Mersenne
Twister seeded with 64 bits), which is predictable from its output. We replace it,
for everything the dealer provides, with AES-256 in counter mode keyed by a fresh
32-byte seed per party and job: one stateful encryptor per stream, bytes drawn by
encrypting zeros. A party and the dealer that hold the same seed and draw the same
sizes in the same order get identical tensors; nobody without the seed can predict
them.

Draws are whole 64-bit words in little-endian order, 8 bytes per element, whatever
the bit length (smaller bit lengths are masked), so the number of bytes consumed
depends only on the number of elements.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SEED_BYTES = 32
_NONCE = bytes(16)
_CHUNK = 1 << 20  # bytes encrypted per call: bounds the temporary buffers, not the draw
_ZEROS = bytes(_CHUNK)

Size = int | Iterable[int]


def shape_of(size: Size) -> tuple[int, ...]:
    """A tensor size as a tuple of non-negative ints (an int n means (n,), as in torch)."""
    dims = (size,) if isinstance(size, int) else tuple(size)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in dims):
        raise ValueError(f"a size must be non-negative integers, got {size!r}")
    return tuple(int(d) for d in dims)


class SeedStream:
    """AES-256-CTR keystream (key = seed, all-zero nonce) cut into int64 tensors.

    A zero nonce is safe only because a seed is never reused: every party makes a
    fresh seed for every job (see `provider.DealerSession.open`).
    """

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes | bytearray) or len(seed) != SEED_BYTES:
            raise ValueError(f"a stream seed must be {SEED_BYTES} bytes")
        cipher = Cipher(algorithms.AES(bytes(seed)), modes.CTR(_NONCE))
        self._encryptor = cipher.encryptor()
        self.consumed = 0
        """Bytes drawn so far (for tests and diagnostics)."""

    def _words(self, count: int) -> np.ndarray:
        """The next `count` little-endian 64-bit words of the keystream, as int64."""
        out = np.empty(count, dtype="<i8")
        raw = out.view(np.uint8)
        for start in range(0, raw.size, _CHUNK):
            n = min(_CHUNK, raw.size - start)
            raw[start : start + n] = np.frombuffer(
                self._encryptor.update(_ZEROS[:n]), dtype=np.uint8
            )
        self.consumed += raw.size
        return out.astype(np.int64, copy=False)

    def ring(self, size: Size) -> torch.Tensor:
        """Uniform elements of Z_2^64 as int64 (the full signed range), 8 bytes each."""
        shape = shape_of(size)
        return torch.from_numpy(self._words(math.prod(shape))).reshape(shape)

    def bits(self, size: Size, bitlength: int | None = None) -> torch.Tensor:
        """Uniform integers in [0, 2**bitlength); None or 64 means the whole ring.

        Consumes 8 bytes per element whatever the bit length, so both ends stay in step.
        """
        if bitlength is None or bitlength == 64:
            return self.ring(size)
        if not 1 <= bitlength < 64:
            raise ValueError(f"bitlength must be between 1 and 64, got {bitlength}")
        return self.ring(size) & ((1 << bitlength) - 1)
