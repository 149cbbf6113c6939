"""Secure linear algebra for model fitting: the inverse of a secret symmetric positive
definite matrix by the Newton-Schulz iteration, and solving with an approximate inverse
by iterative refinement.

Why Newton-Schulz: it needs only matrix products (one round each, whatever the size),
no secret division or pivoting, and it corrects its own roundings. X <- X (2I - A X)
converges quadratically once the eigenvalues of A X lie in (0, 2); from the public
start X = c I with c = 1 / (a public bound on the largest eigenvalue), the error
e = max |1 - lambda_i c| is squared by each step, so about log2(ln(1e-10) / ln(e))
steps reach full precision; from the previous inverse of a nearby matrix (the next
Newton step of a fit) a few steps suffice.
"""

from __future__ import annotations

import numpy as np

from smpc_ehr.securemath.ops import Secret, SecureOps


def inverse_spd(
    ops: SecureOps, a: Secret, size: int, steps: int, start: Secret | None, scale: float
) -> Secret:
    """A^-1 for a secret SPD `size` x `size` matrix A, after `steps` Newton-Schulz steps
    from `start` (a secret approximate inverse) or, if None, from `scale` * I, where
    `scale` must not exceed 1 / (largest eigenvalue of A).

    Error bound: with e0 = |I - X0 A| < 1 (from `scale` * I: 1 - scale x the smallest
    eigenvalue), the relative error after n steps is e0^(2^n), floored by the backend's
    product roundings times the condition number of A (each step corrects the last
    one's roundings, so they do not accumulate)."""
    identity = np.eye(size)
    if start is None:
        # The first step from X = c I is public arithmetic on A: 2c I - c^2 A.
        x = ops.add_public(ops.mul_public(a, -(scale**2)), 2 * scale * identity)
        steps -= 1
    else:
        x = start
    for _ in range(steps):  # X <- 2X - X (A X)
        x = ops.sub(ops.add(x, x), ops.matmul(x, ops.matmul(a, x)))
    return x


def solve_refined(ops: SecureOps, a: Secret, x: Secret, b: Secret, steps: int) -> Secret:
    """A^-1 b for a secret matrix A and column b, from an approximate inverse X of a
    nearby matrix: d = X b, then `steps` times d <- d + X (b - A d). Each step costs two
    matrix-vector products.

    Error bound: relative error |I - X A|^(steps + 1), floored by the roundings of
    the matrix-vector products (k each, not k^2, for k x k)."""
    d = ops.matmul(x, b)
    for _ in range(steps):
        d = ops.add(d, ops.matmul(x, ops.sub(b, ops.matmul(a, d))))
    return d


def inverse_and_solve(
    ops: SecureOps, a: Secret, size: int, x: Secret, b: Secret, steps: int
) -> tuple[Secret, Secret]:
    """`steps` Newton-Schulz steps on X (an approximate inverse of the secret k x k A)
    that also give A^-1 b for the secret column b: each step is two products, whatever
    k, with b carried beside the matrix (X [A | b] = [XA | Xb], then
    [X | Xb] <- 2 [X | Xb] - XA [X | Xb]); returns the new X and X b.

    Why: the step and the carried inverse come from the same two rounds, instead of two
    rounds per Newton-Schulz step and then matrix-vector products for the solve.
    Error bound: with e = |I - X A| < 1, both the new X and the solution have relative
    error e^(2^steps), floored by the products' roundings times the condition number.
    `steps` >= 1."""
    if steps < 1:
        raise ValueError("inverse_and_solve needs at least one step")
    solution = b
    for _ in range(steps):
        joined = ops.matmul(x, ops.concatenate([a, b], axis=1))  # [XA | Xb]
        xa, xb = joined[:, :size], joined[:, size:]
        both = ops.matmul(xa, ops.concatenate([x, xb], axis=1))
        x = ops.sub(ops.add(x, x), both[:, :size])
        solution = ops.sub(ops.add(xb, xb), both[:, size:])
    return x, solution
