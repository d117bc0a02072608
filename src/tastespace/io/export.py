"""Item vectors out of tastespace, in the formats other tools read.

=============  ===============================  ==============================================
format         ``out`` is                       read back with
=============  ===============================  ==============================================
``word2vec``   a text file                      ``gensim KeyedVectors.load_word2vec_format``
``projector``  a folder: ``vectors.tsv`` +      TensorBoard Embedding Projector ("Load")
               ``metadata.tsv``
``parquet``    a file: id, title, genres,       pandas / pyarrow / polars / DuckDB
               year, vector (list<float32>)
``npy``        a folder: ``vectors.npy`` +      ``numpy.load`` + ``json.load``
               ``ids.json``
=============  ===============================  ==============================================

word2vec keys are the raw item ids as strings (titles hold spaces, which the format cannot key);
every other format carries titles next to the ids. Row ``k`` of every export is dense item ``k``.
Each file is written to a temporary sibling and renamed, so a failed export leaves no partial file.

>>> from tastespace.data import load_dataset
>>> from tastespace.models.baselines import EASE
>>> model = EASE().fit(load_dataset("synthetic:tiny"))
>>> import tempfile, pathlib
>>> paths = export_vectors(model, "npy", pathlib.Path(tempfile.mkdtemp()) / "vectors")
>>> [p.name for p in paths]
['vectors.npy', 'ids.json']
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tastespace.errors import ConfigError, DataError

if TYPE_CHECKING:
    from tastespace.data.catalog import ItemCatalog
    from tastespace.models.base import Recommender

FORMATS = ("word2vec", "projector", "parquet", "npy")


def export_vectors(model: Recommender, fmt: str, out: str | Path) -> list[Path]:
    """Write ``model.item_vectors()`` in format ``fmt`` to ``out``; returns the files written."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    vectors = _vectors(model)
    meta = model.catalog()
    out = Path(out).expanduser()
    if fmt == "word2vec":
        return [write_word2vec(out, [str(i) for i in meta.raw_ids()], vectors)]
    if fmt == "projector":
        return write_projector(out, vectors, meta)
    if fmt == "parquet":
        return [write_parquet(out, vectors, meta)]
    return write_npy(out, vectors, meta)


def _vectors(model: Recommender) -> np.ndarray:
    try:
        vectors = model.item_vectors()
    except NotImplementedError as err:
        raise ConfigError(f"a {model.kind!r} model has no item vectors to export") from err
    return np.ascontiguousarray(vectors, dtype=np.float32)


def write_word2vec(path: Path, keys: list[str], vectors: np.ndarray) -> Path:
    """word2vec text format: ``n d`` header, then ``key v1 … vd`` per line (``%.9g`` keeps
    float32 values exact)."""
    bad = next((k for k in keys if not k or any(c.isspace() for c in k)), None)
    if bad is not None:
        raise DataError(
            f"item id {bad!r} is empty or holds whitespace, which word2vec text cannot key; "
            "export the parquet or projector format instead",
            options=("format",),
        )
    body = io.StringIO()
    np.savetxt(body, vectors, fmt="%.9g", delimiter=" ")
    rows = body.getvalue().splitlines()
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(f"{vectors.shape[0]} {vectors.shape[1]}\n")
        for key, row in zip(keys, rows, strict=True):
            handle.write(f"{key} {row}\n")
    return path


def write_projector(folder: Path, vectors: np.ndarray, meta: ItemCatalog) -> list[Path]:
    """TensorBoard Projector pair: ``vectors.tsv`` (no header) and ``metadata.tsv`` (header row
    ``id title genres year``, as the Projector wants when there is more than one column)."""
    _folder(folder)
    vector_path, meta_path = folder / "vectors.tsv", folder / "metadata.tsv"
    with atomic_path(vector_path) as tmp:
        np.savetxt(tmp, vectors, fmt="%.9g", delimiter="\t")
    with atomic_path(meta_path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("id\ttitle\tgenres\tyear\n")
        for raw, title, genres, year in zip(
            meta.raw_ids(), meta.titles, meta.genre_lists(), meta.year_list(), strict=True
        ):
            cells = (raw, title, "|".join(genres), "" if year is None else year)
            handle.write("\t".join(_tsv_cell(c) for c in cells) + "\n")
    return [vector_path, meta_path]


def write_parquet(path: Path, vectors: np.ndarray, meta: ItemCatalog) -> Path:
    """One row per item: ``id`` (raw type kept), ``title``, ``genres`` (list<string>),
    ``year`` (nullable int32) and ``vector`` (list<float32>)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, d = vectors.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    vector = pa.ListArray.from_arrays(offsets, pa.array(vectors.ravel(), pa.float32()))
    table = pa.table(
        {
            "id": _id_array(meta.raw_ids()),
            "title": pa.array(meta.titles, pa.string()),
            "genres": pa.array(meta.genre_lists(), pa.list_(pa.string())),
            "year": pa.array(meta.year_list(), pa.int32()),
            "vector": vector,
        }
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def write_npy(folder: Path, vectors: np.ndarray, meta: ItemCatalog) -> list[Path]:
    """``vectors.npy`` (float32, no pickle) and ``ids.json`` (raw ids, row order)."""
    _folder(folder)
    vector_path, ids_path = folder / "vectors.npy", folder / "ids.json"
    with atomic_path(vector_path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, vectors, allow_pickle=False)
    with atomic_path(ids_path) as tmp:
        Path(tmp).write_text(json.dumps(meta.raw_ids(), default=_json_id), encoding="utf-8")
    return [vector_path, ids_path]


def _folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise DataError(
            f"{folder} is a file; this format writes a folder, give a folder", options=("out",)
        )
    folder.mkdir(parents=True, exist_ok=True)


def _id_array(ids: list[object]) -> object:
    import pyarrow as pa

    if all(isinstance(i, int) for i in ids):
        return pa.array(ids, pa.int64())
    return pa.array([str(i) for i in ids], pa.string())


def _json_id(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _tsv_cell(value: object) -> str:
    """TSV has no quoting: tabs and newlines inside a cell become spaces."""
    return " ".join(str(value).replace("\t", " ").splitlines())


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[str]:
    """Yield a temporary file name next to ``path``; rename it onto ``path`` on success."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise DataError(f"{target} is a folder; give a file name", options=("out",))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; an export is meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
