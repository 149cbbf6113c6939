"""Importing MPyC for this process: a clean argv, our security parameter, no pickle,
and a failed protocol step that fails the job instead of stopping the event loop.

MPyC parses `sys.argv` and builds a global runtime when imported. MPyC stops its
event loop when a protocol step fails; we replace that one function
(`asyncoro._reconcile`) so a failure fails the job instead of stopping the server.
Arrays travel as raw little-endian limbs: the `pickle` that `mpyc.runtime` uses is
replaced by `codec.ArrayCodec`, which encodes numpy arrays of field elements only and
never unpickles anything (MPyC's `transfer`, which pickles arbitrary objects, would
fail). Only one MPyC job runs per process at a time (MPyC keeps its runtime in module
globals).
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import threading
from typing import Any

from smpc_ehr.backends.mpyc.codec import ArrayCodec
from smpc_ehr.errors import JobAborted
from smpc_ehr.transport.mesh import JobChannel

SEC_PARAM = 40
"""MPyC's statistical security parameter k (its default is 30): comparisons, bit
decompositions and truncations mask an l-bit value with a random number of l + k bits,
so an opened masked value tells about the value with statistical distance below
2^-k. MPyC sizes each field from k (l + f + k + 2 bits), so the fields grow with it."""
GLOBAL_MODULES = (
    "sectypes",
    "asyncoro",
    "mpctools",
    "seclists",
    "secpols",
    "secgroups",
    "random",
    "statistics",
)
"""MPyC modules that hold the runtime in a global, pointed at each job's runtime."""
_import_lock = threading.Lock()
_active: JobChannel | None = None
"""The job MPyC is running in this process (one at a time: MPyC's state is global)."""


def threshold(n: int) -> int:
    """MPyC's Shamir threshold t for n parties: any t of them learn nothing."""
    return (n - 1) // 2


def set_active(channel: JobChannel | None) -> None:
    """Name the job whose channel a failed MPyC step fails (None: no job runs)."""
    global _active
    _active = channel


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
