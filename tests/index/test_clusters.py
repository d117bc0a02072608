"""Item clusters: k-means finds planted groups, the layout holds every item once, each
cluster one block, and crowded clusters are split."""

from __future__ import annotations

import numpy as np
import torch

from tastespace.index import clusters as clustering
from tastespace.index.clusters import (
    MAX_SIZE_SHARE,
    ItemClusters,
    cluster_labels,
    kmeans,
    split_large,
)


def blobs(sizes: list[int], dim: int = 6, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Rows around far-apart centres, and which centre each came from."""
    rng = np.random.default_rng(seed)
    centres = 20.0 * rng.standard_normal((len(sizes), dim))
    labels = np.repeat(np.arange(len(sizes)), sizes)
    rows = centres[labels] + rng.standard_normal((len(labels), dim))
    order = rng.permutation(len(labels))
    return torch.as_tensor(rows[order], dtype=torch.float32), labels[order]


def test_kmeans_finds_planted_blobs_and_is_seeded():
    table, planted = blobs([100, 120, 90, 110])
    clusters = ItemClusters.of(table, clusters=4)
    found = clusters.cluster_of
    for blob in range(4):
        assert len(np.unique(found[planted == blob])) == 1
    assert len(np.unique(found)) == 4
    assert torch.equal(kmeans(table, 4, seed=3), kmeans(table, 4, seed=3))


def test_many_clusters_are_found_in_two_levels_and_seeded(monkeypatch):
    """Above FLAT_CLUSTERS, groups first, then clusters inside each group: planted blobs far
    apart still each land in one cluster of their own."""
    table, planted = blobs([60] * 8, seed=6)
    monkeypatch.setattr(clustering, "FLAT_CLUSTERS", 2)  # 8 clusters: 3 groups, then 8
    labels = cluster_labels(table, 8, seed=1)
    assert sorted(np.unique(labels).tolist()) == list(range(8))
    for blob in range(8):
        assert len(np.unique(labels[planted == blob])) == 1
    assert np.array_equal(labels, cluster_labels(table, 8, seed=1))


def test_layout_holds_every_item_once_with_each_cluster_one_transposed_block():
    table, _ = blobs([37, 80, 5, 300], seed=1)
    clusters = ItemClusters.of(table, clusters=4)
    slots = clusters.starts[clusters.cluster_of] + clusters.rank
    assert np.array_equal(clusters.items[slots], np.arange(len(table)))
    assert clusters.sizes.sum() == len(table) and clusters.blocks.size == table.numel()
    width = table.shape[1]
    for c, (begin, size) in enumerate(zip(clusters.starts, clusters.sizes, strict=True)):
        block = clusters.blocks[begin * width : (begin + size) * width].reshape(width, size)
        members = clusters.items[begin : begin + size]
        assert np.array_equal(members, np.flatnonzero(clusters.cluster_of == c))  # item order
        np.testing.assert_array_equal(block.T, table.numpy()[members])
    means = np.stack([table.numpy()[clusters.cluster_of == c].mean(0) for c in range(4)])
    np.testing.assert_allclose(clusters.centroid_columns.T, means, rtol=1e-5, atol=1e-5)


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
