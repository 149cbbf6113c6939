"""Helpers shared by the benchmarks of scripts/bench.py: timing statistics, the synthetic
data cache, a local federation that always comes down, and the printed table.

Not a public module: the benchmarks import it from the scripts folder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_ROOT = ROOT / ".bench-data"
PROTOCOLS = ROOT / "protocols"
DATA_FORMAT = "parquet"
"""The party loader reads Parquet as well as CSV; Parquet loads several times faster."""


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark on synthetic data shares: its seed and its cache."""
    parser.add_argument("--seed", type=int, default=7, help="synthetic data seed (default 7)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_ROOT,
        help="cache of generated data (default .bench-data)",
    )


def party_ids(k: int) -> list[str]:
    """The party (hospital) ids of a k-party benchmark federation."""
    return [f"hospital-{i}" for i in range(1, k + 1)]


def log(message: str) -> None:
    """Progress goes to stderr, so stdout holds only the table and the JSON line."""
    print(message, file=sys.stderr, flush=True)


# --- statistics -----------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Median and 90th percentile of a sample of durations, in milliseconds."""

    n: int
    median_ms: float
    p90_ms: float
    min_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Summary:
        ms = sorted(s * 1000.0 for s in seconds)
        if not ms:
            raise ValueError("no samples")
        return cls(len(ms), statistics.median(ms), percentile(ms, 90.0), ms[0])

    def as_dict(self) -> dict[str, float | int]:
        return {
            "n": self.n,
            "median_ms": round(self.median_ms, 3),
            "p90_ms": round(self.p90_ms, 3),
            "min_ms": round(self.min_ms, 3),
        }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between closest ranks (numpy's default)."""
    if len(sorted_values) == 1:
        return float(sorted_values[0])
    pos = (len(sorted_values) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds `fn()` took (perf_counter) and what it returned."""
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


# --- synthetic data cache -------------------------------------------------------------


def cached_federation_data(
    root: Path, name: str, ids: Sequence[str], sizes: Sequence[int], seed: int
) -> tuple[Path, float | None]:
    """The folder `root/name` holding a synthetic federation, generating it if absent.

    Returns the folder and the generation time in seconds (None when it was reused).
    Generation writes into a temporary sibling that is renamed at the end, so an
    interrupted run never leaves a half-written folder that a later run would reuse.
    """
    from smpc_ehr.data.synth import FederationTruth, generate_federation

    folder = root / name
    truth_file = folder / "truth.json"
    if truth_file.exists():
        truth = FederationTruth.load(truth_file)
        wanted = dict(zip(ids, (int(s) for s in sizes), strict=True))
        if truth.sizes == wanted and truth.seed == seed and truth.fmt == DATA_FORMAT:
            return folder, None
        log(f"{folder} holds other data; generating it again")
    root.mkdir(parents=True, exist_ok=True)
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# generated benchmark data (scripts/bench.py)\n*\n")
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    staging.chmod(0o755)
    try:
        elapsed, _ = timed(
            lambda: generate_federation(
                list(ids),
                max(1, int(statistics.mean(sizes))),
                seed,
                staging,
                sizes=list(sizes),
                fmt=DATA_FORMAT,
            )
        )
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder, elapsed


# --- local federation -----------------------------------------------------------------


@dataclass(frozen=True)
class RunningFederation:
    """A federation started by `local_federation`, with how long `local up` took."""

    state_dir: Path
    pids: dict[str, int]
    up_seconds: float

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each process right now, in MiB (Linux /proc)."""
        out: dict[str, float] = {}
        for ident, pid in self.pids.items():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    out[ident] = round(int(line.split()[1]) / 1024.0, 1)
        return out


@contextmanager
def local_federation(
    data: Path, min_cell_count: int, timeout: float
) -> Iterator[RunningFederation]:
    """`local up` on `data` in a temporary state folder; `local down` on leaving, always
    (also on Ctrl-C or SIGTERM, which `terminate_as_interrupt` turns into an exception)."""
    from smpc_ehr.local.federation import down, up

    with tempfile.TemporaryDirectory(prefix="smpc-bench-") as tmp:
        state_dir = Path(tmp) / "state"
        start = time.perf_counter()
        try:
            federation = up(
                data,
                state_dir,
                protocols=PROTOCOLS,
                min_cell_count=min_cell_count,
                timeout=timeout,
            )
            up_seconds = time.perf_counter() - start
            yield RunningFederation(state_dir, dict(federation.pids), up_seconds)
        finally:
            down(state_dir, quiet=True)


def terminate_as_interrupt() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so `finally` blocks bring federations down."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


# --- output ---------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table: text columns left-aligned, numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in cells)])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def finish_figures(figures: dict[str, Any], problems: list[str]) -> int:
    """Print a benchmark's closing JSON line (its figures, whether every result checked
    out, and the machine) and return its exit status: 1 if any result did not."""
    figures.update(check="mismatch" if problems else "ok", mismatches=problems, machine=machine())
    print(json_line(figures), flush=True)
    return 1 if problems else 0


def json_line(figures: dict[str, Any]) -> str:
    """The one-line JSON object a benchmark ends with."""
    return json.dumps(figures, separators=(", ", ": "), sort_keys=False)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import platform

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
