"""The one-hot vs embedding argument measured on this machine: time and input memory per batch.

:mod:`tastespace.features.cost` predicts the cost of a multi-hot input from its shape; this
module times the four ways PyTorch can feed one batch of bags (``m`` of ``V`` values per row)
into a ``V × d`` weight, forward + backward, and reports the bytes of the input tensors each
way really builds:

======================  =====================================================  ============
method                  forward                                                input
======================  =====================================================  ============
dense                   ``multi_hot (B × V) @ W``                              ``4·B·V``
sparse-mm               ``torch.sparse.mm(coo (B × V), W)``                    COO indices
embedding-bag           ``EmbeddingBag(V, d, mode="sum")``, dense gradient     ``8·(nnz+B)``
embedding-bag-sparse    the same with ``sparse=True``: only touched rows' grad ``8·(nnz+B)``
======================  =====================================================  ============

All four compute the same ``(B, d)`` output (checked by :func:`measure_bags`), so the times
compare like with like. The dense gradient of ``W`` is ``V × d`` whatever the batch; only
sparse gradients make the backward pass scale with the batch's values instead of the catalog.

Example
-------
>>> batch = synthetic_bags(batch=8, vocab=100, per_row=3, seed=0)
>>> [m.method for m in measure_bags(batch, vocab=100, dim=4, repeats=1)]
['dense', 'sparse-mm', 'embedding-bag', 'embedding-bag-sparse']
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from tastespace.data.dataset import Dataset
from tastespace.errors import ConfigError, DataError

METHODS = ("dense", "sparse-mm", "embedding-bag", "embedding-bag-sparse")

#: Dense inputs larger than this are not built (the point is made long before): 2 GiB.
MAX_DENSE_BYTES = 2 << 30


@dataclasses.dataclass(frozen=True)
class Batch:
    """One batch of bags: ``indices`` (int64, the values of all rows) and ``offsets`` (where
    each row starts), as ``torch.nn.EmbeddingBag`` takes them."""

    name: str
    indices: np.ndarray
    offsets: np.ndarray

    @property
    def size(self) -> int:
        return len(self.offsets)


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Median seconds of one forward + backward pass, and the bytes of its input tensors.

    ``seconds`` is None for a dense input too large to build (see :func:`measure_bags`)."""

    feature: str
    method: str
    vocab: int
    batch: int
    nnz: int
    dim: int
    seconds: float | None
    input_bytes: int

    def to_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def synthetic_bags(batch: int, vocab: int, per_row: int, seed: int, name: str = "") -> Batch:
    """``batch`` rows of ``per_row`` distinct values drawn uniformly from ``vocab`` (seeded)."""
    if per_row > vocab:
        raise ConfigError(f"per_row ({per_row}) cannot exceed vocab ({vocab})")
    rng = np.random.default_rng(seed)
    indices = np.concatenate([rng.choice(vocab, per_row, replace=False) for _ in range(batch)])
    offsets = np.arange(0, batch * per_row, per_row, dtype=np.int64)
    return Batch(name or f"{per_row} of {vocab:,}", indices.astype(np.int64), offsets)


def sample_rows(matrix: sp.csr_matrix, batch: int, seed: int, name: str) -> Batch:
    """Up to ``batch`` non-empty rows of ``matrix`` (seeded draw) as a batch of bags."""
    lengths = np.diff(matrix.indptr)
    rows = np.flatnonzero(lengths)
    if len(rows) == 0:
        raise DataError(f"{name}: no non-empty rows to measure")
    rows = np.random.default_rng(seed).choice(rows, min(batch, len(rows)), replace=False)
    picked = matrix[np.sort(rows)]
    offsets = picked.indptr[:-1].astype(np.int64)
    return Batch(name, picked.indices.astype(np.int64), offsets)


def dataset_batches(dataset: Dataset, batch: int, seed: int) -> list[tuple[Batch, int]]:
    """The data's own shapes: a batch of user histories over the catalog, then one batch per
    item bag feature (genres, tags …), each with its vocabulary size."""
    histories = sample_rows(dataset.interactions.tocsr(), batch, seed, "user histories")
    out = [(histories, dataset.n_items)]
    for name, bag in dataset.items.bags.items():
        matrix = sp.csr_matrix(
            (np.ones(len(bag.indices), np.float32), bag.indices, bag.offsets),
            shape=(bag.n_rows, len(bag.vocab)),
        )
        out.append((sample_rows(matrix, batch, seed, f"item {name}"), len(bag.vocab)))
    return out


def measure_bags(
    batch: Batch,
    vocab: int,
    dim: int = 64,
    repeats: int = 5,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    threads: int = 1,
    max_dense_bytes: int = MAX_DENSE_BYTES,
) -> list[Measurement]:
    """Time each method on ``batch`` (median of ``repeats`` after one warm-up pass).

    ``threads``: torch's intra-op threads while timing (restored after). One by default: on a
    shared machine, multi-threaded kernels on small inputs spin-wait and time the neighbours.
    A dense input over ``max_dense_bytes`` is not built (its row has ``seconds=None``).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(batch, vocab, dim, repeats, methods, seed, max_dense_bytes)
    finally:
        torch.set_num_threads(before)


def _measure(
    batch: Batch,
    vocab: int,
    dim: int,
    repeats: int,
    methods: Sequence[str],
    seed: int,
    max_dense_bytes: int,
) -> list[Measurement]:
    import torch

    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ConfigError(f"unknown cost method(s) {sorted(unknown)}; valid: {list(METHODS)}")
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(vocab, dim, generator=generator) / dim**0.5
    indices = torch.from_numpy(batch.indices)
    offsets = torch.from_numpy(batch.offsets)
    rows = torch.repeat_interleave(
        torch.arange(batch.size), torch.diff(offsets, append=torch.tensor([len(indices)]))
    )
    reference: torch.Tensor | None = None
    out = []
    for method in methods:
        seconds, input_bytes = None, 4 * batch.size * vocab
        if method != "dense" or input_bytes <= max_dense_bytes:
            step, inputs = _pass(method, weight, indices, offsets, rows, batch.size, vocab)
            input_bytes = sum(t.element_size() * t.numel() for t in inputs)
            result = step()
            if reference is None:
                reference = result
            elif not torch.allclose(result, reference, atol=1e-4):
                raise AssertionError(f"{method} computed another output than {methods[0]}")
            seconds = _median_seconds(step, repeats)
        out.append(
            Measurement(
                batch.name, method, vocab, batch.size, len(indices), dim, seconds, input_bytes
            )
        )
    return out


def _pass(method, weight, indices, offsets, rows, batch, vocab):
    """``(step, input tensors)``: one forward + backward of ``method``; step returns the output."""
    import torch
    from torch import nn

    if method in ("dense", "sparse-mm"):
        table = weight.clone().requires_grad_(True)
        if method == "dense":
            multi_hot = torch.zeros(batch, vocab)
            multi_hot[rows, indices] = 1.0
            inputs = [multi_hot]

            def forward() -> torch.Tensor:
                return multi_hot @ table

        else:
            coo = torch.sparse_coo_tensor(
                torch.stack([rows, indices]),
                torch.ones(len(indices)),
                (batch, vocab),
                check_invariants=False,
            ).coalesce()
            inputs = [coo.indices(), coo.values()]

            def forward() -> torch.Tensor:
                return torch.sparse.mm(coo, table)

        params = [table]
    else:
        bag = nn.EmbeddingBag(vocab, weight.shape[1], mode="sum", sparse=method.endswith("sparse"))
        with torch.no_grad():
            bag.weight.copy_(weight)
        inputs = [indices, offsets]
        params = [bag.weight]

        def forward() -> torch.Tensor:
            return bag(indices, offsets)

    def step() -> torch.Tensor:
        for p in params:
            p.grad = None
        output = forward()
        output.sum().backward()
        return output.detach()

    return step, inputs


def _median_seconds(step: Callable[[], object], repeats: int) -> float:
    step()  # warm-up: allocator, kernels
    times = []
    for _ in range(max(repeats, 1)):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def sweep(
    vocabs: Sequence[int],
    batch: int,
    per_row: int,
    dim: int = 64,
    repeats: int = 3,
    seed: int = 0,
    threads: int = 1,
    max_dense_bytes: int = MAX_DENSE_BYTES,
) -> list[Measurement]:
    """Every method at each catalog size in ``vocabs``, ``per_row`` values per row: the curve
    that shows dense cost growing with the catalog and the bags' staying flat."""
    out = []
    for vocab in vocabs:
        rows = synthetic_bags(batch, vocab, min(per_row, vocab), seed, name="sweep")
        out += measure_bags(
            rows, vocab, dim, repeats, seed=seed, threads=threads, max_dense_bytes=max_dense_bytes
        )
    return out


def sweep_vocabs(n_items: int) -> list[int]:
    """Catalog sizes for :func:`sweep`: 1k to 100k in half-decades, plus the data's own."""
    return sorted({1_000, 3_000, 10_000, 30_000, 100_000, max(int(n_items), 1)})
