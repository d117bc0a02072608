"""Approximate top-k with faiss: the shared shell and HNSW graphs (IVF lives in ``index/ivf.py``).

faiss is optional: it is imported when one of these is built or loaded, and a missing faiss is
a one-line :class:`~tastespace.errors.ConfigError`. Seen-item exclusion stays exact: a query
fetches ``k`` plus the items it excludes (rounded up to a power of two), then drops the excluded
ones, so no excluded item is ever returned and no query comes back short because of them. The
depth is the query's own, not the most any query in its batch excludes: HNSW explores at least
as many candidates as it fetches, so a depth shared by the batch gave 14 of 40 users of a 40k
catalog another answer alone than batched.

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
        prepared = self._prepare(queries)
        excluded = np.zeros(len(queries), np.int64) if exclude is None else np.diff(exclude.indptr)
        depths = np.minimum(fetch_depth(k + excluded), self.n_items)
        ids = np.full((len(queries), k), -1, np.int64)
        scores = np.full((len(queries), k), -np.inf, np.float32)
        for depth in np.unique(depths).tolist():
            rows = np.flatnonzero(depths == depth)
            found_scores, found = self._searched().search(
                prepared[rows], depth, params=self._parameters(faiss, depth)
            )
            found = found.astype(np.int64)
            found_scores = np.where(found < 0, -np.inf, found_scores).astype(np.float32)
            if exclude is not None and exclude.nnz:
                whole = len(rows) == len(queries)  # one depth, as for most requests: no copy
                drop = _excluded(found, exclude if whole else exclude[rows])
                found[drop], found_scores[drop] = -1, -np.inf
            found, found_scores = order_ties_by_id(found, found_scores)
            kept = min(k, depth)
            ids[rows, :kept], scores[rows, :kept] = found[:, :kept], found_scores[:, :kept]
        return ids, scores

    def _prepare(self, queries: np.ndarray) -> np.ndarray:
        """The queries as :meth:`_searched` takes them."""
        return queries

    def _searched(self) -> Any:
        """The faiss index a search calls (the whole engine, unless a subclass transforms the
        queries itself)."""
        return self.engine

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


def fetch_depth(wanted: np.ndarray) -> np.ndarray:
    """How many results each query fetches for ``wanted`` (``k`` plus its excluded items):
    the next power of two, so a batch needs a few faiss calls, not one per history length."""
    return (1 << np.ceil(np.log2(np.maximum(wanted, 1))).astype(np.int64)).astype(np.int64)


def _excluded(ids: np.ndarray, exclude: sp.csr_matrix) -> np.ndarray:
    """Boolean ``ids.shape`` mask: True where ``ids[r, j]`` is stored in ``exclude[r]``."""
    n_items = exclude.shape[1]
    rows = np.repeat(np.arange(exclude.shape[0], dtype=np.int64), np.diff(exclude.indptr))
    banned = np.sort(rows * n_items + exclude.indices)
    keys = np.arange(len(ids), dtype=np.int64)[:, None] * n_items + ids
    where = np.searchsorted(banned, keys).clip(max=len(banned) - 1)
    return (banned[where] == keys) & (ids >= 0)
