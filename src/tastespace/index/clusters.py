"""Items grouped by k-means, so a query can read the part of the catalog it scores highest.

Why: the neural fold-in needs each user's few hundred best items at a vector it has not seen
before; finding them by a pass over the whole catalog costs the whole catalog per round
(``models/neural/retrieval.py``). Grouped into clusters of about ``CLUSTER_SIZE`` items, the
catalog is first scored by its centroids (one row per cluster), and only the clusters a query
ranks highest are read — an inverted file (IVF) without the approximation of its scores.

The rows are kept cluster by cluster, each cluster padded with zero rows to a multiple of
``QUERY_BLOCK``, so a scan reads slices, not gathers, and every product has at least
``QUERY_BLOCK`` rows on both sides: each score is then the bits of the whole-table product
(``index/blocks.py``; ``tests/index/test_clusters.py`` keeps it so).

    >>> table = torch.tensor([[0.0, 1.0], [0.0, 2.0], [5.0, 0.0]])
    >>> sorted(ItemClusters.of(table, clusters=2).sizes.tolist())
    [1, 2]
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from tastespace.index.blocks import QUERY_BLOCK, block_scores, fixed_blocks, pad_rows

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
    """A table's rows grouped by cluster.

    ``rows`` ``(padded, w)`` holds cluster ``c``'s rows at ``starts[c] : starts[c] + sizes[c]``
    (then zero rows up to a multiple of ``QUERY_BLOCK``); ``items`` gives each row's position in
    the table (``-1`` for padding), ``cluster_of`` each table row's cluster and ``centroids``
    ``(C, w)`` the clusters' mean rows, whose score with a query is its mean score there.
    """

    centroids: torch.Tensor  # (C, w)
    rows: torch.Tensor  # (padded, w)
    items: np.ndarray  # (padded,)
    starts: np.ndarray  # (C,)
    sizes: np.ndarray  # (C,)
    cluster_of: np.ndarray  # (n,)
    rank: np.ndarray  # (n,) each table row's place inside its cluster

    @classmethod
    def of(cls, table: torch.Tensor, clusters: int | None = None, seed: int = 0) -> ItemClusters:
        """Cluster ``table``'s rows into ``clusters`` groups (about ``len / CLUSTER_SIZE`` by
        default), seeded."""
        n = len(table)
        wanted = clusters or max(1, round(n / CLUSTER_SIZE))
        with torch.no_grad():
            centroids = kmeans(table, wanted, seed=seed)
            cluster_of = split_large(table, nearest_centroid(table, centroids).cpu().numpy())
            sizes = np.bincount(cluster_of)
            sums = table.new_zeros((len(sizes), table.shape[1]))
            sums.index_add_(0, torch.as_tensor(cluster_of, device=table.device), table)
            counts = torch.as_tensor(sizes, dtype=table.dtype, device=table.device)
            centroids = sums / counts.unsqueeze(1)
        padded = _padded(sizes)
        starts = np.concatenate([[0], np.cumsum(padded)[:-1]]).astype(np.int64)
        items = np.full(int(padded.sum()), -1, np.int64)
        order = np.argsort(cluster_of, kind="stable")  # by cluster, then by item
        ranks = np.empty(n, np.int64)
        ranks[order] = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        items[starts[cluster_of[order]] + ranks[order]] = order
        rows = table.new_zeros((len(items), table.shape[1]))
        real = torch.as_tensor(np.flatnonzero(items >= 0), device=table.device)
        rows[real] = table[torch.as_tensor(items[items >= 0], device=table.device)]
        return cls(centroids, rows, items, starts, sizes.astype(np.int64), cluster_of, ranks)

    @property
    def n_items(self) -> int:
        return len(self.cluster_of)

    def centroid_scores(self, queries: torch.Tensor) -> torch.Tensor:
        """``(n, C)``: each query's score of each centroid (its mean score in the cluster)."""
        out = []
        for begin, stop in fixed_blocks(len(queries)):
            out.append(block_scores(pad_rows(queries[begin:stop]), self.centroids, stop - begin))
        return torch.cat(out) if out else queries.new_zeros((0, len(self.centroids)))

    def probe(self, scores: torch.Tensor, reach: int) -> np.ndarray:
        """``(n, C)`` booleans: per query its best-scored clusters, as many as it takes to hold
        ``reach`` items (all when the catalog is smaller); equal scores go by cluster index."""
        values = scores.cpu().numpy()
        order = np.argsort(-values, axis=1, kind="stable")
        held = np.cumsum(self.sizes[order], axis=1)
        needed = np.minimum((held < min(reach, self.n_items)).sum(axis=1) + 1, values.shape[1])
        probed = np.zeros(values.shape, bool)
        chosen = np.arange(values.shape[1]) < needed[:, None]
        np.put_along_axis(probed, order, chosen, axis=1)
        return probed

    def read_width(self, reach: int) -> int:
        """The most items a :meth:`probe` of ``reach`` can read: it stops at the first cluster
        that takes it to ``reach``, so at most ``reach − 1`` plus the largest cluster."""
        return int(min(self.n_items, max(reach, 1) - 1 + self.sizes.max(initial=0)))

    def offsets(self, probed: np.ndarray) -> np.ndarray:
        """``(n, C)``: where each probed cluster begins in a query's row of :meth:`scan`
        (item ``i`` of a probed cluster ``c`` sits at ``offsets[r, c] + rank[i]``)."""
        held = probed * self.sizes
        return np.cumsum(held, axis=1) - held

    def scan(
        self, queries: torch.Tensor, probed: np.ndarray, width: int
    ) -> tuple[np.ndarray, torch.Tensor]:
        """Every query's scores of the items of its probed clusters, laid out cluster after
        cluster in cluster order: ``(ids, scores)``, both ``(n, width)``, padded with id
        ``-1`` and score ``-inf``. Each score is the bits of ``queries @ table.T``'s, whatever
        else the batch holds; ``width`` (:meth:`read_width`, not the batch's largest count)
        keeps the rows' length so too, which a reduction over a row depends on (a user's
        log-sum-exp over 3,826 scores differed when the batch's widest row was longer).

        Up to ``QUERY_BLOCK`` queries share one product with every cluster any of them reads
        (a product per cluster cost a one-user request more than the reading); more are
        scored cluster by cluster, each by the queries that read it."""
        n, device = len(queries), queries.device
        users, clusters = np.nonzero(probed)  # by user, then cluster: the layout's order
        offsets = self.offsets(probed)
        lengths = self.sizes[clusters]
        within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        rows = np.repeat(users, lengths)
        columns = np.repeat(offsets[users, clusters], lengths) + within
        if len(columns) and columns.max() >= width:
            raise ValueError(f"a query reads {columns.max() + 1} items, more than width {width}")
        cells = rows * width + columns  # flat positions: a 2-D scatter took 4 times as long
        ids = np.full(n * width, -1, np.int64)
        ids[cells] = self.items[np.repeat(self.starts[clusters], lengths) + within]
        ids = ids.reshape(n, width)
        scores = queries.new_full((n, width), -torch.inf)
        read = np.flatnonzero(probed.any(axis=0))
        if n <= QUERY_BLOCK:
            padded = _padded(self.sizes[read])
            joined = torch.cat(
                [self.rows[s : s + p] for s, p in zip(self.starts[read], padded, strict=True)]
            )
            found = block_scores(pad_rows(queries), joined, n)
            begins = np.zeros(len(self.sizes), np.int64)
            begins[read] = np.cumsum(padded) - padded
            sources = np.repeat(begins[clusters], lengths) + within
            picked = found.reshape(-1)[_index(rows * found.shape[1] + sources, device)]
            scores.view(-1)[_index(cells, device)] = picked
            return ids, scores
        flat_scores = scores.view(-1)
        begins = offsets + np.arange(n)[:, None] * width
        for cluster in read:
            readers = np.flatnonzero(probed[:, cluster])
            size, start = int(self.sizes[cluster]), int(self.starts[cluster])
            cluster_rows = self.rows[start : start + int(_padded(size))]
            for begin, stop in fixed_blocks(len(readers), 256):
                block = readers[begin:stop]
                found = block_scores(
                    pad_rows(queries[_index(block, device)]), cluster_rows, len(block)
                )
                placed = (begins[block, cluster][:, None] + np.arange(size)).reshape(-1)
                flat_scores[_index(placed, device)] = found[:, :size].reshape(-1)
        return ids, scores


def _padded(sizes: np.ndarray | int) -> np.ndarray:
    """Rows a cluster of ``sizes`` items takes in the layout: the next multiple of
    ``QUERY_BLOCK``."""
    return -(-np.asarray(sizes) // QUERY_BLOCK) * QUERY_BLOCK


def _index(positions: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(positions, device=device)
