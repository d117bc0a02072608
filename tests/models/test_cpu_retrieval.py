"""Compiled retrieval from item clusters: a probe reads the best clusters up to its reach, the
top items are the best unseen ones read, and the rest's log-sum-exp and mean are exact when
the pseudo-item's sample is the whole catalog."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.models.neural.cpu_retrieval import _best, kth_largest, probe
from tastespace.models.neural.fold_in import TailSample
from tastespace.models.neural.retrieval import ClusterCandidates


def test_probe_takes_the_best_clusters_until_reach_ties_by_index():
    sizes = np.array([50, 80, 20, 60, 40])
    scores = np.array([0.5, 2.0, 2.0, -1.0, 1.0], np.float32)
    assert probe(scores, sizes, 90).tolist() == [1, 2]  # 80 + 20 ≥ 90; cluster 1 before 2
    assert probe(scores, sizes, 80).tolist() == [1]
    assert probe(scores, sizes, 81).tolist() == [1, 2]
    assert probe(scores, sizes, 101).tolist() == [1, 2, 4]
    assert sorted(probe(scores, sizes, 10_000).tolist()) == [0, 1, 2, 3, 4]


def test_best_takes_the_largest_finite_values_and_ties_at_the_last_place_by_position():
    values = np.array([1.0, 3.0, -np.inf, 2.0, 3.0, 2.0, 2.0, 0.5], np.float32)
    assert sorted(_best(values, 3).tolist()) == [1, 3, 4]  # 3, 3, then the first 2
    assert sorted(_best(values, 5).tolist()) == [1, 3, 4, 5, 6]
    assert sorted(_best(values, 100).tolist()) == [0, 1, 3, 4, 5, 6, 7]  # the finite ones
    assert _best(np.full(4, -np.inf, np.float32), 2).tolist() == []


def test_kth_largest_matches_a_sort_on_spread_tied_and_lopsided_rows():
    rng = np.random.default_rng(0)
    rows = [rng.standard_normal(4096).astype(np.float32) for _ in range(5)]
    rows.append(np.round(rng.standard_normal(4096), 1).astype(np.float32))  # many ties
    lopsided = rng.standard_normal(4096).astype(np.float32)
    lopsided[7] = 1e30  # one bin holds all but one value
    rows += [lopsided, np.full(50, 2.0, np.float32)]
    for row in rows:
        row[rng.choice(len(row), 10, replace=False)] = -np.inf
        finite = np.sort(row[np.isfinite(row)])[::-1]
        for k in {1, 2, 11, min(512, len(finite)), len(finite)}:
            assert kth_largest(row, k) == finite[k - 1]


def test_best_agrees_with_a_stable_sort_on_random_rows():
    rng = np.random.default_rng(1)
    for _ in range(20):
        values = np.round(rng.standard_normal(700), 2).astype(np.float32)
        values[rng.choice(700, 30, replace=False)] = -np.inf
        for top in (1, 40, 512, 700):
            order = np.argsort(-values, kind="stable")
            expected = order[: min(top, np.isfinite(values).sum())]
            assert sorted(_best(values, top).tolist()) == sorted(expected.tolist())


def planted(seed: int = 0):
    rng = np.random.default_rng(seed)
    table = torch.as_tensor(rng.standard_normal((600, 9)).astype(np.float32))
    histories = sp.random(30, 600, density=0.03, format="csr", random_state=seed)
    histories.data[:] = 1.0
    users = torch.as_tensor(rng.standard_normal((30, 8)).astype(np.float32))
    return table, histories.astype(np.float32), users


def test_retrieval_finds_the_best_unseen_items_read_and_sums_up_the_rest():
    table, histories, users = planted()
    # the sample is the whole catalog (600 items < TAIL_SAMPLE): the rest is then exact
    candidates = ClusterCandidates.of(table, TailSample.of(table[:, :-1]), 200 / 20, 6)
    tops, means, lses = candidates.retrieve(histories, users, 20)
    scores = (torch.column_stack([users, torch.ones(30)]) @ table.T).numpy().astype(np.float64)
    clusters = candidates.clusters
    centroid_scores = np.column_stack([users, np.ones(30)]) @ clusters.centroid_columns
    for row in range(30):
        seen = histories[row].indices
        read = np.isin(clusters.cluster_of, probe(centroid_scores[row], clusters.sizes, 200))
        assert read.sum() >= 200
        open_read = np.flatnonzero(read & ~np.isin(np.arange(600), seen))
        best = open_read[np.argsort(-scores[row, open_read], kind="stable")[:20]]
        np.testing.assert_array_equal(tops[row], np.sort(best))
        rest = np.setdiff1d(np.arange(600), np.concatenate([seen, best]))
        weights = np.exp(scores[row, rest] - scores[row, rest].max())
        expected_lse = np.log(weights.sum()) + scores[row, rest].max()
        np.testing.assert_allclose(lses[row].item(), expected_lse, rtol=1e-5)
        expected_mean = weights @ table[rest, :-1].numpy() / weights.sum()
        np.testing.assert_allclose(means[row].numpy(), expected_mean, rtol=1e-4, atol=1e-5)


def test_retrieval_leaves_users_without_a_history_empty():
    table, histories, users = planted(1)
    histories = histories.tolil()
    histories[4] = 0
    histories = histories.tocsr()
    histories.eliminate_zeros()
    candidates = ClusterCandidates.of(table, TailSample.of(table[:, :-1]), 10.0, 6)
    tops, means, lses = candidates.retrieve(histories, users, 20)
    assert len(tops[4]) == 0 and lses[4].item() == -np.inf and not means[4].any()
    assert all(len(tops[row]) == 20 for row in range(30) if row != 4)
