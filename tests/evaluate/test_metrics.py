"""Known answers for every metric, computed by hand on tiny matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from tastespace.evaluate.metrics import (
    catalog_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
)


def csr(rows: list[list[int]], n_items: int = 10) -> sp.csr_matrix:
    dense = np.zeros((len(rows), n_items), np.float32)
    for r, items in enumerate(rows):
        dense[r, items] = 1.0
    return sp.csr_matrix(dense)


# user 0: targets {0, 1, 7}; its list hits item 1 at rank 2 and item 0 at rank 4.
# user 1: target {9}; no hit.   user 2: no targets at all (NaN, skipped by means).
RANKED = np.array([[3, 1, 4, 0], [2, 5, 0, 1], [6, 7, 8, 2]])
TARGETS = csr([[0, 1, 7], [9], []])


def test_recall_denominator_is_min_of_k_and_targets():
    r2 = recall_at_k(RANKED, TARGETS, 2)
    assert r2[0] == pytest.approx(1 / 2)  # 1 hit / min(2, 3)
    r4 = recall_at_k(RANKED, TARGETS, 4)
    assert r4[0] == pytest.approx(2 / 3)  # 2 hits / min(4, 3)
    assert r4[1] == 0.0 and math.isnan(r4[2])


def test_ndcg_by_hand():
    dcg = 1 / math.log2(3) + 1 / math.log2(5)  # hits at ranks 2 and 4
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # 3 targets fit in the top 4
    got = ndcg_at_k(RANKED, TARGETS, 4)
    assert got[0] == pytest.approx(dcg / idcg)
    assert got[0] == pytest.approx(0.498189, abs=1e-6)
    assert got[1] == 0.0 and math.isnan(got[2])
    # At k = 2 only 2 targets can fit: ideal = 1 + 1/log2(3).
    assert ndcg_at_k(RANKED, TARGETS, 2)[0] == pytest.approx(
        (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    )


def test_perfect_list_scores_one():
    ranked = np.array([[7, 1, 0, 5]])
    targets = csr([[0, 1, 7]])
    assert recall_at_k(ranked, targets, 4)[0] == 1.0
    assert ndcg_at_k(ranked, targets, 4)[0] == pytest.approx(1.0)
    assert mrr_at_k(ranked, targets, 4)[0] == 1.0


def test_mrr_and_hit_rate():
    assert mrr_at_k(RANKED, TARGETS, 4)[:2].tolist() == [0.5, 0.0]
    assert mrr_at_k(RANKED, TARGETS, 1)[0] == 0.0  # first hit is at rank 2
    assert hit_rate_at_k(RANKED, TARGETS, 1)[0] == 0.0
    assert hit_rate_at_k(RANKED, TARGETS, 2)[:2].tolist() == [1.0, 0.0]
    assert math.isnan(hit_rate_at_k(RANKED, TARGETS, 2)[2])


def test_padding_never_counts():
    ranked = np.array([[1, -1, -1]])
    targets = csr([[1, 2]])
    assert recall_at_k(ranked, targets, 3)[0] == pytest.approx(1 / 2)
    assert catalog_coverage(ranked, 10) == pytest.approx(0.1)


def test_catalog_coverage():
    # distinct items shown in the top 2: {3, 1, 2, 5, 6, 7} = 6 of 10
    assert catalog_coverage(RANKED[:, :2], 10) == pytest.approx(0.6)
    assert catalog_coverage(RANKED, 10) == pytest.approx(9 / 10)  # all but item 9


def test_intra_list_diversity_by_hand():
    # genres: item 0 {a}, item 1 {a, b}, item 2 {b}, item 3 {c}
    genres = sp.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]], np.float32))
    # list [0, 1, 2]: 1 - J = 1/2, 1, 1/2 → 2/3; list [0, 3]: disjoint → 1; [2] alone: skipped
    ranked = np.array([[0, 1, 2], [0, 3, -1], [2, -1, -1]])
    assert intra_list_diversity(ranked, genres) == pytest.approx((2 / 3 + 1.0) / 2)
    same = np.array([[0, 0]])
    assert intra_list_diversity(same, genres) == 0.0
