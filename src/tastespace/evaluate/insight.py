"""What an embedding space is worth beyond one recall figure: bias, hubs, coverage, buckets.

Why these: users of recommender libraries find that everyone gets the same popular items,
that a few items are everyone's neighbour (hubness, Radovanović et al. 2010), that long
vectors belong to popular items, and that a good mean hides a poor long tail. Each function
here measures one of those on a fitted model and a held-out split, with no plotting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy import stats

from tastespace.errors import DataError
from tastespace.evaluate.metrics import catalog_coverage, recall_at_k
from tastespace.index.topk import mask_rows, topk_rows

HEAD_SHARE = 0.01  # "popular" = the top 1 % of items by training interactions
BUCKETS = ("head", "torso", "tail")  # items by popularity: top 20 %, next 30 %, last 50 %


def item_counts(interactions: sp.csr_matrix) -> np.ndarray:
    """Training interactions per item."""
    return np.bincount(interactions.indices, minlength=interactions.shape[1]).astype(np.float64)


def head_items(counts: np.ndarray, share: float = HEAD_SHARE) -> np.ndarray:
    """Boolean mask of the ``share`` most popular items (at least one)."""
    n_head = max(1, int(round(share * len(counts))))
    mask = np.zeros(len(counts), bool)
    mask[np.argsort(-counts, kind="stable")[:n_head]] = True
    return mask


def popularity_buckets(counts: np.ndarray) -> np.ndarray:
    """``0`` head (top 20 % by count), ``1`` torso (next 30 %), ``2`` tail (the rest)."""
    rank = np.empty(len(counts), np.int64)
    rank[np.argsort(-counts, kind="stable")] = np.arange(len(counts))
    share = rank / max(len(counts), 1)
    return np.where(share < 0.2, 0, np.where(share < 0.5, 1, 2))


def gini(exposure: np.ndarray) -> float:
    """Gini coefficient of how often each item is shown: 0 = all equally, → 1 = one item.

    >>> round(gini(np.array([1.0, 1.0, 1.0, 1.0])), 3), round(gini(np.array([0, 0, 0, 4.0])), 3)
    (0.0, 0.75)
    """
    x = np.sort(np.asarray(exposure, dtype=np.float64))
    if x.sum() <= 0:
        return 0.0
    n = len(x)
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


@dataclass(frozen=True)
class Hubness:
    """k-occurrence: how many items count item ``i`` among their ``k`` nearest neighbours."""

    k: int
    occurrence: np.ndarray
    skew: float
    hubs: np.ndarray  # the 10 items that are most often a neighbour
    antihubs: float  # share of items that are nobody's neighbour


def hubness(neighbour_ids: np.ndarray) -> Hubness:
    """From ``(n_items, k)`` neighbour lists (``-1`` padding ignored)."""
    n, k = neighbour_ids.shape
    valid = neighbour_ids[neighbour_ids >= 0]
    occurrence = np.bincount(valid, minlength=n).astype(np.float64)
    skew = float(stats.skew(occurrence)) if occurrence.std() > 0 else 0.0
    hubs = np.argsort(-occurrence, kind="stable")[:10]
    return Hubness(k, occurrence, skew, hubs, float((occurrence == 0).mean()))


def exposure_report(ranked: np.ndarray, counts: np.ndarray) -> dict[str, float]:
    """Popularity bias of recommendation lists: head share, Gini of exposure, coverage."""
    shown = ranked[ranked >= 0]
    exposure = np.bincount(shown, minlength=len(counts))
    head = head_items(counts)
    return {
        "head_share": float(head[shown].mean()) if len(shown) else 0.0,
        "head_share_of_catalog": float(head.mean()),
        "gini": gini(exposure),
        "coverage": catalog_coverage(ranked, len(counts)),
    }


def norm_popularity(vectors: np.ndarray, counts: np.ndarray) -> float:
    """Spearman correlation of item vector length with training popularity."""
    norms = np.linalg.norm(vectors, axis=1)
    if norms.std() == 0 or counts.std() == 0:
        return 0.0
    return float(stats.spearmanr(norms, counts).statistic)


def recall_by_user_activity(
    ranked: np.ndarray, fold_in: sp.csr_matrix, targets: sp.csr_matrix, k: int = 20
) -> dict[str, dict[str, float]]:
    """Recall@k of held-out users split into thirds by how much history they gave."""
    lengths = np.diff(fold_in.indptr)
    recall = recall_at_k(ranked, targets, k)
    edges = np.quantile(lengths, [1 / 3, 2 / 3])
    groups = np.digitize(lengths, edges, right=True)
    out = {}
    for group, name in enumerate(("light", "medium", "heavy")):
        mask = (groups == group) & np.isfinite(recall)
        if mask.any():
            out[name] = {
                "users": int(mask.sum()),
                "history": float(lengths[mask].mean()),
                f"recall@{k}": float(recall[mask].mean()),
            }
    return out


def recall_by_item_popularity(
    ranked: np.ndarray, targets: sp.csr_matrix, counts: np.ndarray, k: int = 20
) -> dict[str, dict[str, float]]:
    """Share of held-out target items found in the top ``k``, by the target's popularity bucket."""
    bucket = popularity_buckets(counts)
    top = ranked[:, :k]
    found = np.zeros(len(counts))
    wanted = np.zeros(len(counts))
    for row in range(targets.shape[0]):
        items = targets.indices[targets.indptr[row] : targets.indptr[row + 1]]
        wanted[items] += 1
        found[np.intersect1d(items, top[row])] += 1
    out = {}
    for code, name in enumerate(BUCKETS):
        mask = bucket == code
        if wanted[mask].sum() > 0:
            out[name] = {
                "items": int(mask.sum()),
                "targets": int(wanted[mask].sum()),
                f"hit@{k}": float(found[mask].sum() / wanted[mask].sum()),
            }
    return out


def recall_within_buckets(
    scores: np.ndarray,
    fold_in: sp.csr_matrix,
    targets: sp.csr_matrix,
    counts: np.ndarray,
    k: int = 20,
) -> dict[str, dict[str, float]]:
    """Recall@k of each user's targets in a popularity bucket, ranked among that bucket's
    warm items (``counts`` > 0).

    Why beside :func:`recall_by_item_popularity`: a catalog-wide top 20 almost never reaches
    the tail, so its hit rate there is ~0 for every model; ranking each bucket on its own asks
    whether a model orders the tail items it would show in a tail shelf or after filtering.
    Items without training interactions are left out: they are cold, not tail (on ml-100k a
    third of the tail bucket), and :mod:`.coldstart` measures them. ``scores`` is
    ``(users, n_items)``; items in ``fold_in`` are excluded.
    """
    bucket = np.where(counts > 0, popularity_buckets(counts), -1)
    seen = fold_in.tocsr()
    out = {}
    for code, name in enumerate(BUCKETS):
        columns = np.flatnonzero(bucket == code)
        wanted = targets[:, columns].tocsr()
        keep = np.diff(wanted.indptr) > 0
        if not keep.any():
            continue
        block = np.array(scores[np.ix_(keep, columns)], dtype=np.float32)
        mask_rows(block, seen[keep][:, columns])
        ranked, _ = topk_rows(block, min(k, len(columns)))
        out[name] = {
            "items": len(columns),
            "users": int(keep.sum()),
            f"recall@{k}": float(np.nanmean(recall_at_k(ranked, wanted[keep], k))),
        }
    return out


def space_report(
    model: Any, train: sp.csr_matrix, fold_in: sp.csr_matrix, targets: sp.csr_matrix, k: int = 10
) -> tuple[dict[str, Any], Hubness]:
    """Every number of the report for one model, one training matrix and held-out users, and
    the catalog's k-NN hubness (its per-item counts feed the report's histogram)."""
    if train.shape[1] != model.n_items:
        raise DataError(f"the data has {train.shape[1]} items, the model {model.n_items}")
    counts = item_counts(train)
    keep = np.diff(targets.indptr) > 0
    fold_in, targets = fold_in[keep], targets[keep]
    ranked, _ = model.recommend(fold_in, k=max(20, k))
    neighbour_ids, _ = model.similar_items(np.arange(model.n_items), k=k)
    hubs = hubness(neighbour_ids)
    report: dict[str, Any] = {
        "kind": model.kind,
        "items": model.n_items,
        "users": int(fold_in.shape[0]),
        "k": k,
        "recommendations": exposure_report(ranked[:, :k], counts),
        "neighbours": {
            **exposure_report(neighbour_ids, counts),
            "k_occurrence_skew": hubs.skew,
            "nobodys_neighbour": hubs.antihubs,
            "top_hubs": hubs.hubs.tolist(),
            "top_hub_occurrence": hubs.occurrence[hubs.hubs].tolist(),
        },
        "by_user_activity": recall_by_user_activity(ranked, fold_in, targets),
        "by_item_popularity": recall_by_item_popularity(ranked, targets, counts),
    }
    try:
        report["norm_popularity_spearman"] = norm_popularity(model.item_vectors(), counts)
    except NotImplementedError:
        report["norm_popularity_spearman"] = None
    return report, hubs
