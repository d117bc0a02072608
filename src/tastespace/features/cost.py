"""The one-hot vs embedding cost model: why tastespace stores bags and learns short vectors.

For ``n`` rows of a categorical feature with vocabulary ``V`` and ``m`` values per row on
average, feeding a dense layer of width ``h``:

==============  ======================  ==========================
representation  input memory (float32)  first-layer multiply-adds
==============  ======================  ==========================
dense one-hot   4 · n · V               n · V · h
bag (CSR)       8 · (n · m + n + 1)     n · m · d  (+ n · d · h)
==============  ======================  ==========================

where the bag looks up ``d``-dimensional embeddings (a ``V × d`` table) and pools them.

>>> cost = feature_cost(n_rows=10_000, vocab=10_000, values_per_row=10, dim=32, hidden=256)
>>> round(cost.memory_ratio)  # one-hot needs this many times the memory of the bag
455
"""

from __future__ import annotations

from dataclasses import dataclass

from tastespace.data.dataset import Dataset

FLOAT_BYTES = 4
INDEX_BYTES = 8


@dataclass(frozen=True)
class FeatureCost:
    """Bytes and multiply-adds of one feature, one-hot vs bag-of-embeddings."""

    name: str
    vocab: int
    one_hot_bytes: int
    bag_bytes: int
    table_bytes: int
    one_hot_flops: int
    bag_flops: int

    @property
    def memory_ratio(self) -> float:
        return self.one_hot_bytes / max(self.bag_bytes, 1)

    @property
    def flop_ratio(self) -> float:
        return self.one_hot_flops / max(self.bag_flops, 1)


def feature_cost(
    n_rows: int, vocab: int, values_per_row: float, dim: int, hidden: int, name: str = "feature"
) -> FeatureCost:
    """Cost of one categorical feature in both representations (see module docstring)."""
    nnz = int(round(n_rows * values_per_row))
    return FeatureCost(
        name=name,
        vocab=vocab,
        one_hot_bytes=FLOAT_BYTES * n_rows * vocab,
        bag_bytes=INDEX_BYTES * (nnz + n_rows + 1),
        table_bytes=FLOAT_BYTES * vocab * dim,
        one_hot_flops=n_rows * vocab * hidden,
        bag_flops=nnz * dim + n_rows * dim * hidden,
    )


def dataset_costs(dataset: Dataset, dim: int = 32, hidden: int = 256) -> list[FeatureCost]:
    """Costs for the watch histories ("n of N items" per user) and each item bag feature."""
    n_users = max(dataset.n_users, 1)
    costs = [
        feature_cost(
            dataset.n_users,
            dataset.n_items,
            dataset.n_interactions / n_users,
            dim,
            hidden,
            name="user histories",
        )
    ]
    for name, bag in dataset.items.bags.items():
        costs.append(
            feature_cost(
                bag.n_rows,
                len(bag.vocab),
                len(bag.indices) / max(bag.n_rows, 1),
                dim,
                hidden,
                name=f"item {name}",
            )
        )
    return costs
