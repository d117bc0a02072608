"""item2vec: the contract, plus determinism, corpus order and items without data."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tastespace.data import load_dataset
from tastespace.data.build import build_dataset
from tastespace.errors import ConfigError, DataWarning
from tastespace.models import item2vec
from tastespace.models.histories import ItemIndices
from tastespace.models.item2vec import (
    Item2Vec,
    _Corpus,
    _histories,
    context_pairs,
    pair_budget,
    plan_training,
)
from tests.models.contract import ModelContract

FAST = dict(dim=16, epochs=5, workers=1)  # one gensim thread: the reproducible route


class TestItem2Vec(ModelContract):
    def make_model(self, seed: int = 0):
        return Item2Vec(seed=seed, **FAST)


class TestItem2VecKnnTimeOrdered(ModelContract):
    def make_model(self, seed: int = 0):
        return Item2Vec(seed=seed, window=5, time_ordered=True, scoring="knn", neighbors=20, **FAST)


_FIT_ELSEWHERE = """
import sys, numpy as np
from tastespace.data import load_dataset
from tastespace.models.item2vec import Item2Vec
m = Item2Vec(dim=8, epochs=2, seed=5, workers=1).fit(load_dataset("synthetic:tiny"))
np.save(sys.argv[1], m.item_vectors())
"""


def test_same_seed_gives_identical_vectors_in_another_process(tmp_path):
    """gensim's result must not depend on Python's per-process string hashing."""
    tiny = load_dataset("synthetic:tiny")
    here = Item2Vec(dim=8, epochs=2, seed=5, workers=1).fit(tiny).item_vectors()
    out = tmp_path / "vectors.npy"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", _FIT_ELSEWHERE, str(out)], check=True, env=env)
    np.testing.assert_array_equal(np.load(out), here)
    other = Item2Vec(dim=8, epochs=2, seed=6, workers=1).fit(tiny).item_vectors()
    assert not np.allclose(other, here)


#   user 0 watched items 3, 0, 1 (in that time order), user 1: 2, 0, user 2: 1, 3, 2.
USERS = np.array([0, 0, 0, 1, 1, 2, 2, 2])
ITEMS = np.array([3, 0, 1, 2, 0, 1, 3, 2])
STAMPS = np.array([10, 20, 30, 10, 20, 10, 20, 30])


def test_sentences_follow_time_order_or_are_reshuffled_per_pass(monkeypatch):
    ds = build_dataset(USERS, ITEMS, timestamps=STAMPS, item_ids=np.arange(4))
    assert _histories(ds, use_time=True) == [[3, 0, 1], [2, 0], [1, 3, 2]]
    assert _histories(ds, use_time=False) == [[0, 1, 3], [0, 2], [1, 2, 3]]

    long = [list(range(40))]
    whole = [np.array([40])]
    corpus = _Corpus(long, whole, shuffle=True, seed=0)
    first, second = list(corpus)[0], list(corpus)[0]
    assert sorted(first) == sorted(second) == long[0] and first != second
    assert list(_Corpus(long, whole, shuffle=True, seed=0))[0] == first
    assert list(_Corpus(long, whole, shuffle=False, seed=0))[0] == long[0]

    monkeypatch.setattr(item2vec, "MAX_SENTENCE", 2)
    assert _histories(ds, use_time=True) == [[3, 0], [1], [2, 0], [1, 3], [2]]


def test_items_without_training_data_get_zero_vectors():
    ds = build_dataset(USERS, ITEMS, item_ids=np.arange(6))  # items 4 and 5 never seen
    model = Item2Vec(dim=4, epochs=2).fit(ds)
    v = model.item_vectors()
    assert np.all(v[4:] == 0) and np.all(np.linalg.norm(v[:4], axis=1) > 0)
    ids, scores = model.recommend(ItemIndices([0, 1]), k=4)
    assert np.all(np.isfinite(scores)) and set(ids) <= {2, 3, 4, 5}


def test_time_order_without_timestamps_warns():
    ds = build_dataset(USERS, ITEMS, item_ids=np.arange(4))
    with pytest.warns(DataWarning, match="no timestamps"):
        Item2Vec(dim=4, epochs=1, window=2, time_ordered=True).fit(ds)


def test_bad_options_are_clear_errors():
    with pytest.raises(ConfigError, match="window"):
        Item2Vec(window=-1)
    with pytest.raises(ConfigError, match="negative"):
        Item2Vec(negative=0)
    with pytest.raises(ConfigError, match=r"Item2VecConfig\.min_count must be > 0, got 0"):
        Item2Vec(min_count=0)
    assert Item2Vec(window="none").config.window is None  # CLI spelling of "whole history"
    with pytest.raises(ConfigError, match=r"max_pairs='many': expected int or one of 'auto'"):
        Item2Vec(max_pairs="many")
    with pytest.raises(ConfigError, match=r"max_pairs must be > 0, got 0"):
        Item2Vec(max_pairs=0)
    assert [Item2Vec(max_pairs=v).config.max_pairs for v in ("auto", "none", "1000")] == [
        "auto",
        None,
        1000,
    ]


def test_the_budget_trims_epochs_then_cuts_histories_into_pieces():
    lengths = np.array([3000, 400, 50, 5, 2, 1])
    n, every = lengths.sum(), int((lengths * (lengths - 1)).sum())
    assert context_pairs(lengths, 3000) == every  # a window spanning every history: all pairs
    roomy = plan_training(lengths, 0, epochs=50, max_pairs=None)
    assert (roomy.epochs, roomy.window, roomy.pairs_per_epoch) == (50, 3000, every)
    fewer = plan_training(lengths, 0, epochs=50, max_pairs=7 * every + 5)
    assert fewer.epochs == 7 and all(len(p) == 1 for p in fewer.pieces)
    tight = plan_training(lengths, 0, epochs=50, max_pairs=20 * n)
    assert tight.epochs == 1
    assert [p.sum() for p in tight.pieces] == lengths.tolist()  # every interaction is kept
    assert tight.pairs_per_epoch == sum(int((p * (p - 1)).sum()) for p in tight.pieces)
    assert tight.pairs_per_epoch <= 20 * n + n  # ρ·Σn(n − 1) + at most one pair per item
    assert tight.window == max(p.max() for p in tight.pieces)
    # Users keep the whole window's weight n²: the long history gets the long pieces.
    assert tight.pieces[0].max() > 5 * tight.pieces[2].max()


def test_a_window_pairs_each_item_with_at_most_two_window_neighbours():
    assert context_pairs(np.array([1000]), 5) == 2 * 5 * 1000 - 5 * 6
    assert context_pairs(np.array([3]), 5) == 6  # window longer than the history: every pair
    assert context_pairs(np.array([4, 1]), 1) == 6
    plan = plan_training(np.array([1000, 10]), 5, epochs=50, max_pairs=10 * 9_970)
    assert (plan.window, plan.pairs_per_epoch, plan.epochs) == (5, 9_970 + 70, 9)


def test_fit_trains_within_the_pair_budget():
    rng = np.random.default_rng(0)
    heavy = rng.choice(300, 250, replace=False)  # one user with 250 of 300 items
    users = np.concatenate([np.zeros(250, int), np.repeat(np.arange(1, 101), 6)])
    items = np.concatenate([heavy, rng.integers(0, 300, 600)])
    ds = build_dataset(users, items, item_ids=np.arange(300))
    n = ds.n_interactions
    lengths = np.diff(ds.interactions.indptr)
    every = int((lengths * (lengths - 1)).sum())
    whole = Item2Vec(dim=4, epochs=3, max_pairs=None).fit(ds)
    assert (whole.epochs_, whole.pairs_per_epoch_) == (3, every)
    cut = Item2Vec(dim=4, epochs=3, max_pairs=10 * n).fit(ds)
    assert cut.epochs_ == 1 and 0 < cut.pairs_per_epoch_ <= 11 * n < every / 5
    assert np.all(np.linalg.norm(cut.item_vectors()[heavy], axis=1) > 0)


def test_the_default_budget_falls_as_one_over_n_then_grows_linearly():
    small, pairs = item2vec.SMALL_DATA, item2vec.SMALL_DATA_PAIRS
    assert pair_budget(small) == pairs
    assert pair_budget(small // 2) == 2 * pairs  # small data: fewer interactions, more passes
    crossover = int(np.sqrt(pairs * small / 50))
    assert pair_budget(4 * crossover) == 50 * 4 * crossover  # large data: 50 per interaction
    assert pair_budget(4 * crossover, pairs_per_interaction=10) == 10 * 4 * crossover
    budgets = [pair_budget(n) for n in (crossover // 2, crossover, 2 * crossover)]
    assert budgets[1] < min(budgets[0], budgets[2])


def test_the_automatic_budget_cuts_large_data_to_pairs_per_interaction(monkeypatch):
    rng = np.random.default_rng(1)
    users = np.repeat(np.arange(40), 30)
    items = np.concatenate([rng.choice(100, 30, replace=False) for _ in range(40)])
    ds = build_dataset(users, items, item_ids=np.arange(100))
    n, every = 1200, 40 * 30 * 29
    roomy = Item2Vec(dim=4, epochs=3, workers=1).fit(ds)  # 1,200 interactions: small data
    assert (roomy.epochs_, roomy.pairs_per_epoch_) == (3, every)
    monkeypatch.setattr(item2vec, "SMALL_DATA_PAIRS", 100)  # as if 1,200 were large data
    cut = Item2Vec(dim=4, epochs=3, workers=1, pairs_per_interaction=4).fit(ds)
    assert cut.epochs_ == 1 and 4 * n <= cut.pairs_per_epoch_ <= 5 * n
    # piece_lr is the cut epoch's learning rate, and only its: whole epochs keep lr.
    faster = Item2Vec(dim=4, epochs=3, workers=1, pairs_per_interaction=4, piece_lr=0.3).fit(ds)
    assert not np.allclose(faster.item_vectors(), cut.item_vectors())
    monkeypatch.setattr(item2vec, "SMALL_DATA_PAIRS", 10**9)
    whole = [Item2Vec(dim=4, epochs=2, workers=1, piece_lr=r).fit(ds) for r in (0.1, 0.3)]
    np.testing.assert_array_equal(whole[0].item_vectors(), whole[1].item_vectors())
