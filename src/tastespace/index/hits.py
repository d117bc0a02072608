"""Which entries of ranked top-k lists are held-out targets: the primitive under every ranking
metric, shared by early stopping during training (models) and evaluation (``evaluate``).

``ranked`` is ``(n_users, k)`` item indices (``-1`` pads short rows); ``targets`` is a CSR matrix
``(n_users, n_items)`` of held-out items.

>>> import numpy as np, scipy.sparse as sp
>>> targets = sp.csr_matrix([[0, 1, 1, 0], [0, 0, 0, 0]])
>>> recall_at_k(np.array([[2, 0], [1, -1]]), targets, 2).tolist()
[0.5, nan]
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def hit_matrix(ranked: np.ndarray, targets: sp.csr_matrix) -> np.ndarray:
    """Boolean ``(n_users, k)``: is the item at each rank a target of that user?"""
    n, k = ranked.shape
    hits = np.zeros((n, k), dtype=bool)
    for u in range(n):
        row = targets.indices[targets.indptr[u] : targets.indptr[u + 1]]
        if len(row):
            hits[u] = np.isin(ranked[u], row)
    return hits


def target_counts(targets: sp.csr_matrix) -> np.ndarray:
    """Held-out items per user."""
    return np.diff(targets.indptr)


def recall_at_k(ranked: np.ndarray, targets: sp.csr_matrix, k: int) -> np.ndarray:
    """Per-user Recall@k = hits in the top k / min(k, |targets|) (users without targets get NaN
    and are skipped by means)."""
    hits = hit_matrix(ranked[:, :k], targets).sum(axis=1)
    denom = np.minimum(k, target_counts(targets)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, hits / denom, np.nan)
