"""Running one job's secure program with CrypTen over the mesh.

CrypTen is synchronous and keeps global state (its communicator, config and random
generators), so a CrypTen job runs alone, on a worker thread, between
`crypten.init()` and `crypten.uninit()`, with our `MeshCommunicator` installed where
CrypTen looks for its communicator. Correlated randomness comes from the roster's
dealer (`provider.DealerProvider`); CrypTen's trusted-first-party provider, in which
party 0 makes every Beaver triple in the clear, is refused unless a test asks for it.

Precision (`precision`, docs/backends.md): integers are encoded at scale 1 and are
exact up to 2^62. Fixed-point values have 16 fractional bits (CrypTen's default,
resolution 2^-16 ~ 1.5e-5; inputs are rounded to the grid); every value, products
included, must stay below 2^31. A product is off by less than n units of 2^-16 (n
parties). Reciprocal, division and sqrt are CrypTen's approximations: on [0.5, 8] the
reciprocal is off by less than 10n units of 2^-16; on [0.25, 64] sqrt is within 0.4 %.
Security: secure against up to n-1 colluding parties provided the dealer colludes with
none of them. All randomness is AES-256-CTR on fresh 32-byte seeds: the dealer's
(`streams`) and CrypTen's own pairwise zero-sharing and local generators, which
upstream are Mersenne Twisters (`prng` replaces them when this module is imported).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from smpc_ehr.backends import check_backend
from smpc_ehr.backends.crypten import prng
from smpc_ehr.backends.crypten.communicator import MeshCommunicator
from smpc_ehr.backends.crypten.compat import import_crypten
from smpc_ehr.securemath.ops import (
    ApproxError,
    MixedOutputsError,
    OutputShareSet,
    Precision,
    ProgressSink,
    Public,
    Secret,
    SecureOps,
    SecureProgram,
    own_values,
)
from smpc_ehr.transport.mesh import JobChannel

crypten = import_crypten()

import torch  # noqa: E402

FRAC_BITS = 16
"""Fractional bits of CrypTen's fixed-point values (its default): resolution 2^-16."""
INT_BITS = 62
"""Integers at scale 1 are exact in Z_2^64; comparisons need differences below 2^63."""
RING_MODULUS = 2**64

_job_lock = threading.Lock()
_ready: MeshCommunicator | None = None
"""The communicator `crypten.init()` will take up (CrypTen checks it is not yet set)."""
_current: MeshCommunicator | None = None


def get_communicator() -> MeshCommunicator:
    """The running job's communicator (what `crypten.communicator.get()` returns)."""
    if _current is None:
        raise RuntimeError("no CrypTen job is running")
    return _current


def _take_up(*args: Any, **kwargs: Any) -> None:
    """`crypten.init()` takes up the communicator `run_job` made ready."""
    global _current
    _current = _ready


def _forget() -> None:
    global _ready, _current
    _ready = _current = None


# The four functions of `crypten.communicator` that choose CrypTen's communicator,
# replaced once, so that every CrypTen module uses the job's MeshCommunicator.
_module: Any = crypten.communicator
_module.get = get_communicator
_module._init = _take_up
_module.is_initialized = lambda: _current is not None
_module.uninit = _forget
prng.install()  # CrypTen's generators: AES-CTR streams seeded at crypten.init()


def precision(n_parties: int) -> Precision:
    """CrypTen's fixed-point precision with `n_parties` parties (measured: docs/backends.md).

    A product is computed at scale 2^32 and truncated by each party flooring its own
    share (n > 2: with a correction for wrap-around), so it is off by less than n units
    of 2^-16. The reciprocal's Newton step 2y - y*y*a multiplies the rounding of y*y by
    a, and rounds twice more, so its error grows with a: less than (8 + 2) n units of
    2^-16 on [0.5, 8]. sqrt is
    3 Newton steps for 1/sqrt from an exp-based first guess: 0.4 % relative error on
    [0.25, 64], bounded by convergence, not by rounding. Outside these domains CrypTen's
    approximations fail (1/a is wrong by orders of magnitude for a > ~70).
    """
    ulp = 2.0**-FRAC_BITS
    return Precision(
        frac_bits=FRAC_BITS,
        max_abs=2.0**31,  # a product must stay below 2^31: it is formed at scale 2^32 < 2^63
        product_error=n_parties * ulp,
        reciprocal=ApproxError(low=0.5, high=8.0, abs_error=10 * n_parties * ulp, rel_error=0.0),
        sqrt=ApproxError(low=0.25, high=64.0, abs_error=4 * n_parties * ulp, rel_error=4e-3),
    )


class CryptenOps(SecureOps):
    """`SecureOps` on CrypTen tensors (additive shares in Z_2^64).

    Integers (`input_ints`) are encoded at scale 1, so they are exact up to 2^62 and
    their products need no truncation. Fixed-point values (`input_values`) have 16
    fractional bits; see `precision`. A comparison gives a 0/1 tensor at scale 1 either
    way (CrypTen's own encoding), which is why a job that input both kinds cannot open
    comparison results: they could not be told from integers.
    """

    comparisons_per_octave = 4
    """A CrypTen comparison batch costs its rounds whatever its width; each Newton step
    two rounds of products with truncation (`divide_by_bounded_counts`)."""

    def __init__(self, comm: Any) -> None:
        self._comm = comm
        self.backend = "crypten"
        self.n_parties = comm.get_world_size()
        self.my_index = comm.get_rank()
        self.precision = precision(self.n_parties)
        self._input_kinds: set[str] = set()

    def input_ints(self, values: Sequence[int], bits: int) -> list[Secret]:
        if bits > INT_BITS:
            raise ValueError(f"CrypTen holds integers exactly up to {INT_BITS} bits, not {bits}")
        self._input_kinds.add("int")
        mine = torch.tensor([int(v) for v in values], dtype=torch.int64)
        return [
            crypten.cryptensor(
                mine if src == self.my_index else torch.zeros_like(mine), src=src, precision=0
            )
            for src in range(self.n_parties)
        ]

    def input_values(self, src: int, values: np.ndarray | None, shape: tuple[int, ...]) -> Secret:
        self._input_kinds.add("fixed")
        mine = torch.from_numpy(_on_grid(own_values(self, src, values, shape)))
        return crypten.cryptensor(mine, src=src)

    def mul_public(self, a: Secret, c: Public) -> Secret:
        on_grid = _on_grid(c)
        a = _fixed_for(a, on_grid)
        return a * (torch.from_numpy(on_grid) if isinstance(c, np.ndarray) else float(on_grid))

    def mul_pow2(self, a: Secret, exponents: np.ndarray) -> Secret:
        # A public integer divisor makes CrypTen truncate the shares (with the dealer's
        # wrap-around correction for n > 2): the result keeps a's scale and is off by at
        # most n units of its last place, whatever k.
        k = np.broadcast_to(np.asarray(exponents, dtype=np.int64), tuple(a.size()))
        if k.size and (k.min() < 0 or k.max() > INT_BITS - FRAC_BITS):
            raise ValueError(f"mul_pow2 exponents must be in 0..{INT_BITS - FRAC_BITS}")
        return a.div(torch.from_numpy(np.left_shift(np.int64(1), k)))

    def weighted_sum(self, a: Secret, weights: np.ndarray) -> Secret:
        # Multiply the shares by the weights' fixed-point encodings (integers: exact in
        # the ring), add along axis 0, and truncate once instead of once per product.
        encoded = np.rint(np.broadcast_to(weights, tuple(a.size())) * 2**FRAC_BITS)
        result = a[0].clone()
        result._tensor.share = (a._tensor.share * torch.from_numpy(encoded.astype(np.int64))).sum(0)
        if (
            int(a._tensor.encoder.scale) == 1
        ):  # integers or bits: the weights' scale is the result's
            result._tensor.encoder = crypten.encoder.FixedPointEncoder(precision_bits=FRAC_BITS)
            return result
        return result.div(2**FRAC_BITS)

    def add(self, a: Secret, b: Secret) -> Secret:
        # CrypTen would bring an operand at scale 1 (a comparison result) to the other's
        # scale in place, in share storage that a slice shares with the array it was cut
        # from: that array would then read 2^16 times too large (a logistic fit's count
        # of saturated rows did). `_one_scale` re-encodes a copy.
        a, b = _one_scale([a, b])
        return a + b

    def sub(self, a: Secret, b: Secret) -> Secret:
        a, b = _one_scale([a, b])  # as `add`
        return a - b

    def stack(self, arrays: Sequence[Secret], axis: int = 0) -> Secret:
        return crypten.stack(_one_scale(arrays), dim=axis)

    def concatenate(self, arrays: Sequence[Secret], axis: int = 0) -> Secret:
        return crypten.cat(_one_scale(arrays), dim=axis)

    def transpose(self, a: Secret) -> Secret:
        return a.t()

    def sum(self, a: Secret, axis: int | None = None) -> Secret:
        return a.sum() if axis is None else a.sum(dim=axis)

    def add_public(self, a: Secret, c: Public) -> Secret:
        on_grid = _on_grid(c)
        a = _fixed_for(a, on_grid)
        return a + (torch.from_numpy(on_grid) if isinstance(c, np.ndarray) else float(on_grid))

    def ge_public(self, a: Secret, bound: float) -> Secret:
        # CrypTen encodes a public number by truncating it to a's scale; round the bound
        # up to the grid first, so [a >= bound] is exact for every a on the grid.
        scale = int(a._tensor.encoder.scale)
        return a >= math.ceil(bound * scale) / scale

    def reciprocal(self, a: Secret) -> Secret:
        return a.reciprocal()

    def sqrt(self, a: Secret) -> Secret:
        return a.sqrt()

    @contextmanager
    def parties_only(self) -> Iterator[None]:
        kinds = set(self._input_kinds)
        try:
            yield
        finally:  # opened to the parties, never output: not an input kind of the outputs
            self._input_kinds = kinds

    async def reveal(self, a: Secret) -> np.ndarray:
        # CrypTen's all-reduce of the shares; its decoder may put a negative value one
        # unit of 2^-16 low, well inside the stated precision.
        return np.asarray(a.get_plain_text().double().numpy(), dtype=float)

    def output_shares(self, secrets: Sequence[Secret]) -> OutputShareSet:
        """This party's additive shares for the coordinator, re-randomised with a fresh
        sharing of zero so that the n shares reveal the values and nothing else.

        A job that input only integers opens integers ("frac_bits" 0); otherwise every
        output is brought to scale 2^16 (comparison results come at scale 1; scales are
        powers of two, so this is an exact multiple of the shares). A job that input
        both kinds may open only outputs at scale 2^16 (`MixedOutputsError`).
        """
        # CrypTen's last step may need no reply from the others (a truncation with n > 2
        # only gathers at rank 0), so a fast party could finish and leave the dealer's
        # session while a slower one still needs correlated randomness; the dealer ends
        # a session when any party leaves. One barrier: nobody leaves before all are done.
        self._comm.barrier()
        scales = [int(secret._tensor.encoder.scale) for secret in secrets]
        frac_bits = output_frac_bits(self._input_kinds, scales)
        primitives = crypten.mpc.primitives
        values: list[int] = []
        for secret, scale in zip(secrets, scales, strict=True):
            shared = secret._tensor  # ArithmeticSharedTensor (comparisons return arithmetic)
            zero = primitives.ArithmeticSharedTensor.PRZS(shared.share.size())
            share = shared.share * (2**frac_bits // scale) + zero.share
            values.extend(int(v) for v in share.reshape(-1).numpy().astype(np.uint64))
        return OutputShareSet(
            scheme="additive",
            modulus=RING_MODULUS,
            point=self.my_index + 1,
            degree=0,
            values=values,
            public_meta={"frac_bits": str(frac_bits)},
        )


def output_frac_bits(input_kinds: set[str], scales: Sequence[int]) -> int:
    """The scale a job's outputs are opened at, from the kinds of input it used ("int",
    "fixed") and its outputs' encoder scales; MixedOutputsError if that is ambiguous."""
    if input_kinds == {"int"}:
        if any(scale != 1 for scale in scales):
            raise MixedOutputsError("an integer job produced a fixed-point output")
        return 0
    if "int" in input_kinds and 1 in scales:
        raise MixedOutputsError(
            "this CrypTen job input integers and fixed-point values, so an output at "
            "scale 1 (an integer, or a comparison result) is ambiguous"
        )
    return FRAC_BITS


def _one_scale(arrays: Sequence[Secret]) -> list[Secret]:
    """The arrays, those at scale 1 (integers, comparison results) re-encoded at 2^16
    if any is fixed point: CrypTen would join the shares and keep the first encoder,
    reading a bit 1 as 2^-16 (or a fixed-point value 2^16 times too large)."""
    scales = {int(a._tensor.encoder.scale) for a in arrays}
    if len(scales) == 1:
        return list(arrays)
    encoder = crypten.encoder.FixedPointEncoder(precision_bits=FRAC_BITS)
    joined = []
    for a in arrays:
        if int(a._tensor.encoder.scale) == 1:
            a = a.clone()
            a._tensor.encode_(encoder)
        joined.append(a)
    return joined


def _fixed_for(a: Secret, public: np.ndarray) -> Secret:
    """`a` itself, or, if it is at scale 1 (an integer or a comparison result) and the
    public operand is not whole, `a` re-encoded at scale 2^16 (exact: its shares times
    2^16). CrypTen would encode the public operand at a's scale, rounding 0.25 to 0."""
    if int(a._tensor.encoder.scale) != 1 or np.array_equal(public, np.round(public)):
        return a
    fixed = a.clone()
    fixed._tensor.encode_(crypten.encoder.FixedPointEncoder(precision_bits=FRAC_BITS))
    return fixed


def _on_grid(values: Any) -> np.ndarray:
    """Values rounded to the nearest multiple of 2^-16 (CrypTen's encoder would truncate)."""
    return np.round(np.asarray(values, dtype=np.float64) * 2**FRAC_BITS) / 2**FRAC_BITS


def run_job(
    channel: JobChannel,
    program: SecureProgram,
    *,
    round_seconds: float,
    provider: str,
    on_progress: ProgressSink | None = None,
) -> OutputShareSet:
    """Run this party's side of `program` with CrypTen; blocks, so call it on a worker thread.

    `provider` is "DEALER" (a dealer session must be installed, see `provider.install`)
    or "TFP" (refused by `check_backend` unless `insecure_tfp_allowed()`). Raises the
    channel's failure on abort.
    """
    global _ready
    check_backend("crypten", len(channel.parties), has_dealer=provider == "DEALER")
    with _job_lock:
        _ready = MeshCommunicator(channel, round_seconds)
        crypten.cfg.mpc.provider = provider
        try:
            crypten.init()
            ops = CryptenOps(get_communicator())
            ops.progress_sink = on_progress
            secrets = asyncio.run(program(ops))  # the ops are synchronous: no real awaiting
            return ops.output_shares(secrets)
        except Exception:
            if channel.failure is not None:
                raise channel.failure from None
            raise
        finally:
            crypten.uninit()  # our `uninit` below: forgets the communicator
