"""The nearest correlation matrix: Higham's (2002) published example, valid matrices
unchanged, and valid, nearer-than-any-other results for random symmetric ones."""

from __future__ import annotations

import numpy as np

from smpc_ehr.analyses.statistics.correlation.nearest import nearest_correlation


def valid(matrix: np.ndarray) -> bool:
    return bool(
        np.allclose(matrix, matrix.T, rtol=0, atol=0)
        and np.all(np.diag(matrix) == 1.0)
        and np.linalg.eigvalsh(matrix)[0] >= -1e-12
        and np.all(np.abs(matrix) <= 1.0)
    )


def test_higham_2002_example() -> None:
    a = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]])
    x = nearest_correlation(a)
    expected = np.array([[1, 0.7607, 0.1573], [0.7607, 1, 0.7607], [0.1573, 0.7607, 1]])
    assert valid(x)
    assert np.allclose(x, expected, atol=1e-4)


def test_a_valid_matrix_is_unchanged() -> None:
    a = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.5], [-0.2, 0.5, 1.0]])
    assert np.array_equal(nearest_correlation(a), a)


def test_random_symmetric_matrices_become_valid_and_near() -> None:
    rng = np.random.default_rng(14)  # test data, not noise for privacy
    for d in (2, 4, 7):
        for _ in range(20):
            a = rng.uniform(-1.2, 1.2, (d, d))
            a = (a + a.T) / 2
            x = nearest_correlation(a)
            assert valid(x)
            # No farther than another valid matrix (the identity), nor than itself after
            # a small step towards the identity (it is the nearest one, up to convergence).
            distance = np.linalg.norm(x - a)
            assert distance <= np.linalg.norm(np.eye(d) - a) + 1e-9
            assert distance <= np.linalg.norm((0.99 * x + 0.01 * np.eye(d)) - a) + 1e-9
