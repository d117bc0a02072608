"""k-NN genre purity: how much genre structure a 2-D layout (or any vector space) shows.

Purity is the fraction of each point's ``k`` nearest neighbours that share its label, averaged
over points. On its own the number is hard to read — a catalog that is half drama scores ~0.5 with
no structure at all — so it is always reported next to the same layout with the labels shuffled
(seeded), which is what "no structure" scores for this label mix.

>>> import numpy as np
>>> coords = np.array([[0, 0], [0, 1], [1, 0], [9, 9], [9, 8], [8, 9]], float)
>>> knn_purity(coords, ["a", "a", "a", "b", "b", "b"], k=2)
1.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tastespace.errors import DataError
from tastespace.index.base import check_k


@dataclass(frozen=True)
class PurityReport:
    """Purity of a layout, the same with shuffled labels, and their ratio (``lift``)."""

    purity: float
    shuffled: float
    k: int

    @property
    def lift(self) -> float:
        return self.purity / self.shuffled if self.shuffled > 0 else float("inf")


def neighbours(coords: np.ndarray, k: int, metric: str = "euclidean") -> np.ndarray:
    """``(n, k)`` indices of each point's ``k`` nearest other points (itself excluded)."""
    x = np.asarray(coords, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise DataError(f"need an (n, d) array with n >= 2, got shape {x.shape}")
    check_k(k)
    k = min(int(k), len(x) - 1)
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    if x.shape[1] <= 3:
        from scipy.spatial import cKDTree

        _, ids = cKDTree(x).query(x, k=k + 1)
    else:
        from sklearn.neighbors import NearestNeighbors

        _, ids = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return _drop_self(np.asarray(ids), k)


def _drop_self(ids: np.ndarray, k: int) -> np.ndarray:
    """Remove each row's own index (usually, but with duplicate points not always, column 0)."""
    rows = np.arange(len(ids))[:, None]
    is_self = ids == rows
    # rows where self was not returned lose their last (farthest) neighbour instead
    is_self[~is_self.any(axis=1), -1] = True
    return ids[~is_self].reshape(len(ids), k)


def knn_purity(
    coords: np.ndarray,
    labels: Sequence[object] | np.ndarray,
    k: int = 10,
    metric: str = "euclidean",
) -> float:
    """Mean share of each point's ``k`` nearest neighbours carrying the point's own label."""
    codes = _codes(labels, len(coords))
    ids = neighbours(coords, k, metric)
    return float((codes[ids] == codes[:, None]).mean())


def purity_report(
    coords: np.ndarray,
    labels: Sequence[object] | np.ndarray,
    k: int = 10,
    seed: int = 0,
    repeats: int = 5,
    metric: str = "euclidean",
) -> PurityReport:
    """Purity of ``coords`` against the mean purity of ``repeats`` seeded label shuffles.

    The neighbour graph is computed once; only the labels move, so the baseline is exact for this
    layout's neighbourhood sizes.
    """
    codes = _codes(labels, len(coords))
    ids = neighbours(coords, k, metric)
    observed = float((codes[ids] == codes[:, None]).mean())
    rng = np.random.default_rng(seed)
    shuffled = []
    for _ in range(max(1, repeats)):
        perm = rng.permutation(codes)
        shuffled.append(float((perm[ids] == perm[:, None]).mean()))
    return PurityReport(observed, float(np.mean(shuffled)), ids.shape[1])


def _codes(labels: Sequence[object] | np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(labels, dtype=object)
    if len(values) != n:
        raise DataError(f"{len(values)} labels for {n} points; give one label per point")
    _, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.ravel()
