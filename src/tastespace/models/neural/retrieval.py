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
(``cpu_retrieval.py``), and the sample's products run over fixed blocks of users, padded
(``tests/models/test_fold_in.py`` keeps it so).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.index.blocks import block_scores, fixed_blocks, pad_rows
from tastespace.index.clusters import ItemClusters
from tastespace.models.neural.fold_in import TailSample, lifted, pass_rows

READS_PER_CANDIDATE = 8.0
"""Items read per candidate wanted: 512 candidates read 4,096 items (a tenth of a 40k-item
catalog). ml-100k / ml-latest-small Recall@20 stayed within 0.005 of the exact solve
(docs/benchmarks-index.md)."""


@dataclasses.dataclass(frozen=True)
class ClusterCandidates:
    """What retrieval needs of one item table, built once per fitted state: its clusters, the
    pseudo-item's sample (``tail``) with its rows of the table (vectors and biases) and
    their clusters, and where each item sits in that sample (``-1`` when it is not in it).
    Arrays on the CPU, where the compiled retrieval reads them."""

    clusters: ItemClusters
    tail: TailSample
    sample_rows: torch.Tensor  # (s, w)
    sample_vectors: torch.Tensor  # (s, d)
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
            table[tail.positions].cpu().contiguous(),
            tail.vectors.cpu().contiguous(),
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
        queries = lifted(users).cpu()
        sampled = self._sample_scores(queries)
        found, counts, totals, lses = cpu_retrieval.retrieve(
            queries.numpy(),
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
            sampled,
            self.sample_clusters,
            self.sample_slot,
        )
        means = self._sample_means(torch.from_numpy(sampled), totals)
        tops = [row[:count] for row, count in zip(found, counts, strict=True)]
        device = users.device
        return tops, means.to(device), torch.from_numpy(lses).to(device)

    def _sample_scores(self, queries: torch.Tensor) -> np.ndarray:
        """``(n, s)``: every query's scores of the sample, as BLAS products over fixed
        blocks of users (each user's bits then do not depend on the request). Why not per
        user in the compiled loop: there each user streamed the sample from memory twice
        (scores, then the weighted mean), two thirds of a round's reads; a block of users
        reads it once."""
        sampled = np.empty((len(queries), len(self.sample_rows)), np.float32)
        for begin, stop in fixed_blocks(len(queries), pass_rows(len(self.sample_rows))):
            block = pad_rows(queries[begin:stop])
            sampled[begin:stop] = block_scores(block, self.sample_rows, stop - begin).numpy()
        return sampled

    def _sample_means(self, weights: torch.Tensor, totals: np.ndarray) -> torch.Tensor:
        """``(n, d)``: the sample's mean vector under each user's ``weights`` ``(n, s)``
        (summing to ``totals``; a row of zeros gives zeros), over fixed padded blocks."""
        means = torch.empty((len(weights), self.sample_vectors.shape[1]))
        for begin, stop in fixed_blocks(len(weights), pass_rows(len(self.sample_rows))):
            block = pad_rows(weights[begin:stop])
            means[begin:stop] = torch.mm(block, self.sample_vectors)[: stop - begin]
        scale = torch.from_numpy(totals.astype(np.float32)).clamp_min(1.0)  # ≥ 1 when any
        return means / scale.unsqueeze(1)
