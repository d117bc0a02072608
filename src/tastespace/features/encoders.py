"""Encoders: feature tables → model-ready arrays (normalised numerics, index bags).

Fitted on the training catalog and stored in the bundle (statistics and vocabularies as JSON), so
a cold-start item or a user at inference is encoded exactly as in training.

Policies (documented fallbacks, never a crash deep in torch):

* a NaN numeric value is imputed with the training mean and flagged in a ``<col>__missing``
  indicator column the model learns from;
* a numeric or categorical column missing at inference is treated as missing for every row, with
  a :class:`~tastespace.errors.DataWarning` naming it;
* a categorical value unseen in training maps to a reserved "unknown" index 0 —
  :meth:`FeatureEncoder.unseen` lists them, so callers report them instead of dropping them
  silently (``tastespace add-items``).

Example — two numeric columns and a genre bag for 2 movies::

    numeric  float32 (2, 4)   [year_z, year__missing, runtime_z, runtime__missing]
    bags     {"genres": (indices=[1, 2, 2], offsets=[0, 2, 3])}   index 0 = unknown
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tastespace.data.bags import Bags
from tastespace.data.dataset import FeatureTable
from tastespace.errors import DataError, DataWarning

#: Columns never used as model inputs: ground truth of the synthetic generator, free text, and
#: statistics the loaders derive from *all* interactions (held-out users included) — using them
#: would leak the evaluation targets; models derive popularity from their training data instead.
EXCLUDED_COLUMNS = frozenset({"title", "zip_code", "imdb_url", "log_popularity", "mean_rating"})
EXCLUDED_PREFIXES = ("planted_",)


def usable_column(name: str) -> bool:
    """Whether a catalog column may feed a model (no titles, no leaky derived popularity)."""
    return name not in EXCLUDED_COLUMNS and not name.startswith(EXCLUDED_PREFIXES)


@dataclass
class EncodedFeatures:
    """Model inputs for ``n`` rows: a numeric block and one (indices, offsets) pair per bag."""

    numeric: np.ndarray
    bags: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return self.numeric.shape[0]


@dataclass
class FeatureEncoder:
    """Fitted encoding of a :class:`FeatureTable` (numerics, single categoricals, bags)."""

    numeric_stats: dict[str, tuple[float, float]] = field(default_factory=dict)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)  # index 0 = unknown

    @classmethod
    def fit(cls, table: FeatureTable, include: list[str] | None = None) -> FeatureEncoder:
        """Learn statistics/vocabularies from ``table`` (only ``include`` columns if given)."""
        want = (lambda c: c in include) if include is not None else usable_column
        stats: dict[str, tuple[float, float]] = {}
        for column in table.numeric_columns:
            if not want(column):
                continue
            values = table.frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
            finite = values[np.isfinite(values)]
            if len(finite) == 0:
                continue
            std = float(finite.std())
            stats[column] = (float(finite.mean()), std if std > 0 else 1.0)
        vocabularies: dict[str, list[str]] = {}
        for column in table.categorical_columns:
            if want(column):
                values = table.frame[column].dropna().astype(str).unique().tolist()
                vocabularies[column] = ["<unknown>", *sorted(values)]
        for name, bag in table.bags.items():
            if want(name):
                vocabularies[name] = ["<unknown>", *bag.vocab]
        return cls(stats, vocabularies)

    @property
    def numeric_width(self) -> int:
        return 2 * len(self.numeric_stats)

    def transform(self, table: FeatureTable) -> EncodedFeatures:
        """Encode ``table`` with the fitted statistics (see module docstring for fallbacks)."""
        n = len(table)
        numeric = np.zeros((n, self.numeric_width), np.float32)
        for k, (column, (mean, std)) in enumerate(self.numeric_stats.items()):
            if column not in table.frame:
                _warn_missing(column)
                numeric[:, 2 * k + 1] = 1.0
                continue
            try:
                values = pd.to_numeric(table.frame[column]).to_numpy(np.float64, na_value=np.nan)
            except (TypeError, ValueError) as err:
                raise DataError(f"feature {column!r} must be numeric ({err})") from err
            missing = ~np.isfinite(values)
            numeric[:, 2 * k] = np.where(missing, 0.0, (values - mean) / std)
            numeric[:, 2 * k + 1] = missing
        bags = {
            name: self._encode_bag(table, name, vocab) for name, vocab in self.vocabularies.items()
        }
        return EncodedFeatures(numeric, bags)

    def unseen(self, table: FeatureTable) -> dict[str, tuple[int, list[str]]]:
        """Categorical values of ``table`` unseen in training, which encode as "unknown":
        ``{column: (rows holding one, sorted distinct values)}`` for columns that have any."""
        found: dict[str, tuple[int, list[str]]] = {}
        for name, vocab in self.vocabularies.items():
            rows = _labels(table, name)
            if rows is None:
                continue
            known = set(vocab[1:])
            new = [sorted(set(row) - known) for row in rows]
            values = sorted({value for row in new for value in row})
            if values:
                found[name] = (sum(1 for row in new if row), values)
        return found

    def missing(self, table: FeatureTable) -> list[str]:
        """Input columns ``table`` lacks (each is treated as missing for every row)."""
        have = set(table.frame.columns) | set(table.bags)
        return [c for c in [*self.numeric_stats, *self.vocabularies] if c not in have]

    def unknown(self, n: int) -> EncodedFeatures:
        """Encoding of ``n`` rows about which nothing is known (all missing / unknown)."""
        numeric = np.zeros((n, self.numeric_width), np.float32)
        numeric[:, 1::2] = 1.0
        empty = (np.zeros(n, np.int64), np.arange(n + 1, dtype=np.int64))
        return EncodedFeatures(numeric, {name: empty for name in self.vocabularies})

    def _encode_bag(
        self, table: FeatureTable, name: str, vocab: list[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        lookup = {value: k for k, value in enumerate(vocab)}
        n = len(table)
        if name in table.bags:
            bag: Bags = table.bags[name]
            remap = np.array([lookup.get(v, 0) for v in bag.vocab], np.int64)
            return remap[bag.indices] if len(
                bag.indices
            ) else bag.indices.copy(), bag.offsets.copy()
        if name in table.frame:
            values = table.frame[name]
            indices = np.array(
                [0 if pd.isna(v) else lookup.get(str(v), 0) for v in values], np.int64
            )
            return indices, np.arange(n + 1, dtype=np.int64)
        _warn_missing(name)
        return np.zeros(n, np.int64), np.arange(n + 1, dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        return {"numeric_stats": self.numeric_stats, "vocabularies": self.vocabularies}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> FeatureEncoder:
        return cls(
            {k: (float(v[0]), float(v[1])) for k, v in payload["numeric_stats"].items()},
            {k: list(v) for k, v in payload["vocabularies"].items()},
        )


def _labels(table: FeatureTable, name: str) -> list[list[str]] | None:
    """Each row's values of a bag or single-valued categorical, or None when absent."""
    if name in table.bags:
        bag = table.bags[name]
        return [bag.row(i) for i in range(bag.n_rows)]
    if name in table.frame:
        return [[] if pd.isna(v) else [str(v)] for v in table.frame[name]]
    return None


def _warn_missing(column: str) -> None:
    warnings.warn(
        f"feature {column!r} is missing; treating it as unknown for every row",
        DataWarning,
        stacklevel=3,
    )
