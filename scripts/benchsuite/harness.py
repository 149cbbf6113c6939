"""What every benchmark of scripts/bench.py shares, so that a benchmark module only
declares its data, baseline, checks and columns: a local federation that always comes
down, the analyst's timed jobs, and the warm-up and alternating repeat loop of the MPC
side and the baseline side. Beside it: timings.py (medians, the parties' logged steps),
report.py (tables, the JSON line), data.py (the synthetic data cache), options.py.

The one place (with data.py, through `smpc_ehr.data.synth`) where the benchmarks reach
into smpc_ehr: the local federation and the analyst's Client.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from smpc_ehr.client.client import Client
from smpc_ehr.client.client import JobFailed as JobFailed  # what a benchmark catches

SCRIPTS = Path(__file__).resolve().parents[1]
ROOT = SCRIPTS.parent
PROTOCOLS = ROOT / "protocols"
PARTIES = 3
MIN_CELL_COUNT = 11
UP_TIMEOUT = 900.0
JOB_DEADLINE = 120.0
"""The longest job deadline the coordinator accepts."""
SETTLE_SECONDS = 0.2
"""Pause before each timed run, so that what the parties do after a job (closing its
channel, logging, torch threads spinning down) does not land in the other side's timing."""


def party_ids(k: int) -> list[str]:
    """The party (hospital) ids of a k-party benchmark federation."""
    return [f"hospital-{i}" for i in range(1, k + 1)]


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the table and the JSON line."""
    print(message, file=sys.stderr, flush=True)


# --- timing ---------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds `fn()` took (perf_counter) and what it returned."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# --- local federation -----------------------------------------------------------------


@dataclass(frozen=True)
class RunningFederation:
    """A federation started by `local_federation`, with how long `local up` took."""

    state_dir: Path
    pids: dict[str, int]
    up_seconds: float

    def rss_mb(self, field: str = "VmRSS") -> dict[str, float]:
        """Resident memory of each process right now (`VmRSS`), or its peak since it
        started (`VmHWM`), in MiB (Linux /proc)."""
        out: dict[str, float] = {}
        for ident, pid in self.pids.items():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith(f"{field}:"):
                    out[ident] = round(int(line.split()[1]) / 1024.0, 1)
        return out


@contextmanager
def local_federation(
    data: Path,
    tag: str,
    min_cell_count: int = MIN_CELL_COUNT,
    timeout: float = UP_TIMEOUT,
    placement: Any = None,
) -> Iterator[RunningFederation]:
    """`local up` on `data` in a temporary state folder; `local down` on leaving, always
    (also on Ctrl-C or SIGTERM, which `terminate_as_interrupt` turns into an exception).
    `tag` starts its progress lines; `placement` puts members elsewhere (netlab.py)."""
    from smpc_ehr.local.federation import down, up

    with tempfile.TemporaryDirectory(prefix="smpc-bench-") as tmp:
        state_dir = Path(tmp) / "state"
        log(f"{tag} local up ...")
        start = time.perf_counter()
        try:
            federation = up(
                data,
                state_dir,
                protocols=PROTOCOLS,
                min_cell_count=min_cell_count,
                timeout=timeout,
                placement=placement,
            )
            up_seconds = time.perf_counter() - start
            log(f"{tag} local up took {up_seconds:.1f} s")
            yield RunningFederation(state_dir, dict(federation.pids), up_seconds)
        finally:
            down(state_dir, quiet=True)


def worker_command(module: str, *args: str) -> list[str]:
    """A worker process running `benchsuite.<module>` as its main module (with
    `worker_env`, which lets it find the package)."""
    return [sys.executable, "-m", f"benchsuite.{module}", *args]


def worker_env(**extra: str) -> dict[str, str]:
    """This environment with scripts/ and the project first on PYTHONPATH."""
    path = [str(SCRIPTS), str(ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p), **extra}


def terminate_as_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so `finally` blocks bring federations down."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


# --- running jobs, warm-up and the alternating repeats --------------------------------


@contextmanager
def analyst(fed: RunningFederation) -> Iterator[Any]:
    """The analyst's Client of a running federation."""
    with Client.from_state(fed.state_dir) as client:
        yield client


@dataclass(frozen=True)
class Job:
    """One MPC job timed end to end in the analyst process, with the analyst's clock at
    each progress note of `stage` (a Newton or Lloyd step)."""

    seconds: float
    result: dict[str, Any]
    job_id: str
    coordinator_seconds: float
    started: float
    ended: float
    notes: tuple[float, ...]
    cost: dict[str, Any] | None = None
    """The result's `cost` (hops; messages and bytes per party where released)."""

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.notes, self.notes[1:], strict=False)]


@dataclass
class Jobs:
    """The timed jobs of one series, and where their time went by the progress notes:
    to the first note, between two notes, after the last one (seconds)."""

    runs: list[Job] = field(default_factory=list)

    @property
    def seconds(self) -> list[float]:
        return [j.seconds for j in self.runs]

    @property
    def coordinator_seconds(self) -> list[float]:
        return [j.coordinator_seconds for j in self.runs]

    @property
    def job_ids(self) -> list[str]:
        return [j.job_id for j in self.runs]

    @property
    def iterations(self) -> list[int]:
        return [int(j.result["iterations"]) for j in self.runs]

    @property
    def first_step(self) -> list[float]:
        return [j.notes[0] - j.started for j in self.runs if j.notes]

    @property
    def to_last_step(self) -> list[float]:
        return [j.notes[-1] - j.started for j in self.runs if j.notes]

    @property
    def later_step(self) -> list[float]:
        return [g for j in self.runs for g in j.gaps]

    @property
    def after_last_step(self) -> list[float]:
        return [j.ended - j.notes[-1] for j in self.runs if j.notes]


def run_job(
    client: Any,
    protocol: Any,
    params: dict[str, str],
    backend: str | None = None,
    stage: str | None = None,
) -> Job:
    """`Client.run(...)` with `time.perf_counter()` around it: from submitting the protocol
    to holding the released result."""
    notes: list[float] = []

    def note(progress: Any) -> None:
        if progress.stage == stage:
            notes.append(time.perf_counter())

    extra: dict[str, Any] = {"backend": backend} if backend else {}
    start = time.perf_counter()
    job = client.run(
        protocol,
        params,
        deadline_seconds=JOB_DEADLINE,
        on_progress=note if stage else None,
        **extra,
    )
    end = time.perf_counter()
    return Job(
        end - start,
        job.result,
        job.job_id,
        float(job.elapsed_seconds),
        start,
        end,
        tuple(notes),
        job.cost,
    )


@dataclass
class Pair:
    """One benchmarked thing: its MPC side and its baseline side, each called with
    whether the call is timed (False: warm-up). `skip` says the pair is done (it failed)."""

    name: str
    mpc: Callable[[bool], Any]
    baseline: Callable[[bool], Any]
    skip: Callable[[], bool] = field(default=lambda: False)
    mpc_first: Callable[[int], bool] = field(default=lambda rep: rep % 2 == 0)


@dataclass
class Samples:
    """A pair's timed MPC jobs and baseline runs (seconds)."""

    jobs: Jobs = field(default_factory=Jobs)
    baseline: list[float] = field(default_factory=list)
    checked: bool = False


def checked_pair(
    name: str,
    mpc: Callable[[], Job],
    baseline: Callable[[], Any],
    check: Callable[[dict[str, Any]], list[str]],
    samples: Samples,
    problems: list[str],
) -> Pair:
    """An MPC job and its plaintext twin, timed into `samples`; the first MPC result
    (warm-up or timed) is checked against the plaintext answer, into `problems`."""

    def run_mpc(timed_run: bool) -> None:
        job = mpc()
        if not samples.checked:
            samples.checked = True
            problems.extend(check(job.result))
        if timed_run:
            samples.jobs.runs.append(job)

    def run_baseline(timed_run: bool) -> None:
        elapsed, _ = timed(baseline)
        if timed_run:
            samples.baseline.append(elapsed)

    return Pair(name, run_mpc, run_baseline)


def failure(exc: Exception) -> str:
    """A failed job or run in one line: the exception's type and message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def settle(seconds: float = SETTLE_SECONDS) -> None:
    """The pause before a timed run."""
    time.sleep(seconds)


def alternate(
    pairs: Sequence[Pair],
    warmup: int,
    repeats: int,
    tag: str,
    settle_seconds: float = SETTLE_SECONDS,
) -> None:
    """Warm up each pair (MPC, then baseline, `warmup` times), then R repetitions: every
    pair's two sides, MPC first in even repetitions and baseline first in odd ones, so
    that machine noise hits both alike, with a pause of `settle_seconds` before each timed run."""
    for pair in pairs:
        for _ in range(warmup):
            if pair.skip():
                break
            pair.mpc(False)
            pair.baseline(False)
        log(f"{tag} {pair.name} warmed up")
    for rep in range(repeats):
        for pair in pairs:
            if pair.skip():
                continue
            sides = (pair.mpc, pair.baseline) if pair.mpc_first(rep) else (pair.baseline, pair.mpc)
            for side in sides:
                if settle_seconds:
                    settle(settle_seconds)
                side(True)
        log(f"{tag} repetition {rep + 1}/{repeats} done")
