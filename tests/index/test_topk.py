"""Exact search: known answers, stable ties, exact exclusion, same answer alone or batched."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tastespace.index.exact import BLOCK_ROWS, exact_search

# four items on the axes of a plane, and one long diagonal item
ITEMS = np.array([[1, 0], [0, 1], [-1, 0], [0, -1], [3, 3]], np.float32)


def test_known_answer_by_dot_product():
    ids, scores = exact_search(np.array([[1, 0], [0, 2]], np.float32), ITEMS, 3)
    assert ids.tolist() == [[4, 0, 1], [4, 1, 0]]
    np.testing.assert_array_equal(scores, np.float32([[3, 1, 0], [6, 2, 0]]))


def test_excluded_cells_are_never_returned_and_short_rows_pad():
    exclude = sp.csr_matrix(np.array([[0, 0, 0, 0, 1], [1, 1, 1, 1, 0]], np.float32))
    ids, scores = exact_search(np.array([[1, 0], [0, 2]], np.float32), ITEMS, 3, exclude)
    assert ids.tolist() == [[0, 1, 3], [4, -1, -1]]
    assert np.isneginf(scores[1, 1:]).all()


def test_k_above_the_catalog_pads_with_minus_one():
    ids, scores = exact_search(np.array([[1, 0]], np.float32), ITEMS[:2], 4)
    assert ids.tolist() == [[0, 1, -1, -1]]
    assert scores[0, :2].tolist() == [1.0, 0.0] and np.isneginf(scores[0, 2:]).all()


def test_planted_ties_go_to_the_lowest_index_inside_and_across_the_kth_place():
    items = np.zeros((10, 2), np.float32)
    items[[2, 5, 7, 9], 0] = 1.0  # four items tie at score 1, the rest at 0
    ids, _ = exact_search(np.array([[1, 0]], np.float32), items, 3)
    assert ids.tolist() == [[2, 5, 7]]
    ids, _ = exact_search(np.array([[1, 0]], np.float32), items, 6)
    assert ids.tolist() == [[2, 5, 7, 9, 0, 1]]


def test_a_row_alone_gets_the_same_bits_as_in_any_batch():
    rng = np.random.default_rng(3)
    items = rng.standard_normal((5000, 32)).astype(np.float32)
    items[4000:] = items[0]  # a thousand identical items: exact ties everywhere
    queries = rng.standard_normal((BLOCK_ROWS + 40, 32)).astype(np.float32)
    ids, scores = exact_search(queries, items, 20)
    for row in (0, 7, BLOCK_ROWS - 1, BLOCK_ROWS, BLOCK_ROWS + 39):
        one_ids, one_scores = exact_search(queries[row : row + 1], items, 20)
        np.testing.assert_array_equal(one_ids[0], ids[row])
        np.testing.assert_array_equal(one_scores[0], scores[row])
    order = rng.permutation(len(queries))
    np.testing.assert_array_equal(exact_search(queries[order], items, 20)[0], ids[order])


def test_matches_a_full_sort_on_random_data():
    rng = np.random.default_rng(4)
    items = rng.standard_normal((700, 16)).astype(np.float32)
    queries = rng.standard_normal((30, 16)).astype(np.float32)
    exclude = sp.random(30, 700, density=0.05, format="csr", random_state=5, dtype=np.float32)
    exclude.data[:] = 1.0
    ids, scores = exact_search(queries, items, 15, exclude)
    full = queries.astype(np.float64) @ items.T.astype(np.float64)
    full[exclude.toarray() > 0] = -np.inf
    expected = np.argsort(-full, axis=1, kind="stable")[:, :15]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, 1), rtol=1e-5)
