"""The programs of `bench.py transport`, each defined once and run over both transports.

Method and previous figures: docs/benchmarks.md."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from smpc_ehr.backends.mpyc.ops import FXP_BITS, FXP_FRAC_BITS

COUNT_BITS = 32
"""Bit length of the secure integers of the counts program (as the count analysis uses)."""
COUNT_MAX = 8
"""Each party's counts are uniform in [0, COUNT_MAX): totals straddle the threshold."""
THRESHOLD = 11
"""The public small-cell threshold (the federation's usual min_cell_count)."""
LEARNING_RATE = 2.0
"""Gradient step size; the gradient is divided by the row count as a public integer."""


def clock() -> float:
    """The benchmark's clock: CLOCK_MONOTONIC, shared by all processes of the machine."""
    return time.monotonic()


@dataclass(frozen=True)
class Span:
    """One party's timed span: wall clock start and end, and its process's CPU seconds."""

    start: float
    end: float
    cpu: float

    def as_list(self) -> list[float]:
        return [self.start, self.end, self.cpu]


class Stopwatch:
    """Started on creation; `stop()` gives the span since then."""

    def __init__(self) -> None:
        self._start = clock()
        self._cpu = time.process_time()  # every thread of the process (gRPC, gloo, ...)

    def stop(self) -> Span:
        return Span(self._start, clock(), time.process_time() - self._cpu)


# --- sizes and inputs -----------------------------------------------------------------


@dataclass(frozen=True)
class MpycSizes:
    counts: int
    rows: int
    cols: int

    def label_counts(self) -> str:
        return f"sum+threshold of {self.counts:,} counts"

    def label_matvec(self) -> str:
        return f"{self.rows:,} x {self.cols} fxp mat-vec"


@dataclass(frozen=True)
class CryptenSizes:
    rows: int
    cols: int
    steps: int

    def label(self) -> str:
        return f"logreg {self.rows:,} x {self.cols}, {self.steps} steps"


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def party_counts(seed: int, party: int, n: int) -> np.ndarray:
    """Party `party`'s vector of counts."""
    return _rng(seed, 1, party).integers(0, COUNT_MAX, size=n, dtype=np.int64)


def matrix_and_vector(seed: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Party 0's matrix and party 1's vector, uniform in [-1, 1)."""
    rng = _rng(seed, 2)
    return rng.uniform(-1.0, 1.0, (rows, cols)), rng.uniform(-1.0, 1.0, cols)


def classification_data(seed: int, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard normal features (party 0) and 0/1 labels of a noisy linear rule (party 1)."""
    rng = _rng(seed, 3)
    features = rng.standard_normal((rows, cols))
    weights = rng.standard_normal(cols)
    labels = (features @ weights + rng.logistic(size=rows) > 0).astype(np.float64)
    return features, labels


# --- MPyC -----------------------------------------------------------------------------


@dataclass
class MpycOutcome:
    spans: dict[str, Span]
    above: list[int]
    masked: list[int]
    product: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {
            "spans": {name: span.as_list() for name, span in self.spans.items()},
            "values": {"above": self.above, "masked": self.masked, "product": self.product},
        }


async def _mpyc_sync(rt: Any, secint: Any) -> None:
    """One input and one output round with every party: all have reached this point."""
    shared = rt.input(secint(rt.pid), senders=list(range(len(rt.parties))))
    await rt.output(shared[0])


async def mpyc_program(rt: Any, sizes: MpycSizes, seed: int) -> MpycOutcome:
    """This party's side of both MPyC programs; every party gets the opened results."""
    secint = rt.SecInt(COUNT_BITS)
    secfxp = rt.SecFxp(FXP_BITS, FXP_FRAC_BITS)
    everyone = list(range(len(rt.parties)))

    await _mpyc_sync(rt, secint)
    watch = Stopwatch()
    mine = secint.array(party_counts(seed, rt.pid, sizes.counts).astype(object))
    vectors = rt.input(mine, senders=everyone)
    total = vectors[0]
    for vector in vectors[1:]:
        total = total + vector
    above = total >= THRESHOLD
    masked = above * total
    opened_above = await rt.output(above)
    opened_masked = await rt.output(masked)
    counts_span = watch.stop()

    await _mpyc_sync(rt, secint)
    watch = Stopwatch()
    matrix, vector = matrix_and_vector(seed, sizes.rows, sizes.cols)
    if rt.pid != 0:
        matrix = np.zeros_like(matrix)
    if rt.pid != 1:
        vector = np.zeros_like(vector)
    # integral=False: MPyC would mark the zero placeholders integral and skip roundings
    # on some parties only (smpc_ehr/backends/mpyc/ops.py does the same).
    shared_matrix = rt.input(secfxp.array(matrix, integral=False), senders=0)
    shared_vector = rt.input(secfxp.array(vector, integral=False), senders=1)
    product = await rt.output(shared_matrix @ shared_vector)
    matvec_span = watch.stop()

    return MpycOutcome(
        spans={"counts": counts_span, "matvec": matvec_span},
        above=[int(v) for v in np.asarray(opened_above).reshape(-1)],
        masked=[int(v) for v in np.asarray(opened_masked).reshape(-1)],
        product=[float(v) for v in np.asarray(product).reshape(-1)],
    )


def mpyc_truth(sizes: MpycSizes, seed: int, parties: int) -> dict[str, np.ndarray]:
    """What the MPyC programs must open, computed in the clear."""
    total = np.sum([party_counts(seed, p, sizes.counts) for p in range(parties)], axis=0)
    above = (total >= THRESHOLD).astype(np.int64)
    matrix, vector = matrix_and_vector(seed, sizes.rows, sizes.cols)
    return {"above": above, "masked": above * total, "product": matrix @ vector}


# --- CrypTen --------------------------------------------------------------------------


@dataclass
class CryptenOutcome:
    span: Span
    weights: list[float]

    def as_dict(self) -> dict[str, Any]:
        return {"spans": {"logreg": self.span.as_list()}, "values": {"weights": self.weights}}


def logistic_regression(crypten: Any, sizes: CryptenSizes, seed: int) -> CryptenOutcome:
    """This party's side of `sizes.steps` gradient steps; every party gets the weights.

    Call after `crypten.init()`; uses the communicator and provider it set up.
    """
    import torch

    comm = crypten.communicator.get()
    rank = comm.get_rank()
    n, d = sizes.rows, sizes.cols
    features, labels = classification_data(seed, n, d)
    x_local = torch.from_numpy(features if rank == 0 else np.zeros_like(features))
    y_local = torch.from_numpy((labels if rank == 1 else np.zeros_like(labels)).reshape(n, 1))

    comm.barrier()
    watch = Stopwatch()
    x = crypten.cryptensor(x_local, src=0)
    y = crypten.cryptensor(y_local, src=1)
    w = crypten.cryptensor(torch.zeros(d, 1, dtype=torch.float64), src=0)
    x_t = x.t()
    for _ in range(sizes.steps):
        p = x.matmul(w).sigmoid()
        gradient = x_t.matmul(p - y).div(n)  # a public integer divisor: exact truncation
        w = w - gradient * LEARNING_RATE
    weights = w.get_plain_text()
    return CryptenOutcome(watch.stop(), [float(v) for v in weights.reshape(-1)])


def plaintext_logistic_regression(sizes: CryptenSizes, seed: int) -> np.ndarray:
    """The same gradient steps in float64 with the exact sigmoid (the reference)."""
    features, labels = classification_data(seed, sizes.rows, sizes.cols)
    w = np.zeros(sizes.cols)
    for _ in range(sizes.steps):
        p = 1.0 / (1.0 + np.exp(-(features @ w)))
        w = w - LEARNING_RATE * (features.T @ (p - labels)) / sizes.rows
    return w


def accuracy(sizes: CryptenSizes, seed: int, weights: np.ndarray) -> float:
    """The share of rows the weights classify correctly (training accuracy)."""
    features, labels = classification_data(seed, sizes.rows, sizes.cols)
    return float(np.mean((features @ weights > 0) == (labels > 0.5)))
