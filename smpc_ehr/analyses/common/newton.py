"""How a Newton step is solved from the pooled derivatives, per mode (the logistic
regression's modes; the Cox regression uses `SecretNewton`): inside MPC with a
carried-over inverse (`SecretNewton`, mode "iterates": only the step is opened), in
the clear from the opened sums (`OpenNewton`, mode "pooled": the joint gradient and
Hessian are opened to the parties, who all compute the same step), or with Bohning's
fixed bound on the Hessian, inverted once inside MPC (`BohningNewton`, mode "bohning":
one secret matrix-vector product a step, more steps).

`OpenNewton` solves by a Cholesky factorisation written in plain Python floats, in a
fixed order of operations: IEEE 754 rounds each +, -, x, / and sqrt correctly, so every
party computes bit-for-bit the same step from the same opened sums, whatever its BLAS
(a LAPACK solve may differ in the last bits between machines, and the parties would
then evaluate their derivatives at slightly different coefficients).
"""

from __future__ import annotations

import math

import numpy as np

from smpc_ehr.errors import JointRefusal
from smpc_ehr.securemath.constants import FIRST_INVERSE_STEPS, NEW_HESSIAN_INVERSE_STEPS
from smpc_ehr.securemath.linalg import inverse_and_solve, inverse_spd
from smpc_ehr.securemath.ops import Secret, SecureOps

NOT_DEFINITE = (
    "the joint Hessian is not positive definite: the features are (almost) collinear; "
    "remove or combine them"
)


STEPS_BY_LAST_STEP = ((0.3, 3), (0.01, 2))
"""Newton-Schulz steps that carry the inverse to a new Hessian, each also giving the
step (`linalg.inverse_and_solve`: two products): 3 after a Newton step whose largest
standardised move was above 0.3, 2 above 0.01, else 1. Why: the Hessian moves about
as much as the coefficients did, so the carried inverse's error e is about that move
and each step squares it; near the optimum one step leaves it far below what the
convergence needs. The choice depends only on the last step, which every party knows:
it reveals nothing. Measured on the benchmark's 20 features and the tests' 4: as many
Newton iterations as 2 Newton-Schulz steps and a refinement (7 products a step) took."""


def carry_steps(last_move: float) -> int:
    """`STEPS_BY_LAST_STEP` for the largest standardised move of the last Newton step."""
    return next((steps for above, steps in STEPS_BY_LAST_STEP if last_move > above), 1)


class SecretNewton:
    """Mode "iterates": the Hessian's inverse by Newton-Schulz inside MPC, carried over
    from one step to the next, the step computed in the same products
    (`linalg.inverse_and_solve`); only the step is opened (to the parties), and the
    covariance stays secret until the coordinator opens it. `scale` is the public
    factor the gradient carries (the opened step is divided by it for the moves)."""

    wants_hessian = True
    """Each step needs the pooled Hessian (at the current coefficients)."""
    steps_per_iteration = 1
    """How many steps one of the template's `max_iter` iterations allows."""

    def __init__(self, ops: SecureOps, k: int, scale: float) -> None:
        self.ops, self.k, self.scale = ops, k, scale
        self.inverse: Secret | None = None
        self.last_move = np.inf

    async def step(self, derivatives: Secret) -> np.ndarray:
        """The opened step H^-1 g from the summed derivatives (g, then H row by row)."""
        ops, k = self.ops, self.k
        g = ops.reshape(derivatives[:k], (k, 1))
        hessian = ops.reshape(derivatives[k:], (k, k))
        if self.inverse is None:  # the first Hessian from (4/k) I, its last step solving
            start = inverse_spd(ops, hessian, k, FIRST_INVERSE_STEPS - 1, None, 4.0 / k)
            self.inverse, step = inverse_and_solve(ops, hessian, k, start, g, 1)
        else:
            steps = carry_steps(self.last_move)
            self.inverse, step = inverse_and_solve(ops, hessian, k, self.inverse, g, steps)
        opened = (await ops.reveal(step)).reshape(k)
        self.last_move = float(np.max(np.abs(opened))) / self.scale
        return opened

    async def covariance(self, derivatives: Secret) -> Secret:
        """The secret inverse of the Hessian at the optimum, from the last inverse."""
        ops, k = self.ops, self.k
        hessian = ops.reshape(derivatives[k:], (k, k))
        return inverse_spd(ops, hessian, k, NEW_HESSIAN_INVERSE_STEPS, self.inverse, 4.0 / k)


class OpenNewton:
    """Mode "pooled": the summed gradient and Hessian are opened to the parties (only
    the sums), and each party solves the step in the clear, identically."""

    wants_hessian = True
    steps_per_iteration = 1

    def __init__(self, ops: SecureOps, k: int) -> None:
        self.ops, self.k = ops, k

    async def _opened(self, derivatives: Secret) -> tuple[np.ndarray, list[list[float]]]:
        k = self.k
        opened = await self.ops.reveal(derivatives)
        hessian = opened[k:].reshape(k, k)
        return opened[:k], cholesky([[float(v) for v in row] for row in hessian])

    async def step(self, derivatives: Secret) -> np.ndarray:
        """H^-1 g from the opened sums, by `cholesky_solve`."""
        gradient, factor = await self._opened(derivatives)
        return np.array(cholesky_solve(factor, [float(v) for v in gradient]))

    async def covariance(self, derivatives: Secret) -> Secret:
        """The inverse of the opened Hessian at the optimum (public to the parties; a
        secret input by party 0 so that it is opened with the other outputs)."""
        _, factor = await self._opened(derivatives)
        k = self.k
        columns = [cholesky_solve(factor, [float(i == j) for i in range(k)]) for j in range(k)]
        inverse = np.array(columns).T
        return self.ops.input_values(0, inverse if self.ops.my_index == 0 else None, (k, k))


BOHNING_STEPS_PER_ITERATION = 10
"""Mode "bohning" converges linearly (each step shrinks the error by a factor of 1 -
4 p(1 - p) at worst, about 0.6 for an outcome in 12 % of patients): it may take ten
times as many steps as Newton's iterations, so `max_iter` allows ten times as many."""
BOHNING_COVARIANCE_STEPS = 10
"""Newton-Schulz steps from the bound's inverse to the Hessian's at the optimum: the
error |I - B^-1 H| is up to 1 - 4 min p(1 - p) (0.96 for fitted probabilities near
0.01), and 2^10 squarings bring even 0.96 far below 1e-10."""


class BohningNewton:
    """Mode "bohning" (Bohning and Lindsay 1988): the Hessian of the log-likelihood is
    at most B = X'X/4 (N, standardised; plus the L2 term) everywhere, and B is the
    Hessian at the start (all coefficients 0). B is inverted inside MPC once, and each
    later step is B^-1 times the pooled gradient: one matrix-vector product, the
    gradient alone pooled. Convergence is linear (more iterates are opened to the
    parties), and the covariance needs the Hessian at the optimum inverted at the end."""

    steps_per_iteration = BOHNING_STEPS_PER_ITERATION

    def __init__(self, ops: SecureOps, k: int) -> None:
        self.ops, self.k = ops, k
        self.bound_inverse: Secret | None = None

    @property
    def wants_hessian(self) -> bool:
        """Only the first step (coefficients 0) pools the Hessian: it is B."""
        return self.bound_inverse is None

    async def step(self, derivatives: Secret) -> np.ndarray:
        """B^-1 g, opened; the first call inverts B (its derivatives carry the Hessian)."""
        ops, k = self.ops, self.k
        g = ops.reshape(derivatives[:k], (k, 1))
        if self.bound_inverse is None:
            bound = ops.reshape(derivatives[k:], (k, k))
            start = inverse_spd(ops, bound, k, FIRST_INVERSE_STEPS - 1, None, 4.0 / k)
            self.bound_inverse, step = inverse_and_solve(ops, bound, k, start, g, 1)
        else:
            step = ops.matmul(self.bound_inverse, g)
        return (await ops.reveal(step)).reshape(k)

    async def covariance(self, derivatives: Secret) -> Secret:
        """The secret inverse of the Hessian at the optimum, from B^-1."""
        ops, k = self.ops, self.k
        hessian = ops.reshape(derivatives[k:], (k, k))
        return inverse_spd(ops, hessian, k, BOHNING_COVARIANCE_STEPS, self.bound_inverse, 1.0)


def solver_for(
    mode: str, ops: SecureOps, k: int, scale: float
) -> SecretNewton | OpenNewton | BohningNewton:
    """The step solver of a mode ("iterates", "pooled" or "bohning")."""
    if mode == "pooled":
        return OpenNewton(ops, k)
    if mode == "bohning":
        return BohningNewton(ops, k)
    return SecretNewton(ops, k, scale)


def cholesky(a: list[list[float]]) -> list[list[float]]:
    """The lower Cholesky factor of a symmetric positive definite matrix (its lower
    triangle is read), in plain Python floats (deterministic: see the module docstring);
    JointRefusal if it is not positive definite."""
    k = len(a)
    factor = [[0.0] * k for _ in range(k)]
    for j in range(k):
        pivot = a[j][j]
        for m in range(j):
            pivot -= factor[j][m] * factor[j][m]
        if not pivot > 1e-12 * max(1.0, abs(a[j][j])):
            raise JointRefusal(NOT_DEFINITE)
        factor[j][j] = math.sqrt(pivot)
        for i in range(j + 1, k):
            value = a[i][j]
            for m in range(j):
                value -= factor[i][m] * factor[j][m]
            factor[i][j] = value / factor[j][j]
    return factor


def cholesky_solve(factor: list[list[float]], b: list[float]) -> list[float]:
    """x with L L' x = b for the lower Cholesky factor L, in plain Python floats."""
    k = len(b)
    y = [0.0] * k
    for i in range(k):
        value = b[i]
        for m in range(i):
            value -= factor[i][m] * y[m]
        y[i] = value / factor[i][i]
    x = [0.0] * k
    for i in reversed(range(k)):
        value = y[i]
        for m in range(i + 1, k):
            value -= factor[m][i] * x[m]
        x[i] = value / factor[i][i]
    return x
