"""Score a fitted model on held-out users the leak-free way.

The model sees only each user's fold-in history; targets are never part of the input, and items
already in the history are excluded from the ranking (they cannot be "predicted").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from tastespace.errors import DataError
from tastespace.evaluate.metrics import (
    catalog_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)
from tastespace.models.base import Recommender

DEFAULT_CUTOFFS = (20, 50, 100)


class HeldOut(Protocol):
    fold_in: sp.csr_matrix
    targets: sp.csr_matrix


def evaluate_model(
    model: Any,
    heldout: HeldOut,
    cutoffs: Sequence[int] = DEFAULT_CUTOFFS,
    item_genres: sp.csr_matrix | None = None,
) -> dict[str, float]:
    """Recall / NDCG / MRR / hit rate at each cutoff, coverage@min(cutoff), diversity@min(cutoff).

    Returns a flat dict such as ``{"recall@20": 0.41, "ndcg@100": 0.43, ...}``.
    """
    fold_in, targets = heldout.fold_in, heldout.targets
    if fold_in.shape != targets.shape:
        raise DataError("fold-in and target matrices must have the same shape")
    if fold_in.multiply(targets).nnz:
        raise DataError("evaluation leak: some targets are also in the fold-in history")
    keep = np.diff(targets.indptr) > 0
    fold_in, targets = fold_in[keep], targets[keep]
    if fold_in.shape[0] == 0:
        raise DataError("no held-out user has targets to evaluate")
    # metrics never depend on an approximate index: tastespace models search exactly here
    exact = {"exact": True} if isinstance(model, Recommender) else {}
    ranked, _ = model.recommend(fold_in, k=max(cutoffs), exclude_seen=True, **exact)
    results: dict[str, float] = {"users": float(fold_in.shape[0])}
    for k in cutoffs:
        results[f"recall@{k}"] = float(np.nanmean(recall_at_k(ranked, targets, k)))
        results[f"ndcg@{k}"] = float(np.nanmean(ndcg_at_k(ranked, targets, k)))
    first = min(cutoffs)
    results[f"mrr@{first}"] = float(np.nanmean(mrr_at_k(ranked, targets, first)))
    results[f"hit@{first}"] = float(np.nanmean(hit_rate_at_k(ranked, targets, first)))
    results[f"coverage@{first}"] = catalog_coverage(ranked[:, :first], targets.shape[1])
    if item_genres is not None:
        results[f"diversity@{first}"] = intra_list_diversity(ranked[:, :first], item_genres)
    return results
