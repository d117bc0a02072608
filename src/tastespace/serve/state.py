"""What the app holds between requests: the loaded models and their per-model helpers.

Built once when the app is created (bundles loaded, caches warmed); every request only reads it,
through the dependencies in ``serve/routes/deps.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from tastespace.serve.batching import RecommendBatcher
from tastespace.serve.errors import ApiError
from tastespace.serve.maps import MapCache
from tastespace.serve.schemas import ModelInfo
from tastespace.serve.sessions import ServedSession, load_sessions

T = TypeVar("T")

SEARCH_CACHE = 4096
#: Queries on exactly searched catalogs up to this size run inline (any size with an
#: approximate index), as do histories up to INLINE_MAX_HISTORY entries.
INLINE_MAX_ITEMS = 20_000
INLINE_MAX_HISTORY = 1_000


class ServedModels:
    """Every loaded model by name, with its batcher, map cache and title-search cache.

    The first bundle is the default model; others are picked with ``model=NAME``.
    """

    def __init__(self, paths: Mapping[str, Path], index: str = "auto") -> None:
        self.paths = dict(paths)
        self.sessions = load_sessions(self.paths, index)
        self.default = next(iter(self.sessions))
        self.maps = MapCache()
        self.batchers = {
            name: RecommendBatcher(s.model, inline=is_small(s)) for name, s in self.sessions.items()
        }
        self.search = functools.lru_cache(maxsize=SEARCH_CACHE)(self._search)
        self.infos = [
            ModelInfo(
                name=name,
                kind=s.model.kind,
                n_items=s.model.n_items,
                dim=s.dim,
                config=s.model.config.to_json(),
                index=s.model.index_info_,
            )
            for name, s in self.sessions.items()
        ]

    def refresh(self, name: str) -> None:
        """Model ``name``'s catalog grew (``POST /api/items``): its batcher, the title search,
        its map layouts and its ``/api/models`` entry follow the new model."""
        session = self.sessions[name]
        self.batchers[name].model = session.model
        self.batchers[name].inline = is_small(session)  # it may have outgrown inline
        self.search.cache_clear()
        self.maps.forget(name)
        for info in self.infos:
            if info.name == name:
                info.n_items = session.model.n_items

    def session(self, name: str | None) -> ServedSession:
        """The model called ``name`` (the default for None); 404 naming the loaded ones."""
        name = self.default if name is None else name
        if name not in self.sessions:
            raise ApiError(404, f"unknown model {name!r}; loaded: {', '.join(self.sessions)}")
        return self.sessions[name]

    def _search(self, name: str, text: str) -> tuple[int, ...]:
        """All title matches, best first; cached because a search box asks again and again
        (typing, backspacing, paging) and a fuzzy pass over a large catalog is not cheap."""
        session = self.sessions[name]
        return tuple(session.resolver.search(text, limit=session.model.n_items))


def is_small(session: ServedSession, history_length: int = 0) -> bool:
    """Whether a query on ``session`` is cheap enough to answer on the event loop.

    Why by index: an exact search of a large catalog is one long BLAS product that releases the
    GIL, so on a worker thread it overlaps the loop's HTTP work. Everything else (an HNSW or
    IVF search, the neural fold-in's many short kernels) holds the GIL or takes it back after
    every small op, and a worker thread waits for it behind the busy loop: at 100k items with
    HNSW, 16 requests in flight, a batch of 7.8 histories (on average) took 44 ms on a thread
    for 21 ms of its CPU, p99 132 ms; inline, p99 92 ms (76 with the batcher's gathering,
    ``serve/batching.py``; ``bench/serve_load.py``).
    """
    if history_length > INLINE_MAX_HISTORY:
        return False
    model = session.model
    return model.n_items <= INLINE_MAX_ITEMS or model.index_info_["kind"] != "exact"


async def run_query(work: Callable[[], T], small: bool) -> T:
    """Run a query on the event loop when it is small, else on the thread pool.

    Why: a 4k-item catalog answers in well under a millisecond, less than handing the call to a
    worker thread and back costs; a 60k-item catalog or a 1,000-item history would stall every
    other connection while it runs, so those go to threads.
    """
    return work() if small else await run_in_threadpool(work)
