"""Joint logistic regression, "full" mode: the rows themselves are secret-shared and the
whole fit runs inside MPC; only the final model is opened, to the coordinator.

How it runs:
1. Sizes. Each party pads its training rows (and test rows) with empty rows up to a
   multiple of PAD_ROWS; the padded sizes are opened to the parties (they are the
   shapes of what each party secret-shares).
2. Scaling, inside MPC. Local counts, means and variances are pooled (`moments`); one
   batch of comparisons gives [N >= threshold] (opened: if not, the job fails), for
   each feature [variance >= 4^MIN_SCALE_EXPONENT] (opened: if not, the feature is
   refused as constant) and the secret exponent e with 4^e <= variance < 4^(e+1).
   Each feature is centred at its secret joint mean and multiplied by the secret
   power of two s = 2^-e, so its joint standard deviation lies in [1, 2): a
   standardisation without any secret division or square root.
3. The rows [x | y | w] (w = 1 for a real row, 0 for padding) are secret-shared; the
   design matrix Z = [w, w (x - mean) s] has all-zero padding rows, which therefore
   add nothing to any sum below.
4. Newton-Raphson, all inside MPC, from beta = 0: the linear predictor Z beta, the
   fitted probabilities p by a piecewise-polynomial logistic function (`sigmoid`:
   error at most 1.1e-5), then in one matrix product Z' [y - p | diag(p (1 - p)) Z]:
   the gradient and the Hessian; the step H^-1 g as in the iterates mode (`linalg`:
   Newton-Schulz inverse carried over from step to step, one refinement). At beta = 0
   p = 1/2 exactly, so the first Hessian is Z'Z / 4 and needs no sigmoid. After each
   step one bit is opened to the parties: whether the step is below `tol` (so they
   know when to stop); and one bit whether the fit diverges (the job then fails):
   whether the standardised slopes passed SEPARATION_BOUND or at least half of the
   rows have |Z beta| >= 14, where the approximate logistic function is exactly 0 or
   1 (on perfectly separated data the fit can reach such a point at finite slopes,
   with a zero gradient, and would otherwise "converge" there).
5. Released to the coordinator: N, the iteration count, the exponents e, the intercept
   in original units, the standardised slopes and the covariance matrix (from the
   inverse of the last Hessian, computed at the iterate before the final step, which
   is within `tol` of the optimum) with the intercept row in original units; the
   coordinator multiplies by the public 2^-e to get everything in original units.
6. With a test fraction, the test rows are secret-shared too and scored inside MPC;
   the evaluation counts (`evaluation`) are formed from one batch of comparisons of
   the secret scores with the logits of the AUC bin edges, and released as in the
   iterates mode.

Leakage, plainly:
- each party learns: every party's number of training and test rows rounded up to a
  multiple of PAD_ROWS, whether N reaches the threshold, whether each feature is
  (nearly) constant, after each Newton step whether it was the last (so the number of
  iterations) and whether the fit diverges; nothing else: no iterate, no mean, no
  gradient, no Hessian, nothing of another party's rows;
- the coordinator (and the analyst) learns: the coefficients and their covariance, N,
  the number of iterations, for each feature the power of two nearest below its joint
  standard deviation (e: sd within a factor of two), and the evaluation aggregates;
  nothing per hospital.
- if the job fails (too few patients, a constant feature, divergence, no
  convergence) nothing is released to the coordinator.
Not covered: what releases reveal in combination.
"""

from __future__ import annotations

import math

import numpy as np

from smpc_ehr.analyses import evaluation
from smpc_ehr.analyses.base import Params
from smpc_ehr.analyses.linalg import inverse_spd, solve_refined
from smpc_ehr.analyses.logistic_data import Design, feature_names
from smpc_ehr.analyses.secret_rows import (
    MIN_SCALE_EXPONENT,
    padded_sizes,
    secret_scaling,
    share_rows,
    total_of,
)
from smpc_ehr.analyses.sigmoid import secure_sigmoid, sigmoid_and_saturation
from smpc_ehr.backends.base import Secret, SecureOps, SecureProgram, public_values
from smpc_ehr.errors import DataError

GRADIENT_SCALE = 2.0**14
"""The gradient enters the solve times this public factor (as in the iterates mode), so
that CrypTen's 2^-16 resolution holds small late gradients."""
HESSIAN_SCALE = 2.0**8
"""The Hessian enters the solve times this public factor: its smallest eigenvalues
(about 1e-3 for correlated features) then stand far above CrypTen's 2^-16 resolution,
which would otherwise cost the weakly determined coefficients' standard errors a few
percent. The solve gives step x GRADIENT_SCALE / HESSIAN_SCALE = step x 2^6, which the
convergence test squares: resolution without overflow."""
TOL_FLOOR = 1e-4
"""Steps below this (standardised units) are within the sigmoid's and the backend's
rounding: a smaller `tol` is raised to it."""
FIRST_INVERSE_STEPS = 16
UPDATE_STEPS = 2
REFINEMENT_STEPS = 1
WARM_INVERSE_STEPS = 3
SEPARATION_BOUND = 15.0
_STEP_EXPONENT = round(math.log2(GRADIENT_SCALE / HESSIAN_SCALE))
_LOGITS = np.log(np.arange(1, evaluation.AUC_BINS) / (evaluation.AUC_BINS - np.arange(1, 100)))
"""Scores at the AUC bin edges b / 100 (b = 1..99) on the linear-predictor scale."""


class _Standardiser:
    """Centre at the secret joint means, scale by the secret powers of two, mask padding."""

    def __init__(self, ops: SecureOps, means: Secret, scales: Secret, d: int) -> None:
        self.ops, self.d = ops, d
        self.means = ops.reshape(means, (1, d))
        self.scales = ops.reshape(scales, (1, d))

    def design(self, features: Secret, labels: Secret) -> Secret:
        """Z = [w, w (x - mean) s] (M x (d + 1)); padding rows are all zero."""
        ops = self.ops
        w = labels[:, 1:2]
        centred = ops.sub(features, self.means)
        # (x - mean) s first, then w: each rounding is then absolute on z (about 1);
        # w s first would round s, an error multiplied by |x - mean| (up to 2^14).
        return ops.concatenate([w, ops.mul(ops.mul(centred, self.scales), w)], axis=1)


def full_program(design: Design, params: Params, threshold: int) -> SecureProgram:
    """The full-MPC fit (see the module docstring); opens to the coordinator
    [padded total, iterations], N, the exponents, [intercept, standardised slopes], and
    the covariance blocks (V00, V0j, Vij), then the evaluation outputs."""
    d = len(feature_names(params))
    k = d + 1
    l2, max_iter = float(params["l2"]), int(params["max_iter"])
    tolerance = max(float(params["tol"]), TOL_FLOOR)
    evaluated = float(params["test_fraction"]) > 0

    async def program(ops: SecureOps) -> list[Secret]:
        if len(design.y) < threshold:
            raise DataError(
                f"this party has fewer than {threshold} patients with the outcome and every "
                "feature; it cannot take part in this model"
            )
        sizes = await padded_sizes(
            ops, [len(design.y), len(design.test_y) if evaluated else 0]
        )  # P x 2
        n_public = int(sizes[:, 0].sum())
        scaling = await secret_scaling(
            ops,
            design.x,
            feature_names(params),
            threshold,
            f"fewer than {threshold} patients have the outcome and every feature",
        )
        scales, exponent, total = scaling.scales, scaling.exponents, scaling.total
        standardiser = _Standardiser(ops, scaling.means, scales, d)

        features, labels = share_rows(ops, design.x, design.y[:, None], sizes[:, 0])
        z = standardiser.design(features, labels)
        zt = ops.transpose(z)
        y = labels[:, 0:1]
        rows_m = n_public
        # lambda/2 |b|^2 with b_j = beta_j s_j: lambda s_j^2 on the diagonal (not the intercept).
        penalty = None
        if l2 > 0:
            squares = ops.mul(scales, scales)
            penalty = ops.mul_public(
                ops.concatenate([ops.mul_public(squares[0:1], 0.0), squares]), l2 / n_public
            )
        # Bound on the largest eigenvalue of the scaled Hessian: (1 + 4 d) / 4 from the
        # data (|z| has mean square below 4), plus the largest possible penalty.
        bound = HESSIAN_SCALE * (
            (1 + 4 * d) / 4 + (l2 * 4.0 ** (-MIN_SCALE_EXPONENT) / n_public if l2 > 0 else 0.0)
        )
        first_steps = FIRST_INVERSE_STEPS + max(
            0, math.ceil(math.log2(bound / HESSIAN_SCALE * 4 / k))
        )

        def derivatives(beta: Secret | None) -> tuple[Secret, Secret, Secret | None]:
            """Gradient (k x 1) and Hessian (k x k), / n_public, times GRADIENT_SCALE and
            HESSIAN_SCALE; and the number of rows whose probability is saturated (exactly
            0 or 1), None at beta = 0."""
            saturated = None
            if beta is None:  # p = 1/2 everywhere: no sigmoid needed
                residual = ops.sub(y, ops.mul_public(labels[:, 1:2], 0.5))
                both = ops.matmul(zt, ops.concatenate([residual, ops.mul_public(z, 0.25)], axis=1))
            else:
                u = ops.reshape(ops.matmul(z, beta), (rows_m,))
                sigma, beyond = sigmoid_and_saturation(ops, u, rows_m)
                saturated = total_of(ops, beyond, rows_m)  # padding rows: u = 0, never
                p = ops.reshape(sigma, (rows_m, 1))
                weight = ops.sub(p, ops.mul(p, p))
                residual = ops.sub(y, p)
                both = ops.matmul(zt, ops.concatenate([residual, ops.mul(z, weight)], axis=1))
            factors = np.r_[GRADIENT_SCALE, np.full(k, HESSIAN_SCALE)] / n_public
            both = ops.mul_public(both, np.broadcast_to(factors, (k, k + 1)))
            gradient, hessian = both[:, 0:1], both[:, 1 : k + 1]
            if penalty is not None and beta is not None:
                shrink = ops.mul(ops.reshape(penalty, (k, 1)), beta)
                gradient = ops.sub(gradient, ops.mul_public(shrink, GRADIENT_SCALE))
            if penalty is not None:
                hessian = ops.add(
                    hessian, _diagonal(ops, ops.mul_public(penalty, HESSIAN_SCALE), k)
                )
            return gradient, hessian, saturated

        beta: Secret | None = None
        inverse: Secret | None = None
        hessian: Secret | None = None
        iterations, converged = 0, False
        while iterations < max_iter:
            iterations += 1
            gradient, hessian, saturated = derivatives(beta)
            if inverse is None:
                inverse = inverse_spd(ops, hessian, k, first_steps, None, 1.0 / bound)
                step = ops.matmul(inverse, gradient)
            else:
                inverse = inverse_spd(ops, hessian, k, UPDATE_STEPS, inverse, 1.0 / bound)
                step = solve_refined(ops, hessian, inverse, gradient, REFINEMENT_STEPS)
            delta = ops.mul_pow2(step, np.array(_STEP_EXPONENT))  # step = delta x 2^6
            beta = delta if beta is None else ops.add(beta, delta)
            slopes = beta[1:k]
            checks = [
                ops.add_public(
                    total_of(ops, ops.mul(step, step), k),
                    -((tolerance * 2**_STEP_EXPONENT) ** 2),
                ),
                ops.add_public(total_of(ops, ops.mul(slopes, slopes), d), -(SEPARATION_BOUND**2)),
            ]
            if saturated is not None:  # most rows fitted with probability exactly 0 or 1
                checks.append(ops.sub(ops.mul_public(saturated, 2.0), total))
            opened = await ops.reveal(ops.ge_public(ops.concatenate(checks), 0.0))
            big_step, diverging = opened[0], max(opened[1:])
            ops.progress("newton", iterations, max_iter, "inside MPC")
            if diverging > 0.5:
                raise DataError(
                    "the coefficients diverge: the outcome is (almost) perfectly separated "
                    "by the features; remove or combine the separating features"
                )
            if big_step < 0.5:
                converged = True
                break
        if not converged:
            raise DataError(
                f"no convergence in {max_iter} iterations; raise max_iter or tol, or check "
                "for collinear features"
            )
        assert beta is not None and hessian is not None and inverse is not None
        covariance = inverse_spd(ops, hessian, k, WARM_INVERSE_STEPS, inverse, 1.0 / bound)
        shift = ops.reshape(
            ops.mul(ops.mul_public(standardiser.means, -1.0), standardiser.scales), (1, d)
        )
        # U = [[1, shift], [0, I]] takes (beta_0, slopes) to (b_0, slopes).
        intercept = ops.add(ops.reshape(beta[0:1], (1, 1)), ops.matmul(shift, beta[1:k]))
        top = ops.add(covariance[0:1, :], ops.matmul(shift, covariance[1:k, :]))  # (U C)[0, :]
        corner = ops.add(top[:, 0:1], ops.matmul(top[:, 1:k], ops.transpose(shift)))
        summary = np.array([float(n_public), float(iterations)])
        outputs = [
            public_values(ops, summary),
            total,
            exponent,
            ops.reshape(intercept, (1,)),
            ops.reshape(beta[1:k], (d,)),
            ops.reshape(corner, (1,)),
            ops.reshape(top[:, 1:k], (d,)),
            ops.reshape(covariance[1:k, 1:k], (d * d,)),
        ]
        if not evaluated:
            return outputs
        test_features, test_labels = share_rows(
            ops, design.test_x, design.test_y[:, None], sizes[:, 1]
        )
        z_test = standardiser.design(test_features, test_labels)
        joint = _evaluation_counts(ops, z_test, test_labels, beta, int(sizes[:, 1].sum()))
        return [*outputs, *evaluation.joint_outputs(ops, joint, threshold)]

    return program


def _diagonal(ops: SecureOps, vector: Secret, size: int) -> Secret:
    """diag(vector) for a secret vector (its products with the public identity)."""
    return ops.mul_public(ops.stack([vector] * size), np.eye(size))


def _evaluation_counts(
    ops: SecureOps, z: Secret, labels: Secret, beta: Secret, rows: int
) -> Secret:
    """The joint evaluation counts in `evaluation.local_counts`' layout, from the secret
    test rows: one batch of comparisons of the scores with the bin edges' logits."""
    edges = len(_LOGITS)
    score = ops.reshape(ops.matmul(z, beta), (rows,))
    above = ops.ge_public(
        ops.add_public(
            ops.stack([score] * edges, axis=1), np.broadcast_to(-_LOGITS, (rows, edges))
        ),
        0.0,
    )  # rows x 99: [score >= logit(b / 100)]
    y, w = labels[:, 0:1], labels[:, 1:2]
    classes = ops.concatenate([y, ops.sub(w, y)], axis=1)  # positives, negatives (padding: 0, 0)
    probability = ops.reshape(secure_sigmoid(ops, score, rows), (rows, 1))
    weighted = ops.concatenate([classes, ops.mul(probability, w)], axis=1)  # rows x 3
    # 3 x 99, flattened: positives, negatives and score sums at or above each edge
    at_least = ops.reshape(ops.matmul(ops.transpose(weighted), above), (3 * edges,))
    totals = ops.sum(weighted, axis=0)  # 3
    zero = ops.mul_public(totals[0:1], 0.0)

    def per_bin(row: int) -> Secret:  # 100 bins from "at or above edge b" differences
        cumulative = ops.concatenate(
            [totals[row : row + 1], at_least[row * edges : (row + 1) * edges], zero]
        )
        return ops.sub(cumulative[0 : edges + 1], cumulative[1 : edges + 2])

    positives, negatives, scores = per_bin(0), per_bin(1), per_bin(2)
    tenth = evaluation.AUC_BINS // evaluation.CALIBRATION_BINS

    def by_tenth(binned: Secret) -> Secret:
        return ops.sum(ops.reshape(binned, (evaluation.CALIBRATION_BINS, tenth)), axis=1)

    middle = edges // 2  # edge 50 / 100: score >= 0
    tp, fp = at_least[middle : middle + 1], at_least[edges + middle : edges + middle + 1]
    fn, tn = ops.sub(totals[0:1], tp), ops.sub(totals[1:2], fp)
    events, non_events = by_tenth(positives), by_tenth(negatives)
    return ops.concatenate(
        [
            tn,
            fp,
            fn,
            tp,
            ops.add(events, non_events),
            events,
            by_tenth(scores),
            positives,
            negatives,
        ]
    )
