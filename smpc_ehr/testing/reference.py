"""A plaintext `SecureOps` that keeps a real backend's precision contract, for tests.

Each of the P parties runs its own program on its own `ReferenceOps`, on a thread of
its own (inputs are synchronous calls, so a party must be able to wait in them for
the others, as on a real backend). The parties meet only over their job's channel
(`ChannelMeeting`): each `input_ints`, `input_values` and `reveal` sends this party's
part to every peer and waits for theirs, and checks that all parties made the same
call (same kind, shapes, source party) and, for `reveal`, hold the same value:
programs that would drift apart on a real backend fail here with the call that differs.

Secrets are plaintext numpy arrays, integers (`input_ints`, exact) or fixed-point
values on the grid of 2^-`frac_bits`. The precision is MPyC's (`REFERENCE_PRECISION`):
- inputs and public constants are rounded to the nearest grid point;
- additions, sums, stacking, comparisons with 0/1 results and selections are exact;
- each product (`mul`, `mul_public` by a non-integer, `mul_pow2`, one per element of
  a `matmul`) is rounded once, probabilistically, within `product_error` and unbiased,
  as MPyC does (the parties share one seed, so they round alike);
- `reciprocal` and `sqrt` are the exact results moved by a random half of their
  stated `ApproxError`, then rounded to the grid; outside the stated domain they give
  0 (garbage a program must not use, as on a real backend);
- every fixed-point value, intermediate ones included, must stay below `max_abs`,
  else `OverflowError` (a real backend would wrap around silently).
Values are float64: exact on the 2^-32 grid below 2^21 in magnitude, within float64's
relative 2^-53 above (far inside every stated bound).
"""

from __future__ import annotations

import concurrent.futures
import io
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from smpc_ehr.backends.mpyc.ops import FXP_FRAC_BITS as MPYC_FRAC_BITS
from smpc_ehr.backends.mpyc.ops import precision as mpyc_precision
from smpc_ehr.securemath.ops import (
    ApproxError,
    Precision,
    Public,
    Secret,
    SecureOps,
    own_values,
)
from smpc_ehr.transport.mesh import JobChannel

FRAC_BITS = MPYC_FRAC_BITS
"""MPyC's fractional bits (SecFxp(64, 32))."""

REFERENCE_PRECISION = mpyc_precision(3)
"""The reference's promise: MPyC's stated precision with 3 parties (backends/mpyc/ops.py
`precision`, docs/backends.md), so a test's tolerance is one a real backend meets too."""


class ReferenceFailure(RuntimeError):
    """The parties' programs drifted apart, or a party waited too long for the others."""


class Meeting(Protocol):
    """Where P parties hand over their parts of each input and reveal, in order."""

    parties: int

    def exchange(self, party: int, call: object, part: np.ndarray) -> list[np.ndarray]:
        """This party's part of its next call; every party's part once all have come.
        `call` describes the call (kind, shapes): it must be the same at every party."""
        ...


class ChannelMeeting:
    """The parties meet over the job's channel: each call's part goes to every peer
    (a header naming the call, then the array in numpy's format, never pickled), and
    the call waits, on the backend's thread, for every peer's part of the same call."""

    def __init__(self, channel: JobChannel, round_seconds: float) -> None:
        self.parties = len(channel.parties)
        self._channel = channel
        self._round_seconds = round_seconds
        self._calls = 0

    def exchange(self, party: int, call: object, part: np.ndarray) -> list[np.ndarray]:
        index, self._calls = self._calls, self._calls + 1
        tag, described = f"reference/{index}", repr(call)
        payload = _encode(described, part)
        peers = self._channel.parties
        for peer in peers:
            if peer != self._channel.me:
                self._channel.send(peer, tag, payload)
        slots: list[tuple[str, np.ndarray]] = []
        for other, peer in enumerate(peers):
            if other == party:
                slots.append((described, np.asarray(part)))
                continue
            wait = min(self._round_seconds, self._channel.remaining())
            try:
                slots.append(_decode(self._channel.expect(peer, tag).result(timeout=wait)))
            except concurrent.futures.TimeoutError:
                raise ReferenceFailure(
                    f"party {party} waited {wait:g} s at exchange {index} ({call}) for "
                    f"party {other}"
                ) from None
        calls = [c for c, _ in slots]
        if any(c != calls[0] for c in calls):
            raise ReferenceFailure(
                f"the parties' programs drifted apart at exchange {index}: {calls}"
            )
        return [p for _, p in slots]


def _encode(call: str, part: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(part), allow_pickle=False)
    return call.encode() + b"\n" + buffer.getvalue()


_NPY_HEADER_LOCK = threading.Lock()
"""np.load parses the .npy header with ast.literal_eval, which CPython 3.11 does not
make safe across threads ("AST constructor recursion depth mismatch"); the in-process
parties decode on several threads at once."""


def _decode(payload: bytes) -> tuple[str, np.ndarray]:
    call, _, array = payload.partition(b"\n")
    with _NPY_HEADER_LOCK:
        return call.decode(), np.load(io.BytesIO(array), allow_pickle=False)


class RefSecret:
    """A 'secret' array in the clear: integers (`frac` 0) or fixed point (`frac` f).

    Overloads the operators analyses use on secrets (as MPyC's and CrypTen's types do),
    with the reference's rounding; refuses `bool()` (a program cannot branch on a
    secret)."""

    __array_ufunc__ = None  # numpy array (op) RefSecret: defer to RefSecret's operators

    def __init__(self, ops: ReferenceOps, value: np.ndarray, frac: int) -> None:
        self.ops = ops
        self.frac = frac
        self.value = np.asarray(value, dtype=np.int64 if frac == 0 else float)
        if frac and self.value.size and np.max(np.abs(self.value)) >= ops.precision.max_abs:
            raise OverflowError(
                f"a fixed-point value of {np.max(np.abs(self.value)):g} is beyond the stated "
                f"range {ops.precision.max_abs:g}"
            )

    # -- numpy-like shape ------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.value.shape)

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def size(self) -> int:
        return int(self.value.size)

    def __len__(self) -> int:
        return len(self.value)

    def __getitem__(self, key: Any) -> RefSecret:
        return self._like(self.value[key])

    def reshape(self, *shape: Any) -> RefSecret:
        return self._like(self.value.reshape(*shape))

    @property
    def T(self) -> RefSecret:
        return self._like(self.value.T)

    def __bool__(self) -> bool:
        raise TypeError("a program cannot branch on a secret value")

    def __repr__(self) -> str:
        kind = "int" if self.frac == 0 else f"fxp{self.frac}"
        return f"RefSecret({kind}, {self.value!r})"

    # -- arithmetic ------------------------------------------------------------------
    def _like(self, value: np.ndarray) -> RefSecret:
        return RefSecret(self.ops, value, self.frac)

    def _other(self, other: Any) -> np.ndarray:
        """The plaintext of a secret of the same kind, or a public constant on the grid."""
        if isinstance(other, RefSecret):
            if other.frac != self.frac:
                raise TypeError("integer and fixed-point secrets cannot be combined")
            return other.value
        array = np.asarray(other, dtype=float)
        if self.frac == 0:
            if not np.array_equal(array, np.round(array)):
                raise ValueError("a secret integer combined with a non-integer constant")
            return array.astype(np.int64)
        return self.ops.nearest(array)

    def __add__(self, other: Any) -> RefSecret:
        return self._like(self.value + self._other(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> RefSecret:
        return self._like(self.value - self._other(other))

    def __rsub__(self, other: Any) -> RefSecret:
        return self._like(self._other(other) - self.value)

    def __neg__(self) -> RefSecret:
        return self._like(-self.value)

    def __mul__(self, other: Any) -> RefSecret:
        if not isinstance(other, RefSecret):
            array = np.asarray(other, dtype=float)
            if np.array_equal(array, np.round(array)):  # whole factors: exact
                return self._like(self.value * array.astype(self.value.dtype))
        factor = self._other(other)
        if self.frac == 0:
            return self._like(self.value * factor)
        return self._like(self.ops.rounded(self.value * factor))

    __rmul__ = __mul__

    def __matmul__(self, other: RefSecret) -> RefSecret:
        product = self.value @ self._other(other)
        return self._like(product if self.frac == 0 else self.ops.rounded(product))

    # -- comparisons: exact, 0/1 of the same kind --------------------------------------
    def _bit(self, result: np.ndarray) -> RefSecret:
        return self._like(np.asarray(result).astype(self.value.dtype))

    def __lt__(self, other: Any) -> RefSecret:
        return self._bit(self.value < self._other(other))

    def __le__(self, other: Any) -> RefSecret:
        return self._bit(self.value <= self._other(other))

    def __gt__(self, other: Any) -> RefSecret:
        return self._bit(self.value > self._other(other))

    def __ge__(self, other: Any) -> RefSecret:
        return self._bit(self.value >= self._other(other))

    def __eq__(self, other: Any) -> RefSecret:  # type: ignore[override]
        return self._bit(self.value == self._other(other))

    def __ne__(self, other: Any) -> RefSecret:  # type: ignore[override]
        return self._bit(self.value != self._other(other))

    __hash__ = None  # type: ignore[assignment]

    def __truediv__(self, other: Any) -> RefSecret:
        """Division by a public constant, as a product with its rounded reciprocal."""
        if isinstance(other, RefSecret):
            raise TypeError("divide secrets with SecureOps.div (an approximation)")
        return self * (1.0 / np.asarray(other, dtype=float))


class ReferenceOps(SecureOps):
    """`SecureOps` in the clear for party `my_index` of `meeting.parties`, meeting the
    others in `meeting`; `seed` (the same at every party) drives the probabilistic
    rounding and the approximations' errors; `backend` is the one it stands in for."""

    def __init__(
        self,
        meeting: Meeting,
        my_index: int,
        bits: int = 32,
        seed: int = 0,
        precision: Precision = REFERENCE_PRECISION,
        backend: str = "mpyc",
    ) -> None:
        self.backend = backend
        self.n_parties = meeting.parties
        self.my_index = my_index
        self.precision = precision
        self._meeting = meeting
        self._bits = bits
        self._rng = np.random.default_rng(seed)

    # -- the grid ------------------------------------------------------------------------
    def nearest(self, values: np.ndarray) -> np.ndarray:
        """Values rounded to the nearest grid point (inputs and public constants)."""
        scale = 2.0**self.frac_bits
        return np.round(np.asarray(values, dtype=float) * scale) / scale

    def rounded(self, exact: np.ndarray) -> np.ndarray:
        """One product's rounding, as MPyC's truncation rounds: floor(x + u) with u the
        sum of d uniforms on [0, 1) less (d - 1) / 2, where the stated product error
        is (d + 1) / 2 units (d = 1: to one of the two grid points around x, the
        nearer one the likelier). Grid values stay, as products with a whole-number
        or 0/1 factor do on MPyC, which needs no truncation for them. (MPyC keeps a
        product exact only when a factor is marked whole, a comparison result or a
        whole constant; a product of two other fixed-point secrets that lands on the
        grid, 0 included, may still round a unit either way there: the reference is
        optimistic in that one case.)"""
        scaled = np.asarray(exact, dtype=float) * 2.0**self.frac_bits
        d = max(1, round(2 * self.precision.product_error * 2.0**self.frac_bits - 1))
        spread = self._rng.random((d, *scaled.shape)).sum(axis=0) - (d - 1) / 2
        on_grid = scaled == np.round(scaled)  # MPyC skips the truncation of whole factors
        return np.where(on_grid, scaled, np.floor(scaled + spread)) / 2.0**self.frac_bits

    def _fixed(self, value: np.ndarray) -> RefSecret:
        return RefSecret(self, value, self.frac_bits)

    @staticmethod
    def _plain(a: Secret) -> RefSecret:
        if not isinstance(a, RefSecret):
            raise TypeError(f"not a secret of the reference backend: {type(a).__name__}")
        return a

    def _same_kind(self, arrays: Sequence[Secret]) -> int:
        fracs = {self._plain(a).frac for a in arrays}
        if len(fracs) != 1:
            raise TypeError("integer and fixed-point secrets cannot be combined")
        return fracs.pop()

    # -- inputs ------------------------------------------------------------------------
    def input_ints(self, values: Sequence[int], bits: int) -> list[Secret]:
        if bits > self._bits:
            raise ValueError(f"values of {bits} bits exceed this job's {self._bits}-bit integers")
        mine = np.array([int(v) for v in values], dtype=np.int64)
        if mine.size and np.max(np.abs(mine)) >= 2**bits:
            raise ValueError(f"an input integer is beyond {bits} bits")
        parts = self._meeting.exchange(self.my_index, ("input_ints", mine.shape, bits), mine)
        return [RefSecret(self, part, 0) for part in parts]

    def input_values(self, src: int, values: np.ndarray | None, shape: tuple[int, ...]) -> Secret:
        mine = own_values(self, src, values, shape)
        call = ("input_values", src, tuple(shape))
        parts = self._meeting.exchange(self.my_index, call, mine)
        return self._fixed(self.nearest(parts[src]))

    # -- the backend's part --------------------------------------------------------------
    def mul_public(self, a: Secret, c: Public) -> Secret:
        return self._plain(a) * c

    def mul_pow2(self, a: Secret, exponents: np.ndarray) -> Secret:
        secret = self._plain(a)
        if secret.frac == 0:
            raise TypeError("mul_pow2 takes fixed-point secrets")
        k = np.broadcast_to(np.asarray(exponents, dtype=np.int64), secret.shape)
        if k.size and k.min() < 0:
            raise ValueError("mul_pow2 exponents must be >= 0")
        return self._fixed(self.rounded(np.ldexp(secret.value, -k)))

    def stack(self, arrays: Sequence[Secret], axis: int = 0) -> Secret:
        frac = self._same_kind(arrays)
        return RefSecret(self, np.stack([self._plain(a).value for a in arrays], axis=axis), frac)

    def concatenate(self, arrays: Sequence[Secret], axis: int = 0) -> Secret:
        frac = self._same_kind(arrays)
        values = [self._plain(a).value for a in arrays]
        return RefSecret(self, np.concatenate(values, axis=axis), frac)

    def transpose(self, a: Secret) -> Secret:
        return self._plain(a).T

    def sum(self, a: Secret, axis: int | None = None) -> Secret:
        secret = self._plain(a)
        return secret._like(np.sum(secret.value, axis=axis))

    def ge_public(self, a: Secret, bound: float) -> Secret:
        return self._plain(a) >= bound

    def reciprocal(self, a: Secret) -> Secret:
        return self._approximate(a, self.precision.reciprocal, _reciprocal)

    def sqrt(self, a: Secret) -> Secret:
        return self._approximate(a, self.precision.sqrt, np.sqrt)

    def _approximate(
        self, a: Secret, error: ApproxError, exact: Callable[[np.ndarray], np.ndarray]
    ) -> Secret:
        """exact(a) moved by up to half the stated error (at random), on the grid; 0
        outside the stated domain [low, high] of |a| (sqrt: of a)."""
        secret = self._plain(a)
        if secret.frac == 0:
            raise TypeError("reciprocal and sqrt take fixed-point secrets")
        x = secret.value
        magnitude = x if exact is np.sqrt else np.abs(x)
        inside = (magnitude >= error.low) & (magnitude <= error.high)
        result = np.zeros_like(x)
        result[inside] = exact(x[inside])
        noise = self._rng.uniform(-0.5, 0.5, x.shape) * error.bound(result)
        return self._fixed(self.nearest(np.where(inside, result + noise, 0.0)))

    async def reveal(self, a: Secret) -> np.ndarray:
        secret = self._plain(a)
        call = ("reveal", secret.shape, secret.frac)
        parts = self._meeting.exchange(self.my_index, call, secret.value)
        if any(not np.array_equal(part, parts[0]) for part in parts):
            raise ReferenceFailure("the parties opened different values (their programs drifted)")
        return np.asarray(secret.value, dtype=float)


def _reciprocal(x: np.ndarray) -> np.ndarray:
    return 1.0 / x
