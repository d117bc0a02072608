"""Temporal leave-last-out: the targets are each user's latest items and never reach the model."""

from __future__ import annotations

import numpy as np
import pytest

from tastespace.data.build import build_dataset
from tastespace.errors import DataError
from tastespace.evaluate.temporal import evaluate_temporal, temporal_split
from tastespace.models.baselines import Popularity


def sequence_dataset():
    """6 users; user u watches items u, u+1, ..., u+5 (mod 8) at times 0..5, rating 5 each."""
    users, items, times = [], [], []
    for u in range(6):
        for t in range(6):
            users.append(u)
            items.append((u + t) % 8)
            times.append(100 * u + t)
    ratings = np.full(len(users), 5.0)
    ratings[1] = 2.0  # user 0's second item is disliked
    return build_dataset(
        np.array(users), np.array(items), ratings, np.array(times), item_ids=np.arange(8)
    )


def test_split_holds_out_the_last_items_by_time():
    split = temporal_split(sequence_dataset(), n=2)
    assert split.test.users.tolist() == list(range(6))
    for k, u in enumerate(split.test.users):
        assert sorted(split.test.targets[k].indices) == sorted([(u + 4) % 8, (u + 5) % 8])
        assert split.test.fold_in[k].nnz == 4
        # the train rows are exactly the fold-in histories (nothing after them)
        assert sorted(split.train.interactions[u].indices) == sorted(split.test.fold_in[k].indices)


def test_min_rating_binarises_first():
    split = temporal_split(sequence_dataset(), n=1, min_rating=4)
    first = split.test.fold_in[0].indices
    assert 1 not in first and len(first) == 4  # item 1 (rating 2) is gone, item 5 is the target


class Spy(Popularity):
    seen_train = None

    def _fit(self, dataset, validation, run):
        Spy.seen_train = dataset.interactions.copy()
        super()._fit(dataset, validation, run)


def test_evaluate_temporal_fits_without_targets_and_reports_cost():
    ds = sequence_dataset()
    result = evaluate_temporal(Spy, ds, n=1, cutoffs=(1, 2))
    train = Spy.seen_train
    for u in range(6):
        assert (u + 5) % 8 not in set(train[u].indices)  # the last item never reached fit
    assert result["users"] == 6
    assert result["fit_seconds"] >= 0 and result["peak_rss_mib"] >= 0
    assert 0.0 <= result["recall@2"] <= 1.0


def test_temporal_needs_timestamps():
    ds = build_dataset(np.array([0, 0, 1]), np.array([0, 1, 1]))
    with pytest.raises(DataError, match="timestamps"):
        evaluate_temporal(Popularity, ds)
