"""Growing a catalog: new items appended to a vocabulary and a feature table.

Cold items arrive described by features only (``tastespace add-items``, ``POST /api/items``).
They are appended after the known items — known indices never move, so a bundle's arrays stay
valid — and their bag values are mapped onto the catalog's bag vocabularies (values the catalog
has never seen extend it; the model's encoder reports them, see ``features/encoders.py``).

Example: two known items, one new one::

    ids      [1, 2] + [9]          →  [1, 2, 9]
    genres   (Comedy | Drama)      →  vocab ("Comedy", "Drama", "Horror"); row 2 = [Horror]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tastespace.data.bags import Bags
from tastespace.data.dataset import FeatureTable
from tastespace.data.vocab import Vocabulary
from tastespace.errors import DataError


def append_items(
    ids: Vocabulary, table: FeatureTable, new_ids: np.ndarray, new_table: FeatureTable
) -> tuple[Vocabulary, FeatureTable]:
    """The catalog with ``new_ids`` (rows of ``new_table``) appended; a known id is an error."""
    if len(new_ids) == 0:
        raise DataError("no new items to add")
    new_ids = _like(np.asarray(new_ids), ids.ids)
    taken = [raw for raw in new_ids.tolist() if raw in ids]
    if taken:
        raise DataError(
            f"{len(taken)} of the new item ids are already in the catalog (e.g. {taken[:3]}); "
            "new items need new ids"
        )
    extra = sorted(set(new_table.frame.columns) - set(table.frame.columns) - set(table.bags))
    if extra:
        raise DataError(
            f"new items have column(s) {extra} the catalog lacks (it has "
            f"{sorted([*table.frame.columns, *table.bags])}); drop or rename them"
        )
    merged = Vocabulary(np.concatenate([ids.ids, new_ids]), name=ids.name)
    frame = pd.concat([table.frame, _frame_part(table, new_table)], ignore_index=True, sort=False)
    bags = {
        name: _join_bags(bag, _bag_part(name, bag, new_table)) for name, bag in table.bags.items()
    }
    return merged, FeatureTable(frame[list(table.frame.columns)], bags)


def _frame_part(table: FeatureTable, new_table: FeatureTable) -> pd.DataFrame:
    """The new rows' scalar columns, in the catalog's columns (absent ones are missing)."""
    columns = [c for c in table.frame.columns if c in new_table.frame.columns]
    part = new_table.frame[columns].copy()
    for column in columns:
        known = table.frame[column]
        if pd.api.types.is_numeric_dtype(known) and not pd.api.types.is_numeric_dtype(part[column]):
            try:
                part[column] = pd.to_numeric(part[column])
            except (TypeError, ValueError) as err:
                raise DataError(
                    f"new items' {column!r} must be numeric like the catalog's"
                ) from err
    return part.reindex(columns=table.frame.columns)


def _bag_part(name: str, bag: Bags, new_table: FeatureTable) -> list[list[str]]:
    """Each new row's values of bag ``name`` (from a bag, or a single-valued text column)."""
    n = len(new_table)
    if name in new_table.bags:
        return [new_table.bags[name].row(i) for i in range(n)]
    if name in new_table.frame:
        return [
            [] if _missing(v) else [p.strip() for p in str(v).split("|") if p.strip()]
            for v in new_table.frame[name]
        ]
    return [[] for _ in range(n)]


def _join_bags(bag: Bags, rows: list[list[str]]) -> Bags:
    """``bag`` with ``rows`` appended; unseen values extend the vocabulary at its end."""
    vocab = list(bag.vocab)
    lookup = {value: k for k, value in enumerate(vocab)}
    for row in rows:
        for value in row:
            if value not in lookup:
                lookup[value] = len(vocab)
                vocab.append(value)
    added = Bags.from_lists(rows, vocab)
    offsets = np.concatenate([bag.offsets, bag.offsets[-1] + added.offsets[1:]])
    weights = None
    if bag.weights is not None:
        weights = np.concatenate([bag.weights, np.ones(len(added.indices), np.float32)])
    return Bags(tuple(vocab), np.concatenate([bag.indices, added.indices]), offsets, weights)


def _like(new: np.ndarray, known: np.ndarray) -> np.ndarray:
    """New ids in the catalog's id type (ints stay ints, else text)."""
    if known.dtype.kind in "iu":
        try:
            return new.astype(np.int64)
        except (TypeError, ValueError) as err:
            raise DataError(
                f"the catalog's item ids are integers; new ids such as {new[0]!r} are not"
            ) from err
    return np.array([str(v) for v in new.tolist()], dtype=object)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
