"""Two models side by side: how alike their neighbourhoods are, and whether one ranks better.

Why a paired test: on the same held-out users the per-user differences cancel the users' own
difficulty, so a 0.005 Recall@20 gap that an unpaired comparison of two means cannot resolve
can still be real (or not): we report the mean difference, its 95 % interval, and the paired
t-test and Wilcoxon signed-rank p-values over users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy import stats

from tastespace.errors import DataError
from tastespace.evaluate.metrics import ndcg_at_k, recall_at_k
from tastespace.evaluate.protocol import HeldOut

METRICS = {"recall@20": (recall_at_k, 20), "ndcg@100": (ndcg_at_k, 100)}


@dataclass
class PairedMetric:
    a: float
    b: float
    diff: float
    ci95: tuple[float, float]
    p_ttest: float
    p_wilcoxon: float


@dataclass
class Comparison:
    k: int
    overlap: float  # mean |N_a(i) ∩ N_b(i)| / k over the items both catalogs hold
    items_compared: int
    users: int
    metrics: dict[str, PairedMetric] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            f"overlap@{self.k}": self.overlap,
            "items_compared": self.items_compared,
            "users": self.users,
            "metrics": {name: vars(m) for name, m in self.metrics.items()},
        }


def neighbour_overlap(a: Any, b: Any, k: int = 10) -> np.ndarray:
    """Per item of ``a`` that ``b`` also holds (by raw id): the share of its ``k`` nearest
    neighbours the two models agree on (order ignored)."""
    ids_b = {raw: index for index, raw in enumerate(b.item_ids_.ids.tolist())}
    raws_a = a.item_ids_.ids.tolist()
    shared = np.array([i for i, raw in enumerate(raws_a) if raw in ids_b], np.int64)
    if len(shared) == 0:
        raise DataError("the two models share no item ids; nothing to compare")
    in_b = np.array([ids_b[raws_a[i]] for i in shared], np.int64)
    near_a, _ = a.similar_items(shared, k=k)
    near_b, _ = b.similar_items(in_b, k=k)
    to_a = np.full(len(ids_b), -1, np.int64)
    to_a[in_b] = shared
    near_b = np.where(near_b >= 0, to_a[np.clip(near_b, 0, None)], -1)
    agree = [
        len(np.intersect1d(x[x >= 0], y[y >= 0])) / k for x, y in zip(near_a, near_b, strict=True)
    ]
    return np.asarray(agree)


def paired_metric(a_values: np.ndarray, b_values: np.ndarray) -> PairedMetric:
    """Mean of each, mean of ``b − a`` with a 95 % t interval, paired t and Wilcoxon p."""
    keep = np.isfinite(a_values) & np.isfinite(b_values)
    a_values, b_values = a_values[keep], b_values[keep]
    diff = b_values - a_values
    mean = float(diff.mean())
    if len(diff) < 2 or not np.any(diff):
        return PairedMetric(
            float(a_values.mean()), float(b_values.mean()), mean, (mean, mean), 1.0, 1.0
        )
    half = float(stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)))
    return PairedMetric(
        float(a_values.mean()),
        float(b_values.mean()),
        mean,
        (mean - half, mean + half),
        float(stats.ttest_rel(b_values, a_values).pvalue),
        float(stats.wilcoxon(diff).pvalue),
    )


def compare_models(a: Any, b: Any, heldout: HeldOut, k: int = 10) -> Comparison:
    """Neighbourhood overlap@k and paired Recall@20 / NDCG@100 over the held-out users."""
    if a.item_ids_ != b.item_ids_:
        raise DataError("paired metrics need both models fitted on the same item catalog")
    fold_in, targets = heldout.fold_in, heldout.targets
    keep = np.diff(sp.csr_matrix(targets).indptr) > 0
    fold_in, targets = fold_in[keep], targets[keep]
    if fold_in.shape[0] == 0:
        raise DataError("no held-out user has targets to compare on")
    deepest = max(cut for _, cut in METRICS.values())
    ranked_a, _ = a.recommend(fold_in, k=deepest)
    ranked_b, _ = b.recommend(fold_in, k=deepest)
    overlap = neighbour_overlap(a, b, k)
    result = Comparison(k, float(overlap.mean()), len(overlap), int(fold_in.shape[0]))
    for name, (metric, cut) in METRICS.items():
        result.metrics[name] = paired_metric(
            metric(ranked_a, targets, cut), metric(ranked_b, targets, cut)
        )
    return result
