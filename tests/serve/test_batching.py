"""Concurrent recommend asks share model calls and get exactly what they would get alone."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tastespace.models.histories import ItemIndices
from tastespace.models.neural import NeuralRecommender
from tastespace.serve.batching import GATHER_TURNS, RecommendBatcher


@pytest.fixture(scope="module")
def neural(neural_bundle):
    return NeuralRecommender.load(neural_bundle)


def test_concurrent_asks_share_calls_and_match_the_model_alone(neural):
    asks = [([i, i + 3, i + 7], 3 + i % 4, i % 3 != 0) for i in range(12)]
    batcher = RecommendBatcher(neural, inline=False)

    async def all_at_once():
        return await asyncio.gather(*(batcher.recommend(*ask) for ask in asks))

    answers = asyncio.run(all_at_once())
    assert batcher.calls == 2  # one call per exclude_seen value, not twelve
    for (history, k, exclude), (ids, scores) in zip(asks, answers, strict=True):
        alone_ids, alone_scores = neural.recommend(
            ItemIndices([history]), k=k, exclude_seen=exclude
        )
        np.testing.assert_array_equal(ids, np.atleast_2d(alone_ids)[0])
        np.testing.assert_allclose(scores, np.atleast_2d(alone_scores)[0], rtol=1e-4, atol=1e-5)
        assert len(ids) == k


def test_a_failing_call_fails_its_asks_and_the_next_batch_still_runs(neural):
    batcher = RecommendBatcher(neural, inline=False)

    async def bad_then_good():
        bad = asyncio.gather(
            batcher.recommend([10**9], 3, True),
            batcher.recommend([1], 3, True),
            return_exceptions=True,
        )
        failed = await bad
        good = await batcher.recommend([1, 2], 3, True)
        return failed, good

    failed, (ids, _) = asyncio.run(bad_then_good())
    assert all(isinstance(result, Exception) for result in failed)
    assert len(ids) == 3


@pytest.mark.parametrize(("late_by", "calls"), [(3, 1), (GATHER_TURNS + 5, 2)])
def test_asks_a_few_loop_turns_late_join_the_batch(neural, late_by, calls):
    """A request reaches the batcher several loop turns after it was read; a batch waits while
    asks keep coming, up to GATHER_TURNS turns, so those join it."""
    batcher = RecommendBatcher(neural, inline=True)

    async def trickle(delay: int, history: list[int]):
        for _ in range(delay):
            await asyncio.sleep(0)
        return await batcher.recommend(history, 3, True)

    async def staggered():
        delays = [0, *range(1, late_by + 1)] if calls == 1 else [0, late_by]
        return await asyncio.gather(*(trickle(d, [d % 50, 1 + d % 40]) for d in delays))

    asyncio.run(staggered())
    assert batcher.calls == calls
