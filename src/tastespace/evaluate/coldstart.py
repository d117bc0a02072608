"""Cold-start evaluation: items never seen in training, recommended from their features alone.

Protocol: a seeded share of items (default 10 %) is removed from training entirely. Held-out
users give their warm items as the history; their interactions with cold items are the targets,
ranked among the cold items only (a warm catalog would drown them — the question is whether the
model can tell *which* new item fits a user). The bar is a popularity-within-genre baseline:
score a cold item by how much of the user's history shares its genres, tie-broken by the genre's
overall popularity.

User-generated bags (MovieLens ``tags``) are emptied on cold items: users write tags after
watching, so a brand-new item has none, and on ml-latest-small the 21 % of cold items that
carry tags hold 63 % of the cold targets — keeping them would score popularity, not cold start.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from tastespace.data.bags import Bags
from tastespace.data.dataset import Dataset, FeatureTable
from tastespace.data.splits import strong_generalization
from tastespace.errors import DataError
from tastespace.evaluate.metrics import ndcg_at_k, recall_at_k
from tastespace.index.topk import topk_rows


@dataclass
class ColdStartSplit:
    """Training data without the cold items, and held-out users' warm histories / cold targets."""

    train: Dataset
    cold_items: np.ndarray
    fold_in: sp.csr_matrix
    targets: sp.csr_matrix  # columns: cold_items order


def cold_start_split(
    dataset: Dataset, fraction: float = 0.1, n_heldout: int | float = 0.1, seed: int = 0
) -> ColdStartSplit:
    """Hold out ``fraction`` of the interacted items from training and ``n_heldout`` users."""
    rng = np.random.default_rng(seed)
    counts = np.diff(dataset.interactions.tocsc().indptr)
    candidates = np.flatnonzero(counts > 0)
    n_cold = max(1, int(round(fraction * len(candidates))))
    cold = np.sort(rng.choice(candidates, n_cold, replace=False))
    is_cold = np.zeros(dataset.n_items, bool)
    is_cold[cold] = True

    split = strong_generalization(dataset, n_heldout=n_heldout, seed=seed)
    train_matrix = _drop_columns(split.train.interactions, is_cold)
    items = without_user_generated_bags(split.train.items, is_cold)
    train = replace(split.train, interactions=train_matrix, items=items, timestamps=None)
    held = sp.vstack([split.test.fold_in, split.test.targets]).tocsr()
    users = split.test.fold_in.shape[0]
    everything = (held[:users] + held[users:]).tocsr()
    fold_in = _drop_columns(everything, is_cold)
    targets = everything[:, cold].tocsr()
    if targets.nnz == 0:
        raise DataError("no held-out user interacted with a cold item; raise fraction or n_heldout")
    return ColdStartSplit(train, cold, fold_in, targets)


USER_GENERATED_BAGS = frozenset({"tags"})


def without_user_generated_bags(table: FeatureTable, rows: np.ndarray) -> FeatureTable:
    """The table with every user-generated bag emptied on ``rows`` (a boolean mask)."""
    bags = dict(table.bags)
    for name in USER_GENERATED_BAGS & set(bags):
        matrix = (sp.diags((~rows).astype(np.float32)) @ bags[name].to_csr()).tocsr()
        matrix.eliminate_zeros()
        bags[name] = Bags(
            bags[name].vocab,
            matrix.indices.astype(np.int64),
            matrix.indptr.astype(np.int64),
            matrix.data.astype(np.float32) if bags[name].weights is not None else None,
        )
    return FeatureTable(table.frame, bags)


def _drop_columns(matrix: sp.csr_matrix, drop: np.ndarray) -> sp.csr_matrix:
    out = matrix.tocsr(copy=True)
    out.data = np.where(drop[out.indices], 0.0, out.data).astype(np.float32)
    out.eliminate_zeros()
    return out


def genre_popularity_scores(
    train: Dataset, fold_in: sp.csr_matrix, items: np.ndarray, genre: str = "genres"
) -> np.ndarray:
    """Baseline scores ``(users, len(items))``: the user's share of history in each item's genres,
    plus a small tie-break by the genre's share of all training interactions."""
    if genre not in train.items.bags:
        raise DataError(f"the catalog has no {genre!r} feature for the genre baseline")
    incidence = (train.items.bags[genre].to_csr() > 0).astype(np.float32)
    user_share = np.asarray((fold_in > 0).astype(np.float32) @ incidence.toarray())
    user_share /= np.maximum(user_share.sum(axis=1, keepdims=True), 1e-12)
    genre_pop = np.asarray((train.interactions > 0).sum(axis=0)).ravel() @ incidence.toarray()
    genre_pop = genre_pop / max(genre_pop.sum(), 1e-12)
    target_genres = incidence[items].toarray()
    sizes = np.maximum(target_genres.sum(axis=1), 1.0)
    return (user_share @ target_genres.T + 1e-3 * (target_genres @ genre_pop)) / sizes


def cold_start_metrics(scores: np.ndarray, targets: sp.csr_matrix, k: int = 20) -> dict[str, float]:
    """Recall@k and NDCG@k of ``scores`` (users × cold items) against the cold targets."""
    keep = np.diff(targets.indptr) > 0
    ranked, _ = topk_rows(np.asarray(scores, np.float32)[keep], k)
    return {
        f"recall@{k}": float(np.nanmean(recall_at_k(ranked, targets[keep], k))),
        f"ndcg@{k}": float(np.nanmean(ndcg_at_k(ranked, targets[keep], k))),
        "users": float(keep.sum()),
    }
