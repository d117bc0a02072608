"""Catch-up Adam: dense Adam's trajectory while touching only the rows a step reads."""

from __future__ import annotations

import copy

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from tastespace.models.neural import NeuralRecommender
from tastespace.models.neural.optim import CatchUpAdam


def _intermittent_run(steps: int, sparse_optimiser=None, state: dict | None = None):
    """Train a 60-row table where each step reads 5 random rows; the rows read at every step
    and the final weights. Dense Adam when ``sparse_optimiser`` is None."""
    torch.manual_seed(0)
    table = nn.Embedding(60, 8, sparse=sparse_optimiser is not None)
    target = torch.randn(60, 8)
    optimiser = (
        torch.optim.Adam(table.parameters(), lr=0.01)
        if sparse_optimiser is None
        else sparse_optimiser([table])
    )
    generator = torch.Generator().manual_seed(1)
    reads = []
    for _ in range(steps):
        rows = torch.randint(0, 60, (5,), generator=generator)
        out = table(rows)
        reads.append(out.detach())
        optimiser.zero_grad()
        ((out - target[rows]) ** 2).sum().backward()
        optimiser.step()
    if sparse_optimiser is not None:
        optimiser.flush()
    return torch.stack(reads), table.weight.detach()


def test_catch_up_adam_follows_dense_adam_where_lazy_adam_drifts():
    dense_reads, dense_final = _intermittent_run(300)
    reads, final = _intermittent_run(300, lambda t: CatchUpAdam(t, lr=0.01))
    assert (reads - dense_reads).abs().max() < 1e-4  # every row read is up to date
    assert (final - dense_final).abs().max() < 1e-4
    lazy = lambda t: torch.optim.SparseAdam([m.weight for m in t], lr=0.01)  # noqa: E731
    lazy_reads, _ = _intermittent_run(300, lambda t: _Flushing(lazy(t)))
    assert (lazy_reads - dense_reads).abs().max() > 0.05


class _Flushing:
    """SparseAdam with a no-op flush, to run it through the same loop."""

    def __init__(self, optimiser: torch.optim.Optimizer) -> None:
        self.optimiser = optimiser

    def zero_grad(self) -> None:
        self.optimiser.zero_grad()

    def step(self) -> None:
        self.optimiser.step()

    def flush(self) -> None:
        pass


def test_state_dict_round_trip_continues_the_same_trajectory():
    torch.manual_seed(0)
    tables = [nn.Embedding(30, 4, sparse=True) for _ in range(2)]
    copies = [nn.Embedding(30, 4, sparse=True) for _ in range(2)]
    optimiser = CatchUpAdam(tables, lr=0.05)
    rows = [torch.tensor([1, 2, 3]), torch.tensor([3, 7]), torch.tensor([20])]

    def step(ts: list[nn.Embedding], opt: CatchUpAdam, r: torch.Tensor) -> None:
        opt.zero_grad()
        sum(t(r).square().sum() for t in ts).backward()
        opt.step()

    for r in rows:
        step(tables, optimiser, r)
    for twin, table in zip(copies, tables, strict=True):
        twin.load_state_dict(table.state_dict())
    resumed = CatchUpAdam(copies, lr=0.05)
    resumed.load_state_dict(copy.deepcopy(optimiser.state_dict()))  # as read from a file
    assert resumed.state[copies[0].weight]["last"].dtype == torch.int64
    for r in rows[::-1]:
        step(tables, optimiser, r)
        step(copies, resumed, r)
    optimiser.flush()
    resumed.flush()
    for twin, table in zip(copies, tables, strict=True):
        torch.testing.assert_close(twin.weight, table.weight, rtol=0, atol=0)


def test_close_removes_the_reading_hooks():
    table = nn.Embedding(10, 2, sparse=True)
    optimiser = CatchUpAdam([table], lr=0.1)
    optimiser.zero_grad()
    table(torch.tensor([0])).sum().backward()
    optimiser.step()
    optimiser.close()
    before = table.weight.detach().clone()
    table(torch.tensor([0]))  # no catch-up on read once closed
    assert torch.equal(before, table.weight)


def test_auto_puts_only_the_tables_a_step_reads_little_of_on_sparse_gradients():
    rng = np.random.default_rng(0)
    matrix = sp.random(4000, 300, density=0.05, random_state=rng, format="csr")
    model = NeuralRecommender(batch_size=64)
    # 64 of 4,000 users (1.6 %) a step; the history and ID tables are read almost whole.
    assert model._sparse_tables(matrix, sampled=False) == frozenset({"users"})
    small = NeuralRecommender(batch_size=64)
    assert small._sparse_tables(matrix[:600], sampled=False) == frozenset()
    assert NeuralRecommender(sparse_gradients="on")._sparse_tables(matrix, False) == frozenset(
        {"ids", "history", "users"}
    )
    assert NeuralRecommender(sparse_gradients="off")._sparse_tables(matrix, False) == frozenset()


def test_a_fit_on_sparse_tables_trains_the_model_dense_adam_trains():
    from tastespace.data import load_dataset

    ds = load_dataset("synthetic:tiny")
    options = dict(epochs=3, dim=8, hidden=16, item_hidden=16, batch_size=32, weight_decay=0.0)
    dense = NeuralRecommender(sparse_gradients="off", **options).fit(ds)
    sparse = NeuralRecommender(sparse_gradients="on", **options).fit(ds)
    assert sparse.module_.item_tower.ids.sparse and not dense.module_.item_tower.ids.sparse
    assert dense.train_report_.best_epoch == sparse.train_report_.best_epoch
    np.testing.assert_allclose(sparse.item_vectors(), dense.item_vectors(), atol=1e-3)


def test_a_sparse_fit_resumed_from_its_checkpoint_continues_exactly(planted_split, tmp_path):
    from tastespace.models.fitting import TrainingOptions

    data = planted_split.train
    options = dict(dim=8, hidden=16, item_hidden=16, batch_size=32, patience=50)
    options.update(validation_users=0.1, sparse_gradients="on")

    def run(epochs: int, **training) -> NeuralRecommender:
        model = NeuralRecommender(epochs=epochs, **options)
        return model.fit(data, training=TrainingOptions(threads=1, **training))

    straight = run(3)
    run(1, checkpoint_dir=str(tmp_path))
    resumed = run(3, checkpoint_dir=str(tmp_path), resume=True)
    assert resumed.module_.item_tower.ids.sparse
    np.testing.assert_array_equal(resumed.item_vectors(), straight.item_vectors())
    assert resumed.train_report_.history == straight.train_report_.history
