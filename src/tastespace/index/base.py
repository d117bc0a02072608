"""The ``Index`` protocol: top-k search over a fixed set of item vectors.

Every model's ``recommend`` / ``similar_items`` and the server search through one of these, so
exact search and approximate search (faiss HNSW, IVF-PQ) are interchangeable behind one call::

    index = build_index("exact", item_vectors, metric="cosine")
    ids, scores = index.search(queries, k=10, exclude=seen)   # (n, 10) each, best first
    restored = index_from_bytes(index.to_bytes())             # what a bundle stores

Results are padded with id ``-1`` / score ``-inf`` when fewer than ``k`` items qualify, and
``exclude`` (a CSR ``(n_queries, n_items)``; stored cells are never returned) is honoured
exactly by every implementation. ``metric="cosine"`` normalises items at build and queries at
search; ``"dot"`` ranks by the raw inner product.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from tastespace.errors import BundleError, ConfigError, DataError
from tastespace.index.topk import normalize_rows

Metric = Literal["dot", "cosine"]
METRICS = ("dot", "cosine")
KINDS = ("auto", "exact", "hnsw", "ivfpq")
MAGIC = b"TSIX1\n"
"""Serialised indexes start with this, then one JSON header line, then the payload."""


class Index(ABC):
    """Top-k search over ``n_items`` fixed vectors; see the module docstring."""

    kind: ClassVar[str]

    def __init__(self, n_items: int, dim: int, metric: Metric, params: dict[str, Any]) -> None:
        self.n_items, self.dim, self.metric, self.params = n_items, dim, metric, params

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n_items} items × {self.dim}, {self.metric})"

    @classmethod
    @abstractmethod
    def build(cls, vectors: np.ndarray, metric: Metric = "dot", **params: Any) -> Self:
        """Index ``(n_items, dim)`` vectors for ``metric``."""

    def search(
        self, queries: np.ndarray, k: int, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, scores)`` of shape ``(n_queries, k)``, best first, excluded cells skipped."""
        check_k(k)
        queries = check_queries(queries, self.dim)
        if exclude is not None:
            # a csr exclusion is used as it is: copying one re-runs scipy's format checks,
            # a measurable share of a served `similar` (docs/benchmarks-index.md, session 21)
            if not (sp.issparse(exclude) and exclude.format == "csr"):
                exclude = sp.csr_matrix(exclude)
            if exclude.shape != (len(queries), self.n_items):
                raise DataError(
                    f"exclude must be ({len(queries)}, {self.n_items}), got {exclude.shape}"
                )
        if self.metric == "cosine":
            queries = normalize_rows(queries)
        return self._search(queries, k, exclude)

    @abstractmethod
    def _search(
        self, queries: np.ndarray, k: int, exclude: sp.csr_matrix | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search validated float32 queries (already unit length for cosine)."""

    def describe(self) -> dict[str, Any]:
        """JSON-able ``{kind, metric, n_items, dim, params}`` (the header of :meth:`to_bytes`)."""
        return {
            "kind": self.kind,
            "metric": self.metric,
            "n_items": self.n_items,
            "dim": self.dim,
            "params": self.params,
        }

    def to_bytes(self) -> np.ndarray:
        """The index as a ``uint8`` array (header + payload) for a safetensors bundle."""
        header = json.dumps(self.describe()).encode() + b"\n"
        payload = self._payload()
        return np.concatenate(
            [np.frombuffer(MAGIC + header, np.uint8), np.asarray(payload, np.uint8).ravel()]
        )

    @abstractmethod
    def _payload(self) -> np.ndarray:
        """The implementation's own serialised state as ``uint8``."""

    @classmethod
    @abstractmethod
    def _from_payload(cls, header: dict[str, Any], payload: np.ndarray) -> Self:
        """Inverse of :meth:`_payload`."""


def index_class(kind: str) -> type[Index]:
    """The implementation of ``kind`` (faiss-backed ones are imported only when asked for)."""
    if kind == "exact":
        from tastespace.index.exact import ExactIndex

        return ExactIndex
    if kind == "hnsw":
        from tastespace.index.approximate import HNSWIndex

        return HNSWIndex
    if kind == "ivfpq":
        from tastespace.index.ivf import IVFPQIndex

        return IVFPQIndex
    raise ConfigError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")


AUTO_EXACT_MAX_ITEMS = 200_000
"""``auto`` picks exact search up to this many items and HNSW above (``bench/topk.py``)."""


def resolve_kind(kind: str, n_items: int) -> str:
    """``auto`` → ``exact`` or ``hnsw`` by catalog size; other kinds are checked and kept."""
    if kind not in KINDS:
        raise ConfigError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "exact" if n_items <= AUTO_EXACT_MAX_ITEMS else "hnsw"


def build_index(kind: str, vectors: np.ndarray, metric: Metric = "dot", **params: Any) -> Index:
    """Build an index of ``kind`` (``auto``, ``exact``, ``hnsw``, ``ivfpq``) over ``vectors``."""
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose 'dot' or 'cosine'")
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.number):
        raise DataError(f"item vectors must be a numeric (n_items, dim) array, got {vectors.shape}")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not np.isfinite(vectors).all():
        bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise DataError(f"item vector {bad} is not finite (NaN or inf); cannot index it")
    return index_class(resolve_kind(kind, len(vectors))).build(vectors, metric, **params)


def index_from_bytes(data: np.ndarray | bytes) -> Index:
    """Rebuild an index from :meth:`Index.to_bytes` output."""
    raw = np.frombuffer(data, np.uint8) if isinstance(data, bytes) else np.asarray(data, np.uint8)
    head = raw[: len(MAGIC)].tobytes()
    end = raw[len(MAGIC) :].tobytes().find(b"\n") if head == MAGIC else -1
    if end < 0:
        raise BundleError("not a serialised tastespace index (bad magic or header)")
    try:
        header = json.loads(raw[len(MAGIC) : len(MAGIC) + end].tobytes())
    except json.JSONDecodeError as err:
        raise BundleError(f"corrupt index header ({err})") from err
    payload = raw[len(MAGIC) + end + 1 :]
    return index_class(header.get("kind", "?"))._from_payload(header, payload)


# -- shared input checks and helpers -------------------------------------------------------------


def check_k(k: int, most: int | None = None) -> None:
    """Refuse a ``k`` that is not a positive integer (or above ``most``, a caller's limit).

    One check for every ``k`` a user can pass (index search, ``recommend``, the server), so
    they all refuse the same values in the same words.
    """
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        wanted = "a positive integer" if most is None else f"an integer between 1 and {most}"
        raise DataError(f"k must be {wanted}, got {k!r}")
    if most is not None and k > most:
        raise DataError(f"k must be an integer between 1 and {most}, got {k}")


def check_queries(queries: np.ndarray, dim: int) -> np.ndarray:
    """Contiguous float32 ``(n, dim)`` queries, or a :class:`DataError` saying what is wrong."""
    arr = np.asarray(queries)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise DataError(f"queries must be an (n, {dim}) array, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        raise DataError(f"query row {int(np.flatnonzero(~finite)[0])} is not finite (NaN or inf)")
    return arr


def order_ties_by_id(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by score descending, equal scores by item index; ``-1`` ids (score
    ``-inf``) last. Why: the same query must rank the same alone or in any batch."""
    order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), -scores), axis=-1)
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)
