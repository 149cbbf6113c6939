"""Fixed-point truncation from pseudorandom shares alone: no random bits, no extra round.

MPyC truncates every fixed-point product (`np_trunc`, `trunc`) by opening
c = x + r with r = r_hi 2^f + r_lo, where r_lo is built from f secret random bits. Each
bit costs MPyC a PRSS share, a zero sharing, an opened square and a modular square root:
for 32 fractional bits that was more than half of an MPyC Newton step's time.

Here r_lo is a PRSS sum instead: every subset S of n - t parties draws u_S uniform in
[0, 2^f) from the key its members share, and each party turns the subsets it belongs
to into its Shamir share of r_lo = sum_S u_S locally (the same non-interactive PRSS
MPyC uses for r_hi). Any t colluders miss the one subset made of the others, so
r_lo mod 2^f is uniform to them and c mod 2^f tells them nothing, as before; c's high
part is masked by r_hi at statistical distance 2^-k, as before. What changes is the
rounding: r_lo spans [0, d 2^f) with d = C(n, t) subsets, so the result is
floor((x + r_lo - B) / 2^f) with a public offset B = (d - 1) 2^(f-1) that removes the
mean: off by at most (d + 1) / 2 units of 2^-f (d = 3 for 3 parties: 2 units; 10 for
5; 35 for 7) instead of 1, unbiased to within (d - 1) / 2^(f+1) units.
`truncation_error_units` states it; `ops.precision` follows it.

Truncating a whole number (its f low bits zero) is exact in MPyC but not here; code that
needs that calls MPyC's own `Runtime.np_trunc` explicitly (`exact_np_trunc`).
"""

from __future__ import annotations

import functools
import importlib
import math
from typing import Any

import numpy as np

from smpc_ehr.backends.mpyc.library import threshold


def prss_subsets(n_parties: int) -> int:
    """d: how many PRSS subsets (of n - t parties) add to one pseudorandom value."""
    return math.comb(n_parties, threshold(n_parties))


def truncation_error_units(n_parties: int) -> float:
    """Most a truncation is off, in units of 2^-f: (d + 1) / 2 for d PRSS subsets."""
    return (prss_subsets(n_parties) + 1) / 2


@functools.cache
def runtime_class(mpyc_runtime: Any) -> type:
    """MPyC's `Runtime` with both truncations replaced (made once MPyC is imported)."""
    asyncoro: Any = importlib.import_module("mpyc.asyncoro")
    thresha: Any = importlib.import_module("mpyc.thresha")
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

        def _keeps_mpyc_truncation(self, sftype: type, f: int | None) -> bool:
            """Field elements, no PRSS, or nothing to truncate: MPyC's own way."""
            if not issubclass(sftype, self.SecureObject) or self.options.no_prss:
                return True
            return (sftype.frac_length if f is None else f) < 1  # type: ignore[attr-defined]

        @asyncoro.mpc_coro
        async def _np_trunc(self, a: Any, f: int | None, width: int | None):
            sftype = type(a)
            await self.returnType((sftype, a.shape))
            f, width = _widths(self, sftype.sectype, sftype.frac_length, f, width)
            a = await self.gather(a)
            return await self._truncate(sftype.sectype.field, a.value, f, width)

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
            truncated = await self._truncate(sftype.field, values, f, width)
            out = [sftype.field(int(v)) for v in truncated.value]
            return out if as_list else out[0]

        async def _truncate(self, field: Any, values: np.ndarray, f: int, width: int) -> Any:
            """The shares of x / 2^f from the shares `values` of x, |x| < 2^(width-1)
            (the module doc's l)."""
            n = values.size
            d = prss_subsets(len(self.parties))
            low = thresha.np_pseudorandom_share(
                field, len(self.parties), self.pid, self.prfs(1 << f), self._prss_uci(), n
            )
            high = self._np_randoms(field, n, 1 << self.options.sec_param + width - f)
            shifted, masked = mask_shares(values, low.value, high.value, f, width, d)
            opened = await self.output(field.array(masked))
            return unmask(field, shifted, opened.value, f)

    return PrssTruncationRuntime


def mask_shares(
    values: np.ndarray, low: np.ndarray, high: np.ndarray, f: int, width: int, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """A party's shares of x + r_lo - B (kept) and of x + r_lo - B + 2^width + r_hi 2^f
    (opened), from its shares of x, r_lo and r_hi (integers, any shape of x)."""
    shifted = values + (low.reshape(values.shape) - ((d - 1) << (f - 1)))
    # + 2^width keeps x - B + 2^width positive; r_hi 2^f masks the top
    return shifted, shifted + (1 << width) + (high.reshape(values.shape) << f)


def unmask(field: Any, shifted: np.ndarray, opened: np.ndarray, f: int) -> Any:
    """A party's share of floor((x + r_lo - B) / 2^f): the kept share less the opened
    value's f low bits (which it shares with the kept value), divided by 2^f."""
    return field.array(shifted - (opened & ((1 << f) - 1))) >> f


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
