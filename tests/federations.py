"""Shared fixtures, a pytest plugin (see the root conftest.py): synthetic data and real
local federations (separate processes, mTLS).

Federations are started with the same code as `smpc-ehr local up` on free ports of
127.0.0.1, with a PKI made for the test session; they are stopped at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from smpc_ehr.data.synth import generate_federation
from smpc_ehr.local.federation import LocalFederation, down, up

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "protocols"
COUNT_TEMPLATE = PROTOCOLS / "rare_disease_count.toml"


def make_data(out: Path, parties: int, patients: int, seed: int) -> Path:
    """Synthetic data, one folder per party named hospital-1..n."""
    ids = [f"hospital-{i + 1}" for i in range(parties)]
    generate_federation(ids, patients, seed, out)
    return out


def start_federation(data: Path, state: Path, **kwargs: object) -> LocalFederation:
    return up(data, state, protocols=PROTOCOLS, timeout=90.0, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def data3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("data3"), 3, 4000, seed=3)


@pytest.fixture(scope="session")
def fed3(data3: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    state = tmp_path_factory.mktemp("fed3")
    federation = start_federation(data3, state)
    yield federation
    down(state)


@pytest.fixture(scope="session")
def data5(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_data(tmp_path_factory.mktemp("data5"), 5, 2500, seed=5)


@pytest.fixture(scope="session")
def fed5(data5: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    state = tmp_path_factory.mktemp("fed5")
    federation = start_federation(data5, state)
    yield federation
    down(state)
