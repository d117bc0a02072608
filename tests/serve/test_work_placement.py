"""Where a query runs: inline on the event loop, or on a worker thread (``serve/state.py``)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tastespace.serve import state


def served(n_items: int, index: str) -> SimpleNamespace:
    return SimpleNamespace(model=SimpleNamespace(n_items=n_items, index_info_={"kind": index}))


@pytest.mark.parametrize(
    ("n_items", "index", "history", "inline"),
    [
        (state.INLINE_MAX_ITEMS, "exact", 10, True),  # small catalog: inline
        (state.INLINE_MAX_ITEMS + 1, "exact", 10, False),  # one long GIL-free product: thread
        (100_000, "hnsw", 10, True),  # short GIL-bound steps at any size: inline
        (100_000, "ivfpq", 10, True),
        (100, "hnsw", state.INLINE_MAX_HISTORY + 1, False),  # a huge history: thread
    ],
)
def test_queries_run_inline_unless_long_and_gil_free(n_items, index, history, inline):
    assert state.is_small(served(n_items, index), history) is inline
