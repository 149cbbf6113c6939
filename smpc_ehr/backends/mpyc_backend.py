"""MPyC (Shamir secret sharing, honest majority) running over the project's mesh.

MPyC parses `sys.argv` and builds a global runtime when imported, and its message
exchange is a small object per peer with `send(pc, payload)` / `receive(pc)`. We
import it with a clean argv, build a fresh `Runtime` per job on a dedicated thread
with its own event loop (MPyC stops its loop when a protocol fails, which must not
stop the party's server), and carry its messages over the job's `JobChannel`, so no
MPyC port is opened and every byte goes over mutual TLS.

Security: threshold t = (n-1)//2, so any t colluding parties learn nothing; this
needs n >= 3 (with n = 2, t = 0 and there is no secrecy), which we refuse. Arrays
are marshalled with the field's `to_bytes` (`mix32_64bit`), never pickle. Only one
MPyC job runs per process at a time (MPyC keeps its runtime in module globals).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from smpc_ehr.backends.base import OutputShareSet, Secret, SecureOps, SecureProgram
from smpc_ehr.errors import JobAborted, Refusal, TransportError
from smpc_ehr.transport.mesh import JobChannel

log = logging.getLogger(__name__)

MIN_PARTIES = 3
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
_job_lock = threading.Lock()


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
        if "mpyc.runtime" in sys.modules:
            return sys.modules["mpyc.runtime"]
        saved = sys.argv
        sys.argv = [saved[0] if saved else "smpc-ehr"]
        try:
            return importlib.import_module("mpyc.runtime")
        finally:
            sys.argv = saved


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
        loop = asyncio.get_event_loop()  # the job's loop (set on the job thread)
        future = asyncio.wrap_future(slot, loop=loop)
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


class MpycOps(SecureOps):
    """`SecureOps` on MPyC secure integers (exact integer arithmetic mod a prime)."""

    def __init__(self, runtime: Any, bits: int = 32) -> None:
        self._rt = runtime
        self.n_parties = len(runtime.parties)
        self.my_index = runtime.pid
        self._bits = bits
        self._secint = runtime.SecInt(bits)

    def input_ints(self, values: Sequence[int], bits: int) -> list[list[Secret]]:
        if bits > self._bits:
            raise ValueError(f"values of {bits} bits exceed this job's {self._bits}-bit integers")
        secret = [self._secint(int(v)) for v in values]
        shared: list[list[Secret]] = self._rt.input(secret, senders=list(range(self.n_parties)))
        return shared

    def add(self, a: Sequence[Secret], b: Sequence[Secret]) -> list[Secret]:
        return [x + y for x, y in zip(a, b, strict=True)]

    def mul(self, a: Sequence[Secret], b: Sequence[Secret]) -> list[Secret]:
        return [x * y for x, y in zip(a, b, strict=True)]

    def ge_public(self, a: Sequence[Secret], bound: int) -> list[Secret]:
        return [x >= bound for x in a]

    async def output_shares(self, secrets: Sequence[Secret]) -> OutputShareSet:
        """Fresh shares of `secrets` for the coordinator: resharing first, so the
        coordinator's n shares determine the values and nothing else."""
        rt = self._rt
        fresh = rt._reshare(list(secrets)) if secrets else []
        shares = await rt.gather(fresh) if fresh else []
        field = self._secint.field
        return OutputShareSet(
            scheme="shamir",
            modulus=int(field.modulus),
            point=rt.pid + 1,
            degree=rt.threshold,
            values=[int(s.value) for s in shares],
        )


def _build_runtime(mpyc_runtime: Any, channel: JobChannel, round_seconds: float) -> Any:
    mpyc = sys.modules["mpyc"]
    options = mpyc._get_arg_parser().parse_args([])
    n = len(channel.parties)
    options.threshold = (n - 1) // 2
    options.no_async = False
    options.mix32_64bit = True  # marshal arrays with to_bytes: never pickle on the wire
    options.no_log = True
    pid = channel.parties.index(channel.me)
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


async def _exchange_prss_keys(rt: Any, channel: JobChannel) -> None:
    """Give each peer the PRSS keys it shares with us (MPyC's start() would do this)."""
    for i, peer in enumerate(channel.parties):
        if i != rt.pid:
            channel.send(peer, "mpyc/prss-keys", b"".join(rt._prss_keys_to_peer(i)))
    for i, peer in enumerate(channel.parties):
        if i != rt.pid:
            data = await asyncio.wrap_future(channel.expect(peer, "mpyc/prss-keys"))
            if len(data) != rt._prss_keys_from_peer(i):
                raise TransportError(f"{peer} sent PRSS keys of the wrong size")
            rt._prss_keys_from_peer(i, data)


def run_job(
    channel: JobChannel, program: SecureProgram, *, bits: int, round_seconds: float
) -> OutputShareSet:
    """Run this party's side of `program` with MPyC; blocks, so call it on a job thread.

    Raises the job channel's failure (a peer aborted, a link broke, a round or the
    job deadline passed) or JobAborted; nothing is returned unless the whole
    computation finished.
    """
    check_party_count(len(channel.parties))
    mpyc_runtime = import_mpyc()
    with _job_lock:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            rt = _build_runtime(mpyc_runtime, channel, round_seconds)
            # MPyC reports failed protocol steps through the loop's exception handler;
            # the job's failure is reported once, by us, so keep those out of the log.
            loop.set_exception_handler(_quiet)
            ops = MpycOps(rt, bits)

            async def main() -> OutputShareSet:
                await asyncio.wait_for(_exchange_prss_keys(rt, channel), round_seconds)
                secrets = await program(ops)
                return await ops.output_shares(secrets)

            task = loop.create_task(main())
            # Any failure (peer abort, broken link, cancel, deadline) stops the computation
            # at once, wherever MPyC is waiting.
            channel.mailbox.on_fail(lambda _: _cancel_from_any_thread(loop, task))
            timer = loop.call_later(
                channel.remaining(),
                channel.fail,
                JobAborted("the job deadline passed before the computation finished"),
            )
            try:
                return loop.run_until_complete(task)
            except (RuntimeError, asyncio.CancelledError) as exc:
                # MPyC stops the loop when a protocol step fails; we cancel on abort.
                raise channel.failure or JobAborted(f"MPyC computation stopped: {exc!r}") from exc
            except TimeoutError as exc:
                raise channel.failure or TransportError("a peer did not start the job") from exc
            except Exception:
                if channel.failure is not None:
                    raise channel.failure from None
                raise
            finally:
                timer.cancel()
        finally:
            _drain(loop)
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_from_any_thread(loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: the job has already ended
        loop.call_soon_threadsafe(task.cancel)


def _quiet(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    log.debug("MPyC: %s", context.get("exception") or context.get("message"))


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what MPyC left scheduled so the loop closes cleanly (bounded: never hangs)."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        with contextlib.suppress(RuntimeError):  # MPyC may stop the loop again
            loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
