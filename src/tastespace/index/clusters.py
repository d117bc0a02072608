"""Items grouped by k-means, so a query can read the part of the catalog it scores highest.

Why: the neural fold-in needs each user's few hundred best items at a vector it has not seen
before; finding them by a pass over the whole catalog costs the whole catalog per round
(``models/neural/retrieval.py``). Grouped into clusters of about ``CLUSTER_SIZE`` items, the
catalog is first scored by its centroids (one row per cluster), and only the clusters a query
ranks highest are read — an inverted file (IVF) without the approximation of its scores.

The rows are kept cluster by cluster and transposed, so reading a cluster reads slices,
not gathers (``models/neural/cpu_retrieval.py`` does the reading).

    >>> table = torch.tensor([[0.0, 1.0], [0.0, 2.0], [5.0, 0.0]])
    >>> sorted(ItemClusters.of(table, clusters=2).sizes.tolist())
    [1, 2]
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from tastespace.index.blocks import fixed_blocks

CLUSTER_SIZE = 512
"""Mean items per cluster. Smaller clusters let a probe stop closer to the items it wants but
cost a centroid row and a product each; on the 40k-item catalog an earlier version of this
code answered one user in 9.8 ms with 512, 13.5 ms with 1,024 and 18.3 ms with √n (200)
clusters (session 16, one run each on a noisy host; not re-measured since)."""

KMEANS_ITERATIONS = 10
"""Lloyd iterations: the layout only has to keep near items together, not be optimal."""

KMEANS_SAMPLE = 64
"""Rows per cluster the centroids are fitted on (all rows when the catalog has fewer)."""

SEEDING_SAMPLE = 8
"""Rows per cluster k-means++ draws its seeds from: its cost grows with clusters² × rows."""

MAX_SIZE_SHARE = 2.0
"""A cluster larger than this many times the mean size is cut into pieces along its widest
direction: k-means on a popularity-skewed catalog left clusters of several thousand items,
which a probe must then read whole."""


def kmeans(
    vectors: torch.Tensor, n_clusters: int, *, seed: int = 0, iterations: int = KMEANS_ITERATIONS
) -> torch.Tensor:
    """``(n_clusters, d)`` centroids by Lloyd's algorithm from k-means++ seeds, fitted on a
    seeded sample of ``KMEANS_SAMPLE`` rows per cluster; a cluster left empty keeps its
    centroid."""
    generator = np.random.default_rng(seed)
    n_clusters = min(n_clusters, len(vectors))
    sample = _sample(vectors, KMEANS_SAMPLE * n_clusters, generator)
    centroids = _plus_plus(
        _sample(sample, SEEDING_SAMPLE * n_clusters, generator), n_clusters, generator
    )
    for _ in range(iterations):
        labels = nearest_centroid(sample, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, labels, sample)
        counts = torch.bincount(labels, minlength=n_clusters).to(sample.dtype)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled].unsqueeze(1)
    return centroids


def _sample(vectors: torch.Tensor, size: int, generator: np.random.Generator) -> torch.Tensor:
    """``size`` distinct rows in their order (all of them when there are no more)."""
    if len(vectors) <= size:
        return vectors
    rows = np.sort(generator.choice(len(vectors), size, replace=False))
    return vectors[torch.as_tensor(rows, device=vectors.device)]


def _plus_plus(
    vectors: torch.Tensor, n_clusters: int, generator: np.random.Generator
) -> torch.Tensor:
    """k-means++ seeds (Arthur & Vassilvitskii 2007): each next seed drawn with probability
    proportional to its squared distance from the seeds so far, so far-apart groups each get
    one where uniform seeds often put two in one group and none in another."""
    chosen = [int(generator.integers(len(vectors)))]
    distance = (vectors - vectors[chosen[0]]).square().sum(dim=1)
    for _ in range(n_clusters - 1):
        weights = distance.double().cpu().numpy()
        total = weights.sum()
        pick = int(generator.choice(len(vectors), p=weights / total)) if total > 0 else 0
        chosen.append(pick)
        distance = torch.minimum(distance, (vectors - vectors[pick]).square().sum(dim=1))
    return vectors[torch.as_tensor(chosen, device=vectors.device)].clone()


FLAT_CLUSTERS = 512
"""Up to this many clusters (catalogs up to ~260k items), one k-means over the whole table;
above, two levels (:func:`cluster_labels`), whose clusters serve retrieval a little worse: on
the 160k-item bench catalog 94.6 % of 300 users' best 512 items were found against 95.9 %
flat (docs/benchmarks-index.md)."""


def cluster_labels(table: torch.Tensor, n_clusters: int, seed: int = 0) -> np.ndarray:
    """Each row's cluster among about ``n_clusters``: flat k-means up to :data:`FLAT_CLUSTERS`,
    else k-means into ``√n_clusters`` groups, then each group into as many clusters as its
    share of the rows asks for. Assigning ``n`` rows to ``C`` centroids costs ``n·C·w``, so
    the flat form grew with the square of the catalog (1M items: 55 s); two levels cost
    ``n·2√C·w``."""
    if n_clusters <= FLAT_CLUSTERS:
        return nearest_centroid(table, kmeans(table, n_clusters, seed=seed)).cpu().numpy()
    groups = int(np.ceil(np.sqrt(n_clusters)))
    coarse = nearest_centroid(table, kmeans(table, groups, seed=seed)).cpu().numpy()
    labels = np.empty(len(table), np.int64)
    per_cluster = len(table) / n_clusters
    next_label = 0
    for group in range(groups):
        members = np.flatnonzero(coarse == group)
        if not len(members):
            continue
        rows = table[torch.as_tensor(members, device=table.device)]
        wanted = max(1, round(len(members) / per_cluster))
        fine = nearest_centroid(rows, kmeans(rows, wanted, seed=seed + 1 + group)).cpu().numpy()
        labels[members] = next_label + np.unique(fine, return_inverse=True)[1]
        next_label = labels[members].max() + 1
    return labels


def nearest_centroid(vectors: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Each row's nearest centroid (Euclidean), in blocks so memory stays bounded."""
    half_norms = 0.5 * centroids.square().sum(dim=1)
    labels = []
    for begin, stop in fixed_blocks(len(vectors), 4096):
        labels.append((vectors[begin:stop] @ centroids.T - half_norms).argmax(dim=1))
    return torch.cat(labels) if labels else torch.zeros(0, dtype=torch.int64)


def split_large(vectors: torch.Tensor, labels: np.ndarray) -> np.ndarray:
    """``labels`` with every cluster of more than ``MAX_SIZE_SHARE`` × the mean size cut into
    pieces of about the mean size, ordered along its first principal direction; clusters are
    then numbered ``0 …`` with none empty."""
    counts = np.bincount(labels)
    mean = len(labels) / np.count_nonzero(counts)
    labels = labels.copy()
    next_label = len(counts)
    for cluster in np.flatnonzero(counts > MAX_SIZE_SHARE * mean):
        members = np.flatnonzero(labels == cluster)
        rows = vectors[torch.as_tensor(members, device=vectors.device)]
        centred = rows - rows.mean(dim=0)
        direction = torch.linalg.svd(centred, full_matrices=False).Vh[0]
        order = members[np.argsort((centred @ direction).cpu().numpy(), kind="stable")]
        for piece in np.array_split(order, int(np.ceil(len(members) / mean)))[1:]:
            labels[piece] = next_label
            next_label += 1
    return np.unique(labels, return_inverse=True)[1]


@dataclasses.dataclass(frozen=True)
class ItemClusters:
    """A table's rows grouped by cluster, laid out for reading one cluster as one slice.

    ``items`` lists the table's rows cluster after cluster (by item within one), cluster ``c``
    at ``starts[c] : starts[c] + sizes[c]``; ``blocks`` holds each cluster's rows transposed,
    ``(w, sizes[c])`` at ``starts[c]·w`` of the flat array, so reading a cluster reads one
    contiguous block (its columns of a ``(w, n)`` transposed table, 160 kB apart, were read
    several times slower).
    ``rank`` is each table row's place inside its cluster, ``cluster_of`` its cluster, and
    ``centroid_columns`` ``(w, C)`` the clusters' mean rows transposed, whose score with a
    query is its mean score there. Arrays, on the CPU: they are read by compiled code.
    """

    centroid_columns: np.ndarray  # (w, C)
    blocks: np.ndarray  # (n · w,)
    items: np.ndarray  # (n,)
    starts: np.ndarray  # (C,)
    sizes: np.ndarray  # (C,)
    cluster_of: np.ndarray  # (n,)
    rank: np.ndarray  # (n,)

    @classmethod
    def of(cls, table: torch.Tensor, clusters: int | None = None, seed: int = 0) -> ItemClusters:
        """Cluster ``table``'s rows into ``clusters`` groups (about ``len / CLUSTER_SIZE`` by
        default), seeded."""
        n = len(table)
        wanted = clusters or max(1, round(n / CLUSTER_SIZE))
        with torch.no_grad():
            cluster_of = split_large(table, cluster_labels(table, wanted, seed))
            sizes = np.bincount(cluster_of)
            sums = table.new_zeros((len(sizes), table.shape[1]))
            sums.index_add_(0, torch.as_tensor(cluster_of, device=table.device), table)
            counts = torch.as_tensor(sizes, dtype=table.dtype, device=table.device)
            centroids = sums / counts.unsqueeze(1)
        order = np.argsort(cluster_of, kind="stable")  # by cluster, then by item
        starts = np.cumsum(sizes) - sizes
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n) - np.repeat(starts, sizes)
        rows = table.detach().cpu().numpy().astype(np.float32, copy=False)
        blocks = [rows[order[b : b + z]].T.ravel() for b, z in zip(starts, sizes, strict=True)]
        return cls(
            np.ascontiguousarray(centroids.cpu().numpy().T, dtype=np.float32),
            np.concatenate(blocks) if blocks else np.zeros(0, np.float32),
            order.astype(np.int64),
            starts.astype(np.int64),
            sizes.astype(np.int64),
            cluster_of.astype(np.int64),
            rank,
        )

    @property
    def n_items(self) -> int:
        return len(self.cluster_of)
