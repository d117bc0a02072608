"""Do my features pull their weight? Refit with each feature group removed or shuffled.

Why: side features can look helpful while doing nothing — shuffled features often score as
well as real ones (lightfm#551). On the identical split per seed, the feature-aware model is
refitted with all features, without each group (a bag such as genres or tags, or the numeric
columns), with every item's features moved to another item at random, and with none; warm
metrics come from held-out users (strong generalisation), cold-start metrics from items held
out of training and scored from their features alone (:mod:`tastespace.evaluate.coldstart`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from tastespace.data.dataset import Dataset, FeatureTable
from tastespace.data.splits import strong_generalization
from tastespace.errors import DataError
from tastespace.evaluate.coldstart import (
    cold_start_metrics,
    cold_start_split,
    without_user_generated_bags,
)
from tastespace.evaluate.protocol import evaluate_model
from tastespace.features.encoders import usable_column

NUMERIC = "numeric"


def feature_groups(table: FeatureTable) -> list[str]:
    """The groups a user can remove: each bag, and the numeric columns taken together."""
    groups = sorted(table.bags)
    if numeric_columns(table):
        groups.append(NUMERIC)
    return groups


def numeric_columns(table: FeatureTable) -> list[str]:
    frame = table.frame
    return [
        c
        for c in frame.columns
        if usable_column(str(c)) and np.issubdtype(frame[c].dtype, np.number)
    ]


def without_group(table: FeatureTable, group: str) -> FeatureTable:
    """``table`` with one feature group removed."""
    if group == NUMERIC:
        return FeatureTable(table.frame.drop(columns=numeric_columns(table)), dict(table.bags))
    if group not in table.bags:
        raise DataError(f"no feature group {group!r}; the catalog has {feature_groups(table)}")
    return FeatureTable(table.frame, {k: v for k, v in table.bags.items() if k != group})


def shuffled(table: FeatureTable, seed: int) -> FeatureTable:
    """Every item's features given to another item (one seeded permutation of the rows)."""
    permutation = np.random.default_rng(seed).permutation(len(table))
    moved = table.take(permutation)
    frame = moved.frame.copy()
    keep = [c for c in frame.columns if not usable_column(str(c))]  # titles etc. stay put
    frame[keep] = table.frame[keep].to_numpy()
    return FeatureTable(frame, moved.bags)


def variants(table: FeatureTable, seed: int) -> dict[str, FeatureTable]:
    """``all``, ``no <group>`` for each group, ``shuffled``, ``none``."""
    groups = feature_groups(table)
    if not groups:
        raise DataError(
            "the catalog has no item features to ablate; give item features",
            options=("item_features",),
        )
    out = {"all": table}
    out.update({f"no {g}": without_group(table, g) for g in groups})
    out["shuffled"] = shuffled(table, seed)
    none = table
    for group in groups:
        none = without_group(none, group)
    out["none"] = none
    return out


@dataclass
class AblationRow:
    variant: str
    runs: list[dict[str, float]] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        keys = self.runs[0].keys() if self.runs else ()
        out = {}
        for key in keys:
            values = np.array([run[key] for run in self.runs])
            out[key] = float(values.mean())
            out[f"{key} sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        return out


def ablate(
    dataset: Dataset,
    make_model: Callable[[int], Any],
    *,
    seeds: Sequence[int] = (0, 1),
    n_heldout: int | float = 0.1,
    cold_fraction: float = 0.1,
    progress: Callable[[str], None] | None = None,
) -> list[AblationRow]:
    """Warm Recall@20 / NDCG@100 and cold Recall@20 per feature variant, one run per seed."""
    rows: dict[str, AblationRow] = {}
    for seed in seeds:
        warm_split = strong_generalization(dataset, n_heldout=n_heldout, seed=seed)
        cold = cold_start_split(dataset, fraction=cold_fraction, n_heldout=n_heldout, seed=seed)
        for name, table in variants(dataset.items, seed).items():
            if progress is not None:
                progress(f"seed {seed}: {name}")
            warm_model = make_model(seed).fit(
                replace(warm_split.train, items=table), warm_split.validation
            )
            warm = evaluate_model(warm_model, warm_split.test, cutoffs=(20, 100))
            is_cold = np.zeros(dataset.n_items, bool)
            is_cold[cold.cold_items] = True
            cold_table = without_user_generated_bags(table, is_cold)  # a new item has no tags
            cold_model = make_model(seed).fit(replace(cold.train, items=cold_table))
            scores = cold_model.score(cold.fold_in)[:, cold.cold_items]
            run = {
                "warm recall@20": warm["recall@20"],
                "warm ndcg@100": warm["ndcg@100"],
                "cold recall@20": cold_start_metrics(scores, cold.targets)["recall@20"],
            }
            rows.setdefault(name, AblationRow(name)).runs.append(run)
    return list(rows.values())
