"""The benchmarks' synthetic data: the federations generated once and cached under
.bench-data/ (regenerated when they lack a column a benchmark reads), and the pooled
variables the plaintext baselines read from them."""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchsuite.harness import PARTIES, log, party_ids, timed

DATA_FORMAT = "parquet"
"""The party loader reads Parquet as well as CSV; Parquet loads several times faster."""
VARIABLES = (
    "bmi",
    "hba1c",
    "sbp",
    "ldl",
    "creatinine",
    "weight",
    "heart_rate",
    "hdl",
    "triglycerides",
    "egfr",
)
"""The synthetic patients' numeric variables (the stats benchmark's columns)."""


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


def cached_with_columns(
    root: Path, name: str, sizes: Sequence[int], seed: int, columns: set[str]
) -> tuple[Path, float | None]:
    """`cached_federation_data` of the benchmark federation (`party_ids`), removing first
    a cached copy that lacks one of `columns` (written by an older generator, or
    interrupted before a benchmark added its own columns)."""
    import pyarrow.parquet as pq

    ids = party_ids(len(sizes))
    folder = root / name
    if (folder / "truth.json").exists():
        for ident in ids:
            patients = folder / ident / "patients.parquet"
            names = set(pq.read_schema(patients).names) if patients.exists() else set()
            lacking = columns - names
            if lacking:
                log(f"{folder} lacks {', '.join(sorted(lacking))}; generating it again")
                shutil.rmtree(folder)
                break
    return cached_federation_data(root, name, ids, sizes, seed)


def stats_data(data_root: Path, seed: int, size: int) -> tuple[Path, float | None]:
    """The cached federation of 3 x `size` patients with all 10 variables."""
    name = f"stats-{PARTIES}x{size}-seed{seed}"
    return cached_with_columns(data_root, name, [size] * PARTIES, seed, set(VARIABLES))


def float_column(data: Any, name: str) -> np.ndarray:
    """A Parquet column as float64, NaN = missing."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = pc.fill_null(pc.cast(data.column(name), pa.float64()), float("nan"))
    return np.asarray(column.to_numpy(), dtype=np.float64)


def load_pooled(folders: Sequence[Path]) -> np.ndarray:
    """All parties' patients' 10 variables in one float64 array (rows x 10, NaN =
    missing), column-major: each column is contiguous, as in the Parquet files."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tables = [pq.read_table(f / "patients.parquet", columns=list(VARIABLES)) for f in folders]
    rows = sum(t.num_rows for t in tables)
    pooled = np.empty((rows, len(VARIABLES)), dtype=np.float64, order="F")
    start = 0
    for t in tables:
        for j, name in enumerate(VARIABLES):
            column = pc.fill_null(pc.cast(t.column(name), pa.float64()), float("nan"))
            pooled[start : start + t.num_rows, j] = column.to_numpy()
        start += t.num_rows
    return pooled
