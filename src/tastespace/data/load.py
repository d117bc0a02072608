"""``load_dataset``: one call for every source tastespace reads.

* ``synthetic`` / ``synthetic:NAME`` / ``synthetic:users=2000,items=500,seed=3`` — the embedded
  generator (offline, deterministic);
* a MovieLens zip as GroupLens ships it, or its extracted folder (release detected from the files);
* any CSV / TSV / Parquet of interactions (columns recognised by name, or mapped explicitly);
* a pandas or polars DataFrame of interactions, with ``items=`` / ``users=`` DataFrames (or
  files) of features — validated exactly as files are.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from tastespace.data.dataset import Dataset
from tastespace.errors import DataError

#: Options only the generic CSV / Parquet loader takes.
GENERIC_ONLY: tuple[str, ...] = (
    "user_col",
    "item_col",
    "rating_col",
    "timestamp_col",
    "sep",
    "item_features",
    "user_features",
    "multi_valued",
    "keep_unrated",
)


def load_dataset(source: str | Path | Any, **options: Any) -> Dataset:
    """Load interactions and features from ``source`` (a path, a spec or a DataFrame).

    ``options`` go to the matching loader: ``min_rating`` (binarise: keep ratings ≥ it as 1.0)
    and ``duplicates`` (``sum|max|last|first|error``) for all file loaders; ``nonpositive``,
    column mapping and feature files for the generic loader (see
    :func:`tastespace.data.generic.load_interactions`); ``items=`` / ``users=`` are short for
    ``item_features=`` / ``user_features=``; a :data:`GENERIC_ONLY` option given to MovieLens
    or the synthetic catalog is a :class:`DataError`.

    >>> load_dataset("synthetic:tiny").n_items
    200
    >>> import pandas as pd
    >>> clicks = pd.DataFrame({"user": ["a", "a", "b"], "sku": ["x", "y", "x"]})
    >>> load_dataset(clicks, item_col="sku").n_items
    2

    ``provenance["loader"]`` records the source and every option (paths made absolute), so a
    bundle can name its data and ``evaluate`` can load it again (:func:`reload_dataset`).
    """
    for short, long in (("items", "item_features"), ("users", "user_features")):
        if short in options:
            if options.get(long) is not None:
                raise DataError(f"give {short}= or {long}=, not both")
            options[long] = options.pop(short)
    record = loader_record(source, options)
    dataset = _load(source, options)
    dataset.provenance["loader"] = record
    return dataset


def loader_record(source: str | Path | Any, options: dict[str, Any]) -> dict[str, Any]:
    """``{"source", "options", "reloadable"}``: what :func:`load_dataset` was given, as JSON.

    An in-memory DataFrame can't be loaded again, so it is named but not ``reloadable``.
    """
    from tastespace.data.frames import is_frame

    def plain(value: Any, is_path: bool) -> Any:
        if is_frame(value):
            return "<DataFrame>"
        if is_path and Path(str(value)).expanduser().exists():
            return str(Path(str(value)).expanduser().resolve())
        return value if isinstance(value, str | int | float | bool) else str(value)

    given = {
        key: plain(value, key in ("item_features", "user_features"))
        for key, value in options.items()
        if value is not None
    }
    source = plain(source, True)
    in_memory = "<DataFrame>" in (source, *given.values())
    return {"source": source, "options": given, "reloadable": not in_memory}


def reload_dataset(record: dict[str, Any]) -> Dataset:
    """The dataset a :func:`loader_record` describes, loaded again with the same options."""
    if not record.get("reloadable", False):
        raise DataError(
            f"the data was an in-memory table ({record.get('source')}), which can't be loaded "
            "again; pass the data explicitly",
            options=("dataset",),
        )
    return load_dataset(record["source"], **record.get("options", {}))


def _load(source: str | Path | Any, options: dict[str, Any]) -> Dataset:
    """Dispatch to the loader for ``source``'s kind."""
    from tastespace.data.frames import is_frame

    if is_frame(source):
        from tastespace.data.generic import load_interactions

        return load_interactions(source, **options)
    text = str(source)
    if text == "synthetic" or text.startswith("synthetic:"):
        from tastespace.data.synthetic import load_synthetic

        _refuse_generic_options(text, "the synthetic catalog", options)
        return load_synthetic(text.partition(":")[2] or "small", **options)
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(
            f"{path}: no such file or folder (expected a MovieLens zip/folder, a CSV/Parquet "
            "file, or 'synthetic')"
        )
    from tastespace.data.movielens import is_movielens, load_movielens

    if is_movielens(path):
        _refuse_generic_options(str(path), "a MovieLens release", options)
        return load_movielens(path, **options)
    if path.suffix.lower() == ".zip" and not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not a zip archive (damaged or misnamed); expected MovieLens")
    if path.is_dir() or path.suffix.lower() == ".zip":
        what = "folder" if path.is_dir() else "zip"
        raise DataError(
            f"{path}: {what} is not a MovieLens release (no u.data, ratings.dat or ratings.csv "
            "found); pass the interactions file itself"
        )
    from tastespace.data.generic import load_interactions

    return load_interactions(path, **options)


def _refuse_generic_options(source: str, what: str, options: dict[str, Any]) -> None:
    """Column mapping and feature files mean nothing to a source that brings its own.

    ``nonpositive`` is dropped: those sources have no rating ≤ 0 (and the build still refuses
    one), so the policy has nothing to act on.
    """
    options.pop("nonpositive", None)
    given = tuple(key for key in GENERIC_ONLY if key in options)
    if given:
        raise DataError(
            f"{source}: {', '.join(given)} {'applies' if len(given) == 1 else 'apply'} only to "
            f"CSV / Parquet files; {what} brings its own columns and feature files",
            options=given,
        )
