"""The ``Dataset``: interactions as CSR plus id maps, feature tables and provenance.

Everything downstream (features, models, evaluation, maps, the server) starts from a ``Dataset``;
nothing downstream re-reads raw files.

Shapes, for 3 users and 4 items::

    interactions  csr_matrix (3, 4) float32   row u = items user u touched, value = weight/rating
    timestamps    int64[nnz] or None          aligned with interactions.data, entry for entry
    user_ids      Vocabulary(3)               dense index ↔ raw user id
    item_ids      Vocabulary(4)               dense index ↔ raw item id
    items         FeatureTable(4 rows)        title, numeric columns, bags (genres, tags)
    users         FeatureTable(3 rows)        age, gender, occupation … where the source has them
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tastespace.data.bags import Bags
from tastespace.data.catalog import ItemCatalog
from tastespace.data.vocab import Vocabulary
from tastespace.errors import DataError


@dataclass
class FeatureTable:
    """Per-row features: scalar columns in ``frame`` (row k = dense index k) and bag features."""

    frame: pd.DataFrame
    bags: dict[str, Bags] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frame = self.frame.reset_index(drop=True)
        for name, bag in self.bags.items():
            if bag.n_rows != len(self.frame):
                raise DataError(
                    f"bag feature {name!r} has {bag.n_rows} rows, the table has {len(self.frame)}"
                )

    @classmethod
    def empty(cls, n_rows: int) -> FeatureTable:
        return cls(pd.DataFrame(index=pd.RangeIndex(n_rows)))

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def numeric_columns(self) -> list[str]:
        """Columns usable as numeric model inputs (bool and number dtypes)."""
        return [c for c in self.frame.columns if pd.api.types.is_numeric_dtype(self.frame[c])]

    @property
    def categorical_columns(self) -> list[str]:
        """Single-valued text columns other than free text such as titles."""
        return [
            c
            for c in self.frame.columns
            if c not in self.numeric_columns and c not in ("title", "zip_code", "imdb_url")
        ]

    @property
    def columns(self) -> list[str]:
        """All feature names: frame columns then bag features."""
        return [*self.frame.columns, *self.bags]

    def take(self, rows: np.ndarray) -> FeatureTable:
        return FeatureTable(
            self.frame.iloc[np.asarray(rows)].reset_index(drop=True),
            {name: bag.take(rows) for name, bag in self.bags.items()},
        )


@dataclass
class Dataset:
    """Users × items interactions with id maps, feature tables and where they came from."""

    interactions: sp.csr_matrix
    user_ids: Vocabulary
    item_ids: Vocabulary
    items: FeatureTable
    users: FeatureTable
    timestamps: np.ndarray | None = None
    name: str = "dataset"
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.interactions
        if not sp.isspmatrix_csr(m):
            raise DataError("interactions must be a scipy CSR matrix")
        if m.shape != (len(self.user_ids), len(self.item_ids)):
            raise DataError(
                f"interactions shape {m.shape} does not match {len(self.user_ids)} users × "
                f"{len(self.item_ids)} items"
            )
        if len(self.items) != m.shape[1] or len(self.users) != m.shape[0]:
            raise DataError("feature tables must have one row per item / user")
        if self.timestamps is not None and len(self.timestamps) != m.nnz:
            raise DataError("timestamps must align with interactions.data")

    # -- sizes ------------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return self.interactions.shape[0]

    @property
    def n_items(self) -> int:
        return self.interactions.shape[1]

    @property
    def n_interactions(self) -> int:
        return int(self.interactions.nnz)

    def item_user_counts(self) -> np.ndarray:
        """Users per item (stored entries of each column): the items' popularity."""
        return np.bincount(self.interactions.indices, minlength=self.n_items).astype(np.float32)

    @property
    def density(self) -> float:
        cells = self.n_users * self.n_items
        return self.n_interactions / cells if cells else 0.0

    # -- views ------------------------------------------------------------------------------
    def catalog(self) -> ItemCatalog:
        """Ids, titles, genres and years of the items, as users see them."""
        return ItemCatalog.from_table(self.item_ids, self.items)

    def titles(self) -> list[str]:
        """Item titles if the catalog has them, else the raw item ids as strings."""
        return self.catalog().titles

    def history(self, user: int) -> np.ndarray:
        """Dense item indices user ``user`` interacted with (time order when timestamps exist)."""
        start, end = self.interactions.indptr[user], self.interactions.indptr[user + 1]
        items = self.interactions.indices[start:end]
        if self.timestamps is not None:
            items = items[np.argsort(self.timestamps[start:end], kind="stable")]
        return items.astype(np.int64)

    def subset_users(self, users: np.ndarray | Sequence[int], name: str | None = None) -> Dataset:
        """A dataset with only ``users`` (in that order); items and their features unchanged."""
        users = np.asarray(users, dtype=np.int64)
        sub = self.interactions[users]
        sub.sort_indices()
        ts = None
        if self.timestamps is not None:
            ts_matrix = sp.csr_matrix(
                (
                    self.timestamps.astype(np.float64),
                    self.interactions.indices,
                    self.interactions.indptr,
                ),
                shape=self.interactions.shape,
            )[users]
            ts_matrix.sort_indices()
            ts = ts_matrix.data.astype(np.int64)
        return replace(
            self,
            interactions=sub.astype(np.float32),
            user_ids=Vocabulary(self.user_ids.ids[users], name="user"),
            users=self.users.take(users),
            timestamps=ts,
            name=name or self.name,
        )

    def binarize(self, threshold: float) -> Dataset:
        """Keep interactions with weight ≥ ``threshold`` as 1.0 (implicit-feedback view)."""
        keep = self.interactions.data >= threshold
        m = self.interactions.copy()
        m.data = keep.astype(np.float32)
        ts = None if self.timestamps is None else self.timestamps[keep]
        m.eliminate_zeros()
        prov = dict(self.provenance)
        prov.setdefault("filtered", {})
        prov["filtered"] = {**prov["filtered"], f"rating < {threshold:g}": int((~keep).sum())}
        return replace(self, interactions=m, timestamps=ts, provenance=prov)

    def fingerprint(self) -> str:
        """Stable short hash of the interaction structure and id maps (recorded in bundles)."""
        h = hashlib.sha256()
        for arr in (self.interactions.indptr, self.interactions.indices, self.interactions.data):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(repr(self.item_ids.ids[:1000].tolist()).encode())
        h.update(str((self.n_users, self.n_items)).encode())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        """What ``tastespace data info`` prints: sizes, density, features, rating histogram."""
        values, counts = np.unique(self.interactions.data, return_counts=True)
        histogram = (
            {f"{v:g}": int(c) for v, c in zip(values, counts, strict=True)}
            if len(values) <= 20
            else {}
        )
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": self.n_interactions,
            "items_with_interactions": int((np.diff(self.interactions.tocsc().indptr) > 0).sum()),
            "density": self.density,
            "has_timestamps": self.timestamps is not None,
            "item_features": self.items.columns,
            "user_features": self.users.columns,
            "rating_histogram": histogram,
            "filtered": self.provenance.get("filtered", {}),
            "source": self.provenance.get("source"),
            "release": self.provenance.get("release"),
        }
