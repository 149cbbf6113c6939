"""Compute threads per party and dealer process (`compute_threads`, default 1): the
configs' key and what it does to numpy's BLAS pool and torch in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from smpc_ehr.config.dealer import load_dealer_config
from smpc_ehr.config.party import load_party_config
from smpc_ehr.errors import ConfigError
from tests.federations import ROOT
from tests.test_config import PARTY, federation, write
from tests.test_dealer_config import files, write_config

PROBE = """
import json, sys
from smpc_ehr.compute_threads import limit_compute_threads
limit_compute_threads(int(sys.argv[1]))  # before numpy and torch load, as the CLI does
import numpy, threadpoolctl, torch
blas = lambda: sorted({p["num_threads"] for p in threadpoolctl.threadpool_info()})
first = {"blas": blas(), "torch": torch.get_num_threads()}
limit_compute_threads(int(sys.argv[2]))  # after they loaded: resized in place
print(json.dumps({"first": first, "then": {"blas": blas(), "torch": torch.get_num_threads()}}))
"""


def test_party_key_defaults_to_one_and_is_checked(tmp_path: Path) -> None:
    federation(tmp_path)
    assert load_party_config(write(tmp_path / "a.toml", PARTY)).compute_threads == 1
    data = 'data = "data/hospital-a"'
    text = PARTY.replace(data, f"{data}\ncompute_threads = 6")
    assert load_party_config(write(tmp_path / "b.toml", text)).compute_threads == 6
    with pytest.raises(ConfigError, match="compute_threads: must be >= 1, got 0"):
        load_party_config(write(tmp_path / "c.toml", text.replace("threads = 6", "threads = 0")))


def test_dealer_key_defaults_to_one_and_is_checked(tmp_path: Path) -> None:
    files(tmp_path)
    path = write_config(tmp_path)
    assert load_dealer_config(path).compute_threads == 1
    path.write_text(path.read_text().replace("[dealer]\n", "[dealer]\ncompute_threads = 3\n"))
    assert load_dealer_config(path).compute_threads == 3
    path.write_text(path.read_text().replace("compute_threads = 3", 'compute_threads = "3"'))
    with pytest.raises(ConfigError, match="compute_threads: expected an integer"):
        load_dealer_config(path)


def test_limit_sets_blas_and_torch_threads_before_and_after_they_load() -> None:
    pytest.importorskip("threadpoolctl")
    pytest.importorskip("torch")
    for first, then in ((1, 2), (2, 1)):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(first), str(then)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
            check=True,
        )
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        assert seen == {
            "first": {"blas": [first], "torch": first},
            "then": {"blas": [then], "torch": then},
        }
