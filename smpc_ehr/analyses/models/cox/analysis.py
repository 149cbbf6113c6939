"""Cox proportional hazards regression (Breslow's ties) on the Kaplan-Meier grid, by
Newton-Raphson where the parties see each iterate of the coefficients (mode
"iterates", as the logistic regression's), optionally with a baseline hazard per
hospital (`stratify = "hospital"`).

How it runs (each party on its own complete cases, `local.local_data`):
1. Group size, inside MPC (`group_size.require_others_reach`,
   `features.revealed_group_sizes` with the events as the outcome): for every hospital (and
   coalition) the other hospitals' patients reach the threshold in all, among the
   events and the censored, and in each level of a categorical feature; then the
   joint number of events D is opened to the parties.
2. Standardisation: N and the joint means and standard deviations of the features,
   pooled inside MPC and opened to the parties (`moments.reveal_standardisation`).
3. Newton steps from beta = 0. Locally at the current (standardised) beta: per grid
   point the risk-set sums S0, S1, S2 of the weights w = exp(z'b) 2^L (L public,
   `local.weight_shift`), the events d and the events' sum of z. Inside MPC: their
   sums, a range check of the weights (one bit opened), the score and information
   with secure reciprocals of the pooled S0 (`secure.score_information`), the step
   solved by `newton.SecretNewton` (Newton-Schulz, carried over): only the step is
   opened, to the parties. At the first step the power of two above the trace of
   the information per event is opened to the parties (`secure.trace_exponent`): the
   public scale q that keeps the information's eigenvalues where the Newton-Schulz
   start converges. Stratified by hospital, each party inputs its own score and
   information instead (its own risk sets): they are only added.
4. At the optimum the information is pooled and inverted once more; with
   concordance = "yes", Harrell's C is computed from pooled counts
   (`concordance.py`). The coordinator gets the `outputs`, from which `finalize`
   undoes the standardisation and derives standard errors, hazard ratios, 95%
   confidence intervals and Wald p-values.

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import stats

from smpc_ehr.analyses.base import Analysis, NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common import cost
from smpc_ehr.analyses.common.cost import CostRelease
from smpc_ehr.analyses.common.features import feature_names, revealed_group_sizes
from smpc_ehr.analyses.common.group_size import require_others_reach
from smpc_ehr.analyses.common.left_out import LEFT_OUT_OUTPUTS, decode_left_out, left_out_secrets
from smpc_ehr.analyses.common.moments import party_arrays, reveal_standardisation
from smpc_ehr.analyses.common.newton import SecretNewton
from smpc_ehr.analyses.common.public import public_outputs
from smpc_ehr.analyses.common.survival import validate_cohort_and_grid
from smpc_ehr.analyses.common.tidy import Row
from smpc_ehr.analyses.common.variables import category_levels
from smpc_ehr.analyses.models.cox import concordance
from smpc_ehr.analyses.models.cox.local import (
    CoxData,
    local_data,
    step_input,
    stratum_input,
    weight_shift,
)
from smpc_ehr.analyses.models.cox.render import render_cox
from smpc_ehr.analyses.models.cox.secure import (
    Layout,
    full_secret,
    require_in_range,
    score_information,
    trace_exponent,
)
from smpc_ehr.analyses.models.cox.tidy import tidy_cox
from smpc_ehr.data.records import PartyData
from smpc_ehr.errors import JointRefusal, TemplateError
from smpc_ehr.securemath.ops import Secret, SecureOps

GRADIENT_SCALE = 2.0**14
"""The score enters the Newton step times this public factor (as the logistic's
gradient), so that the opened step keeps CrypTen's resolution near the optimum."""
STEP_FLOOR_ULPS = 64
"""Steps below STEP_FLOOR_ULPS x 2^-f are the noise of the ratios' roundings inside
MPC (f: the backend's fractional bits): a `tol` below that floor is raised to it."""
DIVERGENCE_BOUND = 15.0
"""A standardised coefficient beyond this (a hazard ratio of e^15 per standard
deviation) means a monotone likelihood (a feature separates the events in time): the
partial likelihood has no finite maximum."""
SHORTFALL = (
    "too few patients have a follow-up time and every feature (or too few of them have "
    "the event, are censored, are in some level of a categorical feature, or have a 0/1 "
    "feature's ones or zeros)"
)
Z975 = 1.959963984540054
ITERATES_LEAKAGE = (
    "Each hospital then learns the number of patients used (N), the number of events "
    "(D), the joint means and standard deviations of the features, the power of two "
    "just above the trace of the joint information matrix per event at the start, "
    "whether the relative hazards of each iterate fit the fixed-point range, and every "
    "iterate of the (standardised) coefficients; it never sees another hospital's risk "
    "set sums, score, information, counts or rows, nor the joint ones."
)
"""What the parties learned: a passage of the template's leakage."""
STRATIFY = ("none", "hospital")


def wants_concordance(params: Params) -> bool:
    return (params.get("concordance") or "yes") == "yes"


def cox_outputs(d: int, with_concordance: bool) -> tuple[Output, ...]:
    """What the fit opens to the coordinator: N, D, iterations, the standardised
    coefficients, the means and sds used, the public scale of the information, the
    inverse of the last scaled information (q I / D) and, if asked, Harrell's C (or
    `concordance.SKIPPED`)."""
    return (
        Output("n", (1,)),
        Output("events", (1,)),
        Output("iterations", (1,)),
        Output("beta", (d,)),
        Output("means", (d,)),
        Output("sds", (d,)),
        Output("information_scale", (1,)),
        Output("inverse_information", (d, d)),
        *LEFT_OUT_OUTPUTS,
        *((Output("concordance", (1,)),) if with_concordance else ()),
    )


def cox_program(cox: CoxData, params: Params, threshold: int) -> NamedProgram:
    """The iterates-mode fit (see the module docstring), opening `cox_outputs`."""
    features = feature_names(params)
    k, grid = len(features), int(params["horizon"]) + 1
    tol, max_iter = float(params["tol"]), int(params["max_iter"])
    stratified = params.get("stratify") == "hospital"
    layout = Layout(k, grid)

    async def program(ops: SecureOps) -> NamedSecrets:
        sizes = revealed_group_sizes(cox.x, cox.event.astype(float), params)
        counts = party_arrays(ops, sizes)  # P x groups
        await require_others_reach(ops, counts, threshold, SHORTFALL)
        left_out = left_out_secrets(ops, cox.left_out, threshold)  # opened at the end
        events = round(float((await ops.reveal(ops.sum(counts[:, 1:2], axis=0)))[0]))
        n_total, means, sds = await reveal_standardisation(ops, cox.x, features, None, SHORTFALL)
        z = (cox.x - means) / sds
        shift = weight_shift(n_total, k)

        async def pooled(beta: np.ndarray) -> tuple[Secret, Secret]:
            """The secret score and information (upper triangle) at beta."""
            if stratified:
                own = stratum_input(cox, z, beta, grid)
                summed = ops.sum(party_arrays(ops, own), axis=0)
                return summed[:k], summed[k:]
            summed = ops.sum(party_arrays(ops, step_input(cox, z, beta, shift, grid)), axis=0)
            await require_in_range(ops, summed, layout)
            return score_information(ops, summed, layout)

        beta = np.zeros(k)
        score, information = await pooled(beta)
        # q I / D has its largest eigenvalue at most k/4, where SecretNewton starts.
        exponent = await trace_exponent(ops, information, k, events)
        scale = k / 4.0 / 2.0**exponent / events

        def derivatives(score: Secret, information: Secret) -> Secret:
            full = ops.reshape(full_secret(ops, ops.mul_public(information, scale), k), (k * k,))
            return ops.concatenate([ops.mul_public(score, scale * GRADIENT_SCALE), full])

        solver = SecretNewton(ops, k, GRADIENT_SCALE)
        tolerance = max(tol, STEP_FLOOR_ULPS * 2.0**-ops.frac_bits)
        iterations = 0
        delta = np.full(k, np.inf)
        while iterations < max_iter:
            iterations += 1
            delta = await solver.step(derivatives(score, information)) / GRADIENT_SCALE
            beta = beta + delta
            ops.progress("newton", iterations, max_iter, "cox")  # the counter only
            if np.max(np.abs(beta)) > DIVERGENCE_BOUND:
                raise JointRefusal(
                    "the coefficients diverge: a feature (almost) separates the patients "
                    "with early events from the others (monotone likelihood); remove or "
                    "combine it"
                )
            score, information = await pooled(beta)
            if np.max(np.abs(delta)) < tolerance:
                break
        if np.max(np.abs(delta)) >= tolerance:
            raise JointRefusal(
                f"no convergence in {max_iter} iterations; raise max_iter or tol, or check "
                "for collinear features"
            )
        covariance = await solver.covariance(derivatives(score, information))
        harrell = None
        if wants_concordance(params) and events * n_total < concordance.MAX_PAIRS:
            counts = concordance.local_counts(cox, z @ beta, grid)
            if stratified:  # pairs within each hospital: its own sums, only added
                own = party_arrays(ops, concordance.local_pairs(counts))
                pairs = ops.reshape(ops.sum(own, axis=0), (2, 1))
            else:
                pooled_counts = ops.sum(party_arrays(ops, counts), axis=0)
                pairs = concordance.pooled_pairs(ops, pooled_counts, grid)
            harrell = concordance.ratio(ops, pairs)
        public = {
            "n": np.array([n_total]),
            "events": np.array([events]),
            "iterations": np.array([iterations]),
            "beta": beta,
            "means": means,
            "sds": sds,
            "information_scale": np.array([scale]),
        }
        if wants_concordance(params) and harrell is None:
            public["concordance"] = np.array([concordance.SKIPPED])
        opened = public_outputs(ops, public)
        opened["inverse_information"] = covariance  # secret until the coordinator opens it
        opened.update(left_out)
        if harrell is not None:
            opened["concordance"] = harrell
        return opened

    return program


class CoxRegressionAnalysis(Analysis):
    """Cox proportional hazards regression on the Kaplan-Meier grid, Breslow's ties."""

    name = "cox_regression"

    def validate(self, params: Params) -> None:
        validate_cohort_and_grid(params)
        for variable in params.get("categorical") or ():
            category_levels(variable, params)  # condition needs condition_codes
        if not feature_names(params):
            raise TemplateError("give at least one feature (features or categorical)")
        if params.get("mode", "iterates") != "iterates":
            raise TemplateError("mode 'iterates' is the only one available")
        if (params.get("stratify") or "none") not in STRATIFY:
            raise TemplateError(f"parameter 'stratify' must be one of {', '.join(STRATIFY)}")

    def local_input(self, data: PartyData, params: Params) -> CoxData:
        return local_data(data, params)

    def outputs(self, params: Params) -> tuple[Output, ...]:
        return cox_outputs(len(feature_names(params)), wants_concordance(params))

    def cost_release(self, params: Params) -> CostRelease:
        """Like the logistic's iterates mode: the products per step follow the last
        step's size (the carried inverse), which the parties see anyway."""
        del params
        return cost.ADAPTIVE_STEPS

    def secure_program(self, local: CoxData, params: Params, threshold: int) -> NamedProgram:
        return cox_program(local, params, threshold)

    def finalize(
        self, opened: dict[str, np.ndarray], params: Params, threshold: int
    ) -> dict[str, Any]:
        result = report(opened, feature_names(params))
        result["left_out"] = decode_left_out(opened)
        stratified = params.get("stratify") == "hospital"
        result.update(
            {
                "mode": "iterates",
                "stratify": "hospital" if stratified else None,
                "ties": "breslow",
                "event": params.get("event") or "death_date",
                "time_unit": params["time_unit"],
                "horizon": int(params["horizon"]),
                "reference_levels": {
                    v: category_levels(v, params)[0] for v in params.get("categorical") or ()
                },
                **concordance_result(opened, params),
                "leakage": ITERATES_LEAKAGE,
                "missing_values": "complete-case: patients without a follow-up time (Kaplan-"
                "Meier's rule) or missing any feature are left out; their count is left_out",
                "threshold": threshold,
            }
        )
        return result

    def render(self, result: dict[str, Any]) -> str:
        return render_cox(result)

    def tidy(self, result: dict[str, Any]) -> list[Row]:
        return tidy_cox(result)


def concordance_result(opened: Mapping[str, np.ndarray], params: Params) -> dict[str, Any]:
    """Harrell's C with a note on how it was computed, or None with the reason."""
    if not wants_concordance(params):
        return {"concordance": None, "concordance_note": "not asked (concordance = no)"}
    value = float(opened["concordance"].item())
    if value < 0:
        note = "not computed: events x N beyond the fixed-point range of the pair counts"
        return {"concordance": None, "concordance_note": note}
    within = "within each hospital, " if params.get("stratify") == "hospital" else ""
    note = (
        f"Harrell's C over comparable pairs {within}from pooled counts; linear predictors "
        f"binned by {concordance.WIDTH:g}, pairs within a bin counting as tied"
    )
    return {"concordance": value, "concordance_note": note}


def report(opened: Mapping[str, np.ndarray], features: list[str]) -> dict[str, Any]:
    """Coefficients in the original units, standard errors from the inverse
    information, hazard ratios with 95% CIs and Wald p-values, by feature name."""
    beta, sds = opened["beta"], opened["sds"]
    inverse = opened["inverse_information"] * float(opened["information_scale"].item())
    covariance = ((inverse + inverse.T) / 2) / np.outer(sds, sds)
    coefficients = beta / sds
    errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    z = coefficients / errors

    def by_name(array: np.ndarray) -> dict[str, float]:
        return {name: float(v) for name, v in zip(features, array, strict=True)}

    return {
        "coefficients": by_name(coefficients),
        "hazard_ratios": by_name(np.exp(coefficients)),
        "std_errors": by_name(errors),
        "z": by_name(z),
        "p_values": by_name(2 * stats.norm.sf(np.abs(z))),
        "ci95": {
            name: [float(np.exp(b - Z975 * s)), float(np.exp(b + Z975 * s))]
            for name, b, s in zip(features, coefficients, errors, strict=True)
        },
        "ci95_scale": "hazard ratio",
        "covariance": [[float(v) for v in row] for row in covariance],
        "n": round(opened["n"].item()),
        "events": round(opened["events"].item()),
        "iterations": round(opened["iterations"].item()),
        "converged": True,
    }
