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

Batch-invariant: each user's round runs start to end on one thread in their own buffers
(``cpu_retrieval.py``; ``tests/models/test_fold_in.py`` keeps it so).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.index.clusters import ItemClusters
from tastespace.models.neural.fold_in import TailSample, lifted

READS_PER_CANDIDATE = 8.0
"""Items read per candidate wanted: 512 candidates read 4,096 items (a tenth of a 40k-item
catalog). ml-100k / ml-latest-small Recall@20 stayed within 0.005 of the exact solve
(docs/benchmarks-index.md)."""


@dataclasses.dataclass(frozen=True)
class ClusterCandidates:
    """What retrieval needs of one item table, built once per fitted state: its clusters, the
    pseudo-item's sample (``tail``) with its rows of the table transposed and their
    clusters, and where each item sits in that sample (``-1`` when it is not in it). Arrays
    on the CPU, where the compiled retrieval reads them."""

    clusters: ItemClusters
    tail: TailSample
    sample_columns: np.ndarray  # (w, s)
    sample_vectors: np.ndarray  # (s, d)
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
            np.ascontiguousarray(table[tail.positions].cpu().numpy().T),
            np.ascontiguousarray(tail.vectors.cpu().numpy()),
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
        from tastespace.models.neural import cpu_retrieval, cpu_steps  # numba

        cpu_steps.use_torch_threads()
        clusters = self.clusters
        reach = int(np.ceil(self.reads_per_candidate * top))
        found, counts, means, lses = cpu_retrieval.retrieve(
            np.ascontiguousarray(lifted(users).cpu().numpy()),
            histories.indptr,
            histories.indices,
            top,
            reach,
            clusters.centroid_columns,
            clusters.sizes,
            clusters.starts,
            clusters.blocks,
            clusters.items,
            clusters.cluster_of,
            clusters.rank,
            self.sample_columns,
            self.sample_clusters,
            self.sample_slot,
            self.sample_vectors,
        )
        tops = [row[:count] for row, count in zip(found, counts, strict=True)]
        device = users.device
        return tops, torch.from_numpy(means).to(device), torch.from_numpy(lses).to(device)
