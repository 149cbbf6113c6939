"""The statistical analyses' end-to-end test machinery: real federations (3 and 5 party
processes, mutual TLS) on both backends, each job run once per (federation, backend)
and module, with the tolerances of the stated precision.

Tolerances follow from the precision stated in smpc_ehr/analyses/common/moments.py
(and docs/statistics.md), written out here as literal constants, not imported: with
eps = 8 * n_parties * e * 2**-f (f = 32 fractional bits for MPyC, 16 for CrypTen; e the
units a product's rounding may be off: MPyC (C(n, t) + 1) / 2, CrypTen 1),
a mean is within eps (|mean| + sd), a (co)variance within eps (|mean_a| + sd_a)
(|mean_b| + sd_b), a correlation within 2 eps (1 + max |mean| / sd)^2; counts are
exact. sd and mean here are the population ones of the pooled data: the pooled
moment inside MPC is the population (co)variance, which the coordinator multiplies by
n / (n - 1), so the tolerance of a released sample (co)variance is that times n / (n - 1).

Each (federation, backend) runs each job once (module cache); the tests read the cache.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from smpc_ehr.client import Client, JobResult
from smpc_ehr.local.federation import LocalFederation
from tests.federations import PROTOCOLS

THRESHOLD = 11
FRACTION_BITS = {"mpyc": 32, "crypten": 16}
SAME = 1e-9
"""Relative agreement of values computed in the clear from the same exact inputs."""
IDENTITY = 1e-12
"""Relative agreement of sd with sqrt(variance) and se with sd / sqrt(n)."""


def eps(backend: str, parties: int) -> float:
    units = (math.comb(parties, (parties - 1) // 2) + 1) / 2 if backend == "mpyc" else 1.0
    return 8 * parties * units * 2.0 ** -FRACTION_BITS[backend]


def rel_close(got: float, expected: float, rel: float) -> bool:
    return abs(got - expected) <= rel * abs(expected)


BMI_EDGES = [17, 18.5, 25, 30, 35, 40, 43, 44.5]
"""Values below 17 and above 44.5 exist (outside); the bin [43, 44.5] has < 11 patients."""
BMI_Q = dict(variable="bmi", q=[0.1, 0.25, 0.5, 0.75, 0.9], low=18, high=35, step=0.2)
"""bmi has one decimal: a quantile is on the grid or 0.1 below the next grid point."""
SBP_Q = dict(variable="sbp", q=[0.1, 0.25, 0.5, 0.75, 0.9], low=110, high=160, step=2)
"""sbp is whole: step 2 rounds odd quantiles up; q=0.1 lies below 110, q=0.9 above 160."""
JOBS: dict[str, tuple[str, dict[str, Any]]] = {
    "summary": ("summary", {"variables": "bmi,hba1c,sbp,ldl"}),
    "summary_sex": ("summary", {"variables": "bmi,hba1c,hdl", "by": "sex"}),
    "summary_readmit": (
        "summary",
        {"variables": "bmi,hba1c,creatinine", "by": "readmit_30d", "codes": "E11", "age": "40-75"},
    ),
    "correlation": ("correlation", {"variables": "bmi,hba1c,sbp,hdl"}),
    "histogram": ("histogram", {"variable": "bmi", "edges": BMI_EDGES}),
    "quantiles_bmi": ("quantiles", BMI_Q),
    "quantiles_sbp": ("quantiles", SBP_Q),
    "contingency_condition": (
        "contingency",
        {"row": "condition", "col": "readmit_30d", "condition_codes": "E11"},
    ),
    "contingency_sex": ("contingency", {"row": "sex", "col": "readmit_30d"}),
    "ttest": ("ttest", {"variable": "hba1c", "group": "readmit_30d"}),
    "odds_ratio": (
        "odds_ratio",
        {"exposure": "condition", "outcome": "readmit_30d", "condition_codes": "E11"},
    ),
}
COMBOS = [(f, b) for f in ("fed3", "fed5") for b in ("mpyc", "crypten")]


def template(name: str) -> Path:
    return PROTOCOLS / f"{name}.toml"


@dataclass
class Combo:
    """A federation with one backend, its pooled data, and the module's job cache."""

    name: str
    backend: str
    fed: LocalFederation
    data: Path
    parties: int
    cache: dict[tuple[str, str, str], JobResult] = field(repr=False)

    @property
    def eps(self) -> float:
        return eps(self.backend, self.parties)

    def run(self, key: str) -> dict[str, Any]:
        slot = (self.name, self.backend, key)
        if slot not in self.cache:
            name, params = JOBS[key]
            with Client.from_state(self.fed.state_dir) as client:
                result = client.run(template(name), params, backend=self.backend)
            assert result.backend == self.backend
            assert len(result.parties) == self.parties
            assert result.result["threshold"] == THRESHOLD
            self.cache[slot] = result
        return self.cache[slot].result


@pytest.fixture(scope="module")
def job_cache() -> dict[tuple[str, str, str], JobResult]:
    return {}


@pytest.fixture(params=COMBOS, ids=[f"{f}-{b}" for f, b in COMBOS])
def combo(request: pytest.FixtureRequest, job_cache: dict) -> Combo:
    name, backend = request.param
    fed = request.getfixturevalue(name)
    data = request.getfixturevalue("data" + name[-1])
    return Combo(name, backend, fed, data, int(name[-1]), job_cache)


def mean_tol(e: float, m: dict) -> float:
    return e * (abs(m["mean"]) + m["pop_sd"])


def var_tol(e: float, m: dict) -> float:
    return e * (abs(m["mean"]) + m["pop_sd"]) ** 2 * m["n"] / (m["n"] - 1)


def check_moments(cell: dict, m: dict, e: float, where: object) -> None:
    """A released summary cell against the pooled moments, or its suppression."""
    if m["missing"] >= THRESHOLD and m["n"] >= THRESHOLD:  # with a hidden n: hidden too
        assert cell["missing"] == m["missing"], where
    else:
        assert cell["missing"] is None, where
    if m["n"] < THRESHOLD:
        assert cell == {**cell, "n": None, "mean": None, "variance": None, "sd": None}, where
        assert cell["se"] is None and cell["suppressed"] is True, where
        return
    assert cell["suppressed"] is False and cell["n"] == m["n"], where
    assert abs(cell["mean"] - m["mean"]) <= mean_tol(e, m), (where, cell["mean"], m["mean"])
    tol_var = var_tol(e, m)
    assert abs(cell["variance"] - m["variance"]) <= tol_var, (where, cell, m["variance"])
    assert rel_close(cell["sd"], math.sqrt(cell["variance"]), IDENTITY), where
    assert rel_close(cell["se"], cell["sd"] / math.sqrt(cell["n"]), IDENTITY), where
    sd = math.sqrt(m["variance"])
    # |sqrt(a) - sqrt(b)| = |a - b| / (sqrt(a) + sqrt(b)): the variance's tolerance, carried.
    tol_sd = tol_var / (sd + cell["sd"])
    assert abs(cell["sd"] - sd) <= tol_sd, (where, cell["sd"], sd)
    assert abs(cell["se"] - sd / math.sqrt(m["n"])) <= tol_sd / math.sqrt(m["n"]), where


def cohort_args(params: dict[str, Any]) -> dict[str, Any]:
    age = params.get("age")
    return {
        "codes": params.get("codes"),
        "age": tuple(int(a) for a in age.split("-")) if age else None,
        "condition_codes": params.get("condition_codes"),
    }


def released_or_none(count: int) -> int | None:
    return count if count >= THRESHOLD else None


RARE = "E75.22"


def run_fed3(fed3: LocalFederation, name: str, params: dict[str, Any]) -> dict[str, Any]:
    with Client.from_state(fed3.state_dir) as client:
        result = client.run(template(name), params)
    assert result.backend == "mpyc"
    return result.result


def numbers_in(obj: object) -> list[float]:
    """Every number in a JSON value (booleans are not numbers here)."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return []
    if isinstance(obj, int | float):
        return [float(obj)]
    if isinstance(obj, dict):
        return [x for v in obj.values() for x in numbers_in(v)]
    assert isinstance(obj, list)
    return [x for v in obj for x in numbers_in(v)]


def assert_not_disclosed(result: dict, secrets: list[float], allowed: set[float]) -> None:
    """No secret number anywhere: not among the JSON values, not in the JSON text."""
    found = numbers_in(result)
    assert set(found) <= allowed, (set(found) - allowed, result)
    text = json.dumps(result)
    for secret in secrets:
        assert not any(math.isclose(x, secret, rel_tol=1e-3) for x in found), secret
        shapes = {repr(secret), *(f"{secret:.{d}f}" for d in range(1, 7))}
        if float(secret).is_integer():
            shapes.add(str(int(secret)))
        for shape in shapes:
            assert not re.search(rf"(?<![\d.]){re.escape(shape)}(?![\d])", text), (shape, text)
