"""The data and federation of the privacy sections (utility curves, re-identification).

Two synthetic federations of 3 hospitals from the same generator (smpc_ehr.data.synth,
its phenotype model) with seeds `seed` and `seed + 1`: the first is the one queried
(its patients are the training patients, the members), the second is held out (the
non-members of the membership attack, the rows the AUC is measured on). Both are CSV
in a temporary folder: at these sizes generation takes a second or two, and the
plaintext truth (tests/_truth.py) reads CSV.

Why the in-process federation (smpc_ehr/testing/federation.py): these experiments
repeat the same job hundreds of times. It runs the real coordinator and party code
(submission checks, every party's policy and privacy ledger, local steps, the secure
program, the release with its suppression), with only the secure arithmetic swapped for
the plaintext reference of MPyC's precision. A DP release is the exact result plus the
sum of every party's noise share, drawn by each party's real exact sampler from the
plan of (sensitivity, rho, n, t), and the MPyC backend contributes only t = 1 of 3 to
that plan; so the released values, exact and noisy, have the distribution a real MPyC
federation's have (scripts/benchsuite/dp.py makes the same argument; its --real-check
compares one noisy count with a real federation).
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import pandas as pd
from benchsuite.harness import MIN_CELL_COUNT, PARTIES, PROTOCOLS, party_ids

FEATURES = ("bmi", "sbp", "hba1c", "ldl")
BOUNDS = {"bmi": (10.0, 60.0), "sbp": (80.0, 220.0), "hba1c": (4.0, 14.0), "ldl": (30.0, 250.0)}
"""The logistic model's features and their public clipping bounds (as benchsuite/dp.py)."""
OUTCOME = "readmit_30d"


@functools.cache
def template(name: str) -> Any:
    """A protocol template of protocols/, loaded once."""
    from smpc_ehr.study.template import load_template

    return load_template(PROTOCOLS / name)


@dataclass(frozen=True)
class Federations:
    """The queried federation's data folder and the held-out one's, and their sizes."""

    members: Path
    holdout: Path
    patients: int
    seed: int

    def federation(self, threshold: int = MIN_CELL_COUNT) -> Any:
        """A fresh in-process federation on the members' data (fresh ledgers per job)."""
        from smpc_ehr.testing.federation import InProcessFederation

        return InProcessFederation.from_folder(self.members, threshold)


def generate(folder: Path, patients: int, seed: int) -> Path:
    """3 hospitals of `patients` each (equal sizes), CSV, under `folder`."""
    from smpc_ehr.data.synth import generate_federation

    generate_federation(party_ids(PARTIES), patients, seed, folder, sizes=[patients] * PARTIES)
    return folder


SCRATCH = Path("/dev/shm")


@contextmanager
def in_memory_scratch() -> Iterator[None]:
    """Temporary folders in memory (/dev/shm, where there is one) while inside: each
    in-process job writes its hospitals' ledgers and audit chains to fresh temporary
    folders and syncs them, and on a shared disk that waiting was two thirds of these
    sections' run time. The jobs and their releases are the same."""
    before = tempfile.tempdir
    if SCRATCH.is_dir() and os.access(SCRATCH, os.W_OK):
        tempfile.tempdir = str(SCRATCH)
    try:
        yield
    finally:
        tempfile.tempdir = before


@contextmanager
def federations(patients: int, seed: int) -> Iterator[Federations]:
    """The two federations of the module docstring, removed on leaving."""
    with TemporaryDirectory(prefix="smpc-evalpriv-") as tmp:
        members = generate(Path(tmp) / "members", patients, seed)
        holdout = generate(Path(tmp) / "holdout", patients, seed + 1)
        yield Federations(members, holdout, patients, seed)


def logistic_rows(data: Path, names: Sequence[str] = FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """Every hospital's complete cases of the features (clipped to BOUNDS, as the DP fit
    clips them) and the outcome, pooled: (x, y)."""
    frames = [pd.read_csv(data / ident / "patients.csv") for ident in party_ids(PARTIES)]
    pooled = pd.concat(frames)[[*names, OUTCOME]].dropna()
    low = np.array([BOUNDS[n][0] for n in names])
    high = np.array([BOUNDS[n][1] for n in names])
    x = np.clip(pooled[list(names)].to_numpy(dtype=float), low, high)
    return x, pooled[OUTCOME].to_numpy(dtype=float)


def logistic_params(epsilon: float | None, names: Sequence[str] = FEATURES) -> dict[str, str]:
    """The logistic regression job's parameters, exact (None) or at `epsilon`."""
    params = {"outcome": OUTCOME, "features": ",".join(names)}
    if epsilon is None:
        return params
    bounds = ",".join(f"{BOUNDS[n][0]:g},{BOUNDS[n][1]:g}" for n in names)
    return {**params, "epsilon": repr(epsilon), "bounds": bounds}


def coefficients(result: dict[str, Any], names: Sequence[str] = FEATURES) -> np.ndarray:
    """A released model's (intercept, coefficients) on the features' own scale."""
    got = result["coefficients"]
    return np.array([got["(intercept)"], *(got[n] for n in names)], dtype=float)


def predict(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The model's probability of the outcome for each row."""
    z = np.clip(beta[0] + x @ beta[1:], -30.0, 30.0)
    return 1.0 / (1.0 + np.exp(-z))


def real_check(data: Path, params: dict[str, str], epsilon: float) -> dict[str, Any]:
    """The in-process federation's releases against a real MPyC federation's (processes,
    mutual TLS, benchsuite.harness) on the same data: the exact count must be equal, the
    stated noise sd equal, and the noisy count within 6 sd of the exact one."""
    from benchsuite import harness as h

    fed = Federations(data, data, 0, 0).federation()
    count = template("rare_disease_count.toml")
    local_exact = fed.run(count, params).result["count"]
    local_sd = float(fed.run(count, {**params, "epsilon": repr(epsilon)}).result["dp"]["noise_sd"])
    with h.local_federation(data, "[privacy real check]") as running, h.analyst(running) as client:
        exact = h.run_job(client, PROTOCOLS / "rare_disease_count.toml", params)
        noisy = h.run_job(
            client, PROTOCOLS / "rare_disease_count.toml", {**params, "epsilon": repr(epsilon)}
        )
    sd = float(noisy.result["dp"]["noise_sd"])
    value = noisy.result["count"]
    return {
        "params": params,
        "epsilon": epsilon,
        "exact": exact.result["count"],
        "in_process_exact": local_exact,
        "noise_sd": sd,
        "in_process_noise_sd": local_sd,
        "noisy": value,
        "agrees": exact.result["count"] == local_exact
        and math.isclose(sd, local_sd, rel_tol=1e-9)
        and value is not None
        and abs(value - local_exact) <= 6 * sd,
        "seconds": [exact.seconds, noisy.seconds],
    }
