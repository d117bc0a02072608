"""Watch histories as model input: one canonical form, a CSR matrix of users × items.

The engine room speaks dense item indices (0..n_items-1), never the raw ids a user knows. So a
raw id can't pass for an index by accident, a model takes histories only as

* a users × items CSR matrix (what splits and evaluation hand around), or
* :class:`ItemIndices` — lists of dense indices, marked as such: ``ItemIndices([[0, 3], [2]])``
  for two users, ``ItemIndices([0, 3])`` for one.

A plain list is refused with a message pointing to the raw-id front door
(``tastespace.open(model).recommend(history=[...])``), because ``[1, 50, 181]`` reads equally
well as MovieLens ids and as indices, and the two differ by one.

Example: two users who watched items [0, 3] and [2]::

    >>> h, single = as_histories(ItemIndices([[0, 3], [2]]), n_items=4)
    >>> h.toarray().astype(int).tolist(), single
    ([[1, 0, 0, 1], [0, 0, 1, 0]], False)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from tastespace.errors import DataError

FRONT_DOOR = "tastespace.open(model).recommend(history=[raw ids or titles])"


class ItemIndices:
    """Histories of dense item indices (not raw ids): one sequence, or one per user.

    Entries must be integers; anything else (a title, a float) raises :class:`DataError`.
    """

    __slots__ = ("rows", "single")

    def __init__(self, histories: Sequence[Sequence[int]] | Sequence[int] | np.ndarray) -> None:
        rows = list(histories)
        self.single = len(rows) == 0 or np.isscalar(rows[0]) or isinstance(rows[0], np.integer)
        self.rows = [_index_row(r, row) for r, row in enumerate([rows] if self.single else rows)]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        shown = self.rows[0].tolist() if self.single else [r.tolist() for r in self.rows[:3]]
        return f"ItemIndices({shown}{'' if self.single or len(self) <= 3 else ', …'})"


Histories = sp.spmatrix | ItemIndices


def as_histories(histories: Histories, n_items: int) -> tuple[sp.csr_matrix, bool]:
    """CSR (float32, weights kept as given) and whether a single history was passed."""
    if sp.issparse(histories):
        matrix = sp.csr_matrix(histories, dtype=np.float32)
        if matrix.shape[1] != n_items:
            raise DataError(
                f"history matrix has {matrix.shape[1]} columns, model has {n_items} items"
            )
        return matrix, False
    if not isinstance(histories, ItemIndices):
        raise TypeError(
            f"histories must be a users × items CSR matrix or ItemIndices([...]) of dense item "
            f"indices, not {type(histories).__name__}; for raw ids or titles use {FRONT_DOOR}"
        )
    rows = histories.rows
    indptr = np.zeros(len(rows) + 1, np.int64)
    for r, arr in enumerate(rows):
        if len(arr) and (arr[0] < 0 or arr[-1] >= n_items):
            bad = arr[0] if arr[0] < 0 else arr[-1]
            raise DataError(f"history {r} has item index {bad}, outside 0..{n_items - 1}")
        indptr[r + 1] = indptr[r] + len(arr)
    indices = np.concatenate(rows) if rows else np.empty(0, np.int64)
    data = np.ones(len(indices), np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_items)), histories.single


def _index_row(r: int, row: Any) -> np.ndarray:
    """Sorted unique int64 indices of one history; a non-integer entry is an error."""
    arr = np.asarray(row).ravel()
    if len(arr) and arr.dtype.kind not in "iu":
        entries = row.tolist() if isinstance(row, np.ndarray) else list(row)
        bad = next((v for v in entries if not _is_index(v)), entries[0])
        raise DataError(
            f"history {r} holds {bad!r}, not a dense item index (an integer 0..n_items-1); "
            f"for raw ids or titles use {FRONT_DOOR}"
        )
    return np.unique(arr.astype(np.int64))


def _is_index(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
