"""MPyC's fixed-point products in one round each, truncated with PRSS masks alone.

MPyC multiplies two secret fixed-point arrays in two rounds: it reshares the product
(degree 2t back to t), then truncates it (`np_trunc`) by opening c = x + r with
r = r_hi 2^f + r_lo, where r_lo is built from f secret random bits. Each bit costs a
PRSS share, a zero sharing, an opened square and a modular square root: for 32
fractional bits that was more than half of a Newton step's time.

`runtime_class` changes both:
- r_lo is a PRSS sum: every subset S of n - t parties draws u_S uniform in [0, 2^f)
  from the key its members share, and each party turns the subsets it belongs to into
  its Shamir share of r_lo = sum_S u_S locally (the same non-interactive PRSS MPyC
  uses for r_hi). Any t colluders miss the one subset made of the others, so r_lo mod
  2^f is uniform to them and c mod 2^f tells them nothing, as before; c's high part is
  masked by r_hi at statistical distance about 2^-k, as before.
- A product of two secret arrays is opened masked straight from its degree-2t shares,
  with a pseudorandom degree-2t sharing of zero added (MPyC's own `is_zero_public`
  does this), so the opened shares determine c and nothing else; the result's shares
  are floor(c / 2^f) less the public offsets less the shares of r_hi, which have
  degree t. One round instead of two, the same opened value.

What changes is the rounding: r_lo spans [0, d 2^f) with d = C(n, t) subsets, so the
result is floor((x + r_lo - B) / 2^f) with a public offset B = (d - 1) 2^(f-1) that
removes the mean: off by at most (d + 1) / 2 units of 2^-f (d = 3 for 3 parties: 2
units; 10 for 5; 35 for 7) instead of 1, unbiased to within (d - 1) / 2^(f+1) units.
`truncation_error_units` states it; `ops.precision(n)` follows it. Truncating a whole
number (its f low bits zero) is exact in MPyC but not here; code that needs that calls
MPyC's own truncation (`exact_np_trunc`).
"""

from __future__ import annotations

import functools
import importlib
import math
import operator
from typing import Any

import numpy as np

from smpc_ehr.backends.mpyc.library import threshold


def prss_subsets(n_parties: int) -> int:
    """d: how many PRSS subsets (of n - t parties) add to one pseudorandom value."""
    return math.comb(n_parties, threshold(n_parties))


def truncation_error_units(n_parties: int) -> float:
    """Most a truncation is off, in units of 2^-f: (d + 1) / 2 for d PRSS subsets."""
    return (prss_subsets(n_parties) + 1) / 2


def masked(
    values: np.ndarray, low: np.ndarray, high: np.ndarray, f: int, width: int, d: int
) -> np.ndarray:
    """A party's share of c = x + r_lo - B + 2^width + r_hi 2^f, to be opened, from its
    shares of x (|x| < 2^(width-1)), r_lo and r_hi (integers, any shape of x); + 2^width
    keeps c positive."""
    shape = values.shape
    offset = (1 << width) - ((d - 1) << (f - 1))
    return values + low.reshape(shape) + (high.reshape(shape) << f) + offset


def unmasked(field: Any, opened: np.ndarray, high: np.ndarray, f: int, width: int) -> Any:
    """A party's share of floor((x + r_lo - B) / 2^f) = floor(c / 2^f) - 2^(width-f) - r_hi,
    from the opened c and its share of r_hi (degree t, so the result's is too)."""
    return field.array((opened >> f) - (1 << (width - f)) - high.reshape(opened.shape))


@functools.cache
def runtime_class(mpyc_runtime: Any) -> type:
    """MPyC's `Runtime` with fixed-point products and truncations replaced (made once
    MPyC is imported); anything else, and these without PRSS, are MPyC's own."""
    asyncoro: Any = importlib.import_module("mpyc.asyncoro")
    thresha: Any = importlib.import_module("mpyc.thresha")
    matmul_shape: Any = importlib.import_module("mpyc.numpy").np._matmul_shape
    base: Any = mpyc_runtime.Runtime

    # MPyC reads an MPyC coroutine's result type from its first await (a return
    # annotation would be taken as the type), so these have none.
    class PrssTruncationRuntime(base):
        def np_trunc(self, a: Any, f: int | None = None, l: int | None = None):  # noqa: E741
            if self._keeps_mpyc_truncation(type(a), f):
                return base.np_trunc(self, a, f=f, l=l)
            return self._np_trunc(a, f, l)

        def trunc(self, x: Any, f: int | None = None, l: int | None = None):  # noqa: E741
            first = x[0] if isinstance(x, list) else x
            if self._keeps_mpyc_truncation(type(first), f):
                return base.trunc(self, x, f=f, l=l)
            return self._list_trunc(x, f, l)

        def np_multiply(self, a: Any, b: Any):
            if self._fuses(a, b):
                return self._product(a, b, np.broadcast_shapes(a.shape, b.shape), operator.mul)
            return base.np_multiply(self, a, b)

        def np_matmul(self, a: Any, b: Any):
            shape = matmul_shape(getattr(a, "shape", ()), getattr(b, "shape", ()))
            if shape is not None and self._fuses(a, b):
                return self._product(a, b, shape, operator.matmul)
            return base.np_matmul(self, a, b)

        def _keeps_mpyc_truncation(self, sftype: type, f: int | None) -> bool:
            """Field elements, no PRSS, or nothing to truncate: MPyC's own way."""
            if not issubclass(sftype, self.SecureObject) or self.options.no_prss:
                return True
            return (sftype.frac_length if f is None else f) < 1  # type: ignore[attr-defined]

        def _fuses(self, a: Any, b: Any) -> bool:
            """Two secret fixed-point arrays of one type, neither known whole: fused."""
            kind = type(a)
            return (
                isinstance(a, self.SecureArray)
                and type(b) is kind
                and kind.frac_length > 0
                and not (a.integral or b.integral)
                and not self.options.no_prss
            )

        @asyncoro.mpc_coro
        async def _product(self, a: Any, b: Any, shape: tuple[int, ...], op: Any):
            stype = type(a)
            await self.returnType((stype, shape))
            if a is b:
                a = b = await self.gather(a)
            else:
                a, b = await self.gather(a, b)
            f = stype.frac_length
            width = stype.sectype.bit_length + f
            return await self._truncate(stype.sectype.field, op(a, b).value, f, width, True)

        @asyncoro.mpc_coro
        async def _np_trunc(self, a: Any, f: int | None, width: int | None):
            sftype = type(a)
            await self.returnType((sftype, a.shape))
            f, width = _widths(self, sftype.sectype, sftype.frac_length, f, width)
            a = await self.gather(a)
            return await self._truncate(sftype.sectype.field, a.value, f, width, False)

        @asyncoro.mpc_coro
        async def _list_trunc(self, x: Any, f: int | None, width: int | None):
            as_list = isinstance(x, list)
            items = x if as_list else [x]
            sftype = type(items[0])
            if as_list:
                await self.returnType(sftype, len(items))
            else:
                await self.returnType(sftype)
            f, width = _widths(self, sftype, sftype.frac_length, f, width)
            items = await self.gather(items)
            values = np.array([item.value for item in items], dtype=object)
            truncated = await self._truncate(sftype.field, values, f, width, False)
            out = [sftype.field(int(v)) for v in truncated.value]
            return out if as_list else out[0]

        async def _truncate(
            self, field: Any, values: np.ndarray, f: int, width: int, double_degree: bool
        ) -> Any:
            """Shares of x / 2^f (module doc) from this party's shares `values` of x, of
            degree 2t (a product not yet reshared) if `double_degree`, else t."""
            m, n = len(self.parties), values.size
            low = thresha.np_pseudorandom_share(
                field, m, self.pid, self.prfs(1 << f), self._prss_uci(), n
            ).value
            high = self._np_randoms(field, n, 1 << self.options.sec_param + width - f).value
            share = masked(values, low, high, f, width, prss_subsets(m))
            opening_threshold = self.threshold
            if double_degree:  # hide the product's own polynomial behind a zero sharing
                zero = thresha.np_pseudorandom_share_0(
                    field, m, self.pid, self.prfs(field.order), self._prss_uci(), n
                )
                share = share + zero.value.reshape(share.shape)
                opening_threshold = 2 * self.threshold
            opened = await self.output(field.array(share), threshold=opening_threshold)
            return unmasked(field, opened.value, high, f, width)

    return PrssTruncationRuntime


def _widths(
    rt: Any, sectype: Any, frac_length: int, f: int | None, width: int | None
) -> tuple[int, int]:
    """MPyC's defaults: f fractional bits, and the value's bits (plus f for a product)."""
    f = frac_length if f is None else f
    width = width or sectype.bit_length
    if issubclass(sectype, rt.SecureFixedPoint):
        width += f
    return f, width


def exact_np_trunc(runtime: Any, a: Any, f: int) -> Any:
    """MPyC's own truncation: exact when the f low bits of every element are zero."""
    return importlib.import_module("mpyc.runtime").Runtime.np_trunc(runtime, a, f=f)
