"""GloVe and PPMI-SVD: the contract, plus known answers for the co-occurrence pieces."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tastespace.data.build import build_dataset
from tastespace.errors import ConfigError
from tastespace.index.topk import normalize_rows
from tastespace.models._cooccurrence_common import (
    cooccurrence_matrix,
    knn_scores,
    neighbour_matrix,
    ordered_entries,
)
from tastespace.models.cooccurrence import PPMISVD, GloVe, fit_glove, ppmi_matrix
from tastespace.models.histories import ItemIndices
from tests.models.contract import ModelContract


class TestGloVe(ModelContract):
    def make_model(self, seed: int = 0):
        return GloVe(dim=16, epochs=20, batch_size=4096, seed=seed)


class TestPPMISVD(ModelContract):
    def make_model(self, seed: int = 0):
        return PPMISVD(dim=16, seed=seed)


class TestPPMISVDKnn(ModelContract):
    def make_model(self, seed: int = 0):
        return PPMISVD(dim=16, scoring="knn", neighbors=20, seed=seed)


# -- co-occurrence ----------------------------------------------------------------------------

#   user 0 watched items 3, 0, 1 (in that time order), user 1: 2, 0, user 2: 1, 3, 2.
USERS = np.array([0, 0, 0, 1, 1, 2, 2, 2])
ITEMS = np.array([3, 0, 1, 2, 0, 1, 3, 2])
STAMPS = np.array([10, 20, 30, 10, 20, 10, 20, 30])


def _tiny():
    weights = np.array([5, 4, 3, 5, 1, 4, 4, 2], np.float32)  # any weight > 0 is a positive
    return build_dataset(USERS, ITEMS, weights, STAMPS, item_ids=np.arange(4))


def test_cooccurrence_counts_users_sharing_both_items():
    x = cooccurrence_matrix(_tiny().interactions).toarray()
    expected = np.array(
        [
            [0, 1, 1, 1],
            [1, 0, 1, 2],
            [1, 1, 0, 1],
            [1, 2, 1, 0],
        ]
    )
    np.testing.assert_array_equal(x, expected)


def test_windowed_cooccurrence_weights_pairs_by_inverse_time_distance():
    ds = _tiny()
    x = cooccurrence_matrix(ds.interactions, ds.timestamps, window=2).toarray()
    # user 0: (3,0) d1, (0,1) d1, (3,1) d2; user 1: (2,0) d1; user 2: (1,3) d1, (3,2) d1, (1,2) d2
    expected = np.zeros((4, 4))
    for (i, j), value in {
        (0, 1): 1,
        (0, 2): 1,
        (0, 3): 1,
        (1, 2): 0.5,
        (1, 3): 1.5,
        (2, 3): 1,
    }.items():
        expected[i, j] = expected[j, i] = value
    np.testing.assert_allclose(x, expected)
    x1 = cooccurrence_matrix(ds.interactions, ds.timestamps, window=1).toarray()
    assert x1[1, 2] == 0 and x1[1, 3] == 1


def test_ordered_entries_follow_time_not_item_index():
    ds = _tiny()
    users, items = ordered_entries(ds.interactions, ds.timestamps)
    assert users.tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert items.tolist() == ITEMS.tolist()


def test_finite_window_without_timestamps_is_a_clear_error():
    with pytest.raises(ConfigError, match="timestamps"):
        cooccurrence_matrix(_tiny().interactions, None, window=3)


# -- PPMI -------------------------------------------------------------------------------------


def test_ppmi_by_hand_on_three_items():
    x = sp.csr_matrix(np.array([[0, 2, 1], [2, 0, 3], [1, 3, 0]], np.float64))
    # Row / column sums 3, 5, 4; total 12. Plain PMI: log(X_ij · 12 / (X_i· X_·j)).
    plain = ppmi_matrix(x, smoothing=1.0).toarray()
    expected = np.zeros((3, 3))
    expected[0, 1] = expected[1, 0] = np.log(2 * 12 / (3 * 5))  # log 1.6
    expected[1, 2] = expected[2, 1] = np.log(3 * 12 / (5 * 4))  # log 1.8
    # (0, 2): log(1 · 12 / (3 · 4)) = 0, not positive, so dropped
    np.testing.assert_allclose(plain, expected, rtol=1e-6)
    assert ppmi_matrix(x, smoothing=1.0).nnz == 4

    shifted = ppmi_matrix(x, smoothing=1.0, shift=1.7).toarray()
    np.testing.assert_allclose(shifted[1, 2], np.log(1.8 / 1.7), rtol=1e-6)
    assert shifted[0, 1] == 0  # log 1.6 − log 1.7 < 0

    smooth = ppmi_matrix(x, smoothing=0.75).toarray()
    z = 3**0.75 + 5**0.75 + 4**0.75
    np.testing.assert_allclose(smooth[0, 1], np.log(2 * z / (3 * 5**0.75)), rtol=1e-6)
    np.testing.assert_allclose(smooth[1, 0], np.log(2 * z / (5 * 3**0.75)), rtol=1e-6)
    assert np.log(1 * z / (3 * 4**0.75)) < 0 and smooth[0, 2] == 0  # −0.004: clipped


def test_ppmi_svd_vectors_are_u_sigma_to_the_power():
    ds = _tiny()
    model = PPMISVD(dim=2, eigen_power=1.0, normalize=False, n_iter=20).fit(ds)
    ppmi = ppmi_matrix(cooccurrence_matrix(ds.interactions)).toarray()
    v = model.item_vectors()
    # With p = 1 and a symmetric PPMI, V Vᵀ = U Σ² Uᵀ: the best rank-2 fit of PPMI².
    u, s, _ = np.linalg.svd(ppmi)
    np.testing.assert_allclose(v @ v.T, (u[:, :2] * s[:2] ** 2) @ u[:, :2].T, atol=1e-4)


def test_ppmi_svd_rejects_bad_options():
    with pytest.raises(ConfigError, match="shift"):
        PPMISVD(shift=0.5)
    with pytest.raises(ConfigError, match="below the number of items"):
        PPMISVD(dim=8).fit(_tiny())
    with pytest.raises(ConfigError, match="scoring"):
        GloVe(scoring="cosine")
    with pytest.raises(ConfigError, match=r"GloVeConfig\.alpha must be ≥ 0, got -1"):
        GloVe(alpha=-1)


# -- GloVe ------------------------------------------------------------------------------------


def test_glove_loss_falls_until_log_counts_are_reconstructed():
    rng = np.random.default_rng(3)
    n = 12
    planted = rng.normal(size=(n, 2))
    log_x = planted @ planted.T + 2.0
    np.fill_diagonal(log_x, -np.inf)
    x = sp.csr_matrix(np.exp(log_x))
    _, _, losses = fit_glove(x, 4, x_max=1e-3, epochs=400, lr=0.05, batch_size=x.nnz)
    assert losses[0] > 1.0
    assert losses[-1] < 1e-3 * losses[0], losses[-1]
    assert np.all(np.diff(losses[-100:]) <= 1e-6)


def test_glove_items_without_cooccurrence_get_zero_vectors():
    ds = build_dataset(USERS, ITEMS, item_ids=np.arange(6))  # items 4 and 5 never seen
    v = GloVe(dim=4, epochs=2).fit(ds).item_vectors()
    assert np.all(v[4:] == 0) and np.all(np.linalg.norm(v[:4], axis=1) > 0)


# -- scoring ----------------------------------------------------------------------------------


def test_knn_scores_sum_cosines_to_history_items():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(7, 3)).astype(np.float32)
    history = sp.csr_matrix(np.array([[1, 0, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]], np.float32))
    unit = normalize_rows(vectors)
    cos = unit @ unit.T
    np.testing.assert_allclose(
        knn_scores(history, vectors, None)[0], cos[0] + cos[3], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(knn_scores(history, vectors, None)[1], 0)

    neighbours = neighbour_matrix(vectors, 2).toarray()
    for i in range(7):
        others = np.delete(np.arange(7), i)
        top = others[np.argsort(-cos[i, others])[:2]]
        expected = np.zeros(7)
        expected[top] = np.clip(cos[i, top], 0, None)
        np.testing.assert_allclose(neighbours[i], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        knn_scores(history, vectors, sp.csr_matrix(neighbours))[0],
        neighbours[0] + neighbours[3],
        rtol=1e-6,
    )


def test_pooled_user_vector_is_the_mean_of_history_vectors(planted_split):
    model = PPMISVD(dim=8).fit(planted_split.train)
    v = model.item_vectors()
    np.testing.assert_allclose(np.linalg.norm(v[np.abs(v).sum(1) > 0], axis=1), 1, rtol=1e-5)
    users = model.user_vectors(ItemIndices([[1, 5, 9], []]))
    np.testing.assert_allclose(users[0], v[[1, 5, 9]].mean(axis=0), rtol=1e-5)
    np.testing.assert_array_equal(users[1], 0)
    assert model.dot_product and not PPMISVD(scoring="knn").dot_product


def test_center_removes_the_shared_direction_and_keeps_unseen_items_zero():
    ds = build_dataset(USERS, ITEMS, item_ids=np.arange(6))  # items 4 and 5 never seen
    v = GloVe(dim=3, epochs=3, center=True, normalize=False).fit(ds).item_vectors()
    np.testing.assert_allclose(v[:4].mean(axis=0), 0, atol=1e-6)
    assert np.all(v[4:] == 0)


def test_rescored_switches_scoring_without_refitting(planted_split):
    pooled = PPMISVD(dim=8).fit(planted_split.train)
    knn = pooled.rescored(scoring="knn", neighbors=5)
    assert np.shares_memory(knn.item_vectors(), pooled.item_vectors())
    assert not knn.dot_product and pooled.dot_product and pooled.config.scoring == "pooled"
    history = planted_split.test.fold_in[:3]
    expected = history.astype(bool).astype(np.float32) @ neighbour_matrix(pooled.item_vectors(), 5)
    np.testing.assert_allclose(knn.score(history), expected.toarray(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ConfigError, match="refit"):
        pooled.rescored(dim=4)
