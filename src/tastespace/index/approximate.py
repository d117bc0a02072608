"""Approximate top-k with faiss: the shared shell and HNSW graphs (IVF lives in ``index/ivf.py``).

faiss is optional: it is imported when one of these is built or loaded, and a missing faiss is
a one-line :class:`~tastespace.errors.ConfigError`. Seen-item exclusion stays exact: a search
fetches ``k`` plus the most items any query in the block excludes, then drops the excluded ones,
so no excluded item is ever returned and no query comes back short because of them.

``dot`` indexes use faiss's inner-product metric; ``cosine`` ones the same over unit vectors.
Returned scores are faiss's (for IVF, computed from the compressed codes).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from tastespace.errors import BundleError, ConfigError
from tastespace.index.base import Index, Metric, order_ties_by_id
from tastespace.index.topk import normalize_rows


def import_faiss() -> Any:
    """The faiss module, or a one-line error saying how to install it."""
    try:
        import faiss
    except ImportError as err:
        raise ConfigError(
            "approximate indexes (hnsw, ivfpq) need faiss: pip install faiss-cpu "
            "(or tastespace[engines]); the exact index works without it",
            options=("index",),
        ) from err
    return faiss


class FaissIndex(Index):
    """Shared shell: a faiss index over (possibly unit) vectors, exclusion by over-fetch."""

    def __init__(self, engine: Any, n_items: int, dim: int, metric: Metric, params: dict) -> None:
        super().__init__(n_items, dim, metric, params)
        self.engine = engine

    @classmethod
    def build(cls, vectors: np.ndarray, metric: Metric = "dot", **params: Any) -> Self:
        faiss = import_faiss()
        unknown = sorted(set(params) - set(cls.defaults(len(vectors), vectors.shape[1])))
        if unknown:
            raise ConfigError(f"{cls.kind} index takes {sorted(cls.defaults(1, 1))}, not {unknown}")
        settings = {**cls.defaults(len(vectors), vectors.shape[1]), **params}
        data = normalize_rows(vectors) if metric == "cosine" else vectors
        engine = cls._engine(faiss, np.ascontiguousarray(data, np.float32), settings)
        return cls(engine, len(vectors), vectors.shape[1], metric, settings)

    @classmethod
    def defaults(cls, n_items: int, dim: int) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _engine(cls, faiss: Any, vectors: np.ndarray, settings: dict[str, Any]) -> Any:
        raise NotImplementedError

    def _parameters(self, faiss: Any, fetch: int) -> Any:
        raise NotImplementedError

    def _search(
        self, queries: np.ndarray, k: int, exclude: sp.csr_matrix | None
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = import_faiss()
        extra = 0 if exclude is None or not exclude.nnz else int(np.diff(exclude.indptr).max())
        fetch = min(k + extra, self.n_items)
        scores, ids = self.engine.search(
            self._prepare(queries), fetch, params=self._parameters(faiss, fetch)
        )
        ids = ids.astype(np.int64)
        scores = np.where(ids < 0, -np.inf, scores).astype(np.float32)
        if extra:
            drop = _excluded(ids, exclude)
            ids[drop], scores[drop] = -1, -np.inf
        ids, scores = order_ties_by_id(ids, scores)
        ids, scores = ids[:, :k], scores[:, :k]
        if ids.shape[1] < k:
            pad = ((0, 0), (0, k - ids.shape[1]))
            ids = np.pad(ids, pad, constant_values=-1)
            scores = np.pad(scores, pad, constant_values=-np.inf)
        return ids, scores

    def _prepare(self, queries: np.ndarray) -> np.ndarray:
        return queries

    def _payload(self) -> np.ndarray:
        return import_faiss().serialize_index(self.engine)

    @classmethod
    def _from_payload(cls, header: dict[str, Any], payload: np.ndarray) -> Self:
        faiss = import_faiss()
        try:
            engine = faiss.deserialize_index(np.ascontiguousarray(payload, np.uint8))
        except RuntimeError as err:
            raise BundleError(f"corrupt {cls.kind} index ({str(err).splitlines()[0]})") from err
        return cls(engine, header["n_items"], header["dim"], header["metric"], header["params"])

    def memory_bytes(self) -> int:
        """Size of the serialised faiss index (what it holds in memory, give or take)."""
        return int(import_faiss().serialize_index(self.engine).nbytes)


class HNSWIndex(FaissIndex):
    """Hierarchical navigable small-world graph (faiss ``IndexHNSWFlat``): raw vectors kept,
    ``M`` links per node, ``ef_search`` candidates explored per query."""

    kind = "hnsw"

    @classmethod
    def defaults(cls, n_items: int, dim: int) -> dict[str, Any]:
        return {"M": 32, "ef_construction": 80, "ef_search": 64}

    @classmethod
    def _engine(cls, faiss: Any, vectors: np.ndarray, settings: dict[str, Any]) -> Any:
        engine = faiss.IndexHNSWFlat(vectors.shape[1], settings["M"], faiss.METRIC_INNER_PRODUCT)
        engine.hnsw.efConstruction = settings["ef_construction"]
        engine.add(vectors)
        return engine

    def _parameters(self, faiss: Any, fetch: int) -> Any:
        return faiss.SearchParametersHNSW(efSearch=max(self.params["ef_search"], fetch))


def _excluded(ids: np.ndarray, exclude: sp.csr_matrix) -> np.ndarray:
    """Boolean ``ids.shape`` mask: True where ``ids[r, j]`` is stored in ``exclude[r]``."""
    n_items = exclude.shape[1]
    rows = np.repeat(np.arange(exclude.shape[0], dtype=np.int64), np.diff(exclude.indptr))
    banned = np.sort(rows * n_items + exclude.indices)
    keys = np.arange(len(ids), dtype=np.int64)[:, None] * n_items + ids
    where = np.searchsorted(banned, keys).clip(max=len(banned) - 1)
    return (banned[where] == keys) & (ids >= 0)
