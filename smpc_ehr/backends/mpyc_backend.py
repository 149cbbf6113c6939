"""MPyC (Shamir secret sharing, honest majority) running over the project's mesh.

MPyC parses `sys.argv` and builds a global runtime when imported, and its message
exchange is a small object per peer with `send(pc, payload)` / `receive(pc)`. We
import it with a clean argv, build a fresh `Runtime` per job in the party server's
event loop (MPC rounds are latency-bound: no thread hop between gRPC and MPyC), and
carry its messages over the job's `JobChannel`, so no MPyC port is opened and every
byte goes over mutual TLS. MPyC stops its event loop when a protocol step fails; we
replace that one function (`asyncoro._reconcile`) so a failure fails the job instead
of stopping the server.

Security: threshold t = (n-1)//2, so any t colluding parties learn nothing; this
needs n >= 3 (with n = 2, t = 0 and there is no secrecy), which we refuse. Comparisons,
bit decompositions and truncations run at statistical security k = SEC_PARAM = 40
(MPyC's default is 30): each opened masked value is within 2^-40 statistical distance
of one that says nothing about the value; MPyC's fields grow by 10 bits. Arrays
travel as raw little-endian limbs: the `pickle` that `mpyc.runtime` uses is replaced by
`mpyc_codec.ArrayCodec`, which encodes numpy arrays of field elements only and never
unpickles anything (MPyC's `transfer`, which pickles arbitrary objects, would fail).
Only one MPyC job runs per process at a time (MPyC keeps its runtime in module globals).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import secrets
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from smpc_ehr.backends.base import (
    COUNT_BITS,
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
from smpc_ehr.backends.mpyc_codec import ArrayCodec
from smpc_ehr.errors import JobAborted, Refusal, SmpcEhrError, TransportError
from smpc_ehr.transport.mesh import JobChannel

log = logging.getLogger(__name__)

MIN_PARTIES = 3
SEC_PARAM = 40
"""MPyC's statistical security parameter k (its default is 30): comparisons, bit
decompositions and truncations mask an l-bit value with a random number of l + k bits,
so an opened masked value tells about the value with statistical distance below
2^-k. MPyC sizes each field from k (l + f + k + 2 bits), so the fields grow with it."""
_GLOBAL_MODULES = (
    "sectypes",
    "asyncoro",
    "mpctools",
    "seclists",
    "secpols",
    "secgroups",
    "random",
    "statistics",
)
_import_lock = threading.Lock()
_job_lock = asyncio.Lock()
_active: JobChannel | None = None
"""The job MPyC is running in this process (one at a time: MPyC's state is global)."""


def threshold(n: int) -> int:
    """MPyC's Shamir threshold t for n parties: any t of them learn nothing."""
    return (n - 1) // 2


def check_party_count(n: int) -> None:
    """Refuse a job MPyC cannot run securely."""
    if n < MIN_PARTIES:
        raise Refusal(
            f"the MPyC backend needs at least {MIN_PARTIES} parties (honest majority); "
            f"with {n} its threshold would be 0 and any party could read every input"
        )


def import_mpyc() -> Any:
    """Import `mpyc.runtime` without letting it read this process's command line."""
    with _import_lock:
        module: Any = sys.modules.get("mpyc.runtime")
        if module is None:
            saved = sys.argv
            sys.argv = [saved[0] if saved else "smpc-ehr"]
            try:
                module = importlib.import_module("mpyc.runtime")
            finally:
                sys.argv = saved
        # MPyC sizes a secure type's field from the runtime's k when the type is first
        # made, and caches the type: MPyC's import-time runtime gets ours too, so a type
        # made before any job (a test, a tool) is not left with a field sized for k = 30.
        module.mpc.options.sec_param = SEC_PARAM
        asyncoro: Any = importlib.import_module("mpyc.asyncoro")
        asyncoro._reconcile = _reconcile_without_stopping
        module.pickle = ArrayCodec  # MPyC's array paths marshal with it: never real pickle
        return module


def _on_loop(slot: Future[bytes], loop: asyncio.AbstractEventLoop) -> asyncio.Future[bytes]:
    """An asyncio future of `loop` that follows `slot`.

    Like `asyncio.wrap_future`, but when the message is delivered on the loop's own
    thread (the gRPC handler), it is handed over at once instead of through another
    trip round the loop: MPC rounds are latency-bound.
    """
    future: asyncio.Future[bytes] = loop.create_future()
    loop_thread = threading.get_ident()

    def copy(done: Future[bytes]) -> None:
        if future.done():
            return
        exc = done.exception()
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(done.result())

    def follow(done: Future[bytes]) -> None:
        if threading.get_ident() == loop_thread:
            copy(done)
        else:
            loop.call_soon_threadsafe(copy, done)

    slot.add_done_callback(follow)
    return future


class _MeshExchange:
    """MPyC's per-peer message object, carried by the job's channel."""

    def __init__(self, channel: JobChannel, peer: str, round_seconds: float) -> None:
        self._channel = channel
        self._peer = peer
        self._round_seconds = round_seconds
        self.nbytes_sent = 0

    def send(self, pc: int, payload: bytes) -> None:
        self.nbytes_sent += len(payload)
        self._channel.send(self._peer, f"mpyc/{pc}", payload)

    def receive(self, pc: int) -> bytes | asyncio.Future[bytes]:
        slot = self._channel.expect(self._peer, f"mpyc/{pc}")
        if slot.done() and slot.exception() is None:
            return slot.result()
        loop = asyncio.get_running_loop()  # MPyC asks for messages from inside its coroutines
        future = _on_loop(slot, loop)
        timer = loop.call_later(self._round_seconds, self._round_expired, slot, pc)
        future.add_done_callback(lambda _: timer.cancel())
        return future

    def _round_expired(self, slot: Future[bytes], pc: int) -> None:
        if not slot.done():
            self._channel.fail(
                TransportError(
                    f"no message from {self._peer} within the round deadline of "
                    f"{self._round_seconds:g} s (MPyC round {pc})"
                )
            )

    def close_connection(self) -> None:
        """Links are closed by the job channel, not by MPyC."""


FXP_BITS = 64
"""Bit length l of MPyC's secure fixed-point numbers (sign, integer and fraction)."""
FXP_FRAC_BITS = 32
"""Fractional bits f: resolution 2^-32 ~ 2.3e-10. With l = 2f every |value| < 2^31 has a
representable reciprocal down to 2^-31, which MPyC's division needs (l ~ 2f)."""

# sqrt: Newton's iteration y <- y (3 - b y^2) / 2 for 1/sqrt(b) on b in [1/4, 1), from the
# minimax line y0 = c0 - c1 b (relative error <= 0.0860). The relative error e shrinks as
# e <- (3 e^2 + e^3) / 2: 0.086, 0.0114, 2.0e-4, 5.7e-8, 5.0e-15 < 2^-34 after 4 steps.
_ISQRT_LINE = (2.1328, 1.2187)
_ISQRT_STEPS = 4
_ULP = 2.0**-FXP_FRAC_BITS

COMPARE_COLUMNS = 4
"""`_pow2_normalize` uses comparisons up to this many columns, a bit decomposition above."""

PRECISION = Precision(
    frac_bits=FXP_FRAC_BITS,
    max_abs=2.0 ** (FXP_BITS - FXP_FRAC_BITS - 1),
    product_error=_ULP,
    # Both work on a value normalised into [1/4, 1) by a secret power of two, with a few
    # roundings of 2^-32 there, then scale back: a few units of 2^-32 absolute plus a few
    # relative (docs/backends.md: measured at most 2 and 5 units, 3 and 5 parties).
    reciprocal=ApproxError(low=2.0**-14, high=2.0**30, abs_error=4 * _ULP, rel_error=16 * _ULP),
    sqrt=ApproxError(low=0.0, high=2.0**30, abs_error=4 * _ULP, rel_error=16 * _ULP),
)
"""MPyC's fixed-point precision (the same for any number of parties): MPyC rounds each
product probabilistically, to one of the two grid points around it."""


class MpycOps(SecureOps):
    """`SecureOps` on MPyC secure arrays: integers (`SecInt`, exact arithmetic mod a prime)
    and fixed point (`SecFxp(64, 32)`: |values| < 2^31, resolution 2^-32).

    Fixed-point products are rounded once (error < 2^-32); reciprocal and division use
    MPyC's Newton iteration after normalising by a secret power of two (error a few
    units of 2^-32 relative to the result); sqrt is our Newton iteration (`sqrt`).
    """

    def __init__(self, runtime: Any, bits: int = 32) -> None:
        self._rt = runtime
        self.n_parties = len(runtime.parties)
        self.my_index = runtime.pid
        self._bits = bits
        self._secint = runtime.SecInt(bits)
        self._secfxp = runtime.SecFxp(FXP_BITS, FXP_FRAC_BITS)
        for sectype in (self._secint, self._secfxp):
            check_field(sectype, runtime.options.sec_param)
        self.precision = PRECISION

    def input_ints(self, values: Sequence[int], bits: int) -> list[Secret]:
        if bits > self._bits:
            raise ValueError(f"values of {bits} bits exceed this job's {self._bits}-bit integers")
        mine = self._secint.array(np.array([int(v) for v in values], dtype=object))
        shared: list[Secret] = self._rt.input(mine, senders=list(range(self.n_parties)))
        return shared

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

    def reciprocal(self, a: Secret) -> Secret:
        return 1 / a  # MPyC: normalise by a secret power of two, then Newton (runtime._rec)

    def sqrt(self, a: Secret) -> Secret:
        """sqrt(a) for a >= 0 (a negative a gives garbage, it cannot be checked in secret).

        MPyC has no fixed-point square root (only a bit-by-bit one in its statistics
        module, one comparison per result bit). We find the leading bit of a from its
        bits (`np_to_bits`, `np_find`): a = b 4^k with b in [1/4, 1) and both 4^-k and
        2^k as secret powers of two, so sqrt(a) = sqrt(b) 2^k; then 4 Newton steps for
        1/sqrt(b) from a linear first guess (see _ISQRT_LINE), and sqrt(b) = b * (1/sqrt(b)).
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
        c0, c1 = _ISQRT_LINE
        y = c0 - b * c1
        b_half = b * 0.5
        for _ in range(_ISQRT_STEPS):
            y = y * (1.5 - b_half * (y * y))
        return (b * y) * (root_scale * 2.0**-half)

    def _pow2_normalize(self, rows: Secret) -> Secret:
        """The generic version's hook (see `SecureOps.fractions_of_total`), without its
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
        whole = rt.np_trunc(rows[0], f=FXP_FRAC_BITS)  # raw value = rows[0]
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
        for fresh in [rt._reshare(secret) for secret in secrets]:
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


def check_field(sectype: Any, sec_param: int) -> None:
    """Refuse a secure type whose field cannot hold its l + f bits plus k bits of mask.

    MPyC masks an l-bit value (l + f for a fixed-point product before truncation) with
    a random number of l + k bits and opens the sum, which must not wrap around the
    field: MPyC's own rule is a prime of at least l + f + k + 2 bits. A type made under
    a smaller k (MPyC caches types) would give wrong comparisons, so it is refused.
    """
    need = sectype.bit_length + sectype.frac_length + sec_param + 2
    have = sectype.field.order.bit_length()
    if have < need:
        raise RuntimeError(
            f"MPyC's {sectype.__name__} has a {have}-bit field, but l + f + k + 2 = {need} "
            f"bits are needed at sec_param k = {sec_param}"
        )


def _sectype(rt: Any, secret: Secret) -> Any:
    """The secure scalar type of a secure array or scalar."""
    return type(secret).sectype if isinstance(secret, rt.SecureArray) else type(secret)


def _build_runtime(mpyc_runtime: Any, channel: JobChannel, round_seconds: float) -> Any:
    mpyc = sys.modules["mpyc"]
    options = mpyc._get_arg_parser().parse_args([])
    n = len(channel.parties)
    options.threshold = threshold(n)
    options.no_async = False
    options.mix32_64bit = False  # keep MPyC's vectorised array paths (see mpyc_codec)
    options.no_log = True
    options.sec_param = SEC_PARAM
    pid = channel.my_index
    parties = [mpyc_runtime.Party(i) for i in range(n)]
    rt = mpyc_runtime.Runtime(pid, parties, options)
    for i, party_id in enumerate(channel.parties):
        if i != pid:
            rt.parties[i].protocol = _MeshExchange(channel, party_id, round_seconds)
    rt.start_time = time.time()
    for name in _GLOBAL_MODULES:
        module: Any = importlib.import_module(f"mpyc.{name}")
        module.runtime = rt
    return rt


PrssKeys = dict[tuple[int, ...], bytes]


def send_prss_keys(channel: JobChannel) -> PrssKeys:
    """Make this party's fresh PRSS keys for a job and send each peer the ones it shares.

    MPyC's `start()` would do this exchange; calling it before the local plaintext
    step lets the keys travel while the party computes, saving a round.
    """
    n = len(channel.parties)
    pid = channel.my_index
    keys = {
        subset: secrets.token_bytes(16)
        for subset in itertools.combinations(range(n), n - threshold(n))
        if subset[0] == pid
    }
    for i, peer in enumerate(channel.parties):
        if i != pid:
            shared = b"".join(key for subset, key in keys.items() if i in subset)
            channel.send(peer, "mpyc/prss-keys", shared)
    return keys


async def _receive_prss_keys(rt: Any, channel: JobChannel) -> None:
    """Store the PRSS keys each peer sent us (in MPyC's order of key subsets)."""
    for i, peer in enumerate(channel.parties):
        if i != rt.pid:
            data = await asyncio.wrap_future(channel.expect(peer, "mpyc/prss-keys"))
            if len(data) != rt._prss_keys_from_peer(i):
                raise TransportError(f"{peer} sent PRSS keys of the wrong size")
            rt._prss_keys_from_peer(i, data)


async def run_job(
    channel: JobChannel,
    program: SecureProgram,
    *,
    bits: int,
    round_seconds: float,
    prss_keys: PrssKeys,
    on_progress: ProgressSink | None = None,
) -> OutputShareSet:
    """Run this party's side of `program` with MPyC, in the server's event loop.

    Raises the job channel's failure (a peer aborted, a link broke, a round or the
    job deadline passed) or JobAborted; nothing is returned unless the whole
    computation finished. Cancelling the caller cancels the computation.
    """
    global _active
    check_party_count(len(channel.parties))
    mpyc_runtime = import_mpyc()
    async with _job_lock:
        loop = asyncio.get_running_loop()
        rt = _build_runtime(mpyc_runtime, channel, round_seconds)
        rt._prss_keys = dict(prss_keys)  # the keys already sent to the peers
        loop.set_exception_handler(_quiet_job_errors)  # MPyC's constructor replaced it
        ops = MpycOps(rt, bits)
        ops.progress_sink = on_progress

        async def main() -> OutputShareSet:
            try:
                await asyncio.wait_for(_receive_prss_keys(rt, channel), round_seconds)
            except TimeoutError:
                raise TransportError("a peer did not start the job within a round") from None
            secrets = await program(ops)
            return await ops.output_shares(secrets)

        _active = channel
        task = asyncio.ensure_future(main())
        # Any failure (peer abort, broken link, cancel, deadline) stops the computation
        # at once, wherever MPyC is waiting.
        channel.mailbox.on_fail(lambda _: _cancel_from_any_thread(loop, task))
        try:
            return await asyncio.wait_for(task, channel.remaining())
        except TimeoutError:
            channel.fail(JobAborted("the job deadline passed before the computation finished"))
            raise channel.failure or JobAborted("deadline") from None
        except asyncio.CancelledError:
            this = asyncio.current_task()
            if channel.failure is not None and not (this is not None and this.cancelling()):
                raise channel.failure from None
            raise
        except Exception:
            if channel.failure is not None:
                raise channel.failure from None
            raise
        finally:
            _active = None
            rt.prfs.cache_clear()  # MPyC caches PRFs per runtime: let this one go


def _cancel_from_any_thread(loop: asyncio.AbstractEventLoop, task: asyncio.Future[Any]) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: the process is stopping
        loop.call_soon_threadsafe(task.cancel)


def _quiet_job_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Failed MPyC steps after an abort are expected; the job reports its failure once."""
    exc = context.get("exception")
    if isinstance(exc, SmpcEhrError | asyncio.CancelledError):
        log.debug("after abort: %s", exc)
    else:
        loop.default_exception_handler(context)


def _reconcile_without_stopping(decl: Any, task: asyncio.Task[Any]) -> None:
    """MPyC's `asyncoro._reconcile`, except that a failed step fails the current job.

    MPyC stops the whole event loop when a step fails (a process runs one MPyC
    program and exits); here that loop also serves gRPC, so the job is failed instead.
    """
    asyncoro: Any = sys.modules["mpyc.asyncoro"]
    asyncoro.runtime._pc_level -= 1
    if decl is None:
        return
    try:
        given = task.result()
    except BaseException as exc:
        if _active is not None:
            reason = exc if isinstance(exc, Exception) else JobAborted("an MPyC step was cancelled")
            _active.fail(reason)
        return
    getattr(asyncoro, "__reconcile")(decl, given)
