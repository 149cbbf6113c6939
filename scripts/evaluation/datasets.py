"""The accuracy section's data: a synthetic logistic data set and two real ones shipped
with scikit-learn (Wisconsin breast cancer; diabetes, the outcome made binary as target
above its median), each with a held-out fifth kept by the evaluator and the rest split
at random across 3 hospitals.

All three live in one federation: each hospital's patients.parquet holds the patients
of every data set, one row each, with that data set's numeric feature columns (named
`<prefix>_<feature>`; empty for the other data sets' patients) and its 0/1 outcome
(`<prefix>_y`, an integer column: the loader's outcome rule, docs/data.md). An analysis
is complete-case, so a job on one data set's columns uses exactly that data set's
patients, and one `local up` serves all three.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from benchsuite.harness import party_ids

TEST_FRACTION = 0.2
BREAST_CANCER = {
    "radius": 1.0,
    "texture": 1.0,
    "smoothness": 100.0,
    "compactness": 100.0,
    "symmetry": 100.0,
    "fractal dimension": 1000.0,
}
"""Six of breast cancer's "mean" features and a public unit factor each: features whose
standard deviation is about 0.01 are scaled by 100 or 1000 (a change of units), since
CrypTen's fixed point (16 fractional bits) cannot tell so small a variance from 0 and
refuses the feature as constant."""
CONDITION = "Z00.00"
"""Every patient's one diagnosis (a general examination): the loader wants a conditions
file; no analysis here reads it."""


@dataclass(frozen=True)
class Dataset:
    """One data set: the pooled training rows the hospitals hold (in hospital order),
    the held-out rows only the evaluator holds, and which rows each hospital has."""

    name: str
    prefix: str
    features: tuple[str, ...]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    sizes: tuple[int, ...]
    """Training rows per hospital (consecutive blocks of x_train)."""

    @property
    def outcome(self) -> str:
        return f"{self.prefix}_y"

    @property
    def bounds(self) -> np.ndarray:
        """Public clipping bounds of a DP run (d x 2): the training rows' range widened
        to whole units (a stand-in for clinically known ranges; it clips nothing)."""
        return np.column_stack(
            [np.floor(self.x_train.min(axis=0)), np.ceil(self.x_train.max(axis=0))]
        )


def _column(prefix: str, name: str) -> str:
    return f"{prefix}_" + re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def synthetic(rows: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A logistic model with 5 correlated features in clinical-like units."""
    names = ["age", "bmi", "sbp", "hba1c", "ldl"]
    centre = np.array([60.0, 27.0, 135.0, 6.0, 120.0])
    scale = np.array([12.0, 5.0, 18.0, 1.0, 30.0])
    mix = np.eye(5) + 0.3 * rng.standard_normal((5, 5)) * (1 - np.eye(5))
    z = rng.standard_normal((rows, 5)) @ mix.T
    z /= z.std(axis=0)
    beta = np.array([0.6, -0.4, 0.5, 0.8, 0.0])
    p = 1.0 / (1.0 + np.exp(-(-0.7 + z @ beta)))
    y = (rng.random(rows) < p).astype(np.int64)
    return names, np.round(centre + scale * z, 2), y


def real(name: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Six of breast cancer's "mean" features (malignant = 1; with all ten the outcome is
    almost separated and the unpenalised fit diverges), or diabetes's ten baseline
    variables in their original units (1 = progression above the median)."""
    from sklearn.datasets import load_breast_cancer, load_diabetes

    if name == "breast cancer":
        data = load_breast_cancer()
        keep = [list(data.feature_names).index(f"mean {f}") for f in BREAST_CANCER]
        factors = np.array(list(BREAST_CANCER.values()))
        names = [f"mean {f}" + (f" x{u:g}" if u != 1 else "") for f, u in BREAST_CANCER.items()]
        y = (data.target == 0).astype(np.int64)  # target 0 is malignant
        return names, data.data[:, keep] * factors, y
    data = load_diabetes(scaled=False)
    y = (data.target > np.median(data.target)).astype(np.int64)
    return list(data.feature_names), data.data, y


def split(
    name: str,
    prefix: str,
    names: list[str],
    x: np.ndarray,
    y: np.ndarray,
    parties: int,
    rng: np.random.Generator,
) -> Dataset:
    """Hold out TEST_FRACTION at random; deal the rest at random to the hospitals."""
    order = rng.permutation(len(y))
    n_test = round(TEST_FRACTION * len(y))
    test, train = order[:n_test], order[n_test:]
    sizes = tuple(len(part) for part in np.array_split(train, parties))
    return Dataset(
        name,
        prefix,
        tuple(_column(prefix, n) for n in names),
        np.ascontiguousarray(x[train], dtype=float),
        y[train],
        np.ascontiguousarray(x[test], dtype=float),
        y[test],
        sizes,
    )


def datasets(synthetic_rows: int, seed: int, parties: int = 3) -> list[Dataset]:
    """The three data sets, split with `seed` (synthetic: `synthetic_rows` in all)."""
    rng = np.random.default_rng(seed)
    out = [split("synthetic", "syn", *synthetic(synthetic_rows, rng), parties, rng)]
    out.append(split("breast cancer", "bc", *real("breast cancer"), parties, rng))
    out.append(split("diabetes", "dm", *real("diabetes"), parties, rng))
    return out


def write_federation(sets: list[Dataset], folder: Path, seed: int) -> Path:
    """Each hospital's patients.parquet and conditions.parquet under folder/<id>/."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    ids = party_ids(len(sets[0].sizes))
    for h, ident in enumerate(ids):
        blocks = []
        for ds in sets:
            start = sum(ds.sizes[:h])
            blocks.append((ds, slice(start, start + ds.sizes[h])))
        n = sum(s.stop - s.start for _, s in blocks)
        patient_ids = [f"{ident}-{i:06d}" for i in range(n)]
        born = np.datetime64("1940-01-01") + rng.integers(0, 60 * 365, n).astype("timedelta64[D]")
        columns: dict[str, pa.Array] = {
            "patient_id": pa.array(patient_ids),
            "sex": pa.array(rng.choice(["F", "M"], n).tolist()),
            "birth_date": pa.array(np.datetime_as_string(born, unit="D").tolist()),
        }
        offset = 0
        for ds, rows in blocks:
            m = rows.stop - rows.start
            here = slice(offset, offset + m)
            for j, name in enumerate(ds.features):
                values = np.full(n, np.nan)
                values[here] = ds.x_train[rows, j]
                columns[name] = pa.array(values, mask=np.isnan(values))
            outcome = np.zeros(n, dtype=np.int64)
            outcome[here] = ds.y_train[rows]
            present = np.zeros(n, dtype=bool)
            present[here] = True
            columns[ds.outcome] = pa.array(outcome, type=pa.int64(), mask=~present)
            offset += m
        party = folder / ident
        party.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns), party / "patients.parquet")
        conditions = {"patient_id": pa.array(patient_ids), "code": pa.array([CONDITION] * n)}
        pq.write_table(pa.table(conditions), party / "conditions.parquet")
    return folder
