"""Cold-start protocol: cold items never reach training, and targets are only cold items."""

from __future__ import annotations

import numpy as np

from tastespace.evaluate.coldstart import (
    cold_start_metrics,
    cold_start_split,
    genre_popularity_scores,
)


def test_cold_items_are_absent_from_training_and_are_the_only_targets(planted):
    split = cold_start_split(planted, fraction=0.1, n_heldout=60, seed=1)
    assert not np.isin(split.train.interactions.indices, split.cold_items).any()
    assert not np.isin(split.fold_in.indices, split.cold_items).any()
    assert split.targets.shape == (split.fold_in.shape[0], len(split.cold_items))
    assert split.targets.nnz > 0


def test_user_written_tags_are_emptied_on_cold_items_only(planted):
    """Tags are written after watching: a brand-new item has none, so the split removes them."""
    from dataclasses import replace

    from tastespace.data.bags import Bags

    n = planted.n_items
    tags = Bags.from_lists([["scary", "classic"] if i % 2 else ["funny"] for i in range(n)])
    items = replace(planted.items, bags={**planted.items.bags, "tags": tags})
    split = cold_start_split(replace(planted, items=items), fraction=0.2, n_heldout=60, seed=0)
    lengths = split.train.items.bags["tags"].lengths()
    warm = np.setdiff1d(np.arange(n), split.cold_items)
    assert (lengths[split.cold_items] == 0).all()
    np.testing.assert_array_equal(lengths[warm], tags.lengths()[warm])
    assert sorted(split.train.items.bags["tags"].row(int(warm[0]))) == sorted(
        tags.row(int(warm[0]))
    )
    assert split.train.items.bags["genres"].lengths()[split.cold_items].min() > 0


def test_genre_baseline_beats_random_on_planted_genres(planted):
    split = cold_start_split(planted, fraction=0.2, n_heldout=60, seed=0)
    baseline = genre_popularity_scores(split.train, split.fold_in, split.cold_items)
    rng = np.random.default_rng(0)
    random = rng.random(baseline.shape)
    ours = cold_start_metrics(baseline, split.targets, k=5)["recall@5"]
    chance = cold_start_metrics(random, split.targets, k=5)["recall@5"]
    assert ours > 1.5 * chance


def test_metrics_known_answer():
    import scipy.sparse as sp

    scores = np.array([[0.9, 0.1, 0.5], [0.1, 0.2, 0.3]])
    targets = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0]], dtype=np.float32))
    result = cold_start_metrics(scores, targets, k=1)
    assert result["recall@1"] == 0.5
