"""Contract tests every model must pass; each model's test module subclasses ``ModelContract``.

Subclasses set ``make_model`` (a fast configuration) and may set ``has_vectors = False`` (models
whose similarity is not meaningful, such as popularity) or ``min_lift`` (how far above popularity
the model must rank held-out items on planted data).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import tastespace
from tastespace.errors import DataError, NotFittedError
from tastespace.evaluate import evaluate_model
from tastespace.models.base import Recommender
from tastespace.models.baselines import Popularity
from tastespace.models.histories import ItemIndices


def _small(items: int, seed: int):
    from tastespace.data import load_dataset

    return load_dataset(f"synthetic:users=150,items={items},genres=3,seed={seed}")


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
            self.make_model().recommend(ItemIndices([[0, 1]]), k=5)

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
        """ItemIndices are the CSR history with weight 1.0 on each item, for every model."""
        history = planted_split.test.fold_in[:6]
        ones = history.copy()
        ones.data[:] = 1.0
        lists = [list(history[row].indices) for row in range(6)]
        list_ids, list_scores = fitted.recommend(ItemIndices(lists), k=7)
        csr_ids, csr_scores = fitted.recommend(ones, k=7)
        np.testing.assert_array_equal(list_ids, csr_ids)
        np.testing.assert_array_equal(list_scores, csr_scores)
        single_ids, single_scores = fitted.recommend(ItemIndices(lists[2]), k=7)
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

    def test_same_history_same_scores_alone_or_batched(self, fitted, planted_split):
        """``score`` too: a plain matrix product gave a row other bits alone than batched."""
        history = planted_split.test.fold_in[:40]
        batch = fitted.score(history)
        for row in (0, 7, 16, 39):
            np.testing.assert_array_equal(
                np.asarray(fitted.score(history[row]))[0], batch[row], err_msg=f"history {row}"
            )

    def test_out_of_range_item_is_a_clear_error(self, fitted):
        with pytest.raises(DataError, match="outside"):
            fitted.recommend(ItemIndices([[0, fitted.n_items + 5]]), k=3)
        with pytest.raises(DataError, match="out of range"):
            fitted.similar_items(fitted.n_items, k=3)

    def test_empty_history_gives_a_ranking(self, fitted):
        ids, scores = fitted.recommend(ItemIndices([[]]), k=5)
        assert ids.shape == (1, 5) and np.all(ids >= 0) and np.all(np.isfinite(scores))

    @pytest.mark.fault("models", "raw ids passed as indices", "TypeError naming the front door")
    def test_plain_lists_are_refused(self, fitted):
        # [[1, 50, 181]] reads as MovieLens ids and as indices alike (off by one): refused.
        for call in (fitted.recommend, fitted.score):
            with pytest.raises(TypeError, match=r"ItemIndices.*tastespace\.open"):
                call([[1, 50, 181]])
        if type(fitted).user_vectors is not Recommender.user_vectors:
            with pytest.raises(TypeError, match="ItemIndices"):
                fitted.user_vectors([[1, 50, 181]])

    @pytest.mark.fault("models", "non-integer item index", "DataError naming the entry")
    def test_non_integer_indices_are_refused(self, fitted):
        with pytest.raises(DataError, match=r"'Toy Story \(1995\)', not a dense item index"):
            fitted.recommend(ItemIndices([[0, "Toy Story (1995)"]]), k=3)
        with pytest.raises(DataError, match="1.5"):
            fitted.recommend(ItemIndices([1.5, 2.0]), k=3)
        with pytest.raises(DataError, match=r"tastespace\.open\(model\)\.similar"):
            fitted.similar_items("Toy Story (1995)", k=3)

    def test_front_door_speaks_raw_ids(self, fitted, planted_split):
        session = tastespace.open(fitted)
        history = planted_split.test.fold_in[0].indices
        raw = fitted.item_ids_.raws(history)
        ids, scores = fitted.recommend(ItemIndices(history), k=5)
        frame = session.recommend(history=raw, k=5)
        assert frame["item"].tolist() == fitted.item_ids_.raws(ids)
        np.testing.assert_allclose(frame["score"], scores, rtol=1e-5, atol=1e-6)
        assert not frame["fallback"].any()

    def test_evaluation_never_sees_targets(self, fitted, planted_split):
        from tastespace.data.splits import HeldOutUsers

        leaky = HeldOutUsers(
            planted_split.test.users,
            planted_split.test.fold_in + planted_split.test.targets,
            planted_split.test.targets,
        )
        with pytest.raises(DataError, match="leak"):
            evaluate_model(fitted, leaky)

    # -- derived state, configs, padding, persistence edges ------------------------------------
    def test_refit_on_another_catalog_forgets_the_first(self):
        first, second = _small(60, 1), _small(40, 2)
        model = self.make_model().fit(first)
        model.similar_items(0, k=5)  # fills every lazily derived cache
        model.recommend(ItemIndices([[0, 1]]), k=5)
        model.fit(second)
        fresh = self.make_model().fit(second)
        ids, scores = model.similar_items(0, k=5)
        assert ids.max() < 40 and model.item_vectors().shape[0] == 40
        np.testing.assert_array_equal(ids, fresh.similar_items(0, k=5)[0])
        np.testing.assert_allclose(
            model.score(ItemIndices([[0, 1]])), fresh.score(ItemIndices([[0, 1]])), atol=1e-5
        )

    def test_item_vectors_are_read_only(self, fitted):
        vectors = fitted.item_vectors()
        assert not vectors.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            vectors[0, 0] = 1.0

    def test_config_round_trips_through_json(self, fitted):
        payload = json.loads(json.dumps(fitted.config.to_json()))
        assert type(fitted.config).from_json(payload) == fitted.config

    def test_k_above_catalog_pads_with_minus_one_and_minus_inf(self, fitted):
        n = fitted.n_items
        history = [0, 1, 2]
        ids, scores = fitted.recommend(ItemIndices(history), k=n + 5)
        assert ids.shape == scores.shape == (n + 5,)
        real = ids >= 0
        assert real.sum() == n - len(history)  # every unseen item once, seen ones excluded
        assert np.all(ids[~real] == -1) and np.all(np.isneginf(scores[~real]))
        assert np.all(np.isfinite(scores[real])) and not real[real.sum() :].any()
        similar, similarity = fitted.similar_items(0, k=n + 5)
        assert np.all(similar[n - 1 :] == -1) and np.all(np.isneginf(similarity[n - 1 :]))
        assert 0 not in similar and len(set(similar[: n - 1].tolist())) == n - 1

    def test_similar_items_batch_equals_one_at_a_time(self, fitted):
        items = np.array([0, 7, 3])
        ids, scores = fitted.similar_items(items, k=6)
        for row, item in enumerate(items):
            one_ids, one_scores = fitted.similar_items(int(item), k=6)
            np.testing.assert_array_equal(one_ids, ids[row])
            np.testing.assert_allclose(one_scores, scores[row], rtol=1e-5, atol=1e-6)

    def test_load_save_load_keeps_the_manifest(self, fitted, tmp_path):
        fitted.save(tmp_path / "a")
        Recommender.load(tmp_path / "a").save(tmp_path / "b")
        first, second = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in "ab")
        assert second == first
        again = Recommender.load(tmp_path / "b")
        np.testing.assert_allclose(
            again.score(ItemIndices([[0, 1]])), fitted.score(ItemIndices([[0, 1]])), atol=1e-5
        )

    def test_save_before_fit_raises(self, tmp_path):
        with pytest.raises(NotFittedError):
            self.make_model().save(tmp_path / "never")
        assert not (tmp_path / "never").exists()

    def test_negative_item_index_is_refused(self, fitted):
        with pytest.raises(DataError):
            fitted.recommend(ItemIndices([[0, -1]]), k=3)
        with pytest.raises(DataError, match="out of range"):
            fitted.similar_items(-1, k=3)
        with pytest.raises(DataError, match="out of range"):
            fitted.similar_items([0, -2], k=3)
