"""Fixed query blocks: a row's scores and ranking are the same bits alone or in any batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tastespace.index import blocks
from tastespace.index.blocks import (
    NARROW_BLOCK,
    QUERY_BLOCK,
    block_scores,
    dot_scores,
    fixed_blocks,
    pad_rows,
    row_logsumexp,
)
from tastespace.index.exact import exact_search as search_dot
from tastespace.index.topk import topk_rows


@pytest.mark.parametrize("n_items,dim", [(7, 3), (180, 16), (4000, 64)])
def test_dot_scores_do_not_depend_on_the_batch(n_items, dim):
    rng = np.random.default_rng(n_items)
    queries = rng.standard_normal((50, dim)).astype(np.float32)
    vectors = rng.standard_normal((n_items, dim)).astype(np.float32)
    batch = dot_scores(queries, vectors)
    np.testing.assert_allclose(batch, queries @ vectors.T, rtol=1e-4, atol=1e-4)
    for row in range(50):
        np.testing.assert_array_equal(dot_scores(queries[row : row + 1], vectors)[0], batch[row])
    order = rng.permutation(50)
    np.testing.assert_array_equal(dot_scores(queries[order], vectors), batch[order])


@pytest.mark.parametrize("n_items,dim", [(7, 16), (11, 33), (12, 5), (181, 101), (4000, 64)])
def test_both_layouts_of_a_block_give_the_same_bits(n_items, dim):
    generator = torch.Generator().manual_seed(n_items)
    table = torch.randn(n_items, dim, generator=generator)
    queries = torch.randn(3 * NARROW_BLOCK, dim, generator=generator)
    wide = block_scores(queries, table)  # more rows than NARROW_BLOCK: the row layout
    for height in (QUERY_BLOCK, 17, NARROW_BLOCK):
        narrow = block_scores(queries[:height], table, live=3)
        assert narrow.shape == (3, n_items) and narrow.is_contiguous()
        assert torch.equal(narrow, wide[:3])
    torch.testing.assert_close(wide, queries @ table.T)


def test_a_blas_whose_layouts_disagree_keeps_every_block_in_rows(monkeypatch):
    real_mm = torch.mm

    def other_order(a, b):  # a BLAS summing the catalog-major product in another order
        out = real_mm(a, b)
        return out + 1e-6 if a.shape[0] > b.shape[1] else out

    monkeypatch.setattr(blocks.torch, "mm", other_order)
    blocks.layouts_agree.cache_clear()
    try:
        assert not blocks.layouts_agree(torch.get_num_threads())
        table = torch.randn(200, 9, generator=torch.Generator().manual_seed(0))
        block = torch.randn(QUERY_BLOCK, 9, generator=torch.Generator().manual_seed(1))
        assert torch.equal(block_scores(block, table, 2), real_mm(block, table.T)[:2])
    finally:
        monkeypatch.undo()
        blocks.layouts_agree.cache_clear()


def test_search_alone_equals_search_batched():
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((40, 8)).astype(np.float32)
    vectors = rng.standard_normal((300, 8)).astype(np.float32)
    ids, scores = search_dot(queries, vectors, 10)
    for row in range(40):
        one_ids, one_scores = search_dot(queries[row : row + 1], vectors, 10)
        np.testing.assert_array_equal(one_ids[0], ids[row])
        np.testing.assert_array_equal(one_scores[0], scores[row])


def test_ties_go_to_the_lowest_index_at_every_boundary():
    scores = np.array(
        [[0.5, 0.9, 0.9, 0.9, 0.9, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2, 0.2], [3, 2, 1, 0, -1, -2]],
        np.float32,
    )
    ids, top = topk_rows(scores, 3)
    assert ids.tolist() == [[1, 2, 3], [0, 1, 2], [0, 1, 2]]
    np.testing.assert_array_equal(top[1], np.float32([0.2, 0.2, 0.2]))


def test_identical_vectors_rank_by_index_whatever_the_batch():
    vectors = np.ones((30, 4), np.float32)  # e.g. cold items with the same features
    queries = np.random.default_rng(2).random((20, 4)).astype(np.float32)
    ids, _ = search_dot(queries, vectors, 5)
    assert (ids == np.arange(5)).all()


def test_nan_scores_rank_last_instead_of_breaking_selection():
    scores = np.array([[np.nan, 1.0, 2.0, np.nan]], np.float32)
    ids, top = topk_rows(scores, 3)
    assert ids.tolist() == [[2, 1, -1]]
    assert np.isneginf(top[0, 2])


def test_blocks_cover_the_rows_and_padding_is_zero():
    assert list(fixed_blocks(0)) == []
    assert list(fixed_blocks(QUERY_BLOCK + 1)) == [(0, QUERY_BLOCK), (QUERY_BLOCK, QUERY_BLOCK + 1)]
    padded = pad_rows(np.ones((3, 2), np.float32))
    assert padded.shape == (QUERY_BLOCK, 2) and padded[3:].sum() == 0


def test_a_lone_row_sums_to_the_bits_it_gets_in_a_block():
    """A single row of 40,000 logits on two threads: torch splits it between them, and its
    exponential of the second thread's rows differed in the first call after another test's
    products (about half the runs that followed tests/index/test_topk.py)."""
    logits = torch.randn(64, 40_000, generator=torch.Generator().manual_seed(2)) * 3
    logits[:, ::7] = -torch.inf
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        block = row_logsumexp(logits)
        alone = torch.cat([row_logsumexp(logits[row : row + 1]) for row in range(64)])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(alone, block)
    torch.testing.assert_close(block, torch.logsumexp(logits.double(), 1).float())


def test_rows_with_nothing_to_sum_or_an_infinite_logit_keep_logsumexp_s_answer():
    logits = torch.tensor(
        [[-torch.inf, -torch.inf], [0.0, torch.inf], [1.0, 1.0], [0.0, -torch.inf]]
    )
    torch.testing.assert_close(row_logsumexp(logits), torch.logsumexp(logits, dim=1))
    assert row_logsumexp(torch.zeros((3, 0))).tolist() == [-np.inf] * 3
