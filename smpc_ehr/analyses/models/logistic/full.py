"""Logistic regression, mode "full": the rows themselves are secret-shared and the whole
fit runs inside MPC; only the final model (`full_outputs`) is opened, to the coordinator.

How it runs:
1. Sizes: each party pads its training (and test) rows with empty rows up to a multiple
   of PAD_ROWS; the padded sizes are opened to the parties (`secret_rows`). The
   group-size rule of the iterates mode is checked inside MPC.
2. Scaling (`secret_rows.secret_scaling`): per feature, the power of two just above the
   largest |value| and the one within a factor of two of the joint standard deviation
   (2^e) are opened to the parties, with [N >= threshold] and which features are
   (nearly) constant (refused). Each party inputs its values times 2^-e, so every
   feature's joint standard deviation lies in [1, 2) whatever its units.
3. The rows [x 2^-e | y | w] (w = 0 for padding) are secret-shared; the design matrix
   Z = [w, w (x 2^-e - mean)] has all-zero padding rows, which add nothing to any sum.
   The L2 penalty per standardised coefficient is public; one above MAX_PENALTY per
   row is refused.
4. Newton-Raphson inside MPC from beta = 0: the fitted probabilities by
   `securemath.sigmoid`, then in one matrix product the gradient and Hessian, the step
   by `securemath.linalg` as in the iterates mode. After each step one bit is opened to
   the parties (the step is below `tol`: stop) and one whether the fit diverges (the
   slopes pass SEPARATION_BOUND, or at least half the rows saturate the sigmoid).
5. Opened to the coordinator (`full_outputs`): the intercept in original units, the
   standardised slopes and the covariance blocks from the last Hessian's inverse, N,
   the iteration count and the exponents e; `finalize` multiplies by the public 2^-e.
6. With a test fraction, the test rows are shared and scored inside MPC; the evaluation
   counts come from two batches of comparisons with the logits of the AUC bin edges
   (`_tenth_and_bin`) and are released as in the iterates mode (`common.evaluation`).

Leakage: see the package docstring (the template's text, verbatim).
"""

from __future__ import annotations

import math

import numpy as np

from smpc_ehr.analyses.base import NamedProgram, NamedSecrets, Output, Params
from smpc_ehr.analyses.common import evaluation
from smpc_ehr.analyses.common.features import feature_names
from smpc_ehr.analyses.common.group_size import require_others_reach
from smpc_ehr.analyses.common.moments import party_arrays
from smpc_ehr.analyses.common.public import public_outputs
from smpc_ehr.analyses.common.secret_rows import (
    either,
    norm_excess,
    padded_sizes,
    secret_scaling,
    share_rows,
    total_of,
)
from smpc_ehr.analyses.models.logistic.data import SHORTFALL, Design, revealed_groups
from smpc_ehr.analyses.models.logistic.summary import count_secrets
from smpc_ehr.errors import JointRefusal
from smpc_ehr.securemath.constants import (
    FIRST_INVERSE_STEPS,
    REFINEMENT_STEPS,
    SAME_HESSIAN_INVERSE_STEPS,
    UPDATE_STEPS,
)
from smpc_ehr.securemath.linalg import inverse_spd, solve_refined
from smpc_ehr.securemath.ops import Secret, SecureOps
from smpc_ehr.securemath.sigmoid import secure_sigmoid, sigmoid_and_saturation

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
SEPARATION_BOUND = 15.0
MAX_PENALTY = 16.0
"""The largest L2 penalty per row on a standardised coefficient (l2 4^-e / padded N;
the data's Hessian diagonal is below 1 per row): a larger one would push the first
inverse's start, 1 / (HESSIAN_SCALE x the eigenvalue bound), towards CrypTen's
resolution, and the coefficient is shrunk over 16-fold anyway. Such an l2 is refused."""
STOP_MAGNIFY = 64.0
STOP_FLOOR = 1.0
"""The stop test (`secret_rows.norm_excess`) on the step x 2^6: steps of 1 / 64 or
more by their squares as they are, smaller ones magnified 64 times, so that at tol =
1e-4 the threshold (0.4^2) stands far above the squares' roundings (21 x 2^-16; they
made the test a coin toss near the optimum) and no large step is squared magnified."""
_STEP_EXPONENT = round(math.log2(GRADIENT_SCALE / HESSIAN_SCALE))
_LOGITS = np.log(np.arange(1, evaluation.AUC_BINS) / (evaluation.AUC_BINS - np.arange(1, 100)))
"""Scores at the AUC bin edges b / 100 (b = 1..99) on the linear-predictor scale."""


class _Standardiser:
    """Centre the rows (in units of the public 2^e) at the secret joint means; mask padding."""

    def __init__(self, ops: SecureOps, means: Secret, d: int) -> None:
        self.ops, self.d = ops, d
        self.means = ops.reshape(means, (1, d))

    def design(self, features: Secret, labels: Secret) -> Secret:
        """Z = [w, w (x 2^-e - mean)] (M x (d + 1)); padding rows are all zero. The
        centring is exact (a subtraction); the one product, by w, rounds absolutely on z
        (standard deviation in [1, 2))."""
        ops = self.ops
        w = labels[:, 1:2]
        return ops.concatenate([w, ops.mul(ops.sub(features, self.means), w)], axis=1)


def full_outputs(d: int) -> tuple[Output, ...]:
    """What the full-MPC fit opens to the coordinator, for d features: the public padded
    N, iteration count and exponents e, then N, the intercept (original units), the
    slopes (in units of 2^-e) and the covariance blocks of (intercept, slopes): the
    intercept's variance, its covariances with the slopes and the slopes' covariance
    matrix (of the Hessian scaled by HESSIAN_SCALE / padded N, units of 2^-e)."""
    return (
        Output("padded_n", (1,)),
        Output("iterations", (1,)),
        Output("exponents", (d,)),
        Output("n", (1,)),
        Output("intercept", (1,)),
        Output("slopes", (d,)),
        Output("intercept_variance", (1,)),
        Output("intercept_covariances", (d,)),
        Output("slope_covariance", (d, d)),
    )


def full_program(design: Design, params: Params, threshold: int) -> NamedProgram:
    """The full-MPC fit (see the module docstring), opening `full_outputs` and, with a
    test fraction, `evaluation.outputs`."""
    d = len(feature_names(params))
    k = d + 1
    l2, max_iter = float(params["l2"]), int(params["max_iter"])
    tolerance = max(float(params["tol"]), TOL_FLOOR)
    evaluated = float(params["test_fraction"]) > 0

    async def program(ops: SecureOps) -> NamedSecrets:
        sizes = await padded_sizes(
            ops, [len(design.y), len(design.test_y) if evaluated else 0]
        )  # P x 2
        n_public = int(sizes[:, 0].sum())
        # As in mode iterates: the released model (and the scales the hospitals see)
        # must not stand on fewer than the threshold of other hospitals' patients in
        # any group whose size it gives away.
        groups = party_arrays(ops, revealed_groups(design, params))
        summary = count_secrets(ops, groups, design.left_out, threshold)  # opened at the end
        await require_others_reach(ops, groups, threshold, SHORTFALL)
        scaling = await secret_scaling(
            ops,
            design.x,
            feature_names(params),
            threshold,
            f"fewer than {threshold} patients have the outcome and every feature",
        )
        exponents, total = scaling.exponents, scaling.total
        # lambda/2 |b|^2 with b_j = beta_j 2^-e_j: lambda 4^-e_j on the diagonal (public;
        # not on the intercept), per row as the Hessian.
        penalty = l2 * np.r_[0.0, np.ldexp(1.0, -2 * exponents)] / n_public
        if penalty.max() > MAX_PENALTY:
            names = feature_names(params)
            heavy = [f for f, p in zip(names, penalty[1:], strict=True) if p > MAX_PENALTY]
            raise JointRefusal(
                f"l2 = {l2:g} is too strong for mode 'full' on {', '.join(heavy)} (their "
                "coefficients would be shrunk to nothing in the standardised fit); lower l2"
            )
        standardiser = _Standardiser(ops, scaling.means, d)

        features, labels = share_rows(ops, scaling.scaled(design.x), design.y[:, None], sizes[:, 0])
        z = standardiser.design(features, labels)
        zt = ops.transpose(z)
        y = labels[:, 0:1]
        rows_m = n_public
        # Bound on the largest eigenvalue of the scaled Hessian: (1 + 4 d) / 4 from the
        # data (|z| has mean square below 4), plus the largest penalty.
        bound = HESSIAN_SCALE * ((1 + 4 * d) / 4 + float(penalty.max()))
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
            if l2 > 0 and beta is not None:
                shrink = ops.mul_public(beta, (penalty * GRADIENT_SCALE)[:, None])
                gradient = ops.sub(gradient, shrink)
            if l2 > 0:
                hessian = ops.add_public(hessian, np.diag(penalty * HESSIAN_SCALE))
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
            checks = [  # [||step|| > tol] (two tests: step is the step x 2^6), separation
                norm_excess(ops, step, k, tolerance * 2**_STEP_EXPONENT, STOP_MAGNIFY, STOP_FLOOR),
                ops.add_public(total_of(ops, ops.mul(slopes, slopes), d), -(SEPARATION_BOUND**2)),
            ]
            if saturated is not None:  # most rows fitted with probability exactly 0 or 1
                checks.append(ops.sub(ops.mul_public(saturated, 2.0), total))
            bits = ops.ge_public(ops.concatenate(checks), 0.0)  # one batch
            opened = await ops.reveal(ops.concatenate([either(ops, bits[0:2]), bits[2:]]))
            big_step, diverging = opened[0], max(opened[1:])
            ops.progress("newton", iterations, max_iter, "inside MPC")
            if diverging > 0.5:
                raise JointRefusal(
                    "the coefficients diverge: the outcome is (almost) perfectly separated "
                    "by the features; remove or combine the separating features"
                )
            if big_step < 0.5:
                converged = True
                break
        if not converged:
            raise JointRefusal(
                f"no convergence in {max_iter} iterations; raise max_iter or tol, or check "
                "for collinear features"
            )
        assert beta is not None and hessian is not None and inverse is not None
        covariance = inverse_spd(ops, hessian, k, SAME_HESSIAN_INVERSE_STEPS, inverse, 1.0 / bound)
        shift = ops.mul_public(standardiser.means, -1.0)  # (1 x d), exact
        # U = [[1, shift], [0, I]] takes (beta_0, slopes) to (b_0, slopes).
        intercept = ops.add(ops.reshape(beta[0:1], (1, 1)), ops.matmul(shift, beta[1:k]))
        top = ops.add(covariance[0:1, :], ops.matmul(shift, covariance[1:k, :]))  # (U C)[0, :]
        corner = ops.add(top[:, 0:1], ops.matmul(top[:, 1:k], ops.transpose(shift)))
        public = {
            "padded_n": np.array([n_public]),
            "iterations": np.array([iterations]),
            "exponents": exponents,
        }
        outputs = {
            **public_outputs(ops, public),
            "n": total,
            "intercept": ops.reshape(intercept, (1,)),
            "slopes": ops.reshape(beta[1:k], (d,)),
            "intercept_variance": ops.reshape(corner, (1,)),
            "intercept_covariances": ops.reshape(top[:, 1:k], (d,)),
            "slope_covariance": covariance[1:k, 1:k],
            **summary,
        }
        if not evaluated:
            return outputs
        test_features, test_labels = share_rows(
            ops, scaling.scaled(design.test_x), design.test_y[:, None], sizes[:, 1]
        )
        z_test = standardiser.design(test_features, test_labels)
        joint = _evaluation_counts(ops, z_test, test_labels, beta, int(sizes[:, 1].sum()))
        return {**outputs, **evaluation.joint_outputs(ops, joint, threshold)}

    return program


def _cumulative_to_onehot(ops: SecureOps, at_least: Secret) -> Secret:
    """From [x >= e_1] .. [x >= e_m] (rows x m, increasing edges) the one-hot of x's
    interval among the m + 1 (rows x (m + 1)): differences, no product."""
    ones = ops.add_public(ops.mul_public(at_least[:, 0:1], 0.0), 1.0)
    zeros = ops.mul_public(at_least[:, 0:1], 0.0)
    return ops.sub(
        ops.concatenate([ones, at_least], axis=1), ops.concatenate([at_least, zeros], axis=1)
    )


def _tenth_and_bin(ops: SecureOps, score: Secret, rows: int) -> tuple[Secret, Secret]:
    """Each row's tenth T (rows x 10, one-hot: score between the logits of t / 10 and
    (t + 1) / 10) and its hundredth within the tenth S (rows x 10, one-hot): two batches
    of 9 comparisons per row. The second batch compares with the edges of the row's own
    tenth, the public edges weighted by T (no product). Bin 10 t + s of the AUC
    histogram is T_t S_s."""
    width = evaluation.AUC_BINS // evaluation.CALIBRATION_BINS
    tenths = _LOGITS[width - 1 :: width]  # the 9 edges t / 10
    repeated = ops.stack([score] * (width - 1), axis=1)  # rows x 9
    first = ops.ge_public(
        ops.add_public(repeated, -np.broadcast_to(tenths, (rows, width - 1))), 0.0
    )
    tenth = _cumulative_to_onehot(ops, first)  # rows x 10
    edges = np.r_[-np.inf, _LOGITS].reshape(evaluation.CALIBRATION_BINS, width)[:, 1:]  # 10 x 9
    own_edges = ops.sum(
        ops.mul_public(
            ops.stack([tenth] * (width - 1), axis=2), np.broadcast_to(edges, (rows, *edges.shape))
        ),
        axis=1,
    )  # rows x 9: per row, the edges 10 t + j + 1 of its tenth t
    second = ops.ge_public(ops.sub(repeated, own_edges), 0.0)
    return tenth, _cumulative_to_onehot(ops, second)


def _evaluation_counts(
    ops: SecureOps, z: Secret, labels: Secret, beta: Secret, rows: int
) -> Secret:
    """The joint evaluation counts in `evaluation.local_counts`' layout, from the secret
    test rows: each score's tenth and hundredth (`_tenth_and_bin`), then the per-bin
    sums by one product and one matrix product."""
    bins = evaluation.AUC_BINS
    score = ops.reshape(ops.matmul(z, beta), (rows,))
    tenth, hundredth = _tenth_and_bin(ops, score, rows)
    y, w = labels[:, 0:1], labels[:, 1:2]
    classes = ops.concatenate([y, ops.sub(w, y)], axis=1)  # positives, negatives (padding: 0, 0)
    probability = ops.reshape(secure_sigmoid(ops, score, rows), (rows, 1))
    weighted = ops.concatenate([classes, ops.mul(probability, w)], axis=1)  # rows x 3
    tenths = evaluation.CALIBRATION_BINS
    # (weighted_c T_t) summed against S_s over the rows: the 3 x 100 bin sums.
    by_class_tenth = ops.mul(
        ops.stack([weighted] * tenths, axis=2), ops.stack([tenth] * 3, axis=1)
    )  # rows x 3 x 10
    binned = ops.reshape(
        ops.matmul(ops.transpose(ops.reshape(by_class_tenth, (rows, 3 * tenths))), hundredth),
        (3, bins),
    )  # 3 x 100, bin 10 t + s
    positives, negatives, scores = binned[0], binned[1], binned[2]
    totals = ops.sum(binned, axis=1)  # 3

    def by_tenth(values: Secret) -> Secret:
        return ops.sum(ops.reshape(values, (tenths, bins // tenths)), axis=1)

    middle = bins // 2  # bins from edge 50 / 100 up: score >= 0
    tp = total_of(ops, positives[middle:bins], bins - middle)
    fp = total_of(ops, negatives[middle:bins], bins - middle)
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
