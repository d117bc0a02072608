"""Ranking from a nearby query's scores: the exact search's answer, bit for bit."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.index.exact import exact_search
from tastespace.index.refine import refine_top_k


def setting(n_items: int = 3000, dim: int = 17, seed: int = 0):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((n_items, dim)).astype(np.float32)
    anchor = rng.standard_normal(dim).astype(np.float32)
    return table, anchor, rng


def refine(table, query, anchor, k, seen=(), shortlist_size=64):
    t = torch.from_numpy(table)
    anchor_scores = torch.mm(torch.from_numpy(np.tile(anchor, (16, 1))), t.T)[0]
    anchor_scores[list(seen)] = -torch.inf
    order = torch.argsort(anchor_scores, descending=True).numpy()
    shortlist = np.sort(order[:shortlist_size])
    return refine_top_k(
        t,
        t.norm(dim=1),
        torch.from_numpy(query),
        torch.from_numpy(anchor),
        anchor_scores,
        shortlist,
        k,
    )


def test_equals_the_exact_search_for_near_and_farther_queries():
    table, anchor, rng = setting()
    for step in (0.0, 0.01, 0.1, 0.4):  # 0.4: 244 of 3,000 items rescored
        query = anchor + step * rng.standard_normal(anchor.shape).astype(np.float32)
        ids, scores = refine(table, query, anchor, k=10)
        want_ids, want_scores = exact_search(query[None, :], table, 10)
        np.testing.assert_array_equal(ids, want_ids[0], err_msg=f"step {step}")
        np.testing.assert_array_equal(scores, want_scores[0], err_msg=f"step {step}")


def test_excluded_items_stay_out_and_the_rest_is_exact():
    table, anchor, rng = setting(seed=1)
    query = anchor + 0.2 * rng.standard_normal(anchor.shape).astype(np.float32)
    best = exact_search(query[None, :], table, 5)[0][0]
    seen = set(best[:3].tolist())
    ids, scores = refine(table, query, anchor, k=10, seen=seen)
    exclude = np.zeros((1, len(table)), np.float32)
    exclude[0, list(seen)] = 1
    want_ids, want_scores = exact_search(query[None, :], table, 10, sp.csr_matrix(exclude))
    assert not seen & set(ids.tolist())
    np.testing.assert_array_equal(ids, want_ids[0])
    np.testing.assert_array_equal(scores, want_scores[0])


def test_equal_scores_go_by_item_index_as_in_the_exact_search():
    table, _, rng = setting(n_items=2000, seed=2)
    table[100:300] = table[5]  # 201 identical items, more than the shortlist holds
    query = table[5] * 3 + 0.01 * rng.standard_normal(table.shape[1]).astype(np.float32)
    anchor = query + 0.01 * rng.standard_normal(table.shape[1]).astype(np.float32)
    ids, scores = refine(table, query, anchor, k=20)
    want_ids, want_scores = exact_search(query[None, :], table, 20)
    np.testing.assert_array_equal(ids, want_ids[0])
    np.testing.assert_array_equal(scores, want_scores[0])


def test_a_shortlist_too_short_for_k_is_left_to_the_search():
    table, anchor, _ = setting()
    assert refine(table, anchor, anchor, k=65, shortlist_size=64) is None
    assert refine(table, anchor, anchor, k=5, shortlist_size=15) is None  # < QUERY_BLOCK rows


def test_a_query_too_far_to_bound_is_left_to_the_search():
    table, anchor, rng = setting()
    for step in (1.0, 5.0):  # the bound leaves 2,595 and 3,000 of 3,000 items to rescore
        query = anchor + step * rng.standard_normal(anchor.shape).astype(np.float32)
        assert refine(table, query, anchor, k=10) is None, step
