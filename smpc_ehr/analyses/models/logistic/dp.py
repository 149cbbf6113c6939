"""Logistic regression with differential privacy (`epsilon`): noisy Newton-Raphson.

The mechanism is the noisy Newton method of Avella-Medina, Bradshaw and Loh
("Differentially private inference via noisy optimization", Annals of Statistics 51(5),
2023): each Newton step releases the pooled gradient and Hessian of the log-likelihood
with Gaussian noise, and the step is taken from the noisy pair. Of the mechanisms the
issue names it has the best utility at a given epsilon for a low-dimensional model on
many patients: a handful of releases (noisy gradient descent needs hundreds, each with
less of the budget), each with noise at the scale of one patient's bounded
contribution, so the privacy error is of order sqrt(k) / (N epsilon) against a sampling
error of order 1 / sqrt(N) (the paper shows the estimator is as efficient as the
maximum-likelihood one as N grows), and standard errors come from the same releases
(objective and output perturbation need a strongly convex penalty, which biases the
coefficients, and give no covariance).

How it runs (each party on its own complete cases):
1. Public design: each numeric feature is clipped to its `bounds` (`common.clipping`)
   and mapped by the bounds' affine map onto [-1, 1]; each 0/1 column of a categorical
   feature is mapped from [0, 1] likewise; the intercept column is 1. No data-dependent
   standardisation: nothing about the data is learned before the first release.
2. A noisy count N (`N_SHARE` of the rho) is opened to the parties; the job is refused
   unless it reaches the small-cell threshold. This replaces the exact mode's
   group-size checks, whose bits depend on the exact data; with DP only noisy counts
   are compared.
3. `dp_steps` Newton steps from beta = 0, a number fixed in advance (no stop rule):
   each party computes its gradient and Hessian at the public iterate in plaintext and
   inputs them secret-shared; inside MPC they are summed and each gets its noise
   (`common.noise.add_fixed_noise`), and the noisy sums are opened to the parties (they
   are differentially private; what follows is post-processing). Each party then takes
   the step in plaintext: the public L2 penalty is added, the Hessian's eigenvalues are
   floored at `FLOOR_SDS` x sqrt(k) noise standard deviations (so it is positive
   definite whatever the noise), and the coefficients are kept within +-`BETA_BOUND`.
   A floored eigenvalue damps the step along its direction: where the noise is as
   large as the data's Hessian (few patients, small epsilon) the fit is shrunk towards
   zero, like a ridge, and its standard errors are too small; the result counts the
   last Hessian's floored eigenvalues ("floored_eigenvalues") so that a reader knows.
4. Opened to the coordinator: the noisy N, the number of steps, the coefficients and
   their covariance on the mapped scale, and that count; `finalize` maps them back to
   original units.

Sensitivity, per patient added or removed (a patient at one hospital), with k = d + 1
columns, |z_j| <= 1 and 0 <= p <= 1: the gradient term z (y - p) has L2 norm at most
sqrt(k); the Hessian term p (1 - p) z z' is released as its upper triangle (with the
diagonal, k (k + 1) / 2 values), whose L2 norm is p (1 - p) sqrt((|z|^4 + sum z_j^4) / 2)
<= sqrt(k (k + 1) / 2) / 4; the count's is 1. Each party's local sums are input rounded
to the fixed-point grid, so a released sum moves by at most one more grid unit per value
when a patient changes; `ROUNDING_UNITS` units of the coarsest grid (CrypTen's 2^-16)
per value are added to the L2 sensitivity for that and for float64 rounding of the local
sums (which stays far below a unit at the sizes the template takes).

Rho split: `N_SHARE` to the count, the rest evenly over the dp_steps steps (every step
charged), each step's `GRADIENT_SHARE` to its gradient and the rest to its Hessian
(measured on 3 x 4,000 patients at epsilon 1 and 10: a 15-25% smaller coefficient error
than an even split). Each kind's releases share one name in the
result's "dp" block ("n", "gradient", "hessian"): same size, sensitivity and share, so
the same noise sd per value.

Standard errors: the covariance is the inverse of the last (noisy, floored, penalised)
Hessian plus the first-order effect of the last step's gradient noise, sigma_g^2 H^-2
(the noise of the Hessian and of earlier steps, contracted by the Newton steps, is
neglected), so the intervals include the noise to first order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common.clipping import UnitMap, clip_bounds
from smpc_ehr.analyses.common.features import feature_names
from smpc_ehr.analyses.common.moments import party_arrays
from smpc_ehr.analyses.common.noise import NoisyRelease, add_fixed_noise, noise_sd
from smpc_ehr.analyses.common.public import public_outputs
from smpc_ehr.analyses.models.logistic.data import Design
from smpc_ehr.errors import JointRefusal, TemplateError
from smpc_ehr.securemath.ops import SecureOps

N_SHARE = 0.05
"""The fraction of the job's rho spent on the noisy count N (for the threshold test
and the report); the rest goes to the Newton steps, evenly."""
GRADIENT_SHARE = 2.0 / 3.0
"""Of each step's rho, the gradient's fraction (the Hessian gets the rest): near the
optimum a step's error is H^-1 times the gradient's noise, while the Hessian's noise
enters multiplied by the (small) gradient."""
ROUNDING_UNITS = 2
"""Grid units per released value added to its sensitivity (see the module docstring)."""
COARSEST_FRAC_BITS = 16
"""The coarsest fixed-point grid of the backends (CrypTen's 2^-16): the sensitivity
slack is in its units, so one plan of releases serves every backend."""
FLOOR_SDS = 3.0
"""The noisy Hessian's eigenvalues are floored at this many times sqrt(k) times its
noise sd (the noise matrix's spectral norm is about 2 sqrt(k) sd; 3 had the smallest
AUC loss among 1..4, measured on 3 x 4,000 patients at epsilon 1)."""
BETA_BOUND = 15.0
"""Coefficients on the mapped scale are kept within +-this (post-processing): a step
from a badly noisy Hessian cannot send the iterate where every p is 0 or 1."""


def validate_dp(params: Params) -> None:
    """TemplateError for a DP job this variant cannot run: no or ill-fitting bounds,
    mode "full", a test fraction."""
    clip_bounds(params, list(params["features"]))
    if params["mode"] != "iterates":
        raise TemplateError(
            "with epsilon the fit runs as noisy Newton-Raphson in mode 'iterates', whose "
            "iterates are differentially private (mode 'full' would hide nothing more): "
            "leave mode at 'iterates'"
        )
    if float(params["test_fraction"]) > 0:
        raise TemplateError(
            "with epsilon a held-out evaluation is not available (its counts and AUC would "
            "be exact): set test_fraction=0"
        )


def _columns(params: Params) -> int:
    return len(feature_names(params)) + 1


def _triangle(k: int) -> int:
    return k * (k + 1) // 2


def _slack(dim: int) -> float:
    return math.sqrt(dim) * ROUNDING_UNITS * 2.0**-COARSEST_FRAC_BITS


@dataclass(frozen=True)
class Releases:
    """The DP fit's noisy releases: the count, and each step's gradient and Hessian."""

    n: NoisyRelease
    gradient: NoisyRelease
    hessian: NoisyRelease
    steps: int

    def all(self) -> tuple[NoisyRelease, ...]:
        return (self.n, *(self.gradient, self.hessian) * self.steps)


def releases(params: Params) -> Releases:
    """What a DP fit releases and how its noise is sized (module docstring)."""
    k, steps = _columns(params), int(params["dp_steps"])
    each = (1.0 - N_SHARE) / steps
    m = _triangle(k)
    return Releases(
        n=NoisyRelease("n", 1, 1.0, share=N_SHARE),  # an integer: no rounding
        gradient=NoisyRelease("gradient", k, math.sqrt(k) + _slack(k), share=each * GRADIENT_SHARE),
        hessian=NoisyRelease(
            "hessian", m, math.sqrt(m) / 4 + _slack(m), share=each * (1 - GRADIENT_SHARE)
        ),
        steps=steps,
    )


def design_map(params: Params) -> UnitMap[np.ndarray]:
    """The public map of each feature column's bounds onto [-1, 1] (categorical 0/1
    columns: (0, 1)); as z = a x + c, a = 1 / half and c = -centre / half."""
    numeric = clip_bounds(params, list(params["features"]))
    return UnitMap.of(numeric.get(name, (0.0, 1.0)) for name in feature_names(params))


def mapped_design(design: Design, params: Params) -> np.ndarray:
    """[1 | z]: this party's training rows clipped to the bounds and mapped to [-1, 1]."""
    z = design_map(params).to_unit(design.x)
    return np.column_stack([np.ones(len(design.y)), z])


def local_terms(z: np.ndarray, y: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """This party's gradient (k) and Hessian upper triangle (k (k + 1) / 2) of the
    log-likelihood at beta, as one vector."""
    p = 1.0 / (1.0 + np.exp(-(z @ beta)))
    hessian = (z * (p * (1.0 - p))[:, None]).T @ z
    return np.concatenate([z.T @ (y - p), hessian[np.triu_indices(len(beta))]])


def symmetric(triangle: np.ndarray, k: int) -> np.ndarray:
    """The symmetric k x k matrix whose upper triangle (row-major) is `triangle`."""
    matrix = np.zeros((k, k))
    matrix[np.triu_indices(k)] = triangle
    return matrix + np.triu(matrix, 1).T


def floored(matrix: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """The symmetric matrix's eigenvalues floored at `floor`, and its eigenvectors."""
    values, vectors = np.linalg.eigh(matrix)
    return np.maximum(values, floor), vectors


def penalty(params: Params) -> np.ndarray:
    """The public L2 term's diagonal on the mapped scale: lambda/2 |b|^2 on the original
    slopes b_j = a_j beta_j is lambda a_j^2 on beta_j (intercept not penalised)."""
    scale = 1.0 / design_map(params).half
    return np.r_[0.0, float(params["l2"]) * scale**2]


def dp_outputs(d: int) -> tuple[Output, ...]:
    """What the DP fit opens to the coordinator: the noisy N, the number of steps, the
    coefficients and their covariance on the mapped scale (intercept first), and how
    many of the last Hessian's eigenvalues were floored."""
    k = d + 1
    return (
        Output("n", (1,)),
        Output("iterations", (1,)),
        Output("beta", (k,)),
        Output("covariance", (k, k)),
        Output("floored", (1,)),
    )


def dp_program(design: Design, params: Params, threshold: int) -> NamedProgram:
    """The noisy-Newton fit (module docstring), opening `dp_outputs`."""
    k = _columns(params)
    plan_ = releases(params)
    ridge = penalty(params)

    async def program(ops: SecureOps) -> NamedSecrets:
        z = mapped_design(design, params)
        total = ops.sum(party_arrays(ops, np.array([float(len(design.y))])), axis=0)
        n = float((await ops.reveal(add_fixed_noise(ops, total, params, plan_.n)))[0])
        if n < threshold:
            raise JointRefusal(
                f"fewer than {threshold} patients have the outcome and every feature "
                "(by the differentially private count)"
            )
        setting = (ops.backend, ops.n_parties)
        floor = FLOOR_SDS * math.sqrt(k) * noise_sd(params, plan_.hessian, *setting)
        beta = np.zeros(k)
        values, vectors = np.ones(k), np.eye(k)
        for step in range(plan_.steps):
            summed = ops.sum(party_arrays(ops, local_terms(z, design.y, beta)), axis=0)
            gradient = add_fixed_noise(ops, summed[:k], params, plan_.gradient)
            triangle = add_fixed_noise(ops, summed[k:], params, plan_.hessian)
            opened = await ops.reveal(ops.concatenate([gradient, triangle]))
            hessian = symmetric(opened[k:], k) + np.diag(ridge)
            values, vectors = floored(hessian, floor)
            direction = vectors.T @ (opened[:k] - ridge * beta)
            beta = np.clip(beta + vectors @ (direction / values), -BETA_BOUND, BETA_BOUND)
            ops.progress("newton", step + 1, plan_.steps, "differentially private")
        # Cov = H^-1 + sigma_g^2 H^-2: the last step's gradient noise, to first order.
        sigma_g = noise_sd(params, plan_.gradient, *setting)
        covariance = vectors @ np.diag(1.0 / values + sigma_g**2 / values**2) @ vectors.T
        public = {
            "n": np.array([n]),
            "iterations": np.array([plan_.steps]),
            "beta": beta,
            "covariance": covariance,
            "floored": np.array([np.sum(values == floor)]),
        }
        return public_outputs(ops, public)

    return program


def original_units(
    beta: np.ndarray, covariance: np.ndarray, params: Params
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and covariance from the mapped scale to the features' units:
    b_0 = beta_0 + sum c_j beta_j, b_j = a_j beta_j."""
    box = design_map(params)
    scale, shift = 1.0 / box.half, -box.centre / box.half
    k = len(beta)
    transform = np.zeros((k, k))
    transform[0, 0] = 1.0
    transform[0, 1:] = shift
    transform[1:, 1:] = np.diag(scale)
    symmetric_cov = (covariance + covariance.T) / 2
    return transform @ beta, transform @ symmetric_cov @ transform.T
