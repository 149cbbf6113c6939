"""Reconstructing what the DealerProvider hands each party, checked against plain integers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

RING = 2**64


def to_int(x: int) -> int:
    """An int64 value as its residue in [0, 2^64)."""
    return int(x) % RING


def arith_open(shares: Sequence[torch.Tensor]) -> list[int]:
    """Sum of arithmetic shares mod 2^64, elementwise, as Python ints (flattened)."""
    flat = [s.reshape(-1).tolist() for s in shares]
    return [sum(col) % RING for col in zip(*flat, strict=True)]


def xor_open(shares: Sequence[torch.Tensor]) -> torch.Tensor:
    result = shares[0].clone()
    for s in shares[1:]:
        result ^= s
    return result


def shares_of(results: Sequence[Any], index: int) -> list[torch.Tensor]:
    """The raw share tensors of output `index` of every party's provider call."""
    return [r[index].share for r in results]


def check_additive(results: Sequence[Any], op: Callable[..., torch.Tensor], **kwargs: Any) -> None:
    """c opens to op(a, b) mod 2^64; a, b, c reconstructed independently with Python ints."""
    a, b, c = (shares_of(results, i) for i in range(3))
    a_plain = torch.tensor([v - RING if v >= 2**63 else v for v in arith_open(a)])
    b_plain = torch.tensor([v - RING if v >= 2**63 else v for v in arith_open(b)])
    a_plain = a_plain.reshape(a[0].shape)
    b_plain = b_plain.reshape(b[0].shape)
    expected = op(a_plain, b_plain, **kwargs)
    assert arith_open(c) == [to_int(v) for v in expected.reshape(-1).tolist()]
