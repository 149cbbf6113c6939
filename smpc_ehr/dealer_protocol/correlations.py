"""Correlated randomness from seeded streams: the one description both ends draw by.

Every party i holds a `SeedStream` that the dealer holds too. For one request (a
Beaver triple, a square pair, a wrap count, a random bit), every party draws its
shares of the *inputs* (a, b / r / rB) from its stream, and every party except rank
0 also draws its share of the *output* (c / r² / theta / rA). Rank 0 does not draw
its output share: the dealer, replaying all n streams, computes the plaintext output
and hands rank 0 the one value that makes the shares add up (the "correction").
This is CrypTen's TTP scheme (crypten/mpc/provider/ttp_provider.py) with AES-CTR
streams instead of torch's Mersenne Twister.

Both sides draw by `recipe_for(request)`; the party side goes through
`party_shares` and the dealer side through `correction`, so the order of draws
cannot drift between them. Pure torch: no gRPC, no crypten.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from smpc_ehr.dealer_protocol.streams import SeedStream, Size, shape_of

KINDS = ("additive", "square", "binary", "wraps", "B2A")
OPS = ("mul", "matmul", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d")
MAX_ELEMENTS = 50_000_000
"""Largest tensor (input or output) of one request: 400 MB of int64 per party."""
MAX_DIMS = 8
MAX_KWARGS_JSON = 1000
_MAX_KWARG = 1 << 16
_CONV_KWARGS = frozenset({"stride", "padding", "dilation", "groups"})
_OP_KWARGS: dict[str, frozenset[str]] = {
    "mul": frozenset(),
    "matmul": frozenset(),
    "conv1d": _CONV_KWARGS,
    "conv2d": _CONV_KWARGS,
    "conv_transpose1d": _CONV_KWARGS | {"output_padding"},
    "conv_transpose2d": _CONV_KWARGS | {"output_padding"},
}

KwargValue = int | tuple[int, ...]


@dataclass(frozen=True)
class Request:
    """One validated request for correlated randomness; make it with `make_request`."""

    kind: str
    size0: tuple[int, ...]
    size1: tuple[int, ...]
    op: str
    op_kwargs: tuple[tuple[str, KwargValue], ...]
    out_size: tuple[int, ...]

    @property
    def kwargs(self) -> dict[str, KwargValue]:
        """The op's keyword arguments (conv stride, padding, ...)."""
        return dict(self.op_kwargs)

    def kwargs_json(self) -> str:
        """The op's keyword arguments as the JSON object sent on the wire."""
        return json.dumps(self.kwargs, sort_keys=True, separators=(",", ":"))


def _check_size(name: str, size: Size) -> tuple[int, ...]:
    shape = shape_of(size)
    if len(shape) > MAX_DIMS:
        raise ValueError(f"{name} has {len(shape)} dimensions; at most {MAX_DIMS} are accepted")
    if any(d > MAX_ELEMENTS for d in shape) or math.prod(shape) > MAX_ELEMENTS:
        raise ValueError(
            f"{name} {list(shape)} has more than {MAX_ELEMENTS:,} elements; "
            "split the computation into smaller tensors"
        )
    return shape


def _check_kwargs(op: str, kwargs: Mapping[str, Any]) -> tuple[tuple[str, KwargValue], ...]:
    """Only named ints or short int lists that the op knows, within small bounds."""
    allowed = _OP_KWARGS[op]
    checked: list[tuple[str, KwargValue]] = []
    for key, value in sorted(kwargs.items()):
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise ValueError(f"{op} does not take the argument {key!r} (accepted: {names})")
        values = value if isinstance(value, list | tuple) else [value]
        if (
            not 1 <= len(values) <= 3
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in values)
            or not all(0 <= v <= _MAX_KWARG for v in values)
        ):
            raise ValueError(
                f"{op} argument {key!r} must be an integer or a list of 1-3 integers "
                f"between 0 and {_MAX_KWARG}, got {value!r}"
            )
        checked.append((key, tuple(values) if isinstance(value, list | tuple) else value))
    return tuple(checked)


def _broadcast(size0: tuple[int, ...], size1: tuple[int, ...]) -> tuple[int, ...]:
    """numpy/torch broadcasting of two sizes (computed here: torch's own helper is slow
    to load the first time)."""
    width = max(len(size0), len(size1))
    padded0 = (1,) * (width - len(size0)) + size0
    padded1 = (1,) * (width - len(size1)) + size1
    out = []
    for d0, d1 in zip(padded0, padded1, strict=True):
        if d0 != d1 and 1 not in (d0, d1):
            raise ValueError(f"sizes {list(size0)} and {list(size1)} do not broadcast")
        out.append(d1 if d0 == 1 else d0)
    return tuple(out)


def _matmul_size(size0: tuple[int, ...], size1: tuple[int, ...]) -> tuple[int, ...]:
    """torch.matmul's output size: 1-D operands are promoted, batch dimensions broadcast."""
    if not size0 or not size1:
        raise ValueError("both matmul operands need at least one dimension")
    a = (1, *size0) if len(size0) == 1 else size0
    b = (*size1, 1) if len(size1) == 1 else size1
    if a[-1] != b[-2]:
        raise ValueError(f"inner dimensions {a[-1]} and {b[-2]} differ")
    out = (*_broadcast(a[:-2], b[:-2]), a[-2], b[-1])
    if len(size0) == 1:
        out = out[:-2] + out[-1:]
    if len(size1) == 1:
        out = out[:-1]
    return out


def _conv_size(
    op: str, size0: tuple[int, ...], size1: tuple[int, ...], kwargs: Any
) -> tuple[int, ...]:
    """A convolution's output size from torch's meta device (shapes only, no data).

    The first call in a process loads torch._dynamo (about 2 s); mul and matmul avoid it.
    """
    meta0 = torch.empty(size0, dtype=torch.long, device="meta")
    meta1 = torch.empty(size1, dtype=torch.long, device="meta")
    return tuple(getattr(torch, op)(meta0, meta1, **kwargs).shape)


def _output_size(
    kind: str, size0: tuple[int, ...], size1: tuple[int, ...], op: str, kwargs: Any
) -> tuple[int, ...]:
    """The output's size, found without computing anything."""
    try:
        if kind == "binary" or op == "mul":
            return _broadcast(size0, size1)
        if op == "matmul":
            return _matmul_size(size0, size1)
        if kind == "additive":
            return _conv_size(op, size0, size1, kwargs)
    except (RuntimeError, TypeError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        what = op if kind == "additive" else "binary and"
        raise ValueError(
            f"{what} of sizes {list(size0)} and {list(size1)} fails: {first}"
        ) from None
    return size0


def make_request(
    kind: str,
    size0: Size,
    size1: Size = (),
    op: str = "",
    op_kwargs: Mapping[str, Any] | None = None,
) -> Request:
    """Validate a request (the same checks on the party and at the dealer); ValueError if bad."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    shape0 = _check_size("size0", size0)
    shape1 = _check_size("size1", size1)
    kwargs = dict(op_kwargs or {})
    if kind == "additive":
        if op not in OPS:
            raise ValueError(f"unknown op {op!r}; expected one of {', '.join(OPS)}")
    elif op or kwargs:
        raise ValueError(f"kind {kind} takes no op or op arguments")
    if kind not in ("additive", "binary") and shape1:
        raise ValueError(f"kind {kind} takes one size, got size1 {list(shape1)}")
    checked = _check_kwargs(op, kwargs) if kind == "additive" else ()
    out = _output_size(kind, shape0, shape1, op, dict(checked))
    _check_size("the output", out)
    return Request(kind, shape0, shape1, op, checked, out)


def kwargs_from_json(text: str) -> dict[str, Any]:
    """Parse the wire's op arguments: a JSON object (never pickle, never eval)."""
    if len(text) > MAX_KWARGS_JSON:
        raise ValueError(f"op arguments longer than {MAX_KWARGS_JSON} characters")
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"op arguments are not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("op arguments must be a JSON object")
    return value


# ---------------------------------------------------------------- what is drawn


@dataclass(frozen=True)
class Draw:
    """One tensor a party draws from its stream: ring elements, or `bitlength`-bit values."""

    size: tuple[int, ...]
    bitlength: int | None = None

    def take(self, stream: SeedStream) -> torch.Tensor:
        return stream.bits(self.size, self.bitlength)


@dataclass(frozen=True)
class Recipe:
    """What every party draws for one request, in order, and how shares combine.

    `inputs` are drawn by every party; `output` by every party but rank 0, after the
    inputs. Input shares combine by xor when `inputs_xor` (else by addition mod
    2^64); output shares likewise by `output_xor`. For "wraps" the input shares
    combine into their wrap count (see `_plaintext`).
    """

    inputs: tuple[Draw, ...]
    inputs_xor: bool
    output: Draw
    output_xor: bool


def recipe_for(request: Request) -> Recipe:
    """The draws of `request`, mirroring CrypTen's TrustedThirdParty provider."""
    kind, size0, out = request.kind, request.size0, request.out_size
    if kind == "additive":
        return Recipe((Draw(size0), Draw(request.size1)), False, Draw(out), False)
    if kind == "binary":
        return Recipe((Draw(size0), Draw(request.size1)), True, Draw(out), True)
    if kind == "B2A":
        return Recipe((Draw(size0, bitlength=1),), True, Draw(out), False)
    return Recipe((Draw(size0),), False, Draw(out), False)  # square, wraps


def party_shares(
    stream: SeedStream,
    request: Request,
    rank: int,
    correction: Callable[[], torch.Tensor],
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One party's shares: (input shares, output share). Rank 0 calls `correction()`
    for its output share instead of drawing it."""
    recipe = recipe_for(request)
    inputs = [draw.take(stream) for draw in recipe.inputs]
    output = correction() if rank == 0 else recipe.output.take(stream)
    return inputs, output


# ---------------------------------------------------------------- the dealer's side


def _combine(acc: torch.Tensor, share: torch.Tensor, xor: bool) -> torch.Tensor:
    return acc.bitwise_xor_(share) if xor else acc.add_(share)


def _wraps(total: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
    """How often total + share wraps around 2^64 in int64 arithmetic: +1 where two
    positives sum to a negative, -1 where two negatives sum to a positive. CrypTen's
    `crypten.common.util.count_wraps([total, share])`, whose theta the parties expect
    (tests/test_dealer_math.py checks the two agree); here so the dealer needs no crypten.
    """
    after = total + share
    over = (total > 0) & (share > 0) & (after < 0)
    under = (total < 0) & (share < 0) & (after > 0)
    return over.long() - under.long()


def _plaintext(request: Request, recipe: Recipe, streams: Sequence[SeedStream]) -> torch.Tensor:
    """The secret output (c, r², theta, rA) from every party's input shares.

    Folds party by party, so memory holds the running totals, not n copies.
    """
    if request.kind == "wraps":
        total = recipe.inputs[0].take(streams[0])
        theta = torch.zeros_like(total)
        for stream in streams[1:]:
            share = recipe.inputs[0].take(stream)
            theta.add_(_wraps(total, share))  # CrypTen's count, one step at a time
            total.add_(share)
        return theta
    totals = [draw.take(streams[0]) for draw in recipe.inputs]
    for stream in streams[1:]:
        for total, draw in zip(totals, recipe.inputs, strict=True):
            _combine(total, draw.take(stream), recipe.inputs_xor)
    if request.kind == "additive":
        result: torch.Tensor = getattr(torch, request.op)(totals[0], totals[1], **request.kwargs)
        return result
    if request.kind == "square":
        return totals[0].mul(totals[0])
    if request.kind == "binary":
        return totals[0].bitwise_and(totals[1])
    return totals[0]  # B2A: the random bit, now as an integer to share arithmetically


def correction(streams: Sequence[SeedStream], request: Request) -> torch.Tensor:
    """Rank 0's output share: the plaintext output minus (or xor) every other party's share.

    `streams[i]` is party i's stream; each is advanced exactly as party i advances its own.
    """
    if len(streams) < 2:
        raise ValueError("correlated randomness needs at least 2 parties")
    recipe = recipe_for(request)
    result = _plaintext(request, recipe, streams)
    if tuple(result.shape) != request.out_size:
        raise ValueError(f"output size {list(result.shape)} != {list(request.out_size)}")
    for stream in streams[1:]:
        share = recipe.output.take(stream)
        if recipe.output_xor:
            result.bitwise_xor_(share)
        else:
            result.sub_(share)
    return result
