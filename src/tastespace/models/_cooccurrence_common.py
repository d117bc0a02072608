"""Pieces shared by the co-occurrence embedding models (item2vec, GloVe, PPMI-SVD).

All three learn one ``(n_items, d)`` matrix from which items co-occur in user histories, and all
three recommend the same two ways, so both live here once:

* :func:`cooccurrence_matrix` — the item × item counts GloVe and PPMI-SVD factorise;
* :class:`ItemEmbeddingModel` — a :class:`Recommender` whose learned state is that one matrix,
  with ``scoring="pooled"`` (user vector = mean of the history's item vectors, score = dot
  product) or ``scoring="knn"`` (item-kNN over the history, ``score_j = Σ_{i∈h} cos(i, j)`` over
  each item's nearest ``neighbors``). After fitting, vectors are optionally centred and
  scaled to unit length (``center``, ``normalize``), so pooled scores are cosines.

Example: three users over three items::

    >>> import scipy.sparse as sp
    >>> h = sp.csr_matrix([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype="float32")
    >>> cooccurrence_matrix(h).toarray().astype(int).tolist()
    [[0, 2, 1], [2, 0, 2], [1, 2, 0]]
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Literal, Self

import numpy as np
import scipy.sparse as sp

from tastespace.errors import ConfigError, DataError, NotFittedError
from tastespace.index.blocks import dot_scores
from tastespace.index.exact import exact_search
from tastespace.index.topk import normalize_rows
from tastespace.models.base import Recommender
from tastespace.models.config import ModelConfig
from tastespace.models.histories import Histories, as_histories

Scoring = Literal["pooled", "knn"]


# -- co-occurrence ----------------------------------------------------------------------------


def ordered_entries(
    interactions: sp.csr_matrix, timestamps: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Positive entries (weight > 0) as ``(users, items)`` int64 arrays, sorted by user, then
    time, then item; by user then item when there are no timestamps.

    ``timestamps`` must align with ``interactions.data`` entry for entry (as in ``Dataset``).
    """
    m = interactions
    keep = m.data > 0
    users = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))[keep]
    items = m.indices[keep].astype(np.int64)
    keys = (items, users) if timestamps is None else (items, np.asarray(timestamps)[keep], users)
    order = np.lexsort(keys)
    return users[order], items[order]


def cooccurrence_matrix(
    interactions: sp.csr_matrix, timestamps: np.ndarray | None = None, window: int = 0
) -> sp.csr_matrix:
    """Symmetric item × item co-occurrence, float32 CSR with an empty diagonal.

    ``window=0``: ``X_ij`` = number of users who have both ``i`` and ``j`` (``BᵀB`` of the
    binarised matrix ``B``). ``window > 0``: pairs at most ``window`` positions apart in a
    user's time order, each weighted ``1 / distance`` (the GloVe weighting); this needs
    ``timestamps`` aligned with ``interactions.data``.
    """
    if window < 0:
        raise ConfigError(f"window must be ≥ 0 (0 = whole history), got {window}")
    n = interactions.shape[1]
    if not window:
        binary = (interactions > 0).astype(np.float32).tocsr()
        x = (binary.T @ binary).tocsr()
    else:
        if timestamps is None:
            raise ConfigError(
                "a finite co-occurrence window needs timestamps; set window=0 (whole history) "
                "or load data with a timestamp column"
            )
        users, items = ordered_entries(interactions, timestamps)
        rows, cols, vals = [], [], []
        for distance in range(1, window + 1):
            same = users[:-distance] == users[distance:]
            if not same.any():
                break
            a, b = items[:-distance][same], items[distance:][same]
            rows += [a, b]
            cols += [b, a]
            vals.append(np.full(2 * len(a), 1.0 / distance, np.float32))
        if not rows:
            return sp.csr_matrix((n, n), dtype=np.float32)
        x = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        x.sum_duplicates()
    x.setdiag(0)
    x.eliminate_zeros()
    x.sort_indices()
    return x.astype(np.float32)


# -- scoring ----------------------------------------------------------------------------------


def pooled_vectors(histories: sp.csr_matrix, vectors: np.ndarray) -> np.ndarray:
    """Mean of each history's item vectors (an empty history gives the zero vector)."""
    binary = (histories > 0).astype(np.float32)
    counts = np.asarray(binary.sum(axis=1), dtype=np.float32)
    return np.asarray(binary @ vectors, dtype=np.float32) / np.maximum(counts, 1.0)


def neighbour_matrix(vectors: np.ndarray, k: int) -> sp.csr_matrix:
    """Row ``i`` keeps the cosine of ``i`` to its ``k`` nearest other items (negatives dropped).

    Why sparse: item-kNN is sharper than summing every cosine, and ``history @ S`` is then a
    cheap sparse product however large the catalog.
    """
    n = vectors.shape[0]
    k = min(k, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float32)
    unit = normalize_rows(vectors)
    self_mask = sp.identity(n, dtype=np.float32, format="csr")
    ids, sims = exact_search(unit, unit, k, self_mask)
    keep = (ids >= 0) & (sims > 0)
    rows = np.repeat(np.arange(n), k).reshape(n, k)
    s = sp.csr_matrix((sims[keep], (rows[keep], ids[keep])), shape=(n, n), dtype=np.float32)
    s.sort_indices()
    return s


def knn_scores(
    histories: sp.csr_matrix, vectors: np.ndarray, neighbours: sp.csr_matrix | None
) -> np.ndarray:
    """``score_j = Σ_{i∈h} S_ij``, one sparse product (every cosine when ``neighbours`` is None)."""
    binary = (histories > 0).astype(np.float32)
    if neighbours is None:
        unit = normalize_rows(vectors)
        return dot_scores(np.asarray(binary @ unit, dtype=np.float32), unit)
    return np.asarray((binary @ neighbours).toarray(), dtype=np.float32)


# -- the shared model shell ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ItemEmbeddingConfig(ModelConfig):
    """Options every co-occurrence model shares (defaults: ``bench/cooccurrence_defaults.py``)."""

    dim: int = 64
    """Vector size."""
    scoring: Scoring = "pooled"
    """pooled: mean history vector · item vector (a dot-product model); knn: sum of cosines to
    the history's items."""
    neighbors: int = 100
    """Nearest items each item keeps for knn scoring (0 = all of them)."""
    normalize: bool = True
    """Store unit-length item vectors, so pooled scores are cosines; without it rare items'
    long vectors swamp the rankings (ml-100k PPMI-SVD Recall@20 0.02 vs 0.34)."""
    center: bool = False
    """Subtract the mean vector of the items with data first (all-but-the-top, Mu & Viswanath
    2018): skip-gram vectors share one strong direction that otherwise dominates every cosine."""

    def validate(self) -> None:
        self.check_positive("dim")
        if self.scoring not in ("pooled", "knn"):
            raise ConfigError(f"scoring must be 'pooled' or 'knn', got {self.scoring!r}")
        if self.neighbors < 0:
            raise ConfigError(f"neighbors must be ≥ 0 (0 = all items), got {self.neighbors}")


class ItemEmbeddingModel(Recommender):
    """A model whose learned state is one item-vector matrix ``vectors_`` (subclasses fill it).

    With ``scoring="knn"`` the score is not ``user_vectors @ item_vectors.T``; ``user_vectors``
    still returns the pooled history vector (for maps), and ``score`` does the kNN sum.
    """

    Config = ItemEmbeddingConfig

    def __init__(self, config: ItemEmbeddingConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        self.dot_product = self.config.scoring == "pooled"
        self.vectors_: np.ndarray | None = None

    def _finish_fit(self, vectors: np.ndarray, known: np.ndarray) -> None:
        """Post-process freshly learned vectors (``center``, ``normalize``) and keep them.

        Rows of items that had no training data (``known`` False) become exactly zero: a
        random initial vector would pose as knowledge.
        """
        if not np.all(np.isfinite(vectors)):
            raise DataError(
                f"{type(self).__name__} produced non-finite vectors; lower lr or check the data"
            )
        vectors = np.array(vectors, dtype=np.float32)
        vectors[~known] = 0.0
        if self.config.center and known.any():
            vectors[known] -= vectors[known].mean(axis=0)
        if self.config.normalize:
            vectors = normalize_rows(vectors)
        self._set_vectors(vectors)

    def _set_vectors(self, vectors: np.ndarray) -> None:
        self.vectors_ = np.ascontiguousarray(vectors, dtype=np.float32)

    def _item_vectors(self) -> np.ndarray:
        """``(n_items, dim)`` float32 (unit rows when ``normalize``); items with no training
        data have zero vectors."""
        if self.vectors_ is None:
            raise NotFittedError(f"{type(self).__name__} has no vectors; call fit() or load()")
        return self.vectors_

    def user_vectors(self, histories: Histories) -> np.ndarray:
        """Mean of the history's item vectors (the pooled fold-in; unseen users welcome)."""
        matrix, _ = as_histories(histories, self.n_items)
        return pooled_vectors(matrix, self.item_vectors())

    def score(self, histories: Histories) -> np.ndarray:
        matrix, _ = as_histories(histories, self.n_items)
        if self.config.scoring == "pooled":
            return dot_scores(self.user_vectors(matrix), self.item_vectors())
        return knn_scores(matrix, self.item_vectors(), self._knn_neighbours())

    def rescored(self, **options: Any) -> Self:
        """A copy sharing the learned vectors with other scoring options (``scoring``,
        ``neighbors``): compare pooled and kNN scoring without refitting."""
        others = sorted(set(options) - {"scoring", "neighbors"})
        if others:
            raise ConfigError(f"rescored() changes only scoring and neighbors; refit for {others}")
        twin = copy.copy(self)
        twin.config = self.config.with_options(options)
        twin.dot_product = twin.config.scoring == "pooled"
        twin._forget_derived()  # the neighbour lists depend on the scoring options
        twin._forget_indexes()  # and what recommend searches
        return twin

    def _knn_neighbours(self) -> sp.csr_matrix | None:
        if not self.config.neighbors or self.config.neighbors >= self.n_items - 1:
            return None
        return self._derived(
            "neighbours", lambda: neighbour_matrix(self.item_vectors(), self.config.neighbors)
        )

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"vectors": np.asarray(self.item_vectors())}, {}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self._set_vectors(arrays["vectors"])
