"""Bags: the one sparse form for multi-valued categoricals (genres, tags, watch histories).

A bag feature over ``n`` rows is CSR-style: ``indices`` holds every row's value ids back to back and
``offsets`` (length ``n + 1``) says where each row starts and ends — exactly what
``torch.nn.EmbeddingBag(..., include_last_offset=True)`` takes.
A dense one-hot matrix is never built.

Example: three movies with genres [Comedy, Drama], [], [Drama]::

    vocab   = ("Comedy", "Drama")
    indices = [0, 1,      1]
    offsets = [0,    2, 2, 3]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from tastespace.errors import DataError


@dataclass(frozen=True)
class Bags:
    """A multi-valued categorical feature for ``n_rows`` rows, with its value vocabulary."""

    vocab: tuple[str, ...]
    indices: np.ndarray  # int64, values in 0..len(vocab)-1
    offsets: np.ndarray  # int64, length n_rows + 1, non-decreasing, offsets[0] == 0
    weights: np.ndarray | None = None  # float32 per entry, or None for all-ones

    def __post_init__(self) -> None:
        if self.offsets.ndim != 1 or len(self.offsets) == 0 or self.offsets[0] != 0:
            raise DataError("bag offsets must be 1-D, start at 0 and have n_rows + 1 entries")
        if self.offsets[-1] != len(self.indices) or np.any(np.diff(self.offsets) < 0):
            raise DataError("bag offsets must be non-decreasing and end at len(indices)")
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= len(self.vocab)):
            raise DataError(f"bag indices must lie in 0..{len(self.vocab) - 1}")
        if self.weights is not None and len(self.weights) != len(self.indices):
            raise DataError("bag weights must have one entry per index")

    @property
    def n_rows(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> list[str]:
        """The value labels of row ``i``."""
        return [self.vocab[j] for j in self.indices[self.offsets[i] : self.offsets[i + 1]]]

    def lengths(self) -> np.ndarray:
        """Number of values in each row."""
        return np.diff(self.offsets)

    def first(self, missing: str = "(none)") -> list[str]:
        """Each row's first value (e.g. a movie's primary genre), ``missing`` for empty rows."""
        return [
            self.vocab[self.indices[start]] if end > start else missing
            for start, end in zip(self.offsets[:-1], self.offsets[1:], strict=True)
        ]

    def to_csr(self) -> sp.csr_matrix:
        """The bag as a sparse ``n_rows × len(vocab)`` matrix (for scipy / sklearn consumers)."""
        data = self.weights if self.weights is not None else np.ones(len(self.indices), np.float32)
        return sp.csr_matrix(
            (data, self.indices, self.offsets), shape=(self.n_rows, len(self.vocab))
        )

    def take(self, rows: np.ndarray) -> Bags:
        """A new bag feature holding only ``rows`` (in that order), same vocabulary."""
        gather, offsets = row_positions(self.offsets, rows)
        weights = None if self.weights is None else self.weights[gather]
        return Bags(self.vocab, self.indices[gather], offsets, weights)

    @classmethod
    def from_lists(cls, rows: Iterable[Sequence[str]], vocab: Sequence[str] | None = None) -> Bags:
        """Build from per-row lists of labels; the vocabulary is sorted unless given.

        With a given ``vocab``, a label outside it raises :class:`DataError` naming it.
        """
        rows = [list(r) for r in rows]
        if vocab is None:
            vocab = sorted({label for r in rows for label in r})
        lookup = {label: k for k, label in enumerate(vocab)}
        indices: list[int] = []
        offsets = [0]
        for r in rows:
            for label in dict.fromkeys(r):  # drop repeated labels within a row, keep order
                if label not in lookup:
                    raise DataError(f"value {label!r} is not in the known vocabulary")
                indices.append(lookup[label])
            offsets.append(len(indices))
        return cls(tuple(vocab), np.asarray(indices, np.int64), np.asarray(offsets, np.int64))

    @classmethod
    def from_strings(
        cls,
        values: Iterable[object],
        sep: str = "|",
        empty: Sequence[str] = ("", "(no genres listed)"),
    ) -> Bags:
        """Build from separator-joined strings such as MovieLens' ``"Comedy|Drama"``."""
        rows = []
        for value in values:
            if value is None or (isinstance(value, float) and np.isnan(value)):
                rows.append([])
                continue
            parts = [p.strip() for p in str(value).split(sep)]
            rows.append([p for p in parts if p not in empty])
        return cls.from_lists(rows)


def row_positions(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where ``rows``' entries sit in a bag's ``indices``, and the offsets of those rows alone.

    The one way a bag is cut to some of its rows (feature tables, training batches, candidate
    items), vectorised: no Python loop over rows.

    >>> offsets = np.array([0, 2, 2, 5])  # rows of length 2, 0, 3
    >>> gather, picked = row_positions(offsets, np.array([2, 0]))
    >>> gather.tolist(), picked.tolist()
    ([2, 3, 4, 0, 1], [0, 3, 5])
    """
    rows = np.asarray(rows, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64)
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    picked = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    gather = np.repeat(starts - picked[:-1], lengths) + np.arange(picked[-1], dtype=np.int64)
    return gather, picked
