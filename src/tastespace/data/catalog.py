"""The item catalog people see (ids, titles, genres, years) and how they name its items.

:class:`ItemCatalog` is the one place that decides what an item is called (its title, or its
raw id when the data has no titles) and how it is described; exports, maps, the CLI and the
HTTP API all read it. :class:`ItemResolver` finds items the way people name them
(``--history "Toy Story (1995)"``, ``?q=``): exact raw id → exact title (case-insensitive) →
title without its "(year)" → one fuzzy/substring match. Several equally good matches raise
:class:`AmbiguousItemError` listing the candidates.

>>> import pandas as pd
>>> from tastespace.data.bags import Bags
>>> from tastespace.data.dataset import FeatureTable
>>> table = FeatureTable(
...     pd.DataFrame({"title": ["Heat (1995)", "Up (2009)"], "year": [1995.0, None]}),
...     {"genres": Bags.from_lists([["Crime"], []])},
... )
>>> catalog = ItemCatalog.from_table(Vocabulary([7, 9]), table)
>>> catalog.record(0, score=0.5)
{'id': 7, 'title': 'Heat (1995)', 'genres': ['Crime'], 'year': 1995, 'score': 0.5}
>>> catalog.record(1)
{'id': 9, 'title': 'Up (2009)', 'genres': []}
>>> catalog.resolver.resolve("heat")
0
"""

from __future__ import annotations

import difflib
import functools
import re
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tastespace.data.bags import Bags
from tastespace.data.vocab import Vocabulary
from tastespace.errors import UnknownIdError

if TYPE_CHECKING:
    from tastespace.data.dataset import FeatureTable

GENRE_FEATURE = "genres"

YEAR_SUFFIX = re.compile(r"\s*\(\d{4}\)\s*$")
MAX_CANDIDATES = 10


class AmbiguousItemError(UnknownIdError):
    """A query matched several items; ``candidates`` holds (index, title) pairs."""

    def __init__(self, query: str, candidates: list[tuple[int, str]], raw_ids: list[Any]) -> None:
        listing = "; ".join(
            f"{title} [id {raw}]" for (_, title), raw in zip(candidates, raw_ids, strict=True)
        )
        super().__init__(f"{query!r} matches several items: {listing} — be more specific")
        self.candidates = candidates


def display_titles(frame: pd.DataFrame, item_ids: Vocabulary) -> list[str]:
    """One name per item: its title where the catalog has one, else its raw id.

    An item-feature file may cover only some items; those it misses have no title and are
    shown (and found) by raw id instead of as ``nan``.
    """
    raws = [str(raw) for raw in item_ids.raws(np.arange(len(item_ids)))]
    if "title" not in frame:
        return raws
    return [
        raw if title is None or pd.isna(title) or not str(title).strip() else str(title)
        for title, raw in zip(frame["title"].tolist(), raws, strict=True)
    ]


def _normal(title: str) -> str:
    return " ".join(title.lower().split())


class ItemResolver:
    """Raw-id and title lookups over one catalog."""

    def __init__(self, item_ids: Vocabulary, titles: list[str]) -> None:
        self.item_ids = item_ids
        self.titles = titles
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._bare: dict[str, list[int]] = defaultdict(list)
        for k, title in enumerate(titles):
            self._exact[_normal(title)].append(k)
            self._bare[_normal(YEAR_SUFFIX.sub("", title))].append(k)
        self._normal_titles = [_normal(t) for t in titles]

    def resolve(self, query: Any) -> int:
        """Dense index of the item ``query`` names; ``KeyError`` subclasses when it can't."""
        if query in self.item_ids:
            return self.item_ids.index(query)
        text = str(query).strip()
        try:
            return self.item_ids.index(text)
        except UnknownIdError:
            pass
        for table in (self._exact, self._bare):
            hits = table.get(_normal(text), [])
            if len(hits) == 1:
                return hits[0]
            if len(hits) > 1:
                raise self._ambiguous(text, hits[:MAX_CANDIDATES])
        candidates = self.search(text, limit=MAX_CANDIDATES)
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise self._ambiguous(text, candidates)
        raise UnknownIdError(f"no item matches {text!r} (not a known id or title)")

    def _ambiguous(self, text: str, indices: list[int]) -> AmbiguousItemError:
        return AmbiguousItemError(
            text, [(k, self.titles[k]) for k in indices], self.item_ids.raws(indices)
        )

    def search(self, text: str, limit: int = 20) -> list[int]:
        """Items whose title contains ``text`` (all words), else the closest fuzzy matches."""
        words = _normal(text).split()
        if not words:
            return []
        contains = [k for k, t in enumerate(self._normal_titles) if all(w in t for w in words)]
        if contains:
            # Titles that start with the query first, then whole-word matches, then shorter titles.
            query = " ".join(words)
            contains.sort(
                key=lambda k: (
                    not self._normal_titles[k].startswith(query),
                    not re.search(rf"\b{re.escape(words[0])}\b", self._normal_titles[k]),
                    len(self._normal_titles[k]),
                    k,
                )
            )
            return contains[:limit]
        query = _normal(text)
        seen: dict[int, None] = {}
        for table in (self._exact, self._bare):
            for title in difflib.get_close_matches(query, list(table), n=limit, cutoff=0.8):
                for k in table[title]:
                    seen.setdefault(k)
        return list(seen)[:limit]

    def resolve_many(self, queries: list[Any], skip_unknown: bool = False) -> np.ndarray:
        """Indices for a whole history; unknown entries raise unless ``skip_unknown``."""
        out = []
        for query in queries:
            try:
                out.append(self.resolve(query))
            except AmbiguousItemError:
                raise
            except KeyError:
                if not skip_unknown:
                    raise
        return np.asarray(out, dtype=np.int64)


@dataclass(frozen=True)
class ItemCatalog:
    """Per-item display data in dense-index order: row ``k`` describes item ``k``."""

    item_ids: Vocabulary
    titles: list[str]
    genres: Bags | None = None
    years: np.ndarray | None = None  # float64, NaN where unknown

    @classmethod
    def from_table(cls, item_ids: Vocabulary, table: FeatureTable) -> ItemCatalog:
        """Titles from a ``title`` column (the raw id as text where an item has none), genres
        from the ``genres`` bag, years from a ``year`` column."""
        frame = table.frame
        titles = display_titles(frame, item_ids)
        years = np.asarray(frame["year"], dtype=np.float64) if "year" in frame else None
        return cls(item_ids, titles, table.bags.get(GENRE_FEATURE), years)

    def __len__(self) -> int:
        return len(self.titles)

    @functools.cached_property
    def resolver(self) -> ItemResolver:
        """Raw-id and title lookups over this catalog (built on first use)."""
        return ItemResolver(self.item_ids, self.titles)

    def raw_ids(self) -> list[Any]:
        """Raw ids in row order, as plain Python values."""
        return self.item_ids.ids.tolist()

    def genres_of(self, index: int) -> list[str]:
        return self.genres.row(int(index)) if self.genres is not None else []

    def year_of(self, index: int) -> int | None:
        if self.years is None or not np.isfinite(self.years[index]):
            return None
        return int(self.years[index])

    def genre_lists(self) -> list[list[str]]:
        return [self.genres_of(k) for k in range(len(self))]

    def year_list(self) -> list[int | None]:
        return [self.year_of(k) for k in range(len(self))]

    def record(self, index: int, score: float | None = None) -> dict[str, Any]:
        """JSON-ready description of one item: id, title, genres, year (when known), score."""
        index = int(index)
        out: dict[str, Any] = {
            "id": self.item_ids.raw(index),
            "title": self.titles[index],
            "genres": self.genres_of(index),
        }
        year = self.year_of(index)
        if year is not None:
            out["year"] = year
        if score is not None:
            out["score"] = round(float(score), 6)
        return out

    def records(self, ids: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        """Records of a result row; the ``-1`` padding of short rows is dropped."""
        return [self.record(i, s) for i, s in zip(ids, scores, strict=True) if i >= 0]
