"""Top-k search over item vectors: exact blocked matmul and seen-item filters."""

from tastespace.index.topk import mask_rows, normalize_rows, search_dot, topk_rows

__all__ = ["mask_rows", "normalize_rows", "search_dot", "topk_rows"]
