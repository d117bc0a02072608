"""The protocol refuses leaky input and never hands targets to the model (a spy checks)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tastespace.data.splits import HeldOutUsers
from tastespace.errors import DataError
from tastespace.evaluate import evaluate_model


class SpyModel:
    """Records every history it is asked about; ranks a fixed list (minus seen items)."""

    def __init__(self, ranking: list[int]) -> None:
        self.ranking = ranking
        self.calls: list[tuple[sp.csr_matrix, bool]] = []

    def recommend(self, histories, k=10, exclude_seen=True):
        self.calls.append((histories.copy(), exclude_seen))
        ids = np.full((histories.shape[0], k), -1, np.int64)
        for r in range(histories.shape[0]):
            seen = set(histories[r].indices)
            row = [i for i in self.ranking if not (exclude_seen and i in seen)][:k]
            ids[r, : len(row)] = row
        return ids, np.zeros(ids.shape, np.float32)


def heldout(fold: list[list[int]], targets: list[list[int]], n_items: int = 6) -> HeldOutUsers:
    def matrix(rows):
        dense = np.zeros((len(rows), n_items), np.float32)
        for r, items in enumerate(rows):
            dense[r, items] = 1.0
        return sp.csr_matrix(dense)

    return HeldOutUsers(np.arange(len(fold)), matrix(fold), matrix(targets))


def test_model_sees_fold_in_only_and_seen_items_are_excluded():
    users = heldout(fold=[[0, 1], [2], [3]], targets=[[2, 5], [0], []])
    spy = SpyModel(ranking=[0, 1, 2, 3, 4, 5])
    result = evaluate_model(spy, users, cutoffs=(1, 2))
    assert len(spy.calls) == 1
    given, exclude_seen = spy.calls[0]
    assert exclude_seen is True
    # the user without targets is dropped; the others arrive with exactly their fold-in items
    assert given.shape == (2, 6)
    assert [sorted(given[r].indices) for r in range(2)] == [[0, 1], [2]]
    assert given.multiply(users.targets[:2]).nnz == 0
    # user 0 is shown [2, 3] → hit at rank 1 (recall@1 = 1, @2 = 1/2); user 1 [0, 1] → hit at 1
    assert result["users"] == 2
    assert result["recall@1"] == pytest.approx(1.0)
    assert result["recall@2"] == pytest.approx((1 / 2 + 1) / 2)
    assert result["mrr@1"] == pytest.approx(1.0)


def test_leaky_input_is_refused_before_the_model_is_called():
    users = heldout(fold=[[0, 1, 2]], targets=[[2, 5]])
    spy = SpyModel(ranking=[0, 1, 2])
    with pytest.raises(DataError, match="leak"):
        evaluate_model(spy, users)
    assert spy.calls == []


def test_mismatched_shapes_and_empty_targets_are_clear_errors():
    users = heldout(fold=[[0]], targets=[[1]])
    users.targets = sp.csr_matrix((1, 7), dtype=np.float32)
    with pytest.raises(DataError, match="same shape"):
        evaluate_model(SpyModel([0]), users)
    with pytest.raises(DataError, match="no held-out user"):
        evaluate_model(SpyModel([0]), heldout(fold=[[0]], targets=[[]]))
