"""`SecureOps` on MPyC's secure arrays (`MpycOps`) and the precision it states.

Comparisons, bit decompositions and truncations run at statistical security
k = `library.SEC_PARAM` = 40 (MPyC's default is 30): each opened masked value is
within 2^-40 statistical distance of one that says nothing about the value; MPyC's
fields grow by 10 bits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from smpc_ehr.backends.mpyc.library import check_field
from smpc_ehr.backends.mpyc.truncation import exact_np_trunc, truncation_error_units
from smpc_ehr.securemath.constants import COUNT_BITS
from smpc_ehr.securemath.ops import (
    ApproxError,
    MixedOutputsError,
    OutputShareSet,
    Precision,
    Public,
    Secret,
    SecureOps,
    own_values,
)
from smpc_ehr.securemath.roots import QUARTER_TO_ONE, inverse_sqrt

FXP_BITS = 64
"""Bit length l of MPyC's secure fixed-point numbers (sign, integer and fraction)."""
FXP_FRAC_BITS = 32
"""Fractional bits f: resolution 2^-32 ~ 2.3e-10. With l = 2f every |value| < 2^31 has a
representable reciprocal down to 2^-31, which MPyC's division needs (l ~ 2f)."""

_ULP = 2.0**-FXP_FRAC_BITS

COMPARE_COLUMNS = 4
"""`pow2_normalize` uses comparisons up to this many columns, a bit decomposition above."""


def precision(n_parties: int) -> Precision:
    """MPyC's fixed-point precision with `n_parties` parties.

    Each product is truncated once, off by at most e = (C(n, t) + 1) / 2 units of 2^-32
    (`truncation.truncation_error_units`: 2 for 3 parties, 5.5 for 5) and unbiased.
    Reciprocal and sqrt work on a value normalised into [1/4, 1) by a secret power of
    two, with a few such roundings there, then scale back: a few e units of 2^-32
    absolute plus a few relative (docs/backends.md has the measured errors).
    """
    units = truncation_error_units(n_parties) * _ULP
    return Precision(
        frac_bits=FXP_FRAC_BITS,
        max_abs=2.0 ** (FXP_BITS - FXP_FRAC_BITS - 1),
        product_error=units,
        reciprocal=ApproxError(
            low=2.0**-14, high=2.0**30, abs_error=4 * units, rel_error=16 * units
        ),
        sqrt=ApproxError(low=0.0, high=2.0**30, abs_error=4 * units, rel_error=16 * units),
    )


class MpycOps(SecureOps):
    """`SecureOps` on MPyC secure arrays: integers (`SecInt`, exact arithmetic mod a prime)
    and fixed point (`SecFxp(64, 32)`: |values| < 2^31, resolution 2^-32).

    Fixed-point products are rounded once, in the same round (`truncation`: within
    `precision(n).product_error`, unbiased); reciprocal and division use
    MPyC's Newton iteration after normalising by a secret power of two (error a few
    units of 2^-32 relative to the result); sqrt is our Newton iteration (`sqrt`).
    """

    def __init__(self, runtime: Any, bits: int = 32) -> None:
        self._rt = runtime
        self.backend = "mpyc"
        self.n_parties = len(runtime.parties)
        self.my_index = runtime.pid
        self._bits = bits
        self._secint = runtime.SecInt(bits)
        self._secfxp = runtime.SecFxp(FXP_BITS, FXP_FRAC_BITS)
        for sectype in (self._secint, self._secfxp):
            check_field(sectype, runtime.options.sec_param)
        self.precision = precision(self.n_parties)

    def input_ints(self, values: Sequence[int], bits: int) -> list[Secret]:
        if bits > self._bits:
            raise ValueError(f"values of {bits} bits exceed this job's {self._bits}-bit integers")
        mine = self._secint.array(np.array([int(v) for v in values], dtype=object))
        shared: list[Secret] = self._rt.input(mine, senders=list(range(self.n_parties)))
        return shared

    field_equality = True

    @property
    def field_modulus(self) -> int:
        return int(self._secint.field.modulus)

    def input_field_elements(self, values: Sequence[int], below: int) -> list[Secret]:
        modulus = self.field_modulus
        if below > modulus:
            raise ValueError(f"values below {below} do not fit this job's field (< {modulus})")
        mine = np.array([int(v) for v in values], dtype=object)
        if mine.size and (min(mine) < 0 or max(mine) >= below):
            raise ValueError(f"field elements must be in 0..{below - 1}")
        shared: list[Secret] = self._rt.input(
            self._secint.array(mine), senders=list(range(self.n_parties))
        )
        return shared

    def is_zero(self, a: Secret) -> Secret:
        """1 - a^(p-1) (Fermat: a^(p-1) = 1 for every a != 0 in the field of prime p), by
        squaring and multiplying: one product per bit of p - 1, the square and the
        running product of a bit in the same round (about 74 rounds for the count's
        32-bit integers), for any a, where MPyC's own zero test needs |a| < 2^l."""
        exponent = self.field_modulus - 1
        result, power = None, a
        while exponent:
            if exponent & 1:
                result = power if result is None else result * power
            exponent >>= 1
            if exponent:
                power = power * power
        assert result is not None  # p - 1 > 0 has a bit set
        return 1 - result

    def input_values(self, src: int, values: np.ndarray | None, shape: tuple[int, ...]) -> Secret:
        mine = own_values(self, src, values, shape)
        # MPyC would mark an all-integer array (the others' zero placeholders) `integral`
        # and skip roundings for it: the parties' programs would drift apart.
        return self._rt.input(self._secfxp.array(mine, integral=False), senders=src)

    def mul_public(self, a: Secret, c: Public) -> Secret:
        array = np.asarray(c)
        if np.array_equal(array, np.round(array)):  # whole factors: exact, no truncation
            return a * (array.astype(np.int64) if array.ndim else int(array))
        if _sectype(self._rt, a).frac_length == 0:
            raise ValueError("secret integers can only be multiplied by integers")
        return a * (array.astype(float) if array.ndim else float(array))

    def add_public(self, a: Secret, c: Public) -> Secret:
        array = np.asarray(c)
        if _sectype(self._rt, a).frac_length == 0:  # secret integers: integer constants only
            if not np.array_equal(array, np.round(array)):
                raise ValueError("a secret integer plus a non-integer constant")
            return a + (array.astype(np.int64) if array.ndim else int(array))
        return a + (array.astype(float) if array.ndim else float(array))

    def mul_pow2(self, a: Secret, exponents: np.ndarray) -> Secret:
        # 2^-k is on the 2^-32 grid for k <= 32, so this is one rounded product.
        k = np.broadcast_to(np.asarray(exponents, dtype=np.int64), a.shape)
        if k.size and (k.min() < 0 or k.max() > FXP_FRAC_BITS):
            raise ValueError(f"mul_pow2 exponents must be in 0..{FXP_FRAC_BITS}")
        return a * np.ldexp(1.0, -k)

    def stack(self, arrays: Sequence[Secret], axis: int = 0) -> Secret:
        return self._rt.np_stack(tuple(arrays), axis=axis)

    def concatenate(self, arrays: Sequence[Secret], axis: int = 0) -> Secret:
        return self._rt.np_concatenate(tuple(arrays), axis=axis)

    def transpose(self, a: Secret) -> Secret:
        return self._rt.np_transpose(a)

    def sum(self, a: Secret, axis: int | None = None) -> Secret:
        return self._rt.np_sum(a, axis=axis)

    def ge_public(self, a: Secret, bound: float) -> Secret:
        return a >= bound

    def exact_bits(self, a: Secret) -> Secret:
        """MPyC marks comparison results, and their sums and products with whole numbers
        and with each other, `integral`, and multiplies those without truncating: they
        are exact already (anything else gets the comparison)."""
        return a if getattr(a, "integral", False) else super().exact_bits(a)

    def reciprocal(self, a: Secret) -> Secret:
        return 1 / a  # MPyC: normalise by a secret power of two, then Newton (runtime._rec)

    def sqrt(self, a: Secret) -> Secret:
        """sqrt(a) for a >= 0 (a negative a gives garbage, it cannot be checked in secret).

        MPyC has no fixed-point square root (only a bit-by-bit one in its statistics
        module, one comparison per result bit). We find the leading bit of a from its
        bits (`np_to_bits`, `np_find`): a = b 4^k with b in [1/4, 1) and both 4^-k and
        2^k as secret powers of two, so sqrt(a) = sqrt(b) 2^k; then 1/sqrt(b) by
        `securemath.roots.inverse_sqrt` (QUARTER_TO_ONE), and sqrt(b) = b * (1/sqrt(b)).
        Working on b keeps every intermediate near 1, so the rounding of each product
        costs the same relative precision whatever the size of a.
        """
        rt = self._rt
        bits, f = FXP_BITS, FXP_FRAC_BITS
        magnitude = np.flip(rt.np_to_bits(a)[..., :-1], axis=-1)  # highest bit first
        # With i leading zeros, a in [2^e, 2^(e+1)) for e = bits-2-i-f, and b = a / 4^k is
        # in [1/4, 1) for k = ceil((e+1)/2). i = bits-1 means a = 0: it gets the k of bits-2.
        # np_find returns (as secret integers) 4^-k 2^f and 2^k 2^half, both >= 1.
        half = (bits - f) // 2

        def powers(i: int) -> list[int]:
            k = -((i + f + 1 - bits) // 2) if i < bits - 1 else -((f - 1) // 2)
            return [2 ** (f - 2 * k), 2 ** (k + half)]

        _, found = rt.np_find(magnitude, 1, f=powers, e=None)
        scale, root_scale = found[0], found[1]
        b = a * (scale * 2.0**-f)  # exact: the factors are powers of two
        y = inverse_sqrt(self, b, QUARTER_TO_ONE)
        return (b * y) * (root_scale * 2.0**-half)

    def pow2_normalize(self, rows: Secret) -> Secret:
        """`securemath.division.pow2_normalize` (same contract) without the generic version's
        COUNT_BITS + 1 comparisons per column, which cost MPyC much computation each:
        rows 2^-e per column, e = floor(log2 rows[0]), by comparisons for a few
        columns (few rounds, but ten comparisons per column), by a bit decomposition
        for many (dozens of rounds, but cheaper per column). The two cross over at
        about COMPARE_COLUMNS columns on a 2-core machine."""
        columns = int(np.prod(rows.shape[1:]))
        if columns <= COMPARE_COLUMNS:
            return self._pow2_by_comparisons(rows)
        return self._pow2_by_bits(rows)

    def _pow2_by_comparisons(self, rows: Secret) -> Secret:
        """Two rounds of comparisons instead of one per bit: first [r >= 2^(4k)] for
        k = 1..7 finds e to within 4 (a secret one-hot vector picks the public factor
        2^-4k), then [a >= 2^j] for j = 1..3 on a = r 2^-4k in [1, 16) finds the rest."""
        factor = self._pow2_factor(rows[0], coarse=True)
        first = rows[0] * factor
        factor = factor * self._pow2_factor(first, coarse=False)
        return rows * self.stack([factor] * rows.shape[0])

    def _pow2_by_bits(self, rows: Secret) -> Secret:
        """One bit decomposition of row 0 (as in `sqrt`): `np_find` on its bits,
        highest first, yields the secret integer 2^(COUNT_BITS - 1 - e), exact.

        Row 0 holds whole numbers below 2^COUNT_BITS, so its fractional bits are 0:
        truncating them away first (exact) leaves COUNT_BITS bits to decompose instead
        of 64, about half the work and the rounds. (MPyC's own shortcut for `integral`
        arrays in `np_to_bits` declares the wrong result shape in 0.11.)"""
        rt = self._rt
        top = COUNT_BITS - 1
        whole = exact_np_trunc(rt, rows[0], FXP_FRAC_BITS)  # raw value = rows[0]
        integer_bits = rt.np_to_bits(whole, l=COUNT_BITS)  # lowest first
        magnitude = np.flip(integer_bits, axis=-1)  # highest first: bit `top` .. bit 0

        def power(i: int) -> list[int]:
            # the first 1 at position i: rows[0] in [2^(top-i), 2^(top-i+1)), so e =
            # top - i and 2^(top - e) = 2^i; not found (i = COUNT_BITS): rows[0] = 0, e = 0
            return [2**i if i < COUNT_BITS else 2**top]

        _, found = rt.np_find(magnitude, 1, f=power, e=None)
        factor = found[0] * 2.0**-top  # 2^-e, exact: a power of two on the grid
        return rows * self.stack([factor] * rows.shape[0])

    def _pow2_factor(self, a: Secret, coarse: bool) -> Secret:
        """The secret 2^-s, s the largest exponent in the search (multiples of 4 up to
        28 when coarse, else 0..3) with a >= 2^s; 1 when there is none."""
        step, count = (4, COUNT_BITS // 4) if coarse else (1, 3)
        exponents = step * np.arange(1, count + 1)
        bounds = np.ldexp(1.0, exponents).reshape(-1, *([1] * len(a.shape)))
        at_least = self.stack([a] * count) >= bounds  # [a >= 2^(step k)], k = 1..count
        # factor = 1 + sum_k at_least_k (2^-(step k) - 2^-(step (k-1))): telescopes to 2^-s
        drops = (np.ldexp(1.0, -exponents) - np.ldexp(1.0, -(exponents - step))).reshape(
            bounds.shape
        )
        return 1 + self.sum(at_least * drops, axis=0)

    async def reveal(self, a: Secret) -> np.ndarray:
        opened = await self._rt.output(a)
        return np.asarray(opened, dtype=float)

    async def output_shares(self, secrets: Sequence[Secret]) -> OutputShareSet:
        """Fresh shares of `secrets` for the coordinator: resharing first, so the
        coordinator's n shares determine the values and nothing else.

        The secrets must all be integers or all fixed point (`MixedOutputsError`);
        `public_meta["frac_bits"]` tells the coordinator which.
        """
        rt = self._rt
        kinds = {_sectype(rt, s) for s in secrets} or {self._secint}
        if len({t.frac_length for t in kinds}) > 1:
            raise MixedOutputsError()
        if len({t.field for t in kinds}) > 1:
            raise ValueError("a job's outputs must all be of one secure type (one field)")
        sectype = kinds.pop()
        values: list[int] = []
        for fresh in [rt._reshare(batch) for batch in _one_batch(rt, secrets)]:
            shares = await rt.gather(fresh)
            values.extend(int(v) for v in np.asarray(shares.value).reshape(-1))
        return OutputShareSet(
            scheme="shamir",
            modulus=int(sectype.field.modulus),
            point=rt.pid + 1,
            degree=rt.threshold,
            values=values,
            public_meta={"frac_bits": str(sectype.frac_length)},
        )


def _one_batch(rt: Any, secrets: Sequence[Secret]) -> list[Secret]:
    """The outputs as one flat secure array when they are all arrays, so that resharing
    them costs one message per peer however many named outputs an analysis declares
    (their values keep their order: flattened in C order and concatenated)."""
    if len(secrets) > 1 and all(isinstance(s, rt.SecureArray) for s in secrets):
        return [rt.np_concatenate([s.reshape(-1) for s in secrets])]
    return list(secrets)


def _sectype(rt: Any, secret: Secret) -> Any:
    """The secure scalar type of a secure array or scalar."""
    return type(secret).sectype if isinstance(secret, rt.SecureArray) else type(secret)
