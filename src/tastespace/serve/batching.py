"""Concurrent recommend requests answered by one batched model call.

Why: the neural model folds a user in by 30 small solve steps over the catalog, and much of
a one-user step is overhead: on a 4k-item catalog one user costs 4.6 ms, sixteen together
16.4 ms. Requests that arrive while a batch runs queue up and go together in the next one, so
under load the cost per request falls instead of the queue growing. Rows are independent in every
model, so a user's answer does not depend on who shared the batch.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

import numpy as np
from starlette.concurrency import run_in_threadpool

from tastespace.models.base import Recommender
from tastespace.models.histories import ItemIndices

MAX_BATCH = 256
"""Users per model call; a burst larger than this is served in several calls."""

GATHER_TURNS = 10
"""Most event-loop turns a batch waits for more asks, while each turn still brings some.

Why: a request reaches the batcher only after several turns of the loop (read, parse,
validate, resolve), so one turn gathers only those already past that. With calls inline, at
100k items and 16 requests in flight, waiting while the queue grows took a batch from 2.6 to 3.4
histories and p99 from 92 to 76 ms (``bench/serve_load.py``); a turn with no new ask ends it.
"""


@dataclass
class _Ask:
    history: list[int]
    k: int
    exclude_seen: bool
    answer: asyncio.Future


class RecommendBatcher:
    """Queue of pending ``(history, k, exclude_seen)`` asks for one model.

    ``inline`` runs each model call on the event loop (``serve/state.py:is_small`` says when
    a worker thread would only wait for the loop), else on the thread pool.
    """

    def __init__(self, model: Recommender, inline: bool, max_batch: int = MAX_BATCH) -> None:
        self.model = model
        self.inline = inline
        self.max_batch = max_batch
        self.calls = 0  # model calls made (the tests check that asks were batched)
        self._pending: list[_Ask] = []
        self._draining: asyncio.Task | None = None

    async def recommend(
        self, history: list[int], k: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores for one resolved history."""
        answer = asyncio.get_running_loop().create_future()
        self._pending.append(_Ask(history, k, exclude_seen, answer))
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain())
        return await answer

    async def _drain(self) -> None:
        try:
            while self._pending:
                await self._gather()
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                for exclude_seen in (True, False):
                    group = [ask for ask in batch if ask.exclude_seen is exclude_seen]
                    if group:
                        await self._answer(group, exclude_seen)
        finally:
            self._draining = None

    async def _gather(self) -> None:
        """Let requests already read join this batch: yield until a turn adds no ask."""
        for _ in range(GATHER_TURNS):
            waiting = len(self._pending)
            await asyncio.sleep(0)
            if len(self._pending) == waiting:
                return

    async def _answer(self, group: list[_Ask], exclude_seen: bool) -> None:
        call = functools.partial(
            self.model.recommend,
            ItemIndices([ask.history for ask in group]),
            k=max(ask.k for ask in group),
            exclude_seen=exclude_seen,
        )
        self.calls += 1
        try:
            ids, scores = call() if self.inline else await run_in_threadpool(call)
        except Exception as err:  # every ask in the call fails the same way
            for ask in group:
                if not ask.answer.done():
                    ask.answer.set_exception(err)
            return
        ids, scores = np.atleast_2d(ids), np.atleast_2d(scores)
        for row, ask in enumerate(group):
            if not ask.answer.done():  # the client may have gone
                ask.answer.set_result((ids[row, : ask.k], scores[row, : ask.k]))
