"""Watch histories as model input: one canonical form, a CSR matrix of users × items.

Callers may pass a CSR matrix, a list of item-index sequences, or one 1-D sequence (a single
user); :func:`as_histories` turns each into CSR and says whether the caller asked for one row,
so results can be shaped to match (``(k,)`` for one history, ``(n, k)`` for many).

Example: two users who watched items [0, 3] and [2]::

    >>> h, single = as_histories([[0, 3], [2]], n_items=4)
    >>> h.toarray().astype(int).tolist(), single
    ([[1, 0, 0, 1], [0, 0, 1, 0]], False)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from tastespace.errors import DataError

Histories = sp.spmatrix | Sequence[Sequence[int]] | Sequence[int] | np.ndarray


def as_histories(histories: Histories, n_items: int) -> tuple[sp.csr_matrix, bool]:
    """CSR (float32, binary weights kept as given) and whether a single history was passed."""
    if sp.issparse(histories):
        matrix = sp.csr_matrix(histories, dtype=np.float32)
        if matrix.shape[1] != n_items:
            raise DataError(
                f"history matrix has {matrix.shape[1]} columns, model has {n_items} items"
            )
        return matrix, False
    rows = list(histories)
    single = len(rows) == 0 or np.isscalar(rows[0]) or isinstance(rows[0], np.integer)
    if single:
        rows = [rows]
    indptr = np.zeros(len(rows) + 1, np.int64)
    parts = []
    for r, row in enumerate(rows):
        arr = np.unique(np.asarray(row, dtype=np.int64).ravel())
        if len(arr) and (arr[0] < 0 or arr[-1] >= n_items):
            bad = arr[0] if arr[0] < 0 else arr[-1]
            raise DataError(f"history {r} has item index {bad}, outside 0..{n_items - 1}")
        parts.append(arr)
        indptr[r + 1] = indptr[r] + len(arr)
    indices = np.concatenate(parts) if parts else np.empty(0, np.int64)
    data = np.ones(len(indices), np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_items)), single
