"""How many compute threads (BLAS, OpenMP, torch) a party or dealer process uses.

A party's local steps are numpy (OpenBLAS) and, for CrypTen, torch; the dealer's are
torch. Each library starts one thread per core by default. A hospital's party shares
the machine with its own servers, and on a test or benchmark machine with the other
parties and the dealer: the thread pools then spin against each other, and local
numpy steps were measured 2-3x slower with several BLAS threads per process (issue
16). MPC alternates short computations with waits for peers, so one thread per
process is the default; a hospital with a dedicated large machine may raise it with
`compute_threads` in its party config (docs/configuration.md).
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

DEFAULT_COMPUTE_THREADS = 1
THREAD_ENV_KEYS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""Read by OpenBLAS, OpenMP (torch) and MKL when they load, i.e. at numpy's and torch's
first import in this process (and in any process it spawns)."""

log = logging.getLogger(__name__)
_threads = DEFAULT_COMPUTE_THREADS


def compute_threads() -> int:
    """The compute threads this process was given (`limit_compute_threads`); default 1."""
    return _threads


def limit_compute_threads(threads: int) -> None:
    """Give numpy's BLAS, OpenMP and torch `threads` threads in this process.

    Call it where the process starts, before numpy and torch load: their thread pools
    read the environment then. If they are already loaded, their pools are resized at
    run time (threadpoolctl for BLAS, when installed; torch's own setter).
    """
    global _threads
    if threads < 1:
        raise ValueError(f"compute threads must be >= 1, got {threads}")
    _threads = threads
    for key in THREAD_ENV_KEYS:
        os.environ[key] = str(threads)
    if "numpy" in sys.modules:
        _resize_blas(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _resize_blas(threads: int) -> None:
    """Resize the BLAS pools numpy already loaded (they read the environment only once)."""
    try:  # optional (scikit-learn's dependency): by name, as it ships no type information
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        log.warning(
            "numpy was loaded before its thread count (%d) was set, and threadpoolctl is "
            "not installed to change it: BLAS keeps its default threads",
            threads,
        )
        return
    threadpoolctl.threadpool_limits(limits=threads)
