"""Turn a table of (user, item, weight, timestamp) rows into a :class:`Dataset`.

Every loader (MovieLens, generic CSV/Parquet, synthetic) ends here, so the policies live in one
place: duplicate (user, item) rows, implicit-feedback binarisation, and the report of every row
that was filtered or merged (``provenance["filtered"]``) — nothing is dropped silently.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tastespace.data.dataset import Dataset, FeatureTable
from tastespace.data.vocab import Vocabulary
from tastespace.errors import DataError

DuplicatePolicy = Literal["sum", "max", "last", "first", "error"]
DUPLICATE_POLICIES: tuple[str, ...] = ("sum", "max", "last", "first", "error")
NonpositivePolicy = Literal["error", "drop"]
NONPOSITIVE_POLICIES: tuple[str, ...] = ("error", "drop")


def build_dataset(
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray | None = None,
    timestamps: np.ndarray | None = None,
    *,
    item_ids: np.ndarray | None = None,
    user_ids: np.ndarray | None = None,
    item_table: FeatureTable | None = None,
    user_table: FeatureTable | None = None,
    duplicates: DuplicatePolicy = "last",
    min_rating: float | None = None,
    nonpositive: NonpositivePolicy = "error",
    name: str = "dataset",
    provenance: dict[str, Any] | None = None,
) -> Dataset:
    """Build a dataset from parallel arrays of raw ids.

    ``item_ids`` / ``user_ids`` fix the vocabulary order (e.g. the full MovieLens catalog, rated
    or not) and must line up with ``item_table`` / ``user_table``; ids met only in interactions
    are appended after them and reported. ``duplicates`` says what to do with repeated
    (user, item) pairs: ``sum`` weights, keep the ``max``, the ``last`` or ``first`` row in file
    order, or raise (``error``). ``min_rating`` keeps rows with weight ≥ it, as weight 1.0.
    Without it every weight must be > 0: a rating ≤ 0 (a dislike, a "not rated" 0) is no
    positive weight, and the models would drop it or score around it, so ``nonpositive``
    says ``error`` (default, see :func:`nonpositive_error`) or ``drop`` (counted in
    ``provenance["filtered"]``).
    """
    check_policies(duplicates, nonpositive)
    n_rows = len(users)
    if len(items) != n_rows:
        raise DataError("user and item columns have different lengths")
    weights = np.ones(n_rows, np.float32) if weights is None else np.asarray(weights, np.float32)
    if np.isnan(weights).any():
        raise DataError("weight/rating column has missing values; fill or drop them first")
    filtered: dict[str, int] = dict((provenance or {}).get("filtered", {}))
    notes: list[str] = list((provenance or {}).get("notes", []))

    keep = _rows_to_keep(weights, min_rating, nonpositive, filtered)
    if keep is not None:
        users, items, weights = users[keep], items[keep], weights[keep]
        timestamps = None if timestamps is None else timestamps[keep]
        if min_rating is not None:
            weights = np.ones(len(weights), np.float32)
    if len(users) == 0:
        raise DataError(
            f"{name}: no interactions left"
            + (f" after keeping ratings ≥ {min_rating:g}" if min_rating is not None else "")
        )

    user_vocab, user_idx, extra_users = _vocabulary(users, user_ids, "user")
    item_vocab, item_idx, extra_items = _vocabulary(items, item_ids, "item")
    if item_ids is not None and extra_items:
        notes.append(f"{extra_items} item ids appear in interactions but not in the item table")
    if user_ids is not None and extra_users:
        notes.append(f"{extra_users} user ids appear in interactions but not in the user table")

    order, merged = _resolve_duplicates(user_idx, item_idx, len(item_vocab), weights, duplicates)
    if merged:
        filtered[merged_key(duplicates)] = merged

    u, i = user_idx[order.keep], item_idx[order.keep]
    w = order.weights
    indptr = np.zeros(len(user_vocab) + 1, np.int64)
    np.cumsum(np.bincount(u, minlength=len(user_vocab)), out=indptr[1:])
    matrix = sp.csr_matrix(
        (w, i.astype(np.int32), indptr), shape=(len(user_vocab), len(item_vocab))
    )
    ts = None if timestamps is None else np.asarray(timestamps, np.int64)[order.keep]

    return Dataset(
        interactions=matrix,
        user_ids=user_vocab,
        item_ids=item_vocab,
        items=_extend(item_table, len(item_vocab)),
        users=_extend(user_table, len(user_vocab)),
        timestamps=ts,
        name=name,
        provenance={**(provenance or {}), "filtered": filtered, "notes": notes},
    )


def _rows_to_keep(
    weights: np.ndarray, min_rating: float | None, nonpositive: str, filtered: dict[str, int]
) -> np.ndarray | None:
    """The rows the rating policies keep (counted in ``filtered``), or None to keep all."""
    if min_rating is not None:
        keep = weights >= min_rating
        filtered[f"rating < {min_rating:g}"] = int((~keep).sum())
        return keep
    row = first_nonpositive(weights)
    if row is None:
        return None
    if nonpositive == "error":
        raise nonpositive_error(f"data row {row + 1}", weights)
    keep = weights > 0
    filtered["rating ≤ 0 (dropped by nonpositive='drop')"] = int((~keep).sum())
    return keep


def merged_key(policy: str) -> str:
    """The ``provenance["filtered"]`` key counting duplicate rows merged under ``policy``."""
    return f"duplicate (user, item) rows merged by '{policy}'"


def check_policies(duplicates: str, nonpositive: str) -> None:
    """Refuse an unknown ``duplicates`` or ``nonpositive`` policy before any file is read."""
    if duplicates not in DUPLICATE_POLICIES:
        raise DataError(
            f"duplicates policy must be one of {'|'.join(DUPLICATE_POLICIES)}, got {duplicates!r}"
        )
    if nonpositive not in NONPOSITIVE_POLICIES:
        raise DataError(
            f"nonpositive policy must be one of {'|'.join(NONPOSITIVE_POLICIES)}, got "
            f"{nonpositive!r}"
        )


def first_nonpositive(weights: np.ndarray) -> int | None:
    """Position of the first weight ≤ 0, or None when every weight is positive."""
    bad = weights <= 0
    return int(np.argmax(bad)) if bad.any() else None


def nonpositive_error(where: str, weights: np.ndarray) -> DataError:
    """The error for ratings ≤ 0, pointing at the first one and at the options that handle it."""
    row = first_nonpositive(weights) or 0
    count = int((weights <= 0).sum())
    return DataError(
        f"rating {weights[row]:g} at {where}: {count} of {len(weights)} rows are ≤ 0, and "
        "ratings are read as positive weights; pass min_rating=N to keep ratings ≥ N as "
        "positives, or nonpositive='drop' to drop the rows ≤ 0",
        options=("min_rating", "nonpositive"),
    )


class _Resolved:
    def __init__(self, keep: np.ndarray, weights: np.ndarray) -> None:
        self.keep = keep
        self.weights = weights


def _resolve_duplicates(
    user_idx: np.ndarray, item_idx: np.ndarray, n_items: int, weights: np.ndarray, policy: str
) -> tuple[_Resolved, int]:
    """Row positions to keep, sorted by (user, item), and their weights after the policy."""
    key = user_idx.astype(np.int64) * n_items + item_idx
    if len(key) < 2 or bool(np.all(key[1:] > key[:-1])):  # already sorted, no duplicates
        return _Resolved(np.arange(len(key)), weights), 0
    if policy == "max":
        order = np.lexsort((weights, key))  # within a key, largest weight last
    else:
        order = np.argsort(key, kind="stable")  # within a key, file order
    sorted_key = key[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_key[1:] != sorted_key[:-1]]))
    merged = len(key) - len(starts)
    if merged and policy == "error":
        first = order[starts[np.flatnonzero(np.diff(np.append(starts, len(key))) > 1)[0]]]
        raise DataError(
            f"{merged} duplicate (user, item) rows, first at data row {first + 1}; "
            "choose a duplicates policy: sum, max, last or first",
            options=("duplicates",),
        )
    ends = np.append(starts[1:], len(key)) - 1
    if policy == "sum":
        return _Resolved(order[starts], np.add.reduceat(weights[order], starts)), merged
    pick = order[starts] if policy == "first" else order[ends]
    return _Resolved(pick, weights[pick]), merged


def _vocabulary(
    raw: np.ndarray, declared: np.ndarray | None, name: str
) -> tuple[Vocabulary, np.ndarray, int]:
    """Vocabulary (declared ids first, then new ones in sorted order) and dense indices."""
    codes, uniques = _factorize(raw)
    if declared is None:
        return Vocabulary(uniques, name=name), codes.astype(np.int64), 0
    base = pd.Index(declared)
    extra = uniques[base.get_indexer(uniques) < 0]
    vocab = Vocabulary(
        np.concatenate(
            [np.asarray(declared, dtype=object if extra.dtype.kind == "O" else None), extra]
        )
        if len(extra)
        else declared,
        name=name,
    )
    remap = vocab.indices(uniques)
    return vocab, remap[codes], len(extra)


def _factorize(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique ids and each row's position among them.

    Integer ids over a compact range (MovieLens, most exports) take a presence-mask path that is
    ~10× faster than hashing and needs half the temporary memory; anything else uses pandas.
    """
    raw = np.asarray(raw)
    if raw.dtype.kind in "iu" and len(raw):
        low, high = int(raw.min()), int(raw.max())
        if high - low <= 4 * len(raw) + 1_000_000:
            present = np.zeros(high - low + 1, bool)
            present[raw - low] = True
            rank = np.cumsum(present) - 1
            uniques = (np.flatnonzero(present) + low).astype(raw.dtype)
            return rank[raw - low].astype(np.int64), uniques
    codes, uniques = pd.factorize(pd.Series(raw), sort=True)
    return codes.astype(np.int64), np.asarray(uniques)


def _extend(table: FeatureTable | None, n_rows: int) -> FeatureTable:
    """Pad a feature table with empty rows for ids that appeared only in interactions."""
    if table is None:
        return FeatureTable.empty(n_rows)
    missing = n_rows - len(table)
    if missing <= 0:
        return table
    frame = pd.concat([table.frame, pd.DataFrame(index=range(missing))], ignore_index=True)
    bags = {
        k: type(b)(
            b.vocab,
            b.indices,
            np.concatenate([b.offsets, np.full(missing, b.offsets[-1])]),
            b.weights,
        )
        for k, b in table.bags.items()
    }
    return FeatureTable(frame, bags)
