"""Joint covariance and Pearson correlation matrix of numeric variables (complete-case).

How it runs: each party keeps its cohort's patients that have a value for every listed
variable (complete-case) and computes their count, mean vector and covariance matrix
about its own means (population form), plus each variable's missing count. These are
secret-shared as fixed-point numbers and pooled inside MPC (`moments`), where the
division by the joint count happens. The joint count N is compared with the
small-cell threshold inside MPC; the coordinator may open only the bit [N >= t] and
the products of that bit with N, the pooled means and the pooled covariance matrix.
Binary rule (`moments.binary_rule`): each party also inputs, per variable, the
secret bit "my complete cases' values are all 0 or 1" and their count of ones; a
variable whose bits are all 1 has a mean that gives its count of ones, so the means
and the covariance matrix are opened (times a second bit) only if, for every such
variable, both its ones and its zeros reach the threshold. Two such variables' means
and covariance give their whole 2 x 2 table (n11 = N (cov + m_a m_b)), so each party
also inputs, per pair, its count of patients with both at 1, and where both variables
are 0/1 at every hospital all four cells of their table must reach the threshold.
The coordinator then derives the sample covariance (x N/(N-1)) and the correlations
r_ab = cov_ab / sqrt(cov_aa cov_bb): exact functions of the released matrix.

With `epsilon` (differential privacy): noisy complete-case counts, sums and sums of
products of the clipped values, one release, the correlation matrix projected to the
nearest valid one (`noisy`, where the sensitivity is derived).

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from smpc_ehr.analyses.base import Analysis, NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common import pushdown
from smpc_ehr.analyses.common.cells import exact_int
from smpc_ehr.analyses.common.moments import (
    binary_rule,
    every_party_offset,
    local_binary,
    party_arrays,
    pooled_weights,
)
from smpc_ehr.analyses.common.noise import NoisyRelease, requested_epsilon
from smpc_ehr.analyses.common.noisy_moments import NOISE_NOTE, scales
from smpc_ehr.analyses.common.tidy import Row
from smpc_ehr.analyses.common.variables import cohort_filter, numeric_values, select_cohort
from smpc_ehr.analyses.statistics.correlation import inference, noisy
from smpc_ehr.analyses.statistics.correlation.render import render_correlation
from smpc_ehr.analyses.statistics.correlation.tidy import tidy_correlation
from smpc_ehr.data.records import PartyData
from smpc_ehr.data.relations import SqlSnapshot
from smpc_ehr.errors import TemplateError
from smpc_ehr.securemath.ops import Secret, SecureOps

MISSING_RULE = "complete-case: patients missing any listed variable are left out"
BINARY_RULE = (
    "if a variable is 0/1 over the complete cases, the means, covariances and "
    "correlations are released only if both its ones and its zeros reach the threshold, "
    "and for two such variables every cell of their 2 x 2 table "
    "(otherwise moments_suppressed, with n still shown)"
)


def _repeat(ops: SecureOps, single: Secret, k: int) -> Secret:
    """A secret of shape (..., 1) repeated into (..., k); no element is indexed (an
    element of an MPyC array is a scalar, not an array)."""
    last = len(single.shape)  # positive axes: MPyC's np_sum mis-shapes axis=-2
    return ops.sum(ops.stack([single] * k, axis=last), axis=last - 1)


def complete_case_moments(data: PartyData, params: Params) -> np.ndarray:
    """This party's complete-case count, means, population covariance, missing counts,
    per variable the binary rule's inputs over the complete cases ([all 0/1], ones),
    and per pair of variables the complete cases with both at 1."""
    cohort = select_cohort(data, params)
    columns = [numeric_values(data, v, cohort) for v in params["variables"]]
    d = len(columns)
    missing_masks = [np.isnan(c) for c in columns]
    incomplete = np.logical_or.reduce(missing_masks)
    # Column-major, so that each column is written and read contiguously.
    complete = np.empty((cohort.size - int(np.count_nonzero(incomplete)), d), order="F")
    for a, values in enumerate(columns):  # column by column: no n x d copy of everyone
        complete[:, a] = values[~incomplete]
    count = len(complete)
    means = complete.mean(axis=0) if count else np.zeros(d)
    complete -= means
    cov = complete.T @ complete / count if count else np.zeros((d, d))
    missing = [int(np.count_nonzero(m)) for m in missing_masks]
    binary = np.array(
        [local_binary(values[~incomplete]) for values in columns], dtype=float
    ).reshape(d, 2)
    ones = [values[~incomplete] == 1 for values in columns]
    both = [int(np.count_nonzero(ones[a] & ones[b])) for a, b in _pairs(d)]
    return np.concatenate(
        [[count], means, cov.reshape(-1), missing, binary[:, 0], binary[:, 1], both]
    ).astype(float)


def _pairs(d: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(d) for b in range(a + 1, d)]


def covariance_outputs(d: int) -> tuple[Output, ...]:
    """[N >= t] ("released"), [N >= t and the binary rule holds for every variable and
    pair] ("shown"), per variable [missing_v >= t] ("missing_released"), then the first
    bit times N ("n"), the second times the d means ("means") and the d x d population
    covariances ("covariance"), and each missing bit times its missing count ("missing")."""
    return (
        Output("released", (1,)),
        Output("shown", (1,)),
        Output("missing_released", (d,)),
        Output("n", (1,)),
        Output("means", (d,)),
        Output("covariance", (d, d)),
        Output("missing", (d,)),
    )


def covariance_program(local: np.ndarray, d: int, threshold: int) -> NamedProgram:
    """Pool the parties' complete-case moments into `covariance_outputs` (the binary
    rule: `moments.binary_rule` per variable, `_pair_rule` per pair)."""

    async def program(ops: SecureOps) -> NamedSecrets:
        shared = party_arrays(ops, local)  # P x layout
        parties, cells = ops.n_parties, d * d
        total, weights = pooled_weights(ops, shared[:, 0:1])  # (1,), P x 1
        # Means and covariances side by side (one product pools both): m_0 + sum_j w_j
        # (m_j - m_0), C_0 + sum_j w_j (C_j - C_0); then the between-hospital part
        # sum_j w_j dev_j dev_j^T as one (d x P) @ (P x d) product.
        block = shared[:, 1 : 1 + d + cells]
        spread = ops.stack([ops.sub(block[j], block[0]) for j in range(parties)])
        pooled = ops.add(
            block[0], ops.sum(ops.mul(_repeat(ops, weights, d + cells), spread), axis=0)
        )
        means = pooled[:d]
        deviations = ops.sub(shared[:, 1 : 1 + d], ops.stack([means] * parties))
        weighted = ops.mul(deviations, _repeat(ops, weights, d))
        between = ops.matmul(ops.stack([weighted[j] for j in range(parties)], axis=1), deviations)
        cov = ops.add(pooled[d:], ops.reshape(between, (cells,)))
        at = 1 + d + cells
        total_missing = ops.sum(shared[:, at : at + d], axis=0)
        # Both comparisons in one batch: [N >= t] (repeated d times) and [M_v >= t].
        flags = ops.ge_public(ops.stack([_repeat(ops, total, d), total_missing]), threshold)
        released, released_missing = flags[0][0:1], flags[1]
        binary, ones = shared[:, at + d : at + 2 * d], shared[:, at + 2 * d : at + 3 * d]
        rule = binary_rule(ops, binary, ones, _repeat(ops, total, d), threshold)
        checks = ops.concatenate(
            [rule, _pair_rule(ops, binary, ones, shared[:, at + 3 * d :], total, threshold)]
        )
        # [N >= t and every rule]: c x bit + the c rule bits reach 2c only if all are 1;
        # exact, as the bits are.
        c = checks.shape[0]
        votes = ops.add(
            ops.mul_public(released, float(c)), ops.sum(ops.reshape(checks, (c, 1)), axis=0)
        )
        shown = ops.ge_public(votes, 2 * c - 0.5)
        return {
            "released": released,
            "shown": shown,
            "missing_released": released_missing,
            "n": ops.mul(released, total),
            "means": ops.mul(_repeat(ops, shown, d), means),
            "covariance": ops.reshape(ops.mul(_repeat(ops, shown, cells), cov), (d, d)),
            "missing": ops.mul(released_missing, total_missing),
        }

    return program


def _pair_rule(
    ops: SecureOps, binary: Secret, ones: Secret, both: Secret, total: Secret, threshold: int
) -> Secret:
    """Per pair of variables, the exact bit [not both 0/1 at every hospital, or every
    cell of their 2 x 2 table reaches the threshold], from every party's per-variable
    [all 0/1] bits and ones (P x d) and per-pair counts of both at 1 (P x pairs), and
    the joint complete-case count (1,)."""
    d = binary.shape[1]
    pairs = _pairs(d)
    ones_total = ops.sum(ones, axis=0)
    n11 = ops.sum(both, axis=0)
    a_ones = ops.stack([ones_total[a : a + 1] for a, _ in pairs])
    b_ones = ops.stack([ones_total[b : b + 1] for _, b in pairs])
    n11 = ops.reshape(n11, (len(pairs), 1))
    n10, n01 = ops.sub(a_ones, n11), ops.sub(b_ones, n11)
    n00 = ops.sub(ops.add(ops.stack([total] * len(pairs)), n11), ops.add(a_ones, b_ones))
    every = every_party_offset(ops, binary, threshold)
    cells = ops.concatenate([ops.reshape(t, (len(pairs),)) for t in (n11, n10, n01, n00)])
    bits = ops.ge_public(ops.concatenate([every, cells]), threshold)  # one batch
    is_binary, reach = bits[:d], ops.reshape(bits[d:], (4, len(pairs)))
    a_binary = ops.stack([is_binary[a : a + 1] for a, _ in pairs])
    b_binary = ops.stack([is_binary[b : b + 1] for _, b in pairs])
    # 4 (2 - e_a - e_b) + (the four cell bits) >= 3.5: all four cells, or not both 0/1.
    not_both = ops.mul_public(ops.add_public(ops.add(a_binary, b_binary), -2.0), -4.0)
    votes = ops.add(ops.reshape(not_both, (len(pairs),)), ops.sum(reach, axis=0))
    return ops.ge_public(votes, 3.5)


class CorrelationAnalysis(Analysis):
    """Pooled covariance and Pearson correlation matrix, complete-case."""

    name = "correlation"

    def validate(self, params: Params) -> None:
        cohort_filter(params)
        if len(params["variables"]) < 2:
            raise TemplateError("a correlation needs at least two variables")
        if requested_epsilon(params) is not None:
            scales(params, params["variables"])

    def local_input(self, data: PartyData, params: Params) -> np.ndarray:
        if requested_epsilon(params) is not None:
            return noisy.complete_case_sums(data, params)
        return complete_case_moments(data, params)

    def local_input_sql(self, snapshot: SqlSnapshot, params: Params) -> np.ndarray | None:
        if requested_epsilon(params) is not None:  # clipped sums: not pushed down
            return None
        return pushdown.complete_case_moments(snapshot, params)

    def outputs(self, params: Params) -> tuple[Output, ...]:
        d = len(params["variables"])
        return covariance_outputs(d) if requested_epsilon(params) is None else noisy.outputs(d)

    def noisy_releases(self, params: Params) -> tuple[NoisyRelease, ...]:
        return (noisy.release(len(params["variables"])),)

    def secure_program(self, local: np.ndarray, params: Params, threshold: int) -> NamedProgram:
        if requested_epsilon(params) is not None:
            return noisy.program(local, params, threshold)
        return covariance_program(local, len(params["variables"]), threshold)

    def render(self, result: dict[str, Any]) -> str:
        return render_correlation(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_correlation(result)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        variables = list(params["variables"])
        if requested_epsilon(params) is not None:
            return {
                "variables": variables,
                **noisy.finalize(opened, params),
                "ci95": None,
                "p_values": None,
                "inference_note": inference.NOT_WITH_EPSILON,
                "missing_values": MISSING_RULE,
                "noise": NOISE_NOTE,
                "threshold": threshold,
            }
        released, shown = exact_int(opened["released"][0]), exact_int(opened["shown"][0])
        missing_bits = [exact_int(v) for v in opened["missing_released"]]
        if any(f not in (0, 1) for f in (released, shown, *missing_bits)) or shown > released:
            raise ValueError("opened release bits are not 0/1 or are inconsistent")
        missing = {
            v: exact_int(opened["missing"][a]) if missing_bits[a] else None
            for a, v in enumerate(variables)
        }
        result: dict[str, Any] = {
            "variables": variables,
            "n": None,
            "means": None,
            "covariance": None,
            "matrix": None,
            "suppressed": not released,
            "moments_suppressed": bool(released and not shown),
            "missing": missing,
            "missing_values": MISSING_RULE,
            "binary_rule": BINARY_RULE,
            "threshold": threshold,
        }
        if released:
            result["n"] = exact_int(opened["n"][0])
        if not shown:
            return result
        n = result["n"]
        cov = np.asarray(opened["covariance"], dtype=float)
        cov = (cov + cov.T) / 2 * (n / (n - 1) if n > 1 else np.nan)
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = np.clip(cov / np.outer(sd, sd), -1.0, 1.0)
        np.fill_diagonal(corr, 1.0)
        result.update(
            means=[float(m) for m in opened["means"]],
            covariance=_nested(cov),
            matrix=_nested(corr),
        )
        result.update(inference.pair_inference(result["matrix"], n))
        return result


def _nested(matrix: np.ndarray) -> list[list[float | None]]:
    """A matrix as lists of floats (None where undefined, e.g. a constant variable)."""
    return [[float(x) if np.isfinite(x) else None for x in row] for row in matrix]
