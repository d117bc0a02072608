"""Space insight numbers on planted inputs with known answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tastespace.evaluate.insight import (
    exposure_report,
    gini,
    head_items,
    hubness,
    norm_popularity,
    popularity_buckets,
    recall_by_item_popularity,
    recall_by_user_activity,
    recall_within_buckets,
)


def test_gini_bounds():
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.array([0.0] * 9 + [1.0])) == pytest.approx(0.9)
    assert gini(np.zeros(4)) == 0.0


def test_a_planted_hub_is_found():
    ids = np.array([[5, 1], [5, 2], [5, 0], [5, 1], [5, -1], [0, 1]])  # item 5 is everyone's
    hubs = hubness(ids)
    assert hubs.hubs[0] == 5 and hubs.occurrence[5] == 5
    assert hubs.antihubs == pytest.approx(2 / 6)  # items 3 and 4 are nobody's neighbour
    assert hubs.skew > 0


def test_buckets_and_head():
    counts = np.arange(100, dtype=float)  # item 99 most popular
    assert head_items(counts).nonzero()[0].tolist() == [99]
    buckets = popularity_buckets(counts)
    assert (buckets[80:] == 0).all() and (buckets[50:80] == 1).all() and (buckets[:50] == 2).all()


def test_exposure_of_lists_that_only_show_the_head():
    counts = np.arange(100, dtype=float)
    ranked = np.full((4, 3), 99)
    report = exposure_report(ranked, counts)
    assert report["head_share"] == 1.0 and report["coverage"] == pytest.approx(0.01)
    assert report["gini"] == pytest.approx(0.99)


def test_norms_that_grow_with_popularity():
    counts = np.array([1.0, 5, 10, 50])
    vectors = np.diag([0.1, 0.5, 1.0, 3.0])
    assert norm_popularity(vectors, counts) == pytest.approx(1.0)


def test_recall_buckets_count_what_was_found():
    counts = np.arange(10, dtype=float)  # head = items 8, 9; torso 5–7; tail 0–4
    targets = sp.csr_matrix(
        np.array([[0, 0, 0, 0, 0, 0, 0, 0, 1, 1], [1, 0, 0, 0, 0, 1, 0, 0, 0, 0]])
    )
    ranked = np.array([[9, 8, 7], [5, 6, 7]])
    found = recall_by_item_popularity(ranked, targets, counts, k=3)
    assert found["head"]["hit@3"] == 1.0 and found["torso"]["hit@3"] == 1.0
    assert found["tail"]["hit@3"] == 0.0
    fold_in = sp.csr_matrix(
        np.array([[1, 1, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]])
    )
    by_activity = recall_by_user_activity(ranked, fold_in, targets, k=3)
    assert sum(v["users"] for v in by_activity.values()) == 2


def test_within_a_bucket_the_tail_is_ranked_on_its_own_and_seen_items_stay_out():
    counts = np.arange(10, dtype=float)  # head = items 8, 9; torso 5–7; tail 0–4 (0 is cold)
    targets = sp.csr_matrix(np.array([[0] * 9 + [1], [0, 1] + [0] * 8]))
    fold_in = sp.csr_matrix(np.array([[0] * 10, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]]))
    # Popular items score highest for everyone, so a catalog-wide top 1 never shows the tail;
    # among the warm tail, user 1's best unseen item is their target (item 3 is in their
    # history; item 0, never seen in training, is cold and left out).
    scores = np.array([np.arange(10.0), [9.0, 4, 2, 5, 3, 6, 7, 8, 9, 10]])
    ranked = np.argsort(-np.where(fold_in.toarray() > 0, -np.inf, scores), axis=1)
    assert recall_by_item_popularity(ranked, targets, counts, k=1)["tail"]["hit@1"] == 0.0
    within = recall_within_buckets(scores, fold_in, targets, counts, k=1)
    assert within["tail"] == {"items": 4, "users": 1, "recall@1": 1.0}
    assert within["head"] == {"items": 2, "users": 1, "recall@1": 1.0}
    assert "torso" not in within  # nobody's target is there
    assert scores[1, 3] == 5.0  # the caller's scores are not masked in place
