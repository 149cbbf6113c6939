"""Logistic regression, modes "iterates" and "pooled": Newton-Raphson where the parties
see each iterate of the coefficients (mode "full" is in full.py). Mode "pooled" differs
only in step 3: the summed gradient and Hessian are opened to the parties, who solve
the step in the clear (`newton.OpenNewton`: fewer secure products, more revealed).

How it runs (each party on its own complete cases, in plaintext where it says "locally"):
1. Group size, inside MPC (`group_size.require_others_reach`): the job runs only if, for
   every hospital (and coalition), the other hospitals' training rows reach the
   threshold, in all and in each group whose size the fit reveals (`revealed_groups`);
   one bit is opened, a refusal names no hospital.
2. Standardisation: the features' count, means and variances are pooled inside MPC
   (`moments`); the parties learn N and the joint means and standard deviations.
3. Newton steps from beta = 0. Locally: the gradient and Hessian of the log-likelihood
   (party 0 adds the public L2 term, on the coefficients in original units). Inside
   MPC: their sums, the Hessian's inverse (`securemath.linalg`: Newton-Schulz, carried
   over from the last step) and the step, which alone is opened to the parties
   (`newton.SecretNewton`); in mode "pooled" the sums are opened instead. Stop
   when the largest step is below `tol`; progress notes carry only the counter.
4. At the optimum the Hessian is pooled and inverted once more; the coordinator gets
   the `outputs` (iterates mode), from which `finalize` undoes the standardisation and
   derives standard errors, odds ratios, 95% confidence intervals and Wald p-values.
   With a test fraction, the held-out rows are scored locally and evaluated jointly
   (`common.evaluation`).

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from smpc_ehr.analyses.base import Analysis, NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common import cost, evaluation
from smpc_ehr.analyses.common.clipping import clip_bounds
from smpc_ehr.analyses.common.cost import CostRelease
from smpc_ehr.analyses.common.features import feature_names
from smpc_ehr.analyses.common.group_size import require_others_reach
from smpc_ehr.analyses.common.moments import party_arrays, reveal_standardisation
from smpc_ehr.analyses.common.newton import solver_for
from smpc_ehr.analyses.common.noise import NoisyRelease, requested_epsilon
from smpc_ehr.analyses.common.public import public_outputs
from smpc_ehr.analyses.common.tidy import Row
from smpc_ehr.analyses.common.variables import category_levels, cohort_filter
from smpc_ehr.analyses.models.logistic.data import (
    SHORTFALL,
    Design,
    local_design,
    revealed_groups,
)
from smpc_ehr.analyses.models.logistic.dp import (
    dp_outputs,
    dp_program,
    original_units,
    releases,
    validate_dp,
)
from smpc_ehr.analyses.models.logistic.full import HESSIAN_SCALE, full_outputs, full_program
from smpc_ehr.analyses.models.logistic.render import render_logistic
from smpc_ehr.analyses.models.logistic.summary import (
    count_secrets,
    decode_summary,
    local_log_likelihood,
    log_likelihood_secret,
    reference_levels,
    summary_outputs,
)
from smpc_ehr.analyses.models.logistic.tidy import tidy_logistic
from smpc_ehr.backends import supports
from smpc_ehr.backends.backend import FULL_MODE
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import JointRefusal, TemplateError
from smpc_ehr.securemath.ops import Secret, SecureOps

INTERCEPT = "(intercept)"
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


def iterates_outputs(d: int) -> tuple[Output, ...]:
    """What the iterates-mode fit opens to the coordinator, for d features: the public
    figures N, the iteration count, the standardised coefficients (intercept first),
    the joint means and standard deviations used, and the inverse of the last Hessian
    (of the log-likelihood / N, standardised scale)."""
    k = d + 1
    return (
        Output("n", (1,)),
        Output("iterations", (1,)),
        Output("beta", (k,)),
        Output("means", (d,)),
        Output("sds", (d,)),
        Output("inverse_hessian", (k, k)),
    )


def logistic_program(design: Design, params: Params, threshold: int) -> NamedProgram:
    """The iterates-mode fit (see the module docstring), opening `iterates_outputs` and,
    with a test fraction, `evaluation.outputs`."""
    features = feature_names(params)
    k = len(features) + 1
    l2, tol, max_iter = float(params["l2"]), float(params["tol"]), int(params["max_iter"])

    async def program(ops: SecureOps) -> NamedSecrets:
        first = ops.my_index == 0
        # Every party sees the joint means, sds and iterates and knows its own rows: the
        # others' rows must reach the threshold, decided inside MPC, refused naming no one.
        groups = party_arrays(ops, revealed_groups(design, params))  # P x groups
        summary = count_secrets(ops, groups, design.left_out, threshold)  # opened at the end
        await require_others_reach(ops, groups, threshold, SHORTFALL)
        # N >= threshold follows (the first group is all rows, and N - n_S >= threshold):
        # no comparison is spent on it again.
        n_total, means, sds = await reveal_standardisation(ops, design.x, features, None, SHORTFALL)
        z = np.column_stack([np.ones(len(design.y)), (design.x - means) / sds])
        # lambda/2 |b|^2 on the original coefficients b_j = beta_j / sd_j (not the
        # intercept) is lambda/2 sum (beta_j / sd_j)^2: public, added once, by party 0.
        penalty = np.r_[0.0, l2 / sds**2] if first and l2 > 0 else None

        def pooled_derivatives(beta: np.ndarray, with_hessian: bool) -> Secret:
            """The summed gradient (k) and, if asked, Hessian (k x k, row by row), secret."""
            mine = _derivatives(design, z, beta, n_total, penalty)
            return ops.sum(party_arrays(ops, mine if with_hessian else mine[:k]), axis=0)

        solver = solver_for(params["mode"], ops, k, GRADIENT_SCALE)
        most = max_iter * solver.steps_per_iteration
        tolerance = max(tol, STEP_FLOOR_ULPS * 2.0**-ops.frac_bits / GRADIENT_SCALE)
        beta = np.zeros(k)
        iterations = 0
        while iterations < most:
            iterations += 1
            derivatives = pooled_derivatives(beta, solver.wants_hessian)
            delta = await solver.step(derivatives) / GRADIENT_SCALE
            beta = beta + delta
            ops.progress("newton", iterations, most, params["mode"])  # the counter only
            if np.max(np.abs(beta[1:])) > SEPARATION_BOUND:
                raise JointRefusal(
                    "the coefficients diverge: the outcome is (almost) perfectly separated "
                    "by the features; remove or combine the separating features"
                )
            if np.max(np.abs(delta)) < tolerance:
                break
        if np.max(np.abs(delta)) >= tolerance:
            raise JointRefusal(
                f"no convergence in {most} iterations; raise max_iter or tol, or check "
                "for collinear features"
            )
        covariance = await solver.covariance(pooled_derivatives(beta, True))
        public = {"n": np.array([n_total]), "iterations": np.array([iterations]), "beta": beta}
        opened = public_outputs(ops, {**public, "means": means, "sds": sds})
        opened["inverse_hessian"] = covariance  # of the joint Hessian (mode iterates: secret)
        loglik = local_log_likelihood(z, design.y, beta)
        opened |= summary | log_likelihood_secret(ops, loglik)
        if float(params["test_fraction"]) == 0:
            return opened
        z_test = np.column_stack([np.ones(len(design.test_y)), (design.test_x - means) / sds])
        scores = 1.0 / (1.0 + np.exp(-(z_test @ beta)))
        counts = evaluation.local_counts(scores, design.test_y)
        return {**opened, **evaluation.evaluation_outputs(ops, counts, threshold)}

    return program


MODES = ("iterates", "pooled", "bohning", "full")


class LogisticRegressionAnalysis(Analysis):
    """Logistic regression by Newton-Raphson: "iterates" reveals the iterates to the
    parties (`logistic_program`), "full" runs it all inside MPC (`full.full_program`);
    with `epsilon`, noisy Newton-Raphson with differential privacy (`dp.dp_program`)."""

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
        if requested_epsilon(params) is not None:
            validate_dp(params)

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

    def outputs(self, params: Params) -> tuple[Output, ...]:
        d = len(feature_names(params))
        if requested_epsilon(params) is not None:
            return dp_outputs(d)
        full = params["mode"] == "full"
        model = full_outputs(d) if full else iterates_outputs(d)
        evaluated = float(params["test_fraction"]) > 0
        summary = summary_outputs(with_loglik=not full)
        return (*model, *summary, *(evaluation.outputs() if evaluated else ()))

    def noisy_releases(self, params: Params) -> tuple[NoisyRelease, ...]:
        return releases(params).all()

    def cost_release(self, params: Params) -> CostRelease:
        """Mode 'full' shares rows, whose number the traffic would tell; an exact
        'iterates' fit spends 1-3 products a step by the last step's size (common/newton.py)."""
        if params["mode"] == "full":
            return cost.ROWS_SHARED
        if params["mode"] == "iterates" and requested_epsilon(params) is None:
            return cost.ADAPTIVE_STEPS
        return cost.ALL

    def secure_program(self, local: Design, params: Params, threshold: int) -> NamedProgram:
        if requested_epsilon(params) is not None:
            return dp_program(local, params, threshold)
        if params["mode"] == "full":
            return full_program(local, params, threshold)
        return logistic_program(local, params, threshold)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        private, full = requested_epsilon(params) is not None, params["mode"] == "full"
        evaluated = float(params["test_fraction"]) > 0  # never with epsilon (validate_dp)
        if private:
            fit, leakage = _dp_fit(opened, params), DP_LEAKAGE
        else:
            fit = _full_fit(opened) if full else _iterates_fit(opened)
            leakage = MODE_LEAKAGE[params["mode"]]
        features = feature_names(params)
        result = _report(fit, features)
        result.update(
            {
                "outcome": params["outcome"],
                "reference_levels": reference_levels(params),
                **decode_summary(opened, fit.n, features, private, full),
                "mode": params["mode"],
                "l2": float(params["l2"]),
                "leakage": leakage,
                "missing_values": "complete-case: patients missing the outcome or any "
                "feature are left out",
                "evaluation": evaluation.decode(opened) if evaluated else None,
                "threshold": threshold,
            }
        )
        if private:  # a fixed number of steps: no stop rule, so no convergence claimed
            bounds = clip_bounds(params, list(params["features"]))
            result.update(
                {
                    "converged": None,
                    "floored_eigenvalues": round(opened["floored"].item()),
                    "bounds": {name: list(pair) for name, pair in bounds.items()},
                }
            )
        return result

    def render(self, result: dict[str, Any]) -> str:
        return render_logistic(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_logistic(result)


ITERATES_LEAKAGE = (
    "Each hospital then learns the number of patients used (N), the joint means and "
    "standard deviations of the features, and every iterate of the (standardised) "
    "coefficients; it never sees another hospital's gradient, Hessian, counts or rows, "
    "nor the joint gradient or Hessian."
)
"""What the parties learned in mode "iterates": a passage of the template's leakage."""
FULL_LEAKAGE = (
    "each hospital learns the other hospitals' numbers of rows rounded up to a multiple "
    "of 100, whether N reaches the threshold, whether a feature is constant, for each "
    "feature the power of two just above the largest absolute value of any patient and "
    "the power of two within a factor of two of its joint standard deviation, and per "
    "iteration only whether it was the last and whether the fit diverges; no iterate."
)
"""What the parties learned in mode "full": a passage of the template's leakage."""
POOLED_LEAKAGE = (
    "each hospital learns N, the joint means and standard deviations of the features, "
    "and in each Newton step the joint gradient and Hessian of the log-likelihood (summed "
    "over all hospitals, never one hospital's) and the next iterate computed from them; "
    "at the start the joint Hessian is X'X/4, which gives N and the joint sums and "
    "cross-products of the (standardised) features"
)
"""What the parties learned in mode "pooled": a passage of the template's leakage."""
BOHNING_LEAKAGE = (
    "each hospital learns N, the joint means and standard deviations of the features, "
    "and every iterate of the (standardised) coefficients, typically ten times as many "
    'as in mode "iterates" (convergence is linear): each step is the inverse of the '
    "joint Hessian at the start (X'X/4) times the joint gradient at the last iterate"
)
"""What the parties learned in mode "bohning": a passage of the template's leakage."""
MODE_LEAKAGE = {
    "iterates": ITERATES_LEAKAGE,
    "pooled": POOLED_LEAKAGE,
    "bohning": BOHNING_LEAKAGE,
    "full": FULL_LEAKAGE,
}
DP_LEAKAGE = (
    "each hospital clips every numeric feature to its public bounds and maps it onto "
    "[-1, 1] (a categorical feature's 0/1 columns likewise), and learns only a noisy N "
    "and, in each of the dp_steps Newton steps (a number fixed in advance, every step "
    "charged), the noisy joint gradient and Hessian of the log-likelihood at the current "
    "coefficients and the next coefficients computed from them"
)
"""What the parties learned in a differentially private fit (`epsilon`): a passage of
the template's leakage."""


class Fit:
    """A fitted model as opened: coefficients and covariance in original units."""

    def __init__(self, n: int, iterations: int, coefficients: np.ndarray, covariance: np.ndarray):
        self.n, self.iterations = n, iterations
        self.coefficients, self.covariance = coefficients, covariance


def _iterates_fit(opened: Mapping[str, np.ndarray]) -> Fit:
    """`iterates_outputs` -> the model in original units."""
    n, iterations = round(opened["n"].item()), round(opened["iterations"].item())
    beta, means, sds = opened["beta"], opened["means"], opened["sds"]
    inverse = opened["inverse_hessian"]
    k = len(beta)
    # Back to the original units: b = T beta, Cov(b) = T (H^-1 / N) T'.
    transform = np.zeros((k, k))
    transform[0, 0] = 1.0
    transform[0, 1:] = -means / sds
    transform[1:, 1:] = np.diag(1.0 / sds)
    covariance = transform @ ((inverse + inverse.T) / 2 / n) @ transform.T
    return Fit(n, iterations, transform @ beta, covariance)


def _dp_fit(opened: Mapping[str, np.ndarray], params: Params) -> Fit:
    """`dp.dp_outputs` -> the model in original units; n is the noisy count, rounded."""
    coefficients, covariance = original_units(opened["beta"], opened["covariance"], params)
    n, steps = round(opened["n"].item()), round(opened["iterations"].item())
    return Fit(n, steps, coefficients, covariance)


def _full_fit(opened: Mapping[str, np.ndarray]) -> Fit:
    """`full.full_outputs` -> the model in original units: slopes and covariance times
    2^-e (the covariance was of the Hessian scaled by HESSIAN_SCALE / padded N)."""
    padded = float(opened["padded_n"].item())
    iterations, n = round(opened["iterations"].item()), round(opened["n"].item())
    scales = np.ldexp(1.0, -np.rint(opened["exponents"]).astype(int))
    coefficients = np.r_[opened["intercept"], opened["slopes"]] * np.r_[1.0, scales]
    d = len(scales)
    covariance = np.empty((d + 1, d + 1))
    covariance[0, 0] = opened["intercept_variance"].item()
    covariance[0, 1:] = covariance[1:, 0] = opened["intercept_covariances"]
    covariance[1:, 1:] = opened["slope_covariance"]
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
