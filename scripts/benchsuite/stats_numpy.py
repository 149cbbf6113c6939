"""The baseline and the checks of `bench.py stats`: the joint summary and correlation
matrix computed by numpy on the pooled rows, and the MPC results' differences from them
beyond the backends' stated precision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchsuite import harness as h
from benchsuite.data import VARIABLES
from benchsuite.harness import PARTIES

FRACTION_BITS = {"mpyc": 32, "crypten": 16}
"""Fixed-point fractional bits of each backend, for the stated precision (moments.py)."""


def numpy_summary(x: np.ndarray) -> list[dict[str, float]]:
    """Per column: n, missing, mean, sample variance, sd, se (available-case)."""
    out = []
    for j in range(x.shape[1]):
        column = x[:, j]
        known = column[~np.isnan(column)]
        n = known.size
        mean = known.mean()
        centred = known - mean
        variance = (centred @ centred) / (n - 1)
        sd = np.sqrt(variance)
        out.append(
            {
                "n": n,
                "missing": column.size - n,
                "mean": mean,
                "variance": variance,
                "sd": sd,
                "se": sd / np.sqrt(n),
            }
        )
    return out


def numpy_correlation(x: np.ndarray) -> dict[str, Any]:
    """Complete-case count, means, sample covariance and correlation matrix, and each
    variable's missing count."""
    missing = np.isnan(x)
    per_variable_missing = missing.sum(axis=0)
    complete = x[~missing.any(axis=1)]
    n = complete.shape[0]
    means = complete.mean(axis=0)
    centred = complete - means
    cov = centred.T @ centred / (n - 1)
    sd = np.sqrt(np.diag(cov))
    return {
        "n": n,
        "means": means,
        "covariance": cov,
        "matrix": cov / np.outer(sd, sd),
        "missing": per_variable_missing,
    }


NUMPY: dict[str, Callable[[np.ndarray], Any]] = {
    "summary": numpy_summary,
    "correlation": numpy_correlation,
}


def mismatches(query: str, backend: str, result: dict[str, Any], truth: Any) -> list[str]:
    """Differences beyond the stated precision (moments.py) between MPC and numpy."""
    eps = 8 * PARTIES * 2.0 ** -FRACTION_BITS[backend]
    label = f"{backend} {query}"
    problems: list[str] = []

    def close(what: str, got: float | None, want: float, tolerance: float) -> None:
        if got is None or not abs(got - want) <= tolerance + 1e-12 * abs(want):
            problems.append(f"{label} {what}: MPC {got} vs numpy {want:.12g} (tol {tolerance:.3g})")

    def exact(what: str, got: int | None, want: int) -> None:
        if got is None and want < int(result.get("threshold", h.MIN_CELL_COUNT)):
            return  # suppressed, rightly
        if got != want:
            problems.append(f"{label} {what}: MPC {got} vs numpy {want}")

    if query == "summary":
        for name, want in zip(VARIABLES, truth, strict=True):
            got = result["variables"][name]
            scale = abs(want["mean"]) + want["sd"]
            exact(f"{name} n", got["n"], int(want["n"]))
            exact(f"{name} missing", got["missing"], int(want["missing"]))
            close(f"{name} mean", got["mean"], want["mean"], eps * scale)
            close(f"{name} variance", got["variance"], want["variance"], eps * scale**2)
        return problems
    exact("n", result["n"], int(truth["n"]))
    for a, name in enumerate(VARIABLES):
        exact(f"{name} missing", result["missing"][name], int(truth["missing"][a]))
    if result["suppressed"]:
        return [*problems, f"{label}: suppressed, numpy counts {truth['n']}"]
    sd = np.sqrt(np.diag(truth["covariance"]))
    scale = np.abs(truth["means"]) + sd
    corr_tolerance = 2 * eps * (1 + float(np.max(np.abs(truth["means"]) / sd))) ** 2
    for a, name in enumerate(VARIABLES):
        close(f"{name} mean", result["means"][a], truth["means"][a], eps * scale[a])
        for b, other in enumerate(VARIABLES):
            cell = f"[{name}, {other}]"
            tolerance = eps * scale[a] * scale[b]
            close(f"cov{cell}", result["covariance"][a][b], truth["covariance"][a, b], tolerance)
            close(f"r{cell}", result["matrix"][a][b], truth["matrix"][a, b], corr_tolerance)
    return problems
