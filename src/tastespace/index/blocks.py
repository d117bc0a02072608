"""Fixed-size query blocks, so a row's answer never depends on who shares its batch.

BLAS picks kernels and tilings by matrix shape: on this machine ``(U @ V.T)[i]`` differs in the
last bits between a batch of 50 rows and the same row alone (numpy/OpenBLAS: all 50 rows alone,
40 of 50 in 16-row blocks, and on a 180-item catalog even the row's position inside a block
matters), and near-ties then reorder. Products therefore run through torch's MKL in blocks of
exactly ``QUERY_BLOCK`` rows, the last padded with zeros: measured bit-identical for every
position and batch size from 180 to 40,000 items (``tests/index/test_blocks.py`` keeps it so).

    >>> [(start, stop) for start, stop in fixed_blocks(35, 16)]
    [(0, 16), (16, 32), (32, 35)]
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator
from typing import TypeVar

import numpy as np
import scipy.sparse as sp
import torch

QUERY_BLOCK = 16
"""Rows per product: small enough that one user pays little more than a matrix-vector product
(the item table is read once either way), large enough for BLAS's matrix kernels."""

NARROW_BLOCK = 32
"""Blocks of up to this many rows are scored as ``table @ block.T``: with the catalog as MKL's
long side a 16-row block of the 40k × 101 table took 2.8 against 7.1 ms (4.9 with its output
transposed back), for the same bits in every element once both sides have 12 rows or more
(measured for 12–40,000 items; :func:`layouts_agree` checks it on the machine at hand and
``tests/index/test_blocks.py`` keeps it so). Above 32 rows the transpose back costs more than
the product saves."""

Rows = TypeVar("Rows", np.ndarray, torch.Tensor)


def block_scores(block: torch.Tensor, table: torch.Tensor, live: int | None = None) -> torch.Tensor:
    """``(block @ table.T)[:live]`` (contiguous), by whichever layout is faster for the shape.

    ``block`` must have at least ``QUERY_BLOCK`` rows (pad it); ``live`` rows of it are wanted
    (all by default): a padded one-user block then copies one row back, not sixteen."""
    live = len(block) if live is None else live
    narrow = len(block) <= NARROW_BLOCK and len(table) >= QUERY_BLOCK
    if narrow and layouts_agree(torch.get_num_threads()):
        return torch.mm(table, block.T)[:, :live].T.contiguous()
    return torch.mm(block, table.T)[:live]


@functools.cache
def layouts_agree(threads: int) -> bool:
    """Whether this machine's BLAS, on ``threads`` threads, gives ``table @ block.T`` the bits
    of ``block @ table.T``: measured so on the AVX2 host of session 14, but another CPU's or
    library's kernels may sum in another order, and a row's answer would then depend on the
    size of its batch. Probed once per thread count on a few shapes; if any differs, every
    block keeps the row layout."""
    generator = torch.Generator().manual_seed(0)
    for n_items, width in ((QUERY_BLOCK, 8), (1000, 33), (5000, 101)):
        table = torch.randn(n_items, width, generator=generator)
        for height in (QUERY_BLOCK, NARROW_BLOCK):
            block = torch.randn(height, width, generator=generator)
            if not torch.equal(torch.mm(table, block.T).T, torch.mm(block, table.T)):
                return False
    return True


def row_logsumexp(logits: torch.Tensor) -> torch.Tensor:
    """``logsumexp`` of each row of ``(n, m)`` logits, the same bits for any ``n`` and call.

    Taken as ``max − log softmax(max)``, because torch's own ``logsumexp`` was neither: it
    sums a lone row of 32,768 values or more on every thread at once (another order than a
    row of a block gets), and its exponential (MKL's vector library) came out up to 9e-5 off
    (relative) on the second thread's rows in the first call of some test processes and exact
    in the next. The softmax reduces each row on one thread with its own exponential. It costs
    19 against 10 ms per 256 × 40,000 logits, and it is 8e-6 off where torch's was 9e-7."""
    if not logits.shape[1]:
        return logits.new_full((len(logits),), -torch.inf)
    peak, where = logits.max(dim=1, keepdim=True)
    share = torch.softmax(logits, dim=1).gather(1, where)
    # a row of -inf (nothing left to sum) or holding +inf: the softmax is NaN, the answer its peak
    return torch.where(torch.isinf(peak), peak, peak - share.log())[:, 0]


def dot_scores(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``queries @ vectors.T`` as float32, each row the same bits alone or in any batch."""
    q, v = as_tensor(queries), as_tensor(vectors)
    out = np.empty((q.shape[0], v.shape[0]), np.float32)
    with torch.no_grad():
        for start, stop in fixed_blocks(q.shape[0]):
            out[start:stop] = block_scores(pad_rows(q[start:stop]), v, stop - start).numpy()
    return out


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """Zero-copy view; read-only item tables are fine because products never write to them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def fixed_blocks(n_rows: int, block: int = QUERY_BLOCK) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive blocks of ``block`` rows covering ``n_rows``."""
    for start in range(0, n_rows, block):
        yield start, min(start + block, n_rows)


def pad_rows(rows: Rows, block: int = QUERY_BLOCK) -> Rows:
    """``rows`` with zero rows appended up to ``block`` rows (unchanged when already full)."""
    missing = block - rows.shape[0]
    if missing <= 0:
        return rows
    if isinstance(rows, torch.Tensor):
        return torch.cat([rows, rows.new_zeros((missing, *rows.shape[1:]))])
    return np.concatenate([rows, np.zeros((missing, *rows.shape[1:]), rows.dtype)])


def padded_positions(n_rows: int, block: int = QUERY_BLOCK) -> np.ndarray:
    """``0 … n_rows − 1``, then the last repeated up to ``block`` positions: the rows a
    product over per-row inputs (features) reads so it has at least ``block`` rows."""
    return np.minimum(np.arange(max(n_rows, block)), n_rows - 1)


def pad_histories(block: sp.csr_matrix, rows: int = QUERY_BLOCK) -> sp.csr_matrix:
    """``block`` with empty histories appended up to ``rows`` (unchanged when it has them)."""
    missing = rows - block.shape[0]
    if missing <= 0:
        return block
    indptr = np.concatenate([block.indptr, np.full(missing, block.indptr[-1])])
    return sp.csr_matrix((block.data, block.indices, indptr), shape=(rows, block.shape[1]))
