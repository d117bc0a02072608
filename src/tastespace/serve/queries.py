"""Questions people ask a trained bundle, in raw ids and titles: shared by the CLI and the API.

A :class:`ModelSession` wraps a loaded model with its title resolver and turns dense results
into JSON-ready item records ``{"id": raw id, "title": ..., "genres": [...], "score": ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tastespace.errors import DataError
from tastespace.models.base import Recommender, check_k

MAX_K = 1000
MAX_HISTORY = 10_000


@dataclass
class Recommendation:
    """One user's result: their label, the items (records) and what was ignored."""

    user: Any
    items: list[dict[str, Any]]
    skipped: list[Any]


class ModelSession:
    """A loaded model plus everything needed to speak in raw ids and titles."""

    def __init__(self, model: Recommender, name: str = "model") -> None:
        self.model = model
        self.name = name
        self.catalog = model.catalog()
        self.titles = self.catalog.titles
        self.resolver = self.catalog.resolver
        self.genres = self.catalog.genres

    @classmethod
    def open(cls, path: str | Path) -> ModelSession:
        return cls(Recommender.load(path), name=Path(path).name)

    def record(self, index: int, score: float | None = None) -> dict[str, Any]:
        """JSON-ready description of one item."""
        return self.catalog.record(index, score)

    def records(self, ids: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        """Records of one result row (its ``-1`` padding dropped)."""
        return self.catalog.records(ids, scores)

    def similar(self, query: Any, k: int = 10) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The item ``query`` names, and its ``k`` nearest neighbours."""
        check_k(k, MAX_K)
        index = self.resolver.resolve(query)
        ids, scores = self.model.similar_items(index, k=k)
        return self.record(index), self.records(ids, scores)

    def because(
        self, history: list[int], items: list[dict[str, Any]], n: int = 3
    ) -> list[list[dict[str, Any]]]:
        """For each recommended item record, the ``n`` watched items that explain it most
        (raw id, title, share of the positive contributions; see :mod:`models.explain`)."""
        from tastespace.models.explain import explain

        index = self.model.item_ids_.index
        why = explain(self.model, history, [index(item["id"]) for item in items])
        return [
            [
                {"id": self.model.item_ids_.raw(i), "title": self.titles[i], "share": round(s, 4)}
                for i, s in why.top(row, n)
            ]
            for row in range(len(items))
        ]

    def resolve_history(
        self, user: Any, history: list[Any], skip_unknown: bool = False
    ) -> tuple[list[int], list[Any]]:
        """Item indices of a history of raw ids or titles, and the entries skipped as unknown."""
        if len(history) > MAX_HISTORY:
            raise DataError(f"history of {user!r} has {len(history)} items (limit {MAX_HISTORY})")
        if not history:
            raise DataError(f"history of {user!r} is empty; give at least one item")
        indices, missing = [], []
        for entry in history:
            try:
                indices.append(self.resolver.resolve(entry))
            except KeyError as err:
                if not skip_unknown or getattr(err, "candidates", None):
                    raise
                missing.append(entry)
        if not indices:
            raise DataError(f"no item in the history of {user!r} is in the catalog")
        return indices, missing

    def recommend(
        self,
        histories: list[tuple[Any, list[Any]]],
        k: int = 10,
        exclude_seen: bool = True,
        skip_unknown: bool = False,
    ) -> list[Recommendation]:
        """Recommendations for ``(user label, [raw ids or titles])`` pairs, in one batch."""
        check_k(k, MAX_K)
        resolved, skipped = [], []
        for user, history in histories:
            indices, missing = self.resolve_history(user, history, skip_unknown)
            resolved.append(indices)
            skipped.append(missing)
        ids, scores = self.model.recommend(resolved, k=k, exclude_seen=exclude_seen)
        ids, scores = np.atleast_2d(ids), np.atleast_2d(scores)
        return [
            Recommendation(user, self.records(ids[r], scores[r]), skipped[r])
            for r, (user, _) in enumerate(histories)
        ]
