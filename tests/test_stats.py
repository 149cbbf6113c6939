"""The statistical analyses (summary, correlation, histogram, quantiles, contingency,
t-test, odds ratio) over real federations (3 and 5 party processes, mutual TLS), on
both backends, against numpy/scipy on the pooled plaintext files (tests/_stats_truth).

Tolerances follow from the precision stated in smpc_ehr/analyses/moments.py (and
docs/analyses.md), written out here as literal constants, not imported: with
eps = 8 * n_parties * 2**-f (f = 32 fractional bits for MPyC, 16 for CrypTen),
a mean is within eps (|mean| + sd), a (co)variance within eps (|mean_a| + sd_a)
(|mean_b| + sd_b), a correlation within 2 eps (1 + max |mean| / sd)^2; counts are
exact. sd and mean here are the population ones of the pooled data: the pooled
moment inside MPC is the population (co)variance, which the coordinator multiplies by
n / (n - 1), so the tolerance of a released sample (co)variance is that times n / (n - 1).

Each (federation, backend) runs each job once (module cache); the tests read the cache.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from smpc_ehr.client import Client, JobFailed, JobResult
from smpc_ehr.errors import TemplateError
from smpc_ehr.local.federation import LocalFederation, down
from tests import _stats_truth as truth
from tests.federations import PROTOCOLS, make_data, start_federation

THRESHOLD = 11
FRACTION_BITS = {"mpyc": 32, "crypten": 16}
SAME = 1e-9
"""Relative agreement of values computed in the clear from the same exact inputs."""
IDENTITY = 1e-12
"""Relative agreement of sd with sqrt(variance) and se with sd / sqrt(n)."""


def eps(backend: str, parties: int) -> float:
    return 8 * parties * 2.0 ** -FRACTION_BITS[backend]


def rel_close(got: float, expected: float, rel: float) -> bool:
    return abs(got - expected) <= rel * abs(expected)


# One job per key and (federation, backend); parameters chosen to cover the features.
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


# ---------------------------------------------------------------------------- checks


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


# ---------------------------------------------------------------------------- summary


@pytest.mark.parametrize("key", ["summary", "summary_sex", "summary_readmit"])
def test_summary(combo: Combo, key: str) -> None:
    params = JOBS[key][1]
    result = combo.run(key)
    variables = params["variables"].split(",")
    frame = truth.cohort_frame(combo.data, **cohort_args(params))
    by = params.get("by")
    expected = truth.summary(frame, variables, by)
    assert result["missing_values"] == "excluded variable by variable (available-case)"
    if by is None:
        assert set(result) == {"variables", "missing_values", "binary_rule", "threshold"}
        blocks = {"": result["variables"]}
    else:
        assert result["by"] == by
        assert list(result["strata"]) == list(truth.levels(by))
        blocks = {lvl: s["variables"] for lvl, s in result["strata"].items()}
    released = suppressed = 0
    for level, block in blocks.items():
        assert list(block) == variables
        for v in variables:
            check_moments(block[v], expected[level][v], combo.eps, (key, level, v))
            released += block[v]["n"] is not None
            suppressed += block[v]["missing"] is None
    assert released > 0
    if key == "summary_sex":
        # Sex U is rare: its missing counts are below the threshold and withheld.
        assert suppressed > 0


# ---------------------------------------------------------------------------- correlation


def test_correlation(combo: Combo) -> None:
    params = JOBS["correlation"][1]
    result = combo.run("correlation")
    variables = params["variables"].split(",")
    t = truth.correlation(truth.cohort_frame(combo.data), variables)
    e = combo.eps
    assert result["variables"] == variables and result["suppressed"] is False
    assert result["n"] == t["n"]
    assert result["missing"] == {
        v: (t["missing"][v] if t["missing"][v] >= THRESHOLD else None) for v in variables
    }
    assert all(t["missing"][v] >= THRESHOLD for v in variables)  # all exercised as released
    scale = np.abs(t["means"]) + t["pop_sd"]
    means = np.asarray(result["means"])
    assert np.all(np.abs(means - t["means"]) <= e * scale), (means, t["means"])
    cov = np.asarray(result["covariance"], dtype=float)
    tol_cov = e * np.outer(scale, scale) * t["n"] / (t["n"] - 1)
    assert np.all(np.abs(cov - t["covariance"]) <= tol_cov), np.abs(cov - t["covariance"])
    ratio = np.abs(t["means"]) / t["pop_sd"]
    tol_r = 2 * e * (1 + np.maximum.outer(ratio, ratio)) ** 2
    corr = np.asarray(result["matrix"], dtype=float)
    assert np.all(np.abs(corr - t["matrix"]) <= tol_r), np.abs(corr - t["matrix"])
    assert np.all(np.diag(corr) == 1.0)
    # The released matrix is the correlation of the released covariance.
    sd = np.sqrt(np.diag(cov))
    assert np.allclose(corr, cov / np.outer(sd, sd), rtol=IDENTITY, atol=0)


# ---------------------------------------------------------------------------- histogram


def released_or_none(count: int) -> int | None:
    return count if count >= THRESHOLD else None


def test_histogram(combo: Combo) -> None:
    result = combo.run("histogram")
    t = truth.histogram(truth.cohort_frame(combo.data), "bmi", BMI_EDGES)
    assert result["edges"] == [float(e) for e in BMI_EDGES]
    assert result["counts"] == [released_or_none(c) for c in t["counts"]]
    assert result["suppressed"] == [c < THRESHOLD for c in t["counts"]]
    assert result["outside"] == released_or_none(t["outside"])
    assert result["missing"] == released_or_none(t["missing"])
    assert t["outside"] > 0 and any(result["suppressed"]) and not all(result["suppressed"])
    assert "total" not in result and "n" not in result


# ---------------------------------------------------------------------------- quantiles


def check_quantiles(result: dict, params: dict, t: dict) -> list[str]:
    """Each q against numpy's inverted_cdf quantile; returns what each q exercised."""
    low, high, step = params["low"], params["high"], params["step"]
    n = t["n"]
    assert result["n"] == (n if n >= THRESHOLD else None)
    assert result["q"] == list(params["q"])
    assert result["resolution"] == step and result["range"] == [low, high]
    seen = []
    for i, q in enumerate(params["q"]):
        p = round(q * 10_000)
        if min(p, 10_000 - p) * n < 10_000 * THRESHOLD:  # fewer than 11 on one side
            assert result["values"][i] is None and result["suppressed"][i] is True, q
            assert result["notes"][i] is None
            seen.append("suppressed")
            continue
        assert result["suppressed"][i] is False, q
        exact = t["values"][i]
        value, note = result["values"][i], result["notes"][i]
        if exact <= low:
            assert value is None and note.startswith("below_range"), (q, exact, note)
            seen.append("below")
        elif exact > high:
            assert value is None and note.startswith("above_range"), (q, exact, note)
            seen.append("above")
        else:
            grid_point = low + math.ceil((exact - low) / step - 1e-9) * step
            assert note is None
            assert abs(value - grid_point) <= 1e-9, (q, value, grid_point)
            assert -1e-9 <= value - exact < step, (q, value, exact)
            seen.append("on grid" if abs(value - exact) <= 1e-9 else "rounded up")
    return seen


@pytest.mark.parametrize(
    ("key", "params"), [("quantiles_bmi", BMI_Q), ("quantiles_sbp", SBP_Q)], ids=["bmi", "sbp"]
)
def test_quantiles(combo: Combo, key: str, params: dict) -> None:
    result = combo.run(key)
    t = truth.quantiles(truth.cohort_frame(combo.data), params["variable"], params["q"])
    seen = check_quantiles(result, params, t)
    # The values' resolution is half the step here (bmi: 0.1, step 0.2; sbp: whole numbers,
    # step 2), so a released quantile is numpy's to float rounding or half a step up.
    for value, exact in zip(result["values"], t["values"], strict=True):
        assert value is None or abs(value - exact) <= params["step"] / 2 + 1e-9, (value, exact)
    if key == "quantiles_bmi":
        assert set(seen) == {"on grid", "rounded up"}
    else:
        assert seen[0] == "below" and seen[-1] == "above" and "rounded up" in seen


# ---------------------------------------------------------------------------- contingency


def test_contingency_released_with_chi_square(combo: Combo) -> None:
    result = combo.run("contingency_condition")
    frame = truth.cohort_frame(combo.data, condition_codes="E11")
    t = truth.table(frame, "condition", "readmit_30d")
    table = np.asarray(t["counts"])
    assert result["row_levels"] == ["0", "1"] and result["col_levels"] == ["0", "1"]
    assert table.min() >= THRESHOLD, "the case must release every cell"
    assert result["counts"] == t["counts"]
    assert result["suppressed"] == [[False, False], [False, False]]
    assert result["missing"] == released_or_none(t["missing"])
    assert result["row_totals"] == table.sum(axis=1).tolist()
    assert result["col_totals"] == table.sum(axis=0).tolist()
    assert result["n"] == int(table.sum())
    assert result["test_refused"] is None
    chi = truth.chi_square(t["counts"])
    test = result["test"]
    assert test["df"] == chi["df"] == 1
    assert rel_close(test["statistic"], chi["statistic"], SAME)
    assert rel_close(test["p_value"], chi["p_value"], SAME)
    assert np.allclose(result["expected"], chi["expected"], rtol=SAME, atol=0)


def check_refused_table(result: dict, t: dict) -> None:
    """A table with a suppressed cell: released cells exact, no totals, no test."""
    counts = t["counts"]
    assert result["counts"] == [[released_or_none(c) for c in line] for line in counts]
    assert result["suppressed"] == [[c < THRESHOLD for c in line] for line in counts]
    assert result["missing"] == released_or_none(t["missing"])
    assert isinstance(result["test_refused"], str) and "threshold" in result["test_refused"]
    for key in ("row_totals", "col_totals", "n", "expected", "test"):
        assert result[key] is None, key


def test_contingency_with_small_cell_refuses_test(combo: Combo) -> None:
    result = combo.run("contingency_sex")
    t = truth.table(truth.cohort_frame(combo.data), "sex", "readmit_30d")
    assert result["row_levels"] == ["F", "M", "U"] and result["col_levels"] == ["0", "1"]
    assert t["counts"][2][1] < THRESHOLD, "sex U with readmission must be a small cell"
    check_refused_table(result, t)


# ---------------------------------------------------------------------------- t-test


def test_welch_ttest(combo: Combo) -> None:
    result = combo.run("ttest")
    frame = truth.cohort_frame(combo.data)
    t = truth.summary(frame, ["hba1c"], "readmit_30d")
    m0, m1 = t["0"]["hba1c"], t["1"]["hba1c"]
    e = combo.eps
    assert result["levels"] == ["0", "1"] and result["estimate_is"] == "mean(1) - mean(0)"
    g0, g1 = result["groups"]["0"], result["groups"]["1"]
    check_moments(g0, m0, e, "group 0")
    check_moments(g1, m1, e, "group 1")
    assert result["test_refused"] is None

    # Consistency: the test is scipy's from the released group statistics.
    mine = truth.welch_from_stats(
        g0["n"], g0["mean"], g0["variance"], g1["n"], g1["mean"], g1["variance"]
    )
    for key in ("statistic", "df", "p_value", "estimate"):
        assert rel_close(result[key], mine[key], SAME), (key, result[key], mine[key])
    for got, want in zip(result["ci95"], mine["ci95"], strict=True):
        assert rel_close(got, want, SAME), (result["ci95"], mine["ci95"])

    # Against scipy.stats.ttest_ind(pooled values, equal_var=False), with the stated
    # precision of the group means and variances carried through Welch's formulas
    # (bounds, not fitted constants; for CrypTen they are about 1e-2 relative, for
    # MPyC about 1e-7; the measured errors are far smaller).
    pooled = truth.welch_pooled(m0["values"], m1["values"])
    tol_d = mean_tol(e, m0) + mean_tol(e, m1)
    assert abs(result["estimate"] - pooled["estimate"]) <= tol_d
    se_true = math.sqrt(m0["variance"] / m0["n"] + m1["variance"] / m1["n"])
    se_rel = mine["se"]
    tol_se = (var_tol(e, m0) / m0["n"] + var_tol(e, m1) / m1["n"]) / (se_true + se_rel)
    tol_t = (tol_d + abs(pooled["statistic"]) * tol_se) / se_rel
    assert abs(result["statistic"] - pooled["statistic"]) <= tol_t
    # df: each v_i / n_i within relative r, so df within [(1-r)^2/(1+r)^2, (1+r)^2/(1-r)^2].
    r = max(var_tol(e, m0) / m0["variance"], var_tol(e, m1) / m1["variance"])
    df_lo, df_hi = pooled["df"] * ((1 - r) / (1 + r)) ** 2, pooled["df"] * ((1 + r) / (1 - r)) ** 2
    assert df_lo <= result["df"] <= df_hi
    q_rel, q_true = stats.t.ppf(0.975, result["df"]), stats.t.ppf(0.975, pooled["df"])
    tol_ci = tol_d + q_rel * tol_se + abs(q_rel - q_true) * se_true
    for got, want in zip(result["ci95"], pooled["ci95"], strict=True):
        assert abs(got - want) <= tol_ci
    # p = 2 sf(|t|, df) over the box of |t| and df allowed above.
    abs_t = abs(pooled["statistic"])
    corners = [
        2 * stats.t.sf(tt, dd)
        for tt in (max(abs_t - tol_t, 0.0), abs_t + tol_t)
        for dd in (df_lo, df_hi)
    ]
    assert min(corners) * (1 - SAME) <= result["p_value"] <= max(corners) * (1 + SAME)
    if combo.backend == "mpyc":
        for key in ("statistic", "df", "estimate"):
            assert rel_close(result[key], pooled[key], 1e-6), (key, result[key], pooled[key])
        for got, want in zip(result["ci95"], pooled["ci95"], strict=True):
            assert rel_close(got, want, 1e-6)


# ---------------------------------------------------------------------------- odds ratio


def test_odds_ratio(combo: Combo) -> None:
    result = combo.run("odds_ratio")
    frame = truth.cohort_frame(combo.data, condition_codes="E11")
    t = truth.table(frame, "condition", "readmit_30d")
    (d, c), (b, a) = t["counts"]  # rows condition 0, 1; columns readmit 0, 1
    assert min(a, b, c, d) >= THRESHOLD
    assert result["table"] == {
        "exposed": {"outcome_1": a, "outcome_0": b},
        "unexposed": {"outcome_1": c, "outcome_0": d},
    }
    assert result["suppressed"] == {
        "exposed": {"outcome_1": False, "outcome_0": False},
        "unexposed": {"outcome_1": False, "outcome_0": False},
    }
    assert result["missing"] == released_or_none(t["missing"])
    assert result["estimate_refused"] is None
    w = truth.woolf(a, b, c, d)
    for key in ("odds_ratio", "statistic", "p_value"):
        assert rel_close(result[key], w[key], SAME), (key, result[key], w[key])
    for got, want in zip(result["ci95"], w["ci95"], strict=True):
        assert rel_close(got, want, SAME)
    assert result["ci95"][0] < result["odds_ratio"] < result["ci95"][1]


# ---------------------------------------------------------------------------- disclosure

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


def test_small_cohort_releases_nothing(fed3: LocalFederation, data3: Path) -> None:
    frame = truth.cohort_frame(data3, codes=RARE)
    bmi = frame["bmi"].dropna()
    assert 1 <= len(frame) < THRESHOLD, "the synthetic data must give a small nonzero cohort"
    secrets = [float(len(frame)), float(len(bmi)), float(bmi.mean())]

    summary = run_fed3(fed3, "summary", {"variables": "bmi", "codes": RARE})
    assert summary["variables"]["bmi"] == {
        "n": None,
        "missing": None,
        "mean": None,
        "variance": None,
        "sd": None,
        "se": None,
        "suppressed": True,
        "mean_suppressed": False,  # the whole cell is: the binary rule has nothing to add
    }
    assert_not_disclosed(summary, secrets, {float(THRESHOLD)})

    params = {"variable": "bmi", "q": [0.25, 0.5, 0.75], "low": 15, "high": 40, "step": 1}
    quantiles = run_fed3(fed3, "quantiles", {**params, "codes": RARE})
    assert quantiles["n"] is None
    assert quantiles["values"] == [None] * 3 and quantiles["suppressed"] == [True] * 3
    assert quantiles["notes"] == [None] * 3
    # Exact cohort quantiles would be grid points here: none of them may show.
    t = truth.quantiles(frame, "bmi", params["q"])
    allowed = {float(THRESHOLD), 15.0, 40.0, 1.0, *params["q"]}
    assert_not_disclosed(quantiles, secrets + [v for v in t["values"] if v not in allowed], allowed)

    ttest = run_fed3(fed3, "ttest", {"variable": "bmi", "group": "readmit_30d", "codes": RARE})
    for level in ("0", "1"):
        group = ttest["groups"][level]
        assert group["suppressed"] is True
        assert all(group[k] is None for k in ("n", "missing", "mean", "variance", "sd", "se"))
    for key in ("statistic", "df", "p_value", "estimate", "ci95"):
        assert ttest[key] is None, key
    assert "fewer than 11" in ttest["test_refused"]
    groups = truth.summary(frame, ["bmi"], "readmit_30d")
    secrets += [float(g["bmi"]["mean"]) for g in groups.values() if g["bmi"]["n"]]
    assert_not_disclosed(ttest, secrets, {float(THRESHOLD)})


def test_tail_quantiles_of_small_cohort_are_suppressed(fed3: LocalFederation, data3: Path) -> None:
    # 61 patients with a bmi in fed3: q*n < 11 for q <= 0.1, (1-q)*n < 11 for q >= 0.9.
    cohort = {"codes": "E66", "age": "18-30"}
    params = {"variable": "bmi", "q": [0.05, 0.1, 0.2, 0.5, 0.8, 0.9, 0.95]}
    params |= {"low": 15, "high": 40, "step": 0.5}
    result = run_fed3(fed3, "quantiles", {**params, **cohort})
    t = truth.quantiles(truth.cohort_frame(data3, **cohort_args(cohort)), "bmi", params["q"])
    assert 2 * THRESHOLD <= t["n"] < 10 * THRESHOLD, t["n"]
    seen = check_quantiles(result, params, t)
    assert seen[0] == seen[1] == seen[-2] == seen[-1] == "suppressed", seen
    assert "suppressed" not in seen[2:5], seen


def test_contingency_test_refused_for_suppressed_cell(fed3: LocalFederation, data3: Path) -> None:
    # U x readmitted is below the threshold: no totals (U's row total minus its released
    # cell would give it away), no expected counts, no test.
    result = run_fed3(fed3, "contingency", {"row": "sex", "col": "readmit_30d", "sex": "U"})
    t = truth.table(truth.cohort_frame(data3, sex="U"), "sex", "readmit_30d")
    assert t["counts"][2][1] < THRESHOLD <= t["counts"][2][0]
    check_refused_table(result, t)
    secrets = [float(t["counts"][2][1]), float(sum(t["counts"][2]))]
    allowed = {float(THRESHOLD), float(t["counts"][2][0])}
    assert_not_disclosed(result, secrets, allowed | {float(result["missing"] or 0)})


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("q", [0.0, 1.0])
def test_quantile_q_outside_bounds_is_refused(fed3: LocalFederation, q: float) -> None:
    params = {"variable": "bmi", "q": [q, 0.5], "low": 10, "high": 50, "step": 0.1}
    with Client.from_state(fed3.state_dir) as client, pytest.raises(TemplateError) as err:
        client.submit(template("quantiles"), params)
    message = str(err.value)
    assert "parameter 'q'" in message and "out of bounds" in message, message
    assert "0.01" in message and "0.99" in message


def test_decreasing_histogram_edges_are_refused(fed3: LocalFederation) -> None:
    with Client.from_state(fed3.state_dir) as client, pytest.raises(JobFailed) as err:
        client.run(template("histogram"), {"variable": "bmi", "edges": [20, 30, 25, 40]})
    message = str(err.value)
    assert "'edges'" in message and "strictly increasing" in message, message


def test_ttest_with_more_than_two_groups_is_refused(fed3: LocalFederation) -> None:
    with Client.from_state(fed3.state_dir) as client, pytest.raises(JobFailed) as err:
        client.run(template("ttest"), {"variable": "bmi", "group": "age_band"})
    message = str(err.value)
    assert "'age_band'" in message and "10 levels" in message, message


LACKING = "hospital-2"


@pytest.fixture(scope="module")
def fed_without_hdl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    """A tiny 3-party federation where one party's patients.csv has no hdl column."""
    data = make_data(tmp_path_factory.mktemp("data_nohdl"), 3, 500, seed=17)
    path = data / LACKING / "patients.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c != "hdl"]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    state = tmp_path_factory.mktemp("fed_nohdl")
    federation = start_federation(data, state)
    yield federation
    down(state, timeout=3.0)  # nothing to keep: SIGKILL after 3 s


def test_variable_one_party_lacks_fails_naming_it(fed_without_hdl: LocalFederation) -> None:
    with Client.from_state(fed_without_hdl.state_dir) as client, pytest.raises(JobFailed) as err:
        client.run(template("summary"), {"variables": "bmi,hdl"})
    message = str(err.value)
    assert "'hdl'" in message and LACKING in message, message
