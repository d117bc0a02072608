"""Why was this recommended? How much each watched item adds to a recommended item's score.

Where a model's score is linear in the history the split is exact:

* EASE: ``score_j = Σ_i B_ij`` over the watched items ``i`` → item ``i`` adds ``B_ij``;
* pooled co-occurrence models (item2vec, GloVe, PPMI-SVD): ``score_j = v_j · mean_i v_i``
  → ``v_j · v_i / n``; item-kNN scoring: ``S_ij``;
* ALS: the fold-in solves ``u = W Σ_i c_i y_i`` with ``W = (YᵀY + λI + Σ_i (c_i − 1) y_i y_iᵀ)⁻¹``
  for this history, so ``score_j = Σ_i c_i · y_jᵀ W y_i`` (the decomposition implicit's
  ``explain`` uses);
* popularity: nothing in the history matters, every contribution is 0.

Other models (the neural towers, BPR) are explained by leaving each watched item out in turn,
all in one batch: ``score_j(h) − score_j(h ∖ i)``. A list of ids weighs each item 1.0, as
everywhere in tastespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from tastespace.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tastespace.models.base import Recommender

EXACT_KINDS = ("ease", "popularity", "item2vec", "glove", "ppmi-svd", "als")


@dataclass(frozen=True)
class Explanation:
    """``contributions[r, c]``: what watched ``history[c]`` adds to the score of ``items[r]``."""

    history: np.ndarray
    items: np.ndarray
    contributions: np.ndarray
    exact: bool

    def shares(self) -> np.ndarray:
        """Positive contributions scaled to sum to 1 per recommended item (0 where none)."""
        positive = np.clip(self.contributions, 0.0, None)
        total = positive.sum(axis=1, keepdims=True)
        return np.divide(positive, total, out=np.zeros_like(positive), where=total > 0)

    def top(self, row: int, n: int = 3) -> list[tuple[int, float]]:
        """The ``n`` watched items that explain ``items[row]`` most, as (index, share)."""
        shares = self.shares()[row]
        order = np.lexsort((self.history, -shares))[:n]
        return [(int(self.history[c]), float(shares[c])) for c in order if shares[c] > 0]


def explain(model: Recommender, history: Sequence[int], items: Sequence[int]) -> Explanation:
    """Split each of ``items``' scores over the watched ``history`` (dense item indices)."""
    watched = np.unique(np.asarray(history, dtype=np.int64))
    targets = np.asarray(items, dtype=np.int64)
    n = model.n_items
    for name, arr in (("history", watched), ("items", targets)):
        if len(arr) and (arr.min() < 0 or arr.max() >= n):
            raise DataError(f"{name} holds an item index outside 0..{n - 1}")
    if model.kind in EXACT_KINDS:
        matrix = _exact(model, watched, targets)
        return Explanation(watched, targets, matrix.astype(np.float32), exact=True)
    return Explanation(watched, targets, _leave_one_out(model, watched, targets), exact=False)


def _exact(model: Recommender, watched: np.ndarray, targets: np.ndarray) -> np.ndarray:
    if model.kind == "popularity" or len(watched) == 0:
        return np.zeros((len(targets), len(watched)))
    if model.kind == "ease":
        return np.asarray(model.pair_weights(watched, targets), dtype=np.float64).T
    if model.kind == "als":
        return _als(model, watched, targets)
    vectors = model.item_vectors().astype(np.float64)
    if model.config.scoring == "pooled":
        return vectors[targets] @ vectors[watched].T / len(watched)
    neighbours = model._knn_neighbours()
    if neighbours is None:
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return unit[targets] @ unit[watched].T
    return np.asarray(neighbours[watched][:, targets].toarray(), dtype=np.float64).T


def _als(model: Recommender, watched: np.ndarray, targets: np.ndarray) -> np.ndarray:
    factors = model.item_factors_.astype(np.float64)
    confidence = model.config.alpha * np.ones(len(watched))
    seen = factors[watched]
    system = factors.T @ factors + model.config.regularization * np.eye(factors.shape[1])
    system += (seen * (confidence - 1.0)[:, None]).T @ seen
    weighted = np.linalg.solve(system, seen.T * confidence)  # W c_i y_i, one column per item
    return factors[targets] @ weighted


def _leave_one_out(model: Recommender, watched: np.ndarray, targets: np.ndarray) -> np.ndarray:
    n = len(watched)
    if n == 0:
        return np.zeros((len(targets), 0), np.float32)
    rows = np.concatenate([np.zeros(n, np.int64), np.repeat(np.arange(1, n + 1), n - 1)])
    cols = np.concatenate([watched] + [np.delete(watched, c) for c in range(n)])
    batch = sp.csr_matrix(
        (np.ones(len(cols), np.float32), (rows, cols)), shape=(n + 1, model.n_items)
    )
    scores = np.asarray(model.score(batch), dtype=np.float64)[:, targets]
    return (scores[0][None, :] - scores[1:]).T.astype(np.float32)
