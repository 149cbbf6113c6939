"""Joint logistic regression, "iterates" mode: Newton-Raphson where the parties learn
each iterate of the coefficients and nothing else.

How it runs (each party on its own complete cases of outcome and features, in plaintext
where it says "locally"):
1. Group size, inside MPC (`group_size.require_others_reach`): every party sees the
   means and iterates below and knows its own rows, so the job runs only if, for every
   hospital i (and every coalition of `coalition_size` hospitals), the training rows
   of the *other* hospitals reach the small-cell threshold: N - N_i >= threshold, and
   the same for each group whose size the fit reveals exactly (`revealed_groups`: the
   events, the non-events, each level of a categorical feature). Only
   that one bit is opened, to the parties; if it fails, every party raises the same
   `JointRefusal`, which names no hospital. A hospital with few or no rows in the
   cohort takes part like any other (its sums are pooled inside MPC, never seen).
2. Standardisation. Locally: count, means and variances of the features. Inside MPC:
   pooled (`moments`); the parties learn N and the joint means and standard
   deviations, with which each standardises its rows.
3. Newton steps, from beta = 0. Locally: p = sigmoid(Z beta), the gradient
   Z'(y - p) / N and the Hessian Z' diag(p(1 - p)) Z / N of the log-likelihood
   (party 0 adds the L2 term, public given beta, N and the standard deviations; it
   penalises the coefficients in the features' original units, as a pooled fit on the
   raw features would). Inside MPC: the sums,
   the inverse of the Hessian (Newton-Schulz, `linalg`: in full for the first one,
   then carried over from the last by two steps) and the step H^-1 g (with one
   refinement step). Only the step is opened, to the parties, who
   add it to beta. Stop when the largest step is below `tol`. The analyst's progress
   notes carry only the iteration counter.
4. At the optimum the Hessian is pooled and inverted once more; the coordinator gets
   the coefficients, that inverse (the covariance of the estimates, times N), N, the
   means and standard deviations used and the iteration count. It undoes the
   standardisation and derives standard errors, odds ratios, 95% confidence
   intervals and Wald p-values.

Leakage, plainly:
- each party learns: whether every hospital's others reach the threshold (one bit),
  then N, the joint means and standard deviations of the features, and every iterate
  of the (standardised) coefficient vector, each computed from at least the threshold
  of patients it does not hold itself; it never sees another party's gradient,
  Hessian, counts or rows, nor the joint Hessian or gradient;
- the coordinator (and the analyst) learns: the final coefficients, their covariance
  matrix (from the joint Hessian at the optimum), N, the features' joint means and
  standard deviations and the number of iterations (progress notes: the counter
  only); with a test fraction, the evaluation aggregates (`evaluation`: each count,
  and each tenth's mean score, only from at least the threshold of patients);
  nothing per hospital;
- if the job fails (too few patients, a constant feature, divergence, no
  convergence) nothing is released to the coordinator, and a refusal decided on the
  joint data names no hospital; the parties may have learned the iterates so far.
Not covered: the events within one level of a categorical feature are not checked
(with numeric features in the model its coefficient reveals them only approximately);
what the iterates reveal about the joint data beyond the final model
(they are a deterministic function of the pooled data, like the model itself), and
what releases reveal in combination.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from smpc_ehr.analyses import evaluation
from smpc_ehr.analyses.base import Analysis, Params
from smpc_ehr.analyses.group_size import require_others_reach
from smpc_ehr.analyses.linalg import inverse_spd, solve_refined
from smpc_ehr.analyses.logistic_data import (
    SHORTFALL,
    Design,
    feature_names,
    local_design,
    revealed_groups,
)
from smpc_ehr.analyses.logistic_full import HESSIAN_SCALE, full_program
from smpc_ehr.analyses.moments import party_arrays, reveal_standardisation
from smpc_ehr.analyses.variables import category_levels, cohort_filter
from smpc_ehr.backends import supports
from smpc_ehr.backends.backend import FULL_MODE
from smpc_ehr.backends.base import Secret, SecureOps, SecureProgram, public_values
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import JointRefusal, TemplateError

INTERCEPT = "(intercept)"
FIRST_INVERSE_STEPS = 16
"""Newton-Schulz steps for the first Hessian from (4/k) I: full precision for condition
numbers up to about 10^3; worse-conditioned ones are finished by the steps that carry
the inverse from one Newton iteration to the next (each squares the remaining error)."""
NEW_HESSIAN_INVERSE_STEPS = 5
"""Newton-Schulz steps for the covariance: the inverse of a new Hessian (at the final
coefficients), started from the previous Hessian's inverse (full mode's
SAME_HESSIAN_INVERSE_STEPS refine the inverse of the same Hessian, and need fewer)."""
UPDATE_STEPS = 2
"""Newton-Schulz steps that carry the last Hessian's inverse over to the next one."""
REFINEMENT_STEPS = 1
"""Then H d = g is solved as d = X g, d <- d + X (g - H d): matrix-vector products
(k roundings each, not k^2), the error shrinking by |I - X H| per step; an inexact
step only slows Newton's convergence, it does not move the optimum (where g = 0)."""
GRADIENT_SCALE = 2.0**14
"""The gradient enters MPC times this public factor, so that near the optimum, where
it is tiny, CrypTen's 2^-16 resolution still holds it to about 1e-9 (early gradients
are below 1, so the scaled step stays far inside the fixed-point range)."""
STEP_FLOOR_ULPS = 64
"""Steps below STEP_FLOOR_ULPS x 2^-f / GRADIENT_SCALE are rounding noise (f: the
backend's fractional bits): a `tol` below that floor is raised to it."""
SEPARATION_BOUND = 15.0
"""A standardised slope beyond this (one standard deviation multiplying the odds by
e^15, over 3 million) means (quasi-)complete separation: the likelihood has no finite
maximum and Newton's steps only shrink as the fitted probabilities reach 0 and 1."""
Z975 = 1.959963984540054


def _derivatives(
    design: Design, z: np.ndarray, beta: np.ndarray, total: float, penalty: np.ndarray | None
) -> np.ndarray:
    """This party's gradient (times GRADIENT_SCALE) and Hessian of the log-likelihood,
    both divided by the joint N, as one vector (k + k*k); `penalty` (party 0 only) is
    the L2 term's diagonal on the standardised scale."""
    p = 1.0 / (1.0 + np.exp(-(z @ beta)))
    gradient = z.T @ (design.y - p)
    hessian = (z * (p * (1.0 - p))[:, None]).T @ z
    if penalty is not None:
        gradient -= penalty * beta
        hessian += np.diag(penalty)
    return np.concatenate([gradient * GRADIENT_SCALE / total, (hessian / total).ravel()])


def logistic_program(design: Design, params: Params, threshold: int) -> SecureProgram:
    """The iterates-mode fit (see the module docstring); opens to the coordinator the
    public summary [N, iterations, beta, means, sds] and the inverse Hessian."""
    features = feature_names(params)
    k = len(features) + 1
    l2, tol, max_iter = float(params["l2"]), float(params["tol"]), int(params["max_iter"])

    async def program(ops: SecureOps) -> list[Secret]:
        first = ops.my_index == 0
        # Every party sees the joint means, sds and iterates and knows its own rows: the
        # others' rows must reach the threshold, decided inside MPC, refused naming no one.
        counts = party_arrays(ops, revealed_groups(design, params))  # P x groups
        await require_others_reach(ops, counts, threshold, SHORTFALL)
        n_total, means, sds = await reveal_standardisation(
            ops, design.x, features, threshold, SHORTFALL
        )
        z = np.column_stack([np.ones(len(design.y)), (design.x - means) / sds])
        # lambda/2 |b|^2 on the original coefficients b_j = beta_j / sd_j (not the
        # intercept) is lambda/2 sum (beta_j / sd_j)^2: public, added once, by party 0.
        penalty = np.r_[0.0, l2 / sds**2] if first and l2 > 0 else None

        def pooled_derivatives(beta: np.ndarray) -> tuple[Secret, Secret]:
            mine = _derivatives(design, z, beta, n_total, penalty)
            summed = ops.sum(party_arrays(ops, mine), axis=0)
            return summed[:k], ops.reshape(summed[k:], (k, k))

        tolerance = max(tol, STEP_FLOOR_ULPS * 2.0**-ops.frac_bits / GRADIENT_SCALE)
        beta = np.zeros(k)
        inverse: Secret | None = None
        iterations = 0
        while iterations < max_iter:
            iterations += 1
            gradient, hessian = pooled_derivatives(beta)
            g = ops.reshape(gradient, (k, 1))
            if inverse is None:  # the first Hessian is inverted in full, once
                inverse = inverse_spd(ops, hessian, k, FIRST_INVERSE_STEPS, None, 4.0 / k)
                step = ops.matmul(inverse, g)
            else:  # later ones: the last inverse, updated, then one refinement
                inverse = inverse_spd(ops, hessian, k, UPDATE_STEPS, inverse, 4.0 / k)
                step = solve_refined(ops, hessian, inverse, g, REFINEMENT_STEPS)
            delta = (await ops.reveal(step)).reshape(k) / GRADIENT_SCALE
            beta = beta + delta
            ops.progress("newton", iterations, max_iter, "iterates")  # the counter, no step size
            if np.max(np.abs(beta[1:])) > SEPARATION_BOUND:
                raise JointRefusal(
                    "the coefficients diverge: the outcome is (almost) perfectly separated "
                    "by the features; remove or combine the separating features"
                )
            if np.max(np.abs(delta)) < tolerance:
                break
        if np.max(np.abs(delta)) >= tolerance:
            raise JointRefusal(
                f"no convergence in {max_iter} iterations; raise max_iter or tol, or check "
                "for collinear features"
            )
        _, hessian = pooled_derivatives(beta)
        covariance = inverse_spd(ops, hessian, k, NEW_HESSIAN_INVERSE_STEPS, inverse, scale=4.0 / k)
        summary = np.concatenate([[n_total, iterations], beta, means, sds])
        public = public_values(ops, summary)
        if float(params["test_fraction"]) == 0:
            return [public, covariance]
        z_test = np.column_stack([np.ones(len(design.test_y)), (design.test_x - means) / sds])
        scores = 1.0 / (1.0 + np.exp(-(z_test @ beta)))
        counts = evaluation.local_counts(scores, design.test_y)
        return [public, covariance, *evaluation.evaluation_outputs(ops, counts, threshold)]

    return program


MODES = ("iterates", "full")


class LogisticRegressionAnalysis(Analysis):
    """Logistic regression by Newton-Raphson: "iterates" reveals the iterates to the
    parties (`logistic_program`), "full" runs it all inside MPC (`logistic_full`)."""

    name = "logistic_regression"

    def validate(self, params: Params) -> None:
        cohort_filter(params)
        if category_levels(params["outcome"], params) != ("0", "1"):
            raise TemplateError(f"the outcome {params['outcome']!r} must be a 0/1 variable")
        if params["outcome"] in (*params["features"], *(params.get("categorical") or ())):
            raise TemplateError("the outcome cannot also be a feature")
        for variable in params.get("categorical") or ():
            category_levels(variable, params)  # condition needs condition_codes
        if params["mode"] not in MODES:
            raise TemplateError(f"mode {params['mode']!r} is not available: {', '.join(MODES)}")

    def validate_backend(self, params: Params, backend: str) -> None:
        if params["mode"] == "full" and not supports(backend, FULL_MODE):
            raise TemplateError(
                "mode 'full' runs on the crypten backend only: it compares every secret row "
                "in every Newton step, and MPyC's comparisons (by bit decomposition) would "
                "take minutes even for a few hundred patients; use --backend crypten, or "
                "mode 'iterates'"
            )

    def local_input(self, data: PartyData, params: Params) -> Design:
        return local_design(data, params)

    def secure_program(self, local: Design, params: Params, threshold: int) -> SecureProgram:
        if params["mode"] == "full":
            return full_program(local, params, threshold)
        return logistic_program(local, params, threshold)

    def finalize(self, opened: Sequence[float], params: Params, threshold: int) -> dict[str, Any]:
        d = len(feature_names(params))
        full = params["mode"] == "full"
        model = (
            (2 + 1 + d + 1 + d + 1 + d + d * d) if full else (2 + (d + 1) + 2 * d + (d + 1) ** 2)
        )
        evaluated = float(params["test_fraction"]) > 0
        expected = model + (evaluation.output_length() if evaluated else 0)
        if len(opened) != expected:
            raise ValueError(f"expected {expected} opened values, got {len(opened)}")
        values = np.asarray(opened, dtype=float)
        fit = _full_fit(values[:model], d) if full else _iterates_fit(values[:model], d)
        result = _report(fit, feature_names(params))
        result.update(
            {
                "mode": params["mode"],
                "l2": float(params["l2"]),
                "leakage": FULL_LEAKAGE if full else ITERATES_LEAKAGE,
                "missing_values": "complete-case: patients missing the outcome or any "
                "feature are left out",
                "evaluation": evaluation.decode(values[model:]) if evaluated else None,
                "threshold": threshold,
            }
        )
        return result


ITERATES_LEAKAGE = (
    "the parties learned that every hospital's others reach the threshold, every iterate "
    "of the standardised coefficients, N and the features' joint means and standard "
    "deviations"
)
FULL_LEAKAGE = (
    "the parties learned each hospital's row counts rounded up to a multiple of 100, "
    "per feature the power of two just above its largest magnitude and the one within "
    "a factor of two of its joint standard deviation, and the number of iterations, "
    "nothing else; the coordinator also learned each feature's joint standard deviation "
    "within a factor of two"
)


class Fit:
    """A fitted model as opened: coefficients and covariance in original units."""

    def __init__(self, n: int, iterations: int, coefficients: np.ndarray, covariance: np.ndarray):
        self.n, self.iterations = n, iterations
        self.coefficients, self.covariance = coefficients, covariance


def _iterates_fit(values: np.ndarray, d: int) -> Fit:
    """[N, iterations, beta (k), means (d), sds (d), H^-1 (k x k)] -> original units."""
    k = d + 1
    n, iterations = round(values[0]), round(values[1])
    beta = values[2 : 2 + k]
    means, sds = values[2 + k : 2 + k + d], values[2 + k + d : 2 + k + 2 * d]
    inverse = values[2 + k + 2 * d :].reshape(k, k)
    # Back to the original units: b = T beta, Cov(b) = T (H^-1 / N) T'.
    transform = np.zeros((k, k))
    transform[0, 0] = 1.0
    transform[0, 1:] = -means / sds
    transform[1:, 1:] = np.diag(1.0 / sds)
    covariance = transform @ ((inverse + inverse.T) / 2 / n) @ transform.T
    return Fit(n, iterations, transform @ beta, covariance)


def _full_fit(values: np.ndarray, d: int) -> Fit:
    """[padded N, iterations], N, exponents e (d), [b_0, standardised slopes] (k),
    V00, V0j (d), Vij (d x d) -> original units: slopes and covariance times 2^-e
    (`logistic_full`: the covariance was of the Hessian scaled by 1 / padded N)."""
    padded, iterations, n = values[0], round(values[1]), round(values[2])
    at = 3
    scales = np.ldexp(1.0, -np.rint(values[at : at + d]).astype(int))
    at += d
    coefficients = values[at : at + d + 1] * np.r_[1.0, scales]
    at += d + 1
    covariance = np.empty((d + 1, d + 1))
    covariance[0, 0] = values[at]
    covariance[0, 1:] = covariance[1:, 0] = values[at + 1 : at + 1 + d]
    covariance[1:, 1:] = values[at + 1 + d :].reshape(d, d)
    covariance = (covariance + covariance.T) / 2
    unscale = np.r_[1.0, scales]
    scale = HESSIAN_SCALE / padded  # the inverted Hessian was scaled by HESSIAN_SCALE / padded
    return Fit(n, iterations, coefficients, covariance * np.outer(unscale, unscale) * scale)


def _report(fit: Fit, features: Sequence[str]) -> dict[str, Any]:
    """Coefficients, standard errors, odds ratios, 95% CIs and Wald p-values by name."""
    coefficients, covariance = fit.coefficients, fit.covariance
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    z = coefficients / errors
    names = [INTERCEPT, *features]

    def by_name(array: np.ndarray) -> dict[str, float]:
        return {name: float(v) for name, v in zip(names, array, strict=True)}

    return {
        "coefficients": by_name(coefficients),
        "std_errors": by_name(errors),
        "odds_ratios": by_name(np.exp(coefficients)),
        "ci95": {
            name: [float(np.exp(b - Z975 * s)), float(np.exp(b + Z975 * s))]
            for name, b, s in zip(names, coefficients, errors, strict=True)
        },
        "ci95_scale": "odds ratio",
        "p_values": by_name(2 * stats.norm.sf(np.abs(z))),
        "covariance": [[float(v) for v in row] for row in covariance],
        "n": fit.n,
        "iterations": fit.iterations,
        "converged": True,
    }
