"""How this project runs torch, for the dealer and for CrypTen on the parties."""

from __future__ import annotations

import importlib

from smpc_ehr.compute_threads import compute_threads


def limit_torch_threads() -> None:
    """The process's compute threads (`smpc_ehr.compute_threads`, default 1) for torch.

    Torch splits any operation on more than 32,768 elements over its OpenMP threads
    (one per core by default). MPC alternates short computations with waits for peers,
    and a federation's parties and dealer share cores on a test machine: the OpenMP
    threads then spin against each other, and every such operation (a clone!) took
    1-2 ms instead of 15 us; CrypTen comparisons of 20,000 elements took 1.6 s instead
    of 0.2 s. MPC's own tensors are small; one thread is the fast choice.
    """
    importlib.import_module("torch").set_num_threads(compute_threads())
