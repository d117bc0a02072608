"""``load_dataset``: one call for every source tastespace reads.

* ``synthetic`` / ``synthetic:NAME`` / ``synthetic:users=2000,items=500,seed=3`` — the embedded
  generator (offline, deterministic);
* a MovieLens zip as GroupLens ships it, or its extracted folder (release detected from the files);
* any CSV / TSV / Parquet of interactions (columns recognised by name, or mapped explicitly).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tastespace.data.dataset import Dataset
from tastespace.errors import DataError


def load_dataset(source: str | Path, **options: Any) -> Dataset:
    """Load interactions and features from ``source``.

    ``options`` go to the matching loader: ``min_rating`` (binarise: keep ratings ≥ it as 1.0)
    and ``duplicates`` (``sum|max|last|first|error``) for all file loaders; column mapping and
    feature files for the generic loader (see :func:`tastespace.data.generic.load_interactions`).

    >>> load_dataset("synthetic:tiny").n_items
    200
    """
    text = str(source)
    if text == "synthetic" or text.startswith("synthetic:"):
        from tastespace.data.synthetic import load_synthetic

        return load_synthetic(text.partition(":")[2] or "small", **options)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"{path}: no such file or folder (expected a MovieLens zip/folder, a CSV/Parquet "
            "file, or 'synthetic')"
        )
    from tastespace.data.movielens import is_movielens, load_movielens

    if is_movielens(path):
        return load_movielens(path, **options)
    if path.is_dir():
        raise DataError(
            f"{path}: folder is not a MovieLens release (no u.data, ratings.dat or ratings.csv "
            "found); pass the interactions file itself"
        )
    from tastespace.data.generic import load_interactions

    return load_interactions(path, **options)
