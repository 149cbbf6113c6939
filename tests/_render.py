"""Helpers for the render tests beside each analysis package: a job around a result
body, strict rendering (a renderer's failure is raised, never hidden by the generic
fallback), and a REAL finalised result from named opened values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from smpc_ehr.analyses import ANALYSES
from smpc_ehr.cli.render import render_result
from smpc_ehr.client import JobResult
from smpc_ehr.study.params import BoundParameters
from smpc_ehr.study.template import load_template
from tests.federations import PROTOCOLS

T = 11
FOOTNOTE = f"<{T} = suppressed"
SUMMARY_RULE = "excluded variable by variable (available-case)"


def job(body: dict[str, Any], protocol: str = "p") -> JobResult:
    return JobResult("job", protocol, "sha256:0", "mpyc", ("a", "b", "c"), body, 1.234)


def render(body: dict[str, Any], analysis: str) -> str:
    """The analysis's own table for `body` (strict: no generic fallback), without the
    job's head line."""
    return render_result(job(body), analysis, strict=True).split("\n", 1)[1]


def moments(n: int | None, missing: int | None, mean: float, sd: float) -> dict[str, Any]:
    if n is None:
        return {"n": None, "missing": missing, "mean": None, "variance": None, "sd": None,
                "se": None, "suppressed": True}  # fmt: skip
    return {"n": n, "missing": missing, "mean": mean, "variance": sd * sd, "sd": sd,
            "se": sd / n**0.5, "suppressed": False}  # fmt: skip


def bind(template: str, **raw: str) -> BoundParameters:
    return load_template(PROTOCOLS / f"{template}.toml").bind(raw)


def released_counts(totals: list[int], threshold: int = T) -> dict[str, list[float]]:
    """What the released-counts program (cells.py) opens for these joint totals."""
    bits = [float(t >= threshold) for t in totals]
    return {"released": bits, "counts": [b * t for b, t in zip(bits, totals, strict=True)]}


def finalised(
    analysis: str, opened: Mapping[str, Any], params: BoundParameters, threshold: int = T
) -> dict[str, Any]:
    """The analysis's real result from named opened values, as the coordinator gets
    them: flattened in the declared order, then `release` (checks names and shapes)."""
    spec = ANALYSES[analysis].outputs(params)
    assert [out.name for out in spec] == list(opened), "name every declared output once"
    flat = np.concatenate([np.asarray(opened[out.name], float).reshape(-1) for out in spec])
    return ANALYSES[analysis].release(flat.tolist(), params, threshold)


def render_finalised(
    analysis: str, opened: Mapping[str, Any], params: BoundParameters, threshold: int = T
) -> str:
    """`finalised`, rendered strictly by the analysis's own renderer."""
    return render(finalised(analysis, opened, params, threshold), analysis)


def check_all_suppressed(text: str, refused: bool) -> None:
    """An all-suppressed result's table says so, with no raw Python values in it."""
    assert "suppressed" in text
    assert f"small-cell threshold: {T}" in text
    assert "None" not in text  # no raw Python values leak into the table
    if refused:
        assert "refused: " in text
