"""Top-k search over item vectors: one ``Index`` protocol, exact and approximate (faiss).

``build_index(kind, vectors, metric)`` gives an :class:`Index` whose ``search(queries, k,
exclude)`` returns ``(ids, scores)``; ``index_from_bytes`` restores one from ``to_bytes()``.
faiss is imported only when an approximate kind is built or loaded.
"""

from tastespace.index.base import KINDS, Index, build_index, index_from_bytes, resolve_kind
from tastespace.index.exact import ExactIndex, exact_search
from tastespace.index.recall import measure_recall, recall_at_k
from tastespace.index.topk import mask_rows, normalize_rows, topk_rows

__all__ = [
    "KINDS",
    "ExactIndex",
    "Index",
    "build_index",
    "exact_search",
    "index_from_bytes",
    "mask_rows",
    "measure_recall",
    "normalize_rows",
    "recall_at_k",
    "resolve_kind",
    "topk_rows",
]
