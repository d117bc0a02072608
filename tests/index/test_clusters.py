"""Item clusters: k-means finds planted groups, the layout holds every item once, a probe
reads the best clusters up to its reach, and a scan's scores are the whole-table product's
bits alone or batched."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tastespace.index.blocks import QUERY_BLOCK, block_scores, fixed_blocks, pad_rows
from tastespace.index.clusters import MAX_SIZE_SHARE, ItemClusters, kmeans, split_large


def blobs(sizes: list[int], dim: int = 6, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Rows around far-apart centres, and which centre each came from."""
    rng = np.random.default_rng(seed)
    centres = 20.0 * rng.standard_normal((len(sizes), dim))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    rows = centres[labels] + rng.standard_normal((len(labels), dim))
    order = rng.permutation(len(labels))
    return torch.as_tensor(rows[order], dtype=torch.float32), labels[order]


def whole_table_scores(queries: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    blocks = [
        block_scores(pad_rows(queries[begin:stop]), table, stop - begin)
        for begin, stop in fixed_blocks(len(queries))
    ]
    return torch.cat(blocks)


def test_kmeans_finds_planted_blobs_and_is_seeded():
    table, planted = blobs([100, 120, 90, 110])
    clusters = ItemClusters.of(table, clusters=4)
    found = clusters.cluster_of
    for blob in range(4):
        assert len(np.unique(found[planted == blob])) == 1
    assert len(np.unique(found)) == 4
    assert torch.equal(kmeans(table, 4, seed=3), kmeans(table, 4, seed=3))


def test_layout_holds_every_item_once_in_padded_clusters():
    table, _ = blobs([37, 80, 5, 300], seed=1)
    clusters = ItemClusters.of(table, clusters=4)
    slots = clusters.starts[clusters.cluster_of] + clusters.rank
    assert np.array_equal(clusters.items[slots], np.arange(len(table)))
    assert torch.equal(clusters.rows[torch.as_tensor(slots)], table)
    pads = torch.as_tensor(np.flatnonzero(clusters.items < 0))
    assert (clusters.rows[pads] == 0).all()
    assert np.all(clusters.starts % QUERY_BLOCK == 0)
    assert clusters.sizes.sum() == len(table)


def test_probe_takes_best_clusters_until_reach():
    table, _ = blobs([50] * 8, seed=2)
    clusters = ItemClusters.of(table, clusters=8)
    queries = torch.randn(5, table.shape[1], generator=torch.Generator().manual_seed(0))
    scores = clusters.centroid_scores(queries)
    probed = clusters.probe(scores, reach=120)
    for row in range(len(queries)):
        chosen = np.flatnonzero(probed[row])
        held = clusters.sizes[chosen].sum()
        assert held >= 120
        best = np.argsort(-scores[row].numpy(), kind="stable")[: len(chosen)]
        assert set(best) == set(chosen)
        assert held - clusters.sizes[best[-1]] < 120  # the last one read was needed
    assert clusters.probe(scores, reach=10_000).all()


@pytest.mark.parametrize("n_queries", [1, 5, 40])
def test_scan_gives_whole_table_bits_alone_or_batched(n_queries):
    rng = np.random.default_rng(3)
    table = torch.as_tensor(rng.standard_normal((3000, 33)), dtype=torch.float32)
    clusters = ItemClusters.of(table)
    queries = torch.as_tensor(rng.standard_normal((n_queries, 33)), dtype=torch.float32)
    probed = clusters.probe(clusters.centroid_scores(queries), reach=700)
    width = clusters.read_width(700)
    ids, scores = clusters.scan(queries, probed, width)
    assert ids.shape == scores.shape == (n_queries, width)
    expected = whole_table_scores(queries, table)
    for row in range(n_queries):
        read = ids[row] >= 0
        assert read.sum() == clusters.sizes[probed[row]].sum()
        assert np.array_equal(
            np.sort(ids[row][read]), np.flatnonzero(probed[row][clusters.cluster_of])
        )
        assert torch.equal(scores[row][torch.as_tensor(read)], expected[row][ids[row][read]])
        assert torch.isinf(scores[row][torch.as_tensor(~read)]).all()
        alone_ids, alone = clusters.scan(queries[row : row + 1], probed[row : row + 1], width)
        assert np.array_equal(alone_ids[0], ids[row])
        assert torch.equal(alone[0], scores[row])


def test_read_width_bounds_every_probe_and_a_narrower_scan_is_refused():
    rng = np.random.default_rng(5)
    table = torch.as_tensor(rng.standard_normal((3000, 17)), dtype=torch.float32)
    clusters = ItemClusters.of(table)
    queries = torch.as_tensor(rng.standard_normal((200, 17)), dtype=torch.float32)
    for reach in (1, 300, 700, 2999, 5000):
        probed = clusters.probe(clusters.centroid_scores(queries), reach)
        read = (probed * clusters.sizes).sum(axis=1)
        assert read.max() <= clusters.read_width(reach)
    assert clusters.read_width(5000) == 3000
    with pytest.raises(ValueError, match="more than width"):
        clusters.scan(queries, probed, int(read.max()) - 1)


def test_split_large_cuts_a_crowded_cluster_to_about_the_mean():
    table, _ = blobs([1000] + [20] * 10, seed=4)
    labels = np.zeros(len(table), np.int64)  # everything in cluster 0 but 200 items
    labels[:200] = 1 + np.arange(200) % 10
    split = split_large(table, labels)
    sizes = np.bincount(split)
    assert sizes.min() > 0 and len(sizes) == split.max() + 1
    assert sizes.max() <= MAX_SIZE_SHARE * len(table) / 11
    # the small clusters stay whole: each of their items shares a label with its own kind only
    for small in range(1, 11):
        assert len(np.unique(split[:200][labels[:200] == small])) == 1
