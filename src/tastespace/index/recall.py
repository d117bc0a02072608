"""Recall of an approximate index against exact search: measured, never assumed."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tastespace.index.base import Index


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over rows of ``|found ∩ truth| / |truth|`` (``-1`` padding ignored; rows with an
    empty truth skipped); ``nan`` when no row has a truth."""
    shares = []
    for got, want in zip(found, truth, strict=True):
        want = want[want >= 0]
        if len(want):
            shares.append(len(np.intersect1d(got[got >= 0], want)) / len(want))
    return float(np.mean(shares)) if shares else float("nan")


def measure_recall(
    approximate: Index,
    exact: Index,
    queries: np.ndarray,
    k: int = 10,
    exclude: sp.csr_matrix | None = None,
) -> float:
    """Recall@k of ``approximate`` against ``exact`` on the same queries and exclusions."""
    truth, _ = exact.search(queries, k, exclude)
    found, _ = approximate.search(queries, k, exclude)
    return recall_at_k(found, truth)
