"""Popularity and EASE: the contract, plus EASE's closed form checked against a direct solve."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tastespace.data.build import build_dataset
from tastespace.models.baselines import EASE, Popularity
from tests.models.contract import ModelContract


class TestPopularity(ModelContract):
    has_vectors = False
    min_lift = 0.99

    def make_model(self, seed: int = 0):
        return Popularity(seed=seed)


class TestEASE(ModelContract):
    def make_model(self, seed: int = 0):
        return EASE(l2=20.0, seed=seed)


def test_ease_matches_direct_constrained_ridge_solve():
    rng = np.random.default_rng(0)
    x = (rng.random((40, 8)) < 0.35).astype(np.float64)
    users, items = np.nonzero(x)
    ds = build_dataset(users, items)
    model = EASE(l2=3.0).fit(ds)
    lam = 3.0
    # Direct solve, column by column: minimise ||x_j - X_{-j} b||² + λ||b||² with b_j = 0.
    expected = np.zeros((8, 8))
    for j in range(8):
        others = [i for i in range(8) if i != j]
        a = x[:, others]
        expected[others, j] = np.linalg.solve(a.T @ a + lam * np.eye(7), a.T @ x[:, j])
    np.testing.assert_allclose(model.weights_, expected, atol=1e-4)
    assert np.allclose(np.diag(model.weights_), 0)
    np.testing.assert_allclose(model.score(sp.csr_matrix(x[:3])), x[:3] @ expected, atol=1e-4)


def test_popularity_ranks_by_count():
    ds = build_dataset(np.array([0, 1, 2, 0, 1, 0]), np.array([5, 5, 5, 7, 7, 9]))
    ids, _ = Popularity().fit(ds).recommend([[]], k=3)
    assert ds.item_ids.raws(ids[0]) == [5, 7, 9]
