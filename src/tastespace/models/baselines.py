"""Baselines every learned model must beat: popularity and EASE (Steck 2019, closed form).

EASE learns an item–item weight matrix ``B`` with a zero diagonal by ridge regression of the
interaction matrix on itself; it has no user factors, so fold-in is free: ``score = history @ B``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from tastespace.data.dataset import Dataset
from tastespace.errors import ConfigError
from tastespace.models.base import Recommender
from tastespace.models.config import ModelConfig
from tastespace.models.fitting import FitRun
from tastespace.models.histories import Histories, as_histories
from tastespace.models.memory import require_memory
from tastespace.models.progress import ProgressCallback, StageClock


@dataclasses.dataclass(frozen=True)
class PopularityConfig(ModelConfig):
    """Popularity has nothing to tune; the seed is kept for a uniform interface."""


class Popularity(Recommender):
    """Recommend the most-interacted items to everyone (seen items excluded)."""

    kind = "popularity"
    Config = PopularityConfig
    dot_product = False
    approximate_roles = ()

    def _fit(self, dataset: Dataset, validation: Any, run: FitRun) -> None:
        counts = np.asarray((dataset.interactions > 0).sum(axis=0)).ravel()
        self.counts_ = counts.astype(np.float32)

    def score(self, histories: Histories) -> np.ndarray:
        matrix, _ = as_histories(histories, self.n_items)
        return np.tile(np.log1p(self.counts_), (matrix.shape[0], 1))

    def _item_vectors(self) -> np.ndarray:
        """One dimension: log-popularity (enough for maps to colour by, not for similarity)."""
        return np.log1p(self.counts_)[:, None]

    def similar_items(self, items: int | np.ndarray | list[int], k: int = 10):
        """Popularity knows no similarity: every item's 'neighbours' are the top sellers."""
        self._require_fitted()
        single = np.isscalar(items)
        query = self._item_query(items)
        ids, scores = self.recommend(
            sp.csr_matrix(
                (np.ones(len(query)), query, np.arange(len(query) + 1)),
                shape=(len(query), self.n_items),
            ),
            k,
        )
        return (ids[0], scores[0]) if single else (ids, scores)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"counts": self.counts_}, {}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.counts_ = arrays["counts"]


@dataclasses.dataclass(frozen=True)
class EASEConfig(ModelConfig):
    """EASE's ridge strength, and how many items it learns weights among."""

    l2: float = 300.0
    """Ridge strength λ (tune on validation users)."""
    max_items: int | None = None
    """Learn weights among the max_items most-interacted items only (the others are never
    recommended): the way to fit a catalog whose dense items × items matrix does not fit."""

    def validate(self) -> None:
        self.check_positive("l2", allow_zero=True)
        self.check_positive("max_items")


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder: ``B = I − P / diag(P)``, ``P = (XᵀX + λI)⁻¹``.

    The fit holds one ``m × m`` float32 matrix (``m`` = items kept): the Gram matrix is built
    into it block by block, then Cholesky-factorised and inverted in place by LAPACK, and
    finally scaled in place into ``B``. Before allocating, :func:`ease_peak_bytes` is checked
    against the memory available, so a catalog that cannot fit fails at once in one line.
    """

    kind = "ease"
    Config = EASEConfig
    config: EASEConfig
    dot_product = False
    approximate_roles = ()  # item profiles are n_items wide: exact search only

    def _fit(self, dataset: Dataset, validation: Any, run: FitRun) -> None:
        x = sp.csr_matrix(dataset.interactions > 0, dtype=np.float32)
        kept = _most_interacted(x, self.config.max_items)
        if len(kept) < dataset.n_items:
            x = sp.csr_matrix(x[:, kept])
        m = len(kept)
        require_memory(
            ease_peak_bytes(m, x.nnz),
            f"EASE on {m:,} items",
            "keep fewer items (filter rare items, or set max_items=N to keep the N most "
            "interacted), or use another model (als, item2vec)",
            options=("param",),
        )
        self.weights_ = ease_weights(x, self.config.l2, run.callback)
        self.kept_ = kept

    def score(self, histories: Histories) -> np.ndarray:
        matrix, _ = as_histories(histories, self.n_items)
        binary = (matrix > 0).astype(np.float32)
        if len(self.kept_) == self.n_items:
            return np.asarray(binary @ self.weights_)
        out = np.full((matrix.shape[0], self.n_items), -np.inf, np.float32)
        out[:, self.kept_] = binary[:, self.kept_] @ self.weights_
        return out

    def pair_weights(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """``(len(sources), len(targets))`` float32 ``B_ij`` for dense item indices: what
        watching ``i`` adds to ``j``'s score (0 where ``max_items`` left either item out)."""
        self._require_fitted()
        position = np.full(self.n_items, -1, np.int64)
        position[self.kept_] = np.arange(len(self.kept_))
        rows, cols = position[np.asarray(sources)], position[np.asarray(targets)]
        out = self.weights_[np.ix_(np.maximum(rows, 0), np.maximum(cols, 0))].copy()
        out[rows < 0] = 0.0
        out[:, cols < 0] = 0.0
        return out

    def _item_vectors(self) -> np.ndarray:
        """Column ``j`` of ``B`` says how each item votes for ``j``: the item's profile.

        ``(n_items, m)``; items left out by ``max_items`` get zero rows."""
        if len(self.kept_) == self.n_items:
            return np.ascontiguousarray(self.weights_.T)
        out = np.zeros((self.n_items, len(self.kept_)), np.float32)
        out[self.kept_] = self.weights_.T
        return out

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"weights": self.weights_, "kept": self.kept_}, {}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.weights_ = arrays["weights"]
        # Bundles from before max_items selected items kept them all.
        self.kept_ = arrays.get("kept", np.arange(len(self.weights_))).astype(np.int64)


#: Most cells of one block of Gram rows built from the sparse product (64 MiB of float32).
GRAM_BLOCK_CELLS = 1 << 24


def ease_peak_bytes(n_items: int, nnz: int) -> int:
    """Estimated peak bytes of :func:`ease_weights` on ``n_items`` items and ``nnz`` entries.

    One ``n × n`` float32 matrix, plus the transposed copy of the interactions and the worst
    case of one block of the sparse product (float32 data, int64 indices).
    """
    block = min(GRAM_BLOCK_CELLS, n_items * n_items)
    return 4 * n_items * n_items + 12 * (nnz + n_items) + 12 * block


def ease_weights(
    x: sp.csr_matrix, l2: float, progress: ProgressCallback | None = None
) -> np.ndarray:
    """``(n, n)`` float32 EASE weights of binary float32 CSR ``x`` (users × items), in place."""
    n = x.shape[1]
    p = np.empty((n, n), np.float32)
    xt = sp.csr_matrix(x.T)
    rows = max(1, GRAM_BLOCK_CELLS // max(n, 1))
    clock = StageClock(progress, "gram", epoch=1, max_epochs=2, batches=-(-n // rows))
    for block, start in enumerate(range(0, n, rows), 1):
        (xt[start : start + rows] @ x).toarray(out=p[start : start + rows])
        clock.step(block)
    clock.finish()
    del xt
    p[np.diag_indices(n)] += l2
    # Cholesky takes n³/3 flops, the inverse from it 2n³/3: 1 and 3 of 3 steps.
    clock = StageClock(progress, "solve", epoch=2, max_epochs=2, batches=3)
    _invert_spd_in_place(p, lambda: clock.step(1))
    clock.step(3)
    p /= -np.diag(p)[None, :]  # B_ij = -P_ij / P_jj
    p[np.diag_indices(n)] = 0.0
    clock.finish()
    return p


def _invert_spd_in_place(a: np.ndarray, factorised: Callable[[], None] | None = None) -> None:
    """Overwrite the symmetric positive-definite C-ordered ``a`` with its inverse.

    LAPACK works on the Fortran view ``a.T`` (the same matrix, by symmetry): ``potrf`` then
    ``potri`` with ``overwrite`` leave the inverse in that view's upper triangle, i.e. ``a``'s
    lower one, which is mirrored into the upper one block by block (no ``n × n`` temporary).
    """
    from scipy.linalg import lapack

    factor, info = lapack.spotrf(a.T, lower=0, overwrite_a=1, clean=0)
    if info == 0 and factorised is not None:
        factorised()
    if info == 0:
        factor, info = lapack.spotri(factor, lower=0, overwrite_c=1)
    if info != 0 or not np.shares_memory(factor, a):
        raise ConfigError(
            f"EASE: the regularised Gram matrix is not positive definite (LAPACK info {info}); "
            "use l2 > 0"
        )
    rows = max(1, GRAM_BLOCK_CELLS // max(len(a), 1))
    for start in range(0, len(a), rows):
        stop = min(start + rows, len(a))
        a[:start, start:stop] = a[start:stop, :start].T
        block = a[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        block[upper] = block.T[upper]


def _most_interacted(x: sp.csr_matrix, limit: int | None) -> np.ndarray:
    """Indices (ascending) of the ``limit`` items with most interactions; all when None."""
    n = x.shape[1]
    if limit is None or n <= limit:
        return np.arange(n)
    counts = np.bincount(x.indices, minlength=n)
    return np.sort(np.argsort(-counts, kind="stable")[:limit])
