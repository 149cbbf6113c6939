"""The data of `bench.py logreg` and `logreg-full`: the cached federation with the
bench-only feature columns, and every party's complete cases pooled and split as the
parties split them (the baselines' rows)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from benchsuite.data import VARIABLES, cached_with_columns, float_column
from benchsuite.harness import PARTIES, log, party_ids, timed

OUTCOME = "readmit_30d"
TEST_FRACTION = 0.2
SPLIT_SEED = 1
"""The job's `seed` parameter: each party's train/test split."""
INTERCEPT = "(intercept)"
REFERENCE: dict[str, tuple[float, float]] = {
    "bmi": (26.0, 6.0),
    "hba1c": (6.0, 1.0),
    "sbp": (135.0, 20.0),
    "ldl": (120.0, 35.0),
    "creatinine": (1.2, 0.6),
    "weight": (73.0, 23.0),
    "heart_rate": (75.0, 11.0),
    "hdl": (51.0, 13.0),
    "egfr": (77.0, 36.0),
}
"""Fixed (centre, scale) of the standardised squares and products: public constants,
the same at every party, so that every party computes the same function."""
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "bmi_sq": ("square", "bmi"),
    "hba1c_sq": ("square", "hba1c"),
    "sbp_sq": ("square", "sbp"),
    "egfr_sq": ("square", "egfr"),
    "bmi_x_hba1c": ("product", "bmi", "hba1c"),
    "sbp_x_creatinine": ("product", "sbp", "creatinine"),
    "ldl_x_hdl": ("product", "ldl", "hdl"),
    "weight_x_heart_rate": ("product", "weight", "heart_rate"),
    "log_triglycerides": ("log", "triglycerides"),
    "log_creatinine": ("log", "creatinine"),
}
"""The bench-only columns: (function, the variables it reads)."""
FEATURES = (*VARIABLES, *EXTRA_COLUMNS)
FEATURES_AND_INTERCEPT = (INTERCEPT, *FEATURES)


class DataConfig(Protocol):
    """What the data needs of a benchmark's settings."""

    @property
    def patients(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def data_root(self) -> Path: ...
    @property
    def data_name(self) -> str: ...


def extra_column(spec: tuple[str, ...], columns: dict[str, np.ndarray]) -> np.ndarray:
    """One bench-only column from the variables it reads (float64, NaN = missing)."""

    def z(name: str) -> np.ndarray:
        centre, scale = REFERENCE[name]
        return (columns[name] - centre) / scale

    kind, *names = spec
    if kind == "square":
        return z(names[0]) ** 2
    if kind == "product":
        return z(names[0]) * z(names[1])
    if kind == "log":
        return np.log(columns[names[0]])
    raise ValueError(f"unknown column function {kind!r}")


def add_extra_columns(patients: Path) -> None:
    """Append the bench-only columns to a patients.parquet (replaced atomically)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = pq.read_table(patients)
    columns = {name: float_column(data, name) for name in VARIABLES}
    for name, spec in EXTRA_COLUMNS.items():
        values = extra_column(spec, columns)
        missing = np.isnan(values)
        if np.isinf(values).any() or np.abs(values[~missing]).max(initial=0.0) > 2.0**14:
            raise ValueError(f"{patients}: bench column {name} out of range")
        if name in data.column_names:
            data = data.drop_columns([name])
        data = data.append_column(name, pa.array(values, type=pa.float64(), mask=missing))
    staging = patients.with_name(f".{patients.name}.partial")
    pq.write_table(data, staging)
    os.replace(staging, patients)


def logreg_data(cfg: DataConfig) -> tuple[Path, float | None]:
    """The cached federation with the 20 features; a cache lacking one of them (written
    before the generator had all 10 variables, or interrupted before the bench columns
    were added) is removed and generated again."""

    ids = party_ids(PARTIES)
    folder, gen_seconds = cached_with_columns(
        cfg.data_root, cfg.data_name, [cfg.patients] * PARTIES, cfg.seed, {*FEATURES, OUTCOME}
    )
    if gen_seconds is not None:
        start = time.perf_counter()
        for ident in ids:
            add_extra_columns(folder / ident / "patients.parquet")
        gen_seconds += time.perf_counter() - start
    return folder, gen_seconds


@dataclass(frozen=True)
class Pooled:
    """All parties' complete cases, split as the parties split them, in original units."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_pooled(folders: Sequence[Path]) -> Pooled:
    """Each party's patients in file order: the rows with the outcome and every feature,
    held out where np.random.default_rng(SPLIT_SEED).random(patients) < TEST_FRACTION
    (smpc_ehr/analyses/models/logistic/data.py: local_design, the cohort being every patient)."""
    import pyarrow.parquet as pq

    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for folder in folders:
        data = pq.read_table(folder / "patients.parquet", columns=[*FEATURES, OUTCOME])
        x = np.column_stack([float_column(data, name) for name in FEATURES])
        y = float_column(data, OUTCOME)
        keep = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
        draw = np.random.default_rng(SPLIT_SEED).random(data.num_rows)
        parts.append((x[keep], y[keep], draw[keep] < TEST_FRACTION))
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    test = np.concatenate([p[2] for p in parts])
    return Pooled(np.ascontiguousarray(x[~test]), y[~test], np.ascontiguousarray(x[test]), y[test])


def prepared_data(cfg: DataConfig, tag: str) -> tuple[Path, float | None, float, Pooled]:
    """The cached federation (generated if missing) and its pooled rows: the folder, the
    generation and loading seconds and the rows."""
    data, gen_seconds = logreg_data(cfg)
    if gen_seconds is not None:
        log(f"{tag} generated {PARTIES} x {cfg.patients:,} patients in {gen_seconds:.1f} s")
    load_seconds, pooled = timed(lambda: load_pooled([data / i for i in party_ids(PARTIES)]))
    return data, gen_seconds, load_seconds, pooled
