"""Baselines every learned model must beat: popularity and EASE (Steck 2019, closed form).

EASE learns an item–item weight matrix ``B`` with a zero diagonal by ridge regression of the
interaction matrix on itself; it has no user factors, so fold-in is free: ``score = history @ B``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import scipy.sparse as sp

from tastespace.data.dataset import Dataset
from tastespace.errors import ConfigError
from tastespace.models.base import Recommender
from tastespace.models.config import ModelConfig
from tastespace.models.histories import Histories, as_histories


@dataclasses.dataclass(frozen=True)
class PopularityConfig(ModelConfig):
    """Popularity has nothing to tune; the seed is kept for a uniform interface."""


class Popularity(Recommender):
    """Recommend the most-interacted items to everyone (seen items excluded)."""

    kind = "popularity"
    Config = PopularityConfig
    dot_product = False

    def _fit(self, dataset: Dataset, validation: Any) -> None:
        counts = np.asarray((dataset.interactions > 0).sum(axis=0)).ravel()
        self.counts_ = counts.astype(np.float32)

    def score(self, histories: Histories) -> np.ndarray:
        matrix, _ = as_histories(histories, self.n_items)
        return np.tile(np.log1p(self.counts_), (matrix.shape[0], 1))

    def item_vectors(self) -> np.ndarray:
        """One dimension: log-popularity (enough for maps to colour by, not for similarity)."""
        return np.log1p(self.counts_)[:, None].astype(np.float32)

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
    """``l2``: ridge strength λ (tune on validation users); ``max_items`` guards the dense solve."""

    l2: float = 300.0
    max_items: int = 40_000


class EASE(Recommender):
    """Embarrassingly Shallow Autoencoder: ``B = I − P / diag(P)``, ``P = (XᵀX + λI)⁻¹``."""

    kind = "ease"
    Config = EASEConfig
    dot_product = False

    def _fit(self, dataset: Dataset, validation: Any) -> None:
        n = dataset.n_items
        if n > self.config.max_items:
            raise ConfigError(
                f"EASE needs a dense {n}×{n} matrix ({n * n * 8 / 2**30:.1f} GiB); raise "
                f"max_items (now {self.config.max_items}) or filter rare items first"
            )
        x = (dataset.interactions > 0).astype(np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices(n)] += self.config.l2
        inverse = np.linalg.inv(gram)
        weights = inverse / (-np.diag(inverse))
        weights[np.diag_indices(n)] = 0.0
        self.weights_ = weights.astype(np.float32)

    def score(self, histories: Histories) -> np.ndarray:
        matrix, _ = as_histories(histories, self.n_items)
        return np.asarray((matrix > 0).astype(np.float32) @ self.weights_)

    def item_vectors(self) -> np.ndarray:
        """Column ``j`` of ``B`` says how each item votes for ``j``: the item's profile."""
        return np.ascontiguousarray(self.weights_.T)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"weights": self.weights_}, {}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.weights_ = arrays["weights"]
