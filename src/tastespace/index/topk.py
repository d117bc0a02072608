"""Exact top-k: one blocked matrix multiply (BLAS does the work), then ``argpartition``.

Rows come back as ``(ids, scores)`` of shape ``(n_queries, k)``, best first; rows with fewer than
``k`` candidates are padded with id ``-1`` and score ``-inf`` so shapes are always predictable.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

BLOCK_ROWS = 1024


def topk_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns of each row of ``scores`` (``-inf`` marks excluded cells)."""
    n, m = scores.shape
    kk = min(k, m)
    if kk == 0:
        return np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
    part = (
        np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        if kk < m
        else np.tile(np.arange(m), (n, 1))
    )
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    top = np.take_along_axis(part_scores, order, axis=1).astype(np.float32)
    ids[~np.isfinite(top)] = -1
    if kk < k:
        ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return ids, top


def mask_rows(scores: np.ndarray, exclude: sp.csr_matrix | None) -> np.ndarray:
    """Set ``scores[r, c] = -inf`` wherever ``exclude[r, c]`` is stored (in place)."""
    if exclude is not None and exclude.nnz:
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf
    return scores


def search_dot(
    queries: np.ndarray,
    vectors: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None = None,
    block_rows: int = BLOCK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items by dot product for each query row, skipping ``exclude``'d cells."""
    n = queries.shape[0]
    ids = np.empty((n, k), np.int64)
    out = np.empty((n, k), np.float32)
    for start in range(0, n, block_rows):
        stop = min(start + block_rows, n)
        scores = queries[start:stop] @ vectors.T
        mask_rows(scores, None if exclude is None else exclude[start:stop])
        ids[start:stop], out[start:stop] = topk_rows(scores, k)
    return ids, out


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows (zero rows stay zero) for cosine similarity by dot product."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
