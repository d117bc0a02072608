"""Popularity and EASE: the contract, plus EASE's closed form checked against a direct solve."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tastespace.data.build import build_dataset
from tastespace.errors import ConfigError
from tastespace.models import baselines, memory
from tastespace.models.baselines import EASE, Popularity
from tastespace.models.histories import ItemIndices
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
    ids, _ = Popularity().fit(ds).recommend(ItemIndices([[]]), k=3)
    assert ds.item_ids.raws(ids[0]) == [5, 7, 9]


def _planted_ease_data(seed: int = 0):
    """Two blocks of co-watched items plus noise: EASE's top-k has a clear answer."""
    rng = np.random.default_rng(seed)
    x = np.zeros((300, 40))
    for user in range(300):
        block = np.arange(20) if user % 2 else np.arange(20, 40)
        x[user, rng.choice(block, 8, replace=False)] = 1
        x[user, rng.integers(0, 40)] = 1
    users, items = np.nonzero(x)
    return build_dataset(users, items), x


def test_float32_in_place_ease_gives_the_float64_top_k():
    ds, x = _planted_ease_data()
    model = EASE(l2=10.0).fit(ds)
    assert model.weights_.dtype == np.float32
    gram = x.T @ x + 10.0 * np.eye(40)
    inverse = np.linalg.inv(gram)
    expected = inverse / -np.diag(inverse)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.weights_, expected, atol=1e-5)
    histories = sp.csr_matrix(x[:50])
    ids, _ = model.recommend(histories, k=10)
    scores = x[:50] @ expected
    scores[x[:50] > 0] = -np.inf
    np.testing.assert_array_equal(ids, np.argsort(-scores, axis=1, kind="stable")[:, :10])


def test_gram_built_in_blocks_matches_one_product(monkeypatch):
    ds, _ = _planted_ease_data(seed=1)
    whole = EASE(l2=5.0).fit(ds).weights_
    monkeypatch.setattr(baselines, "GRAM_BLOCK_CELLS", 7 * 40)  # 7 rows per block, ragged end
    np.testing.assert_array_equal(EASE(l2=5.0).fit(ds).weights_, whole)


@pytest.mark.fault("models", "EASE catalog larger than available memory", "one-line ConfigError")
def test_memory_guard_fails_before_allocating(monkeypatch):
    ds, _ = _planted_ease_data()
    needed = baselines.ease_peak_bytes(40, ds.n_interactions)
    monkeypatch.setattr(memory, "available_bytes", lambda: needed - 1)
    monkeypatch.setattr(baselines, "ease_weights", _must_not_run)
    with pytest.raises(ConfigError) as err:
        EASE().fit(ds)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("EASE on 40 items needs about 0.0 GiB at its peak but 0.0 GiB")
    assert "set max_items=N" in message and "another model" in message
    assert err.value.options == ("param",)  # the CLI adds "(option --param/-p)"
    monkeypatch.setattr(memory, "available_bytes", lambda: needed)
    with pytest.raises(AssertionError, match="allocated"):
        EASE().fit(ds)


def _must_not_run(*_args):
    raise AssertionError("allocated")


def test_peak_estimate_of_30k_items_fits_in_24_gib():
    """ML-20M-sized: 30k items, 20M interactions (the issue's target)."""
    assert baselines.ease_peak_bytes(30_000, 20_000_000) < 24 * 2**30 / 4


def test_max_items_keeps_the_most_interacted_items(tmp_path):
    ds, x = _planted_ease_data()
    counts = x.sum(axis=0)
    model = EASE(l2=10.0, max_items=25).fit(ds)
    kept = np.sort(np.argsort(-counts, kind="stable")[:25])
    np.testing.assert_array_equal(model.kept_, kept)
    sub = x[:, kept]
    inverse = np.linalg.inv(sub.T @ sub + 10.0 * np.eye(25))
    np.testing.assert_allclose(
        model.weights_, inverse / -np.diag(inverse) * (1 - np.eye(25)), atol=1e-5
    )
    ids, _ = model.recommend(sp.csr_matrix(x[:20]), k=5)
    assert set(ids.ravel()) <= set(kept)
    again = EASE.load(model.save(tmp_path / "ease"))
    np.testing.assert_array_equal(again.recommend(sp.csr_matrix(x[:20]), k=5)[0], ids)
    assert again.item_vectors().shape == (40, 25)
    left_out = np.setdiff1d(np.arange(40), kept)[:2]
    pairs = again.pair_weights(np.array([kept[0], left_out[0]]), np.array([kept[1], left_out[1]]))
    np.testing.assert_array_equal(pairs, [[model.weights_[0, 1], 0.0], [0.0, 0.0]])
