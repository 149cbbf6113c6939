"""The differentially private correlation (`epsilon`): noisy complete-case sufficient
statistics, the covariance and correlation computed from them by the coordinator and
the correlation matrix projected to the nearest valid one.

Each party clips and scales each value (`noisy_moments.Scale`: u in [-1, 1]) and, over
its complete cases (the patients with every listed variable: the exact path's rule),
sums their count n, each S_i = sum u_i and each S_ij = sum u_i u_j (i <= j), and counts
each variable's missing values over the cohort. Inside MPC these are added up and one
release's noise is added to all of them; the noisy n is compared with the threshold
and only if it passes are n and the sums opened; each noisy missing count is opened
if it passes itself (as in the exact path). The binary rules are not applied: nothing
exact is opened, and noisy means and covariances give only noisy counts.

Sensitivity (units of u, every scale 1): a complete case changes n by 1 and each of
the d sums and d (d + 1) / 2 sums of products by at most 1 + SLACK; a patient missing
k variables changes k missing counts by 1 (k <= d) and nothing else. So the L2
sensitivity is sqrt(1 + (d + d (d + 1) / 2) (1 + SLACK)^2).

From the noisy values: mean_i = c_i + a_i S_i / n (clamped to the bounds), the
covariance of u, C_ij = (S_ij - S_i S_j / n) / (n - 1), variances at least 0,
r_ij = C_ij / sqrt(C_ii C_jj) for the variables with a positive variance (the others'
correlations undefined, as for a constant variable), projected to the nearest valid
correlation matrix (`nearest`; how far that moved it, in the Frobenius norm, is
released as `projection_distance`, 0 where the noisy matrix was valid); the released
covariance is sd_i sd_j r_ij in the
values' units, so it is positive semidefinite and its correlations are the released
ones.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common.cells import exact_int
from smpc_ehr.analyses.common.noise import NoisyRelease
from smpc_ehr.analyses.common.noisy_moments import (
    SLACK,
    Scale,
    moments_of,
    noisy_totals,
    released_count,
    scales,
)
from smpc_ehr.analyses.common.variables import numeric_values, select_cohort, value_limit
from smpc_ehr.analyses.statistics.correlation.nearest import nearest_correlation
from smpc_ehr.data.records import PartyData
from smpc_ehr.securemath.ops import SecureOps


def pairs(d: int) -> list[tuple[int, int]]:
    """The (i, j), i <= j, of the sums of products, in their input order."""
    return [(i, j) for i in range(d) for j in range(i, d)]


def complete_case_sums(data: PartyData, params: Params) -> np.ndarray:
    """This party's local inputs: n, S_i (d), S_ij (i <= j) over its complete cases in
    units of u, then each variable's missing count."""
    names = params["variables"]
    cohort = select_cohort(data, params)
    columns = [
        s.to_unit(numeric_values(data, v, cohort, value_limit(params)))
        for s, v in zip(scales(params, names), names, strict=True)
    ]
    missing = [np.isnan(c) for c in columns]
    complete = ~np.logical_or.reduce(missing)
    u = [c[complete] for c in columns]
    return np.array(
        [
            float(np.count_nonzero(complete)),
            *(math.fsum(x) for x in u),
            *(math.fsum(u[i] * u[j]) for i, j in pairs(len(u))),
            *(float(np.count_nonzero(m)) for m in missing),
        ]
    )


def release(d: int) -> NoisyRelease:
    """The one noisy release: n, the d sums, the sums of products and d missing counts."""
    values = 1 + d + len(pairs(d)) + d
    l2 = math.sqrt(1 + (d + len(pairs(d))) * (1 + SLACK) ** 2)
    return NoisyRelease("moments", values, l2)


def outputs(d: int) -> tuple[Output, ...]:
    """[noisy n >= t] ("released"), per variable [noisy missing >= t]
    ("missing_released"), the first bit times the noisy n, sums and sums of products,
    and each missing bit times its noisy missing count."""
    return (
        Output("released", (1,)),
        Output("missing_released", (d,)),
        Output("n", (1,)),
        Output("sums", (d,)),
        Output("products", (len(pairs(d)),)),
        Output("missing", (d,)),
    )


def program(local: np.ndarray, params: Params, threshold: int) -> NamedProgram:
    """Noise on every party's sums, the small-cell tests on the noisy counts, masks."""
    d = len(params["variables"])
    noisy = release(d)

    async def run(ops: SecureOps) -> NamedSecrets:
        totals = noisy_totals(ops, local, params, noisy)
        shown = 1 + d + len(pairs(d))
        flags = ops.ge_public(ops.concatenate([totals[0:1], totals[shown:]]), threshold)
        released = flags[0:1]
        masked = ops.mul(ops.reshape(ops.stack([released] * shown), (shown,)), totals[:shown])
        return {
            "released": released,
            "missing_released": flags[1:],
            "n": masked[0:1],
            "sums": masked[1 : 1 + d],
            "products": masked[1 + d :],
            "missing": ops.mul(flags[1:], totals[shown:]),
        }

    return run


def finalize(opened: dict[str, np.ndarray], params: Params) -> dict[str, Any]:
    """The released fields (n, means, covariance, matrix, missing, suppressed) from what
    `program` opened."""
    names = list(params["variables"])
    released = exact_int(opened["released"][0])
    missing_bits = [exact_int(v) for v in opened["missing_released"]]
    if any(f not in (0, 1) for f in (released, *missing_bits)):
        raise ValueError("opened release bits are not 0/1")
    result: dict[str, Any] = {
        "n": None,
        "means": None,
        "covariance": None,
        "matrix": None,
        "projection_distance": None,
        "suppressed": not released,
        "moments_suppressed": False,
        "missing": {
            v: released_count(opened["missing"][a]) if missing_bits[a] else None
            for a, v in enumerate(names)
        },
    }
    if not released:
        return result
    n = released_count(opened["n"][0])
    result["n"] = n
    if n < 2:
        return result
    return {**result, **_moments(n, opened, scales(params, names))}


def _moments(n: int, opened: dict[str, np.ndarray], each: list[Scale]) -> dict[str, Any]:
    d = len(each)
    sums = np.asarray(opened["sums"], dtype=float)
    products = np.zeros((d, d))
    for (i, j), value in zip(pairs(d), opened["products"], strict=True):
        products[i, j] = products[j, i] = float(value)
    means = [moments_of(n, sums[i], products[i, i], s)[0] for i, s in enumerate(each)]
    centred = (products - np.outer(sums, sums) / n) / (n - 1)
    variances = np.clip(np.diag(centred), 0.0, None)
    defined = np.flatnonzero(variances > 0)
    corr = np.full((d, d), np.nan)
    moved = 0.0
    if defined.size:
        sd = np.sqrt(variances[defined])
        raw = np.clip(centred[np.ix_(defined, defined)] / np.outer(sd, sd), -1.0, 1.0)
        np.fill_diagonal(raw, 1.0)
        corr[np.ix_(defined, defined)] = nearest_correlation(raw)
        moved = float(np.linalg.norm(corr[np.ix_(defined, defined)] - raw))
    np.fill_diagonal(corr, 1.0)
    half = np.array([s.half for s in each])
    sd_values = half * np.sqrt(variances)
    cov = np.where(np.isnan(corr), 0.0, corr) * np.outer(sd_values, sd_values)
    return {
        "means": means,
        "covariance": [[float(x) for x in row] for row in cov],
        "matrix": [[float(x) if np.isfinite(x) else None for x in row] for row in corr],
        "projection_distance": moved,
    }
