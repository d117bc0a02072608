"""Ranking metrics over top-k lists, computed for many users at once.

``ranked`` is ``(n_users, k)`` item indices (``-1`` pads short rows); ``targets`` is a CSR matrix
``(n_users, n_items)`` of held-out items. Definitions follow Liang et al. 2018 (Mult-VAE):

* Recall@k = hits in top-k / min(k, |targets|)
* NDCG@k   = Σ_{hits at rank r} 1/log2(r+1) / the same sum for an ideal list of min(k, |targets|)
* MRR@k    = 1 / rank of the first hit (0 if none)
* HitRate@k = 1 if any hit in top-k
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Hits and Recall@k live in index.hits, shared with early stopping during training.
from tastespace.index.hits import hit_matrix
from tastespace.index.hits import recall_at_k as recall_at_k
from tastespace.index.hits import target_counts as _target_counts


def ndcg_at_k(ranked: np.ndarray, targets: sp.csr_matrix, k: int) -> np.ndarray:
    """Per-user NDCG@k with binary relevance."""
    hits = hit_matrix(ranked[:, :k], targets)
    discounts = 1.0 / np.log2(np.arange(2, hits.shape[1] + 2))
    dcg = (hits * discounts).sum(axis=1)
    ideal_counts = np.minimum(k, _target_counts(targets))
    cumulative = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    idcg = cumulative[ideal_counts]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(idcg > 0, dcg / idcg, np.nan)


def mrr_at_k(ranked: np.ndarray, targets: sp.csr_matrix, k: int) -> np.ndarray:
    """Per-user reciprocal rank of the first hit within the top-k."""
    hits = hit_matrix(ranked[:, :k], targets)
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)
    rr = np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0)
    return np.where(_target_counts(targets) > 0, rr, np.nan)


def hit_rate_at_k(ranked: np.ndarray, targets: sp.csr_matrix, k: int) -> np.ndarray:
    """Per-user 1.0 if any target is in the top-k."""
    hits = hit_matrix(ranked[:, :k], targets).any(axis=1).astype(np.float64)
    return np.where(_target_counts(targets) > 0, hits, np.nan)


def catalog_coverage(ranked: np.ndarray, n_items: int) -> float:
    """Share of the catalog that appears in at least one user's list."""
    shown = np.unique(ranked[ranked >= 0])
    return len(shown) / n_items if n_items else 0.0


def intra_list_diversity(ranked: np.ndarray, item_genres: sp.csr_matrix) -> float:
    """Mean pairwise genre dissimilarity (1 − Jaccard) within each list, averaged over users.

    ``item_genres`` is the items × genres incidence matrix (``Bags.to_csr()``).
    """
    values = []
    g = (item_genres > 0).astype(np.float32).tocsr()
    for row in ranked:
        row = row[row >= 0]
        if len(row) < 2:
            continue
        sub = g[row]
        inter = (sub @ sub.T).toarray()
        sizes = np.asarray(sub.sum(axis=1)).ravel()
        union = sizes[:, None] + sizes[None, :] - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            jaccard = np.where(union > 0, inter / union, 1.0)
        upper = np.triu_indices(len(row), 1)
        values.append(float(np.mean(1.0 - jaccard[upper])))
    return float(np.mean(values)) if values else float("nan")
