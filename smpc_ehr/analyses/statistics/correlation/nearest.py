"""The nearest valid correlation matrix to a noisy one (Higham 2002): differentially
private correlations computed from noisy sums need not form a positive semidefinite
matrix, and a statistician's next step (a regression, a Mahalanobis distance, a
simulation) needs one. Post-processing of released values: it costs no privacy."""

from __future__ import annotations

import numpy as np

MAX_STEPS = 1000
"""Alternating projections converge linearly; far fewer steps suffice for small d."""
TOLERANCE = 1e-12


def _psd(matrix: np.ndarray) -> np.ndarray:
    """The nearest positive semidefinite matrix (Frobenius): negative eigenvalues to 0."""
    values, vectors = np.linalg.eigh(matrix)
    out = (vectors * np.clip(values, 0.0, None)) @ vectors.T
    return (out + out.T) / 2


def nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """The valid correlation matrix (symmetric, positive semidefinite, unit diagonal)
    nearest to `matrix` in the Frobenius norm: Higham's alternating projections with
    Dykstra's correction (N. J. Higham, Computing the nearest correlation matrix, IMA
    J. Numer. Anal. 22, 2002), then a last projection onto the semidefinite matrices,
    rescaled to a unit diagonal, so that the result is valid whatever the convergence.
    A valid matrix is returned unchanged (symmetrised)."""
    y = (np.asarray(matrix, dtype=float) + np.asarray(matrix, dtype=float).T) / 2
    np.fill_diagonal(y, 1.0)
    if np.linalg.eigvalsh(y)[0] >= 0:
        return y
    correction = np.zeros_like(y)
    for _ in range(MAX_STEPS):
        r = y - correction
        x = _psd(r)
        correction = x - r
        previous, y = y, x.copy()
        np.fill_diagonal(y, 1.0)
        if np.linalg.norm(y - previous) <= TOLERANCE * np.linalg.norm(y):
            break
    x = _psd(y)
    scale = np.sqrt(np.clip(np.diag(x), np.finfo(float).tiny, None))
    x = np.clip(x / np.outer(scale, scale), -1.0, 1.0)
    np.fill_diagonal(x, 1.0)
    return x
