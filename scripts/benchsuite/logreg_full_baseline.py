"""The baseline of `bench.py logreg-full`: CrypTen's own gradient descent over its own
transport on the pooled training rows, run by the transport benchmark's workers."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchsuite import transport_programs as programs
from benchsuite import transport_runs
from benchsuite.logreg import Config
from benchsuite.workers import Pki

BACKEND = "crypten"
STEPS = 10
LEARNING_RATE = 1.0
"""The baseline's step size on standardised features with an intercept column."""
BASELINE_DATA = "baseline-rows.npz"
"""The pooled rows the baseline's workers read, next to their spec files."""
BASELINE_DEADLINE = 600.0
"""Longest a baseline run may take (its workers' own deadline follows from it)."""
WORKER_MODULE = "logreg_full_baseline"


def baseline_bench(cfg: Config, workdir: Path, rows: int, cols: int) -> transport_runs.Bench:
    """The transport benchmark's runner, set up for CrypTen over its own transport only."""
    settings = transport_runs.Config(
        quick=cfg.quick,
        repeats=cfg.repeats,
        backends=(BACKEND,),
        crypten=programs.CryptenSizes(rows, cols, STEPS),
        mpyc=programs.MpycSizes(0, 0, 0),  # unused
        seed=cfg.seed,  # unused: the rows come from BASELINE_DATA
        deadline_seconds=BASELINE_DEADLINE,
        round_seconds=BASELINE_DEADLINE,
    )
    # CrypTen's own transport needs no certificates nor dealer (its TTP server is a worker).
    unused = Pki(workdir, workdir)
    return transport_runs.Bench(settings, workdir, unused, None, WORKER_MODULE)


def baseline_worker(argv: Sequence[str]) -> int:
    """A worker process of the baseline (workers.Group starts this module with
    transport_worker's arguments): the transport program gets the pooled rows of
    BASELINE_DATA, next to the spec file, and LEARNING_RATE; the rest is
    transport_worker's main, unchanged."""
    from benchsuite import transport_worker

    spec = Path(argv[list(argv).index("--spec") + 1])
    data = spec.parent / BASELINE_DATA

    def pooled_rows(seed: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
        with np.load(data) as saved:
            features, labels = saved["features"], saved["labels"]
        if features.shape != (rows, cols) or labels.shape != (rows,):
            raise ValueError(f"{data}: {features.shape} rows, not ({rows}, {cols})")
        return features, labels

    programs.classification_data = pooled_rows
    programs.LEARNING_RATE = LEARNING_RATE
    return transport_worker.main()


if __name__ == "__main__":  # a worker process of the baseline (workers.Group)
    sys.exit(baseline_worker(sys.argv[1:]))
