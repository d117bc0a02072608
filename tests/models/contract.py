"""Contract tests every model must pass; each model's test module subclasses ``ModelContract``.

Subclasses set ``make_model`` (a fast configuration) and may set ``has_vectors = False`` (models
whose similarity is not meaningful, such as popularity) or ``min_lift`` (how far above popularity
the model must rank held-out items on planted data).
"""

from __future__ import annotations

import numpy as np
import pytest

from tastespace.errors import DataError, NotFittedError
from tastespace.evaluate import evaluate_model
from tastespace.models.base import Recommender
from tastespace.models.baselines import Popularity


class ModelContract:
    has_vectors = True
    min_lift = 1.3  # recall@20 must beat popularity's by this factor on planted data

    def make_model(self, seed: int = 0) -> Recommender:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, planted_split):
        return cls().make_model().fit(planted_split.train)

    def test_not_fitted_raises(self):
        with pytest.raises(NotFittedError):
            self.make_model().recommend([[0, 1]], k=5)

    def test_neighbours_share_planted_genre(self, fitted, planted):
        if not self.has_vectors:
            pytest.skip("model has no similarity structure")
        genre = planted.items.frame["planted_genre"].to_numpy()
        ids, _ = fitted.similar_items(np.arange(planted.n_items), k=5)
        purity = float((genre[ids] == genre[:, None]).mean())
        chance = 1.0 / len(np.unique(genre))
        assert purity > 3 * chance, f"neighbour genre purity {purity:.2f} vs chance {chance:.2f}"

    def test_fold_in_beats_popularity(self, fitted, planted_split):
        ours = evaluate_model(fitted, planted_split.test)["recall@20"]
        popular = evaluate_model(Popularity().fit(planted_split.train), planted_split.test)[
            "recall@20"
        ]
        assert ours > self.min_lift * popular, f"recall@20 {ours:.3f} vs popularity {popular:.3f}"

    def test_save_load_gives_identical_scores(self, fitted, planted_split, tmp_path):
        fitted.save(tmp_path / "bundle")
        loaded = Recommender.load(tmp_path / "bundle")
        assert type(loaded) is type(fitted)
        history = planted_split.test.fold_in[:5]
        np.testing.assert_allclose(
            loaded.score(history), fitted.score(history), rtol=1e-5, atol=1e-5
        )
        a_ids, _ = fitted.recommend(history, k=10)
        b_ids, _ = loaded.recommend(history, k=10)
        np.testing.assert_array_equal(a_ids, b_ids)
        assert loaded.item_ids_ == fitted.item_ids_

    def test_same_seed_same_result(self, fitted, planted_split):
        again = self.make_model().fit(planted_split.train)
        history = planted_split.test.fold_in[:5]
        np.testing.assert_allclose(
            again.score(history), fitted.score(history), rtol=1e-5, atol=1e-6
        )

    def test_recommend_shapes_and_seen_items_excluded(self, fitted, planted_split):
        history = planted_split.test.fold_in[:4]
        ids, scores = fitted.recommend(history, k=7)
        assert ids.shape == scores.shape == (4, 7)
        assert np.all(np.diff(scores, axis=1) <= 1e-6)
        for row in range(4):
            seen = history[row].indices
            assert not np.intersect1d(ids[row], seen).size
        one_ids, one_scores = fitted.recommend(history[3], k=7)
        assert one_ids.shape == (4 - 3, 7)
        np.testing.assert_array_equal(one_ids[0], ids[3])

    def test_a_list_of_ids_weighs_each_item_one(self, fitted, planted_split):
        """A plain list of ids is the CSR history with weight 1.0 on each item, for every model."""
        history = planted_split.test.fold_in[:6]
        ones = history.copy()
        ones.data[:] = 1.0
        lists = [list(history[row].indices) for row in range(6)]
        list_ids, list_scores = fitted.recommend(lists, k=7)
        csr_ids, csr_scores = fitted.recommend(ones, k=7)
        np.testing.assert_array_equal(list_ids, csr_ids)
        np.testing.assert_array_equal(list_scores, csr_scores)
        single_ids, single_scores = fitted.recommend(lists[2], k=7)
        np.testing.assert_array_equal(single_ids, csr_ids[2])
        np.testing.assert_array_equal(single_scores, csr_scores[2])

    def test_same_history_same_ranking_alone_or_batched(self, fitted, planted_split):
        """Bit for bit: who shares a batch never changes a history's ids or scores."""
        history = planted_split.test.fold_in[:40]
        batch_ids, batch_scores = fitted.recommend(history, k=10)
        for row in (0, 7, 16, 17, 39):
            ids, scores = fitted.recommend(history[row], k=10)
            np.testing.assert_array_equal(ids[0], batch_ids[row], err_msg=f"history {row}")
            np.testing.assert_array_equal(scores[0], batch_scores[row], err_msg=f"history {row}")
        shuffled = np.random.default_rng(0).permutation(40)
        ids, scores = fitted.recommend(history[shuffled], k=10)
        np.testing.assert_array_equal(ids, batch_ids[shuffled])
        np.testing.assert_array_equal(scores, batch_scores[shuffled])

    def test_out_of_range_item_is_a_clear_error(self, fitted):
        with pytest.raises(DataError, match="outside"):
            fitted.recommend([[0, fitted.n_items + 5]], k=3)
        with pytest.raises(DataError, match="out of range"):
            fitted.similar_items(fitted.n_items, k=3)

    def test_empty_history_gives_a_ranking(self, fitted):
        ids, scores = fitted.recommend([[]], k=5)
        assert ids.shape == (1, 5) and np.all(ids >= 0) and np.all(np.isfinite(scores))

    def test_evaluation_never_sees_targets(self, fitted, planted_split):
        from tastespace.data.splits import HeldOutUsers

        leaky = HeldOutUsers(
            planted_split.test.users,
            planted_split.test.fold_in + planted_split.test.targets,
            planted_split.test.targets,
        )
        with pytest.raises(DataError, match="leak"):
            evaluate_model(fitted, leaky)
