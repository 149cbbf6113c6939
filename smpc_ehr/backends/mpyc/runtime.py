"""One MPyC job in the party server's event loop: a fresh `Runtime` per job.

MPC rounds are latency-bound, so the runtime runs in the loop where the messages
arrive (no thread hop between gRPC and MPyC). Security: threshold t = (n-1)//2, so
any t colluding parties learn nothing; this needs n >= 3 (with n = 2, t = 0 and there
is no secrecy), which we refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import itertools
import logging
import secrets
import sys
import time
from typing import Any

from smpc_ehr.backends.mpyc.entry import check_party_count
from smpc_ehr.backends.mpyc.exchange import MeshExchange
from smpc_ehr.backends.mpyc.library import (
    GLOBAL_MODULES,
    SEC_PARAM,
    import_mpyc,
    set_active,
    threshold,
)
from smpc_ehr.backends.mpyc.ops import MpycOps
from smpc_ehr.backends.mpyc.truncation import runtime_class
from smpc_ehr.errors import JobAborted, SmpcEhrError, TransportError
from smpc_ehr.securemath.ops import OutputShareSet, ProgressSink, SecureProgram
from smpc_ehr.transport.mesh import JobChannel

log = logging.getLogger(__name__)

_job_lock = asyncio.Lock()


def _build_runtime(mpyc_runtime: Any, channel: JobChannel, round_seconds: float) -> Any:
    mpyc = sys.modules["mpyc"]
    options = mpyc._get_arg_parser().parse_args([])
    n = len(channel.parties)
    options.threshold = threshold(n)
    options.no_async = False
    options.mix32_64bit = False  # keep MPyC's vectorised array paths (see codec)
    options.no_log = True
    options.sec_param = SEC_PARAM
    pid = channel.my_index
    parties = [mpyc_runtime.Party(i) for i in range(n)]
    rt = runtime_class(mpyc_runtime)(pid, parties, options)
    for i, party_id in enumerate(channel.parties):
        if i != pid:
            rt.parties[i].protocol = MeshExchange(channel, party_id, round_seconds)
    rt.start_time = time.time()
    for name in GLOBAL_MODULES:
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

        set_active(channel)
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
            set_active(None)
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
