"""The candidate fold-in's candidates from clusters of the catalog, not from a pass over it.

Why: each round of the candidate solve needs a user's ``top`` best unseen items and the
log-sum-exp and softmax-weighted mean of all the others (``fold_in.py``). An exact pass gets
them by scoring every item, so a request grows with the catalog (one user of a 160k-item
catalog at 3.0× ALS's time, against 2.0× from clusters: docs/benchmarks-index.md). Here the
catalog is grouped once by k-means (``index/clusters.py``); a user reads only the clusters
whose centroids they score highest — ``READS_PER_CANDIDATE`` × ``top`` items — and their
``top`` comes from what was read. The rest is what was read beyond it, summed exactly, plus
the clusters left unread, estimated from the pseudo-item's fixed sample
(:class:`~tastespace.models.neural.fold_in.TailSample`): the sampled items that fall in
unread clusters stand for all of those clusters' items.

Batch-invariant as the exact pass is: a user's probes, scores and selections depend only on
their own row (``tests/models/test_fold_in.py`` keeps it so).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.index.blocks import (
    add_logs,
    block_scores,
    fixed_blocks,
    pad_rows,
    row_logsumexp,
)
from tastespace.index.clusters import ItemClusters
from tastespace.models.neural.fold_in import TailSample, lifted, top_columns

READS_PER_CANDIDATE = 8.0
"""Items read per candidate wanted: 512 candidates read 4,096 items (a tenth of a 40k-item
catalog). ml-100k / ml-latest-small Recall@20 stayed within 0.005 of the exact solve
(docs/benchmarks-index.md)."""

RETRIEVE_ROWS = 256
"""Users retrieved at once: their read scores, ``(rows, ~reach)`` floats, stay a few MB."""


@dataclasses.dataclass(frozen=True)
class ClusterCandidates:
    """What retrieval needs of one item table, built once per fitted state: its clusters, the
    pseudo-item's sample (``tail``) with its rows of the table and their clusters, and where
    each item sits in that sample (``-1`` when it is not in it)."""

    clusters: ItemClusters
    tail: TailSample
    sample_rows: torch.Tensor  # (s, w)
    sample_clusters: np.ndarray  # (s,)
    sample_slot: np.ndarray  # (n_items,)
    reads_per_candidate: float

    @classmethod
    def of(
        cls,
        table: torch.Tensor,
        tail: TailSample,
        reads_per_candidate: float = READS_PER_CANDIDATE,
        clusters: int | None = None,
    ) -> ClusterCandidates:
        """``table`` ``(n_items, dim + 1)`` (vectors and biases), clustered into ``clusters``
        groups (``index/clusters.py``'s default when None)."""
        grouped = ItemClusters.of(table, clusters)
        positions = tail.positions.cpu().numpy()
        slot = np.full(len(table), -1, np.int64)
        slot[positions] = np.arange(len(positions))
        return cls(
            grouped,
            tail,
            table[tail.positions],
            grouped.cluster_of[positions],
            slot,
            reads_per_candidate,
        )

    def retrieve(
        self, histories: sp.csr_matrix, users: torch.Tensor, top: int
    ) -> tuple[list[np.ndarray], torch.Tensor, torch.Tensor]:
        """Per user their ``top`` best unseen items among those read (in item order), the
        rest's softmax-weighted mean vector ``(n, d)`` and its log-sum-exp ``(n,)``: what
        ``fold_in._anchor`` gives from an exact pass. Users without a history get nothing."""
        n, dim = users.shape
        tops = [np.zeros(0, np.int64)] * n
        means, lses = users.new_zeros((n, dim)), users.new_zeros(n)
        queries = lifted(users)
        reach = int(np.ceil(self.reads_per_candidate * top))
        for begin, stop in fixed_blocks(n, RETRIEVE_ROWS):
            live = begin + np.flatnonzero(np.diff(histories.indptr[begin : stop + 1]))
            if not len(live):
                continue
            found, mean, lse = self._block(histories[live], queries[live], top, reach)
            where = torch.as_tensor(live, device=users.device)
            means[where], lses[where] = mean, lse
            for row, ids in zip(live, found, strict=True):
                tops[row] = ids
        return tops, means, lses

    def _block(
        self, histories: sp.csr_matrix, queries: torch.Tensor, top: int, reach: int
    ) -> tuple[list[np.ndarray], torch.Tensor, torch.Tensor]:
        clusters, device = self.clusters, queries.device
        probed = clusters.probe(clusters.centroid_scores(queries), reach)
        ids, scores = clusters.scan(queries, probed, clusters.read_width(reach))
        rows = np.repeat(np.arange(len(queries)), np.diff(histories.indptr))
        seen = histories.indices.astype(np.int64)
        seen_cluster = clusters.cluster_of[seen]
        read = probed[rows, seen_cluster]
        columns = (
            clusters.offsets(probed)[rows[read], seen_cluster[read]] + clusters.rank[seen[read]]
        )
        _set(scores, rows[read], columns, -torch.inf)
        chosen, finite = top_columns(scores, top)
        picked = np.take_along_axis(ids, chosen, axis=1)
        found = [np.sort(row[keep]) for row, keep in zip(picked, finite, strict=True)]
        scores.scatter_(1, torch.as_tensor(chosen, device=device), -torch.inf)
        read_lse = row_logsumexp(scores)
        # the sample: seen and top items are not in the rest
        sampled = block_scores(pad_rows(queries), self.sample_rows, len(queries))
        slots = self.sample_slot[seen]
        _set(sampled, rows[slots >= 0], slots[slots >= 0], -torch.inf)
        top_slots = self.sample_slot[picked]
        hits = np.nonzero((top_slots >= 0) & finite)
        _set(sampled, hits[0], top_slots[hits], -torch.inf)
        weights = torch.softmax(sampled, dim=1).nan_to_num_(0.0)
        # padded: a lone row's product takes another kernel, and its bits would depend on the
        # batch (one user against the same user among 16 differed)
        mean = torch.mm(pad_rows(weights), self.tail.vectors)[: len(queries)]
        unread_lse = self._unread_lse(sampled, probed, rows[~read])
        return found, mean, add_logs(read_lse, unread_lse)

    def _unread_lse(
        self, sampled: torch.Tensor, probed: np.ndarray, seen_unread_rows: np.ndarray
    ) -> torch.Tensor:
        """Per user the log-sum-exp over the unseen items of unread clusters, estimated as
        the sample's there times how many items each sampled one stands for (``-inf`` when
        nothing is left unread or no sampled item is there)."""
        device = sampled.device
        in_read = torch.as_tensor(probed[:, self.sample_clusters], device=device)
        unread = sampled.masked_fill(in_read, -torch.inf)
        drawn = torch.isfinite(unread).sum(dim=1)
        seen = np.bincount(seen_unread_rows, minlength=len(probed))
        left = self.clusters.n_items - (probed * self.clusters.sizes).sum(axis=1) - seen
        left = torch.as_tensor(left, dtype=sampled.dtype, device=device)
        scale = torch.where(
            (drawn > 0) & (left > 0), left.log() - drawn.clamp_min(1).log(), -torch.inf
        )
        return row_logsumexp(unread) + scale


def _set(values: torch.Tensor, rows: np.ndarray, columns: np.ndarray, value: float) -> None:
    """``values[rows, columns] = value`` for numpy index arrays."""
    device = values.device
    values[torch.as_tensor(rows, device=device), torch.as_tensor(columns, device=device)] = value
