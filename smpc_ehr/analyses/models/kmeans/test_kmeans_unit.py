"""k-means without a federation: its terminal table (hand-built and from a real
`finalize` of opened values built with numpy, with the fallback disabled) and its
leakage statements against the template's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smpc_ehr.analyses.models import kmeans
from smpc_ehr.analyses.models.kmeans.analysis import (
    FULL_LEAKAGE,
    ITERATES_LEAKAGE,
    POOLED_LEAKAGE,
)
from smpc_ehr.analyses.models.kmeans.steps import sums_shift
from smpc_ehr.cli.render import render_result
from smpc_ehr.client import JobResult
from smpc_ehr.study.template import load_template

TEMPLATE = Path(__file__).resolve().parents[4] / "protocols" / "kmeans.toml"
T = 11
FOOTNOTE = f"<{T} = suppressed"
ANALYSIS = kmeans.ANALYSIS


def job(body: dict[str, Any]) -> JobResult:
    return JobResult("job", "kmeans", "sha256:0", "mpyc", ("a", "b", "c"), body, 1.0)


def render(body: dict[str, Any]) -> str:
    """The analysis's own rendering, as render_result gives it with the fallback off."""
    text = ANALYSIS.render(body)
    assert render_result(job(body), "kmeans", strict=True).endswith(text)
    return text


def words(text: str) -> str:
    return " ".join(text.split())


def test_leakage_statements_are_the_templates() -> None:
    leakage = words(load_template(TEMPLATE).leakage)
    assert leakage in words(kmeans.__doc__ or "")
    for statement in (ITERATES_LEAKAGE, FULL_LEAKAGE, POOLED_LEAKAGE):
        assert words(statement) in leakage


def test_clusters_with_a_suppressed_one() -> None:
    body = {
        "features": ["bmi", "sbp"],
        "centroids": [[24.5, 121.0], None, None],
        "sizes": [812, None, None],
        "suppressed_clusters": [1, 2],
        "inertia": None,
        "inertia_units": "standardised (joint means and standard deviations)",
        "iterations": 7,
        "converged": True,
        "n": None,
        "missing": 40,
        "k": 3,
        "profiles": [{"readmit_30d": 0.125}, {"readmit_30d": None}, {"readmit_30d": None}],
        "reseeded": 0,
        "notes": ["cluster(s) 1, 2 are suppressed (size, centroid and profile): ..."],
        "mode": "iterates",
        "leakage": "the parties learned every iterate of the centroids",
        "missing_values": "complete-case",
        "threshold": T,
    }
    text = render(body)
    lines = text.splitlines()
    assert lines[0].split() == ["cluster", "n", "bmi", "sbp", "mean", "readmit_30d"]
    assert lines[2].split() == ["0", "812", "24.50", "121.0", "0.1250"]
    assert lines[3].split() == ["1", f"<{T}", "-", "-", "-"]
    assert "n = withheld, left out (missing values): 40, k = 3, inertia = withheld (" in text
    assert "7 Lloyd steps, converged" in text
    assert "cluster(s) 1, 2 are suppressed" in text and FOOTNOTE in text
    assert "None" not in text
    body.update(centroids=[[24.5, 121.0]] * 3, sizes=[812, 20, 30], n=862, inertia=1234.5)
    assert "n = 862, left out (missing values): 40, k = 3, inertia = 1,234 (" in render(body)
    body.update(missing=None)  # fewer than the threshold left out: suppressed
    assert "left out (missing values): <11," in render(body) and FOOTNOTE in render(body)


def opened_values(mode: str, hidden: bool) -> dict[str, np.ndarray]:
    """What a clustering of k = 3 on 2 features (profile: 1 variable but in mode full)
    could open; with `hidden`, clusters 1 and 2 suppressed and N withheld."""
    shown = np.array([1.0, 0.0, 0.0]) if hidden else np.ones(3)
    whole = 0.0 if hidden else 1.0
    centroids = np.array([[24.5, 121.0], [30.0, 140.0], [22.0, 110.0]])
    if mode == "full":
        centroids = centroids / np.ldexp(1.0, np.array([2, 4]))  # in units of 2^e
    named = {
        "iterations": np.array([7.0]),
        "converged": np.array([1.0]),
        "shown": shown,
        "sizes": shown * np.array([812.0, 5.0, 300.0]),
        "all_shown": np.array([whole]),
        "n": np.array([whole * 1117]),
        "inertia": np.array([whole * 0.4]),
        "inertia_scale": np.array([whole * 1117]),
        "emptied": np.array([0.0]),
        "missing_shown": np.array([1.0]),
        "missing": np.array([40.0]),
        "centroids": shown[:, None] * centroids,
    }
    if mode != "full":
        named["profile_shown"] = shown[:, None]
        named["profile_means"] = shown[:, None] * np.array([[0.125], [0.5], [0.25]])
    else:
        named["exponents"] = np.array([2.0, 4.0])
    return named


@pytest.mark.parametrize("mode", ["iterates", "pooled", "full"])
@pytest.mark.parametrize("hidden", [False, True])
def test_a_real_finalised_result_renders(mode: str, hidden: bool) -> None:
    raw = {"features": "bmi,sbp", "k": "3", "mode": mode}
    if mode != "full":
        raw["profile"] = "readmit_30d"
    params = load_template(TEMPLATE).bind(raw)
    named = opened_values(mode, hidden)
    spec = ANALYSIS.outputs(params)
    assert [out.name for out in spec] == list(named)
    assert all(np.shape(named[out.name]) == out.shape for out in spec)
    flat = [float(v) for out in spec for v in np.ravel(named[out.name])]
    result = ANALYSIS.release(flat, params, T)
    assert result["centroids"][0] == pytest.approx([24.5, 121.0])
    text = render(result)
    assert text.splitlines()[2].split()[:4] == ["0", "812", "24.50", "121.0"]
    assert ("n = withheld" in text) == hidden and ("n = 1,117" in text) != hidden
    assert words(result["leakage"]) in words(text)


def test_pooled_sums_stay_in_fixed_point_range() -> None:
    """|S_c| <= N max|z|, max|z| <= sqrt(N) after standardising: the shifted sums of the
    worst case (one outlier among equal values) stay below 2^30."""
    for n in (33, 166_613, 10**6, 2**29):
        z = np.zeros(n)
        z[0] = 1.0
        worst = np.abs((z - z.mean()) / z.std()).max() * n  # all of N in one cluster
        assert worst < 2.0**30 * 2.0 ** sums_shift(n, True)
        assert n * 2.0**14 <= 2.0**30 * 2.0 ** sums_shift(n, False)  # |x| < 2^14
    assert sums_shift(166_613, True) == 0  # no shift, no precision lost, up to ~1M
