"""Opening output shares at the coordinator, whatever the backend's sharing scheme.

"shamir" (MPyC): points 1..n on a degree-t polynomial over a prime field, checked for
consistency. "additive" (CrypTen): the shares add up to the value in Z_2^64.
Fixed-point values carry `frac_bits` fractional bits and are returned as floats.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from smpc_ehr.backends.shamir import recombine, to_signed


def _open_additive(shares: Mapping[int, Sequence[int]], degree: int, modulus: int) -> list[int]:
    """The sums of the parties' shares modulo `modulus` (additive shares have no degree)."""
    del degree
    columns = [shares[p] for p in sorted(shares)]
    if len({len(c) for c in columns}) != 1:
        raise ValueError("parties sent different numbers of output shares")
    return [sum(values) % modulus for values in zip(*columns, strict=True)]


OPENERS: dict[str, Callable[[Mapping[int, Sequence[int]], int, int], list[int]]] = {
    "shamir": recombine,
    "additive": _open_additive,
}
"""How each sharing scheme (a registered backend's `Backend.sharing`) is opened."""


def open_outputs(
    scheme: str,
    shares: Mapping[int, Sequence[int]],
    degree: int,
    modulus: int,
    frac_bits: int = 0,
) -> list[int] | list[float]:
    """The values behind every party's shares (point -> shares of each value).

    Raises ValueError when the shares do not fit together.
    """
    opener = OPENERS.get(scheme)
    if opener is None:
        raise ValueError(f"unknown sharing scheme {scheme!r}")
    opened = opener(shares, degree, modulus)
    signed = [to_signed(v, modulus) for v in opened]
    if frac_bits:
        return [v / 2**frac_bits for v in signed]
    return signed
