"""What a map shows about each item, read once from a fitted model: title, genres, year,
popularity and primary genre (the colour).

Popularity decides which titles get a label. It comes from the model's own training counts when
the model keeps them (``item_counts_`` for neural, ``counts_`` for popularity), else from the
catalog's ``log_popularity`` column, else catalog order — so labels name films people know.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tastespace.errors import ConfigError
from tastespace.models.base import Recommender

NO_GENRE = "(none)"


@dataclass(frozen=True)
class MapCatalog:
    """Per-item display data, row ``k`` = dense item ``k``."""

    ids: list[object]
    titles: list[str]
    genres: list[list[str]]
    primary: list[str]
    years: list[int | None]
    popularity: np.ndarray  # float, larger = more popular

    def __len__(self) -> int:
        return len(self.titles)

    @classmethod
    def from_model(cls, model: Recommender) -> MapCatalog:
        items = model.catalog()
        bag = items.genres
        primary = bag.first(NO_GENRE) if bag is not None else [NO_GENRE] * len(items)
        return cls(
            items.raw_ids(),
            items.titles,
            items.genre_lists(),
            primary,
            items.year_list(),
            item_popularity(model),
        )

    def take(self, rows: np.ndarray) -> MapCatalog:
        """The catalog restricted to ``rows`` (dense indices), in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        pick = rows.tolist()
        return MapCatalog(
            [self.ids[i] for i in pick],
            [self.titles[i] for i in pick],
            [self.genres[i] for i in pick],
            [self.primary[i] for i in pick],
            [self.years[i] for i in pick],
            self.popularity[rows],
        )


def item_popularity(model: Recommender) -> np.ndarray:
    """``(n_items,)`` popularity: training counts if the model has them, else catalog columns."""
    n = model.n_items
    for name in ("item_counts_", "counts_"):
        counts = getattr(model, name, None)
        if counts is not None and np.shape(counts) == (n,):
            return np.asarray(counts, dtype=np.float64)
    frame = model.item_table().frame
    if "log_popularity" in frame:
        values = np.asarray(frame["log_popularity"], dtype=np.float64)
        return np.nan_to_num(values, nan=-np.inf)
    return -np.arange(n, dtype=np.float64)  # earlier catalog rows first


def resolve_bag_feature(model: Recommender, feature: str) -> str:
    """The catalog bag a user means by ``feature`` (``genre`` → ``genres``), or a clear error."""
    bags = model.item_table().bags
    for name in (feature, f"{feature}s", feature.removesuffix("s")):
        if name in bags:
            return name
    known = ", ".join(sorted(bags)) or "none"
    raise ConfigError(
        f"unknown feature {feature!r}; this catalog's bag features: {known}", options=("feature",)
    )
