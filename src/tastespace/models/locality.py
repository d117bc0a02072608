"""Cache-friendly numbering of a user × item matrix's rows and columns.

Why: an ALS sweep gathers, for every interaction, one row of the other side's factor table.
Once that table outgrows the last-level cache (200k users × 128 floats is 102 MB against this
machine's 32 MiB L3), every gather is a memory read in whatever order the ids came. Numbering
users and items so that those who share interactions are neighbours — reverse Cuthill–McKee on
the bipartite graph, scipy's — lets consecutive solves reuse cached rows. With implicit on
``synthetic:large`` (20M interactions) 4 sweeps took 18.4–18.7 s in the generator's order (18.4 s
shuffled) and 14.0 s in this one; at 1M and 5M, whose tables fit the cache, it made no
difference (docs/benchmarks-scale.md).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

LOCALITY_MIN_BYTES = 64 << 20
"""Reorder when the larger factor table is at least this big (twice the 32 MiB L3 measured):
5M interactions' 50k × 128 table (26 MB) gained nothing, 20M's 200k × 128 (102 MB) 25 %."""


def worth_reordering(shape: tuple[int, int], factors: int) -> bool:
    """Whether the larger side's float32 factor table outgrows the cache (``auto``)."""
    return max(shape) * factors * 4 >= LOCALITY_MIN_BYTES


def locality_order(matrix: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, columns)``: the new order of the matrix's rows and of its columns (position ``k``
    holds the old index), from reverse Cuthill–McKee on the bipartite graph of its pattern.
    Deterministic: the same matrix gives the same order."""
    n_rows = matrix.shape[0]
    pattern = sp.csr_matrix(
        (np.ones(matrix.nnz, np.float32), matrix.indices, matrix.indptr), shape=matrix.shape
    )
    graph = sp.bmat([[None, pattern], [pattern.T, None]], format="csr")
    order = reverse_cuthill_mckee(graph, symmetric_mode=True).astype(np.int64)
    return order[order < n_rows], order[order >= n_rows] - n_rows


def inverse(order: np.ndarray) -> np.ndarray:
    """Where each old index went: ``inverse(order)[order[k]] == k``."""
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    return position


def permuted(matrix: sp.csr_matrix, rows: np.ndarray, columns: np.ndarray) -> sp.csr_matrix:
    """``matrix[rows][:, columns]`` without scipy's slow column fancy-indexing."""
    out = matrix[rows]
    out.indices = inverse(columns).astype(out.indices.dtype)[out.indices]
    out.has_sorted_indices = False
    out.sort_indices()
    return out
