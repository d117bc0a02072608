"""Exact top-k: blocked matrix multiplies (BLAS does the work), then ``argpartition``.

Rows come back as ``(ids, scores)`` of shape ``(n_queries, k)``, best first; rows with fewer than
``k`` candidates are padded with id ``-1`` and score ``-inf`` so shapes are always predictable.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns of each row of ``scores`` (``-inf`` marks excluded cells).

    Ties are broken by column index, lowest first, so equal scores (cold items with identical
    vectors, items never seen in training) rank the same way in every call:

    >>> topk_rows(np.array([[1.0, 3.0, 3.0, 3.0]], np.float32), 2)[0].tolist()
    [[1, 2]]
    """
    n, m = scores.shape
    kk = min(k, m)
    if kk == 0:
        return np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
    scores = np.where(np.isnan(scores), -np.inf, scores) if np.isnan(scores).any() else scores
    part = _top_set_by_index(scores, kk) if kk < m else np.tile(np.arange(m), (n, 1))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    ids[~np.isfinite(top)] = -1
    if kk < k:
        ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return ids, top


def _top_set_by_index(scores: np.ndarray, kk: int) -> np.ndarray:
    """Columns of each row's ``kk`` best scores, in column order; at the boundary score the
    lowest columns win (``argpartition`` alone picks among equal scores arbitrarily)."""
    part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    threshold = np.take_along_axis(scores, part, axis=1).min(axis=1, keepdims=True)
    above = scores > threshold
    at = scores == threshold
    need = kk - above.sum(axis=1)
    crowded = np.flatnonzero(at.sum(axis=1) > need)  # rows whose boundary ties overflow
    if len(crowded):
        rank = np.cumsum(at[crowded], axis=1)
        at[crowded] &= rank <= need[crowded, None]
    chosen = above | at
    return np.nonzero(chosen)[1].reshape(len(scores), kk)


def mask_rows(scores: np.ndarray, exclude: sp.csr_matrix | None) -> np.ndarray:
    """Set ``scores[r, c] = -inf`` wherever ``exclude[r, c]`` is stored (in place)."""
    if exclude is not None and exclude.nnz:
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf
    return scores


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows (zero rows stay zero) for cosine similarity by dot product."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
