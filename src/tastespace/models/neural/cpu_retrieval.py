"""Retrieval from item clusters as one compiled pass per user (numba), for ``retrieval.py``.

Why: per user a round probes the centroids, scores the ~4,096 items of the clusters it reads,
picks its ``top`` best unseen ones and sums up the rest; as batched torch and numpy operations
that was index bookkeeping for a layout shared by the batch (which items sit where in whose
row) and a dozen small products padded to 16 rows, 3.5 ms a round for one user and 0.21 s for
1,000 (docs/benchmarks-index.md). Here each user runs the whole round on one thread in their
own buffers (``prange`` over users), so a user's answer cannot depend on who shares the
request, and nothing is padded. The pseudo-item's sample (4,096 items) is the largest read:
as padded BLAS products over fixed blocks of users instead, its scores and weighted mean cost
1,000 users 96–108 ms a round against 134–140 here, but a lone user 0.74–1.6 ms against
0.18–0.24 (docs/benchmarks-index.md, session 19), and a served request is one user or a few.

Scores are sums over the vector's coordinates in their order, vectorised across items (the
item table is read transposed, ``(w, n)``), so every item's score takes the same arithmetic;
they are not the bits of a BLAS product, and need not be: the candidates are rescored exactly
by the solve (``fold_in._candidate_problem``). Nothing is compiled with ``fastmath``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tastespace.models.neural.cpu_steps import exp32, weighted_rows


@njit(cache=True)
def probe(centroid_scores, sizes, reach):
    """The clusters to read, best-scored first (equal scores by cluster index), as many as
    it takes to hold ``reach`` items (all of them when the catalog holds fewer)."""
    order = np.argsort(-centroid_scores, kind="mergesort")
    wanted = min(reach, sizes.sum())
    held = 0
    for taken in range(len(order)):
        held += sizes[order[taken]]
        if held >= wanted:
            return order[: taken + 1]
    return order


@njit(cache=True)
def _logsumexp(values):
    """``log Σ exp(v)`` over the finite values (``-inf`` if none)."""
    peak = values.max() if len(values) else -np.inf
    if peak == -np.inf:
        return -np.inf
    weights = np.empty(len(values), np.float32)
    for i in range(len(values)):  # apart from the sum, so that it vectorises (-inf gives 0)
        weights[i] = exp32(values[i] - peak)
    total = 0.0
    for weight in weights:
        total += weight
    return peak + np.log(total)


SELECT_BINS = 1024
"""Bins :func:`kth_largest` spreads a row's range over: with ~4,096 scores a bin holds a few,
which are then sorted."""


@njit(cache=True, inline="always")
def _bin(value, low, scale):
    """A value's histogram bin: one function, so the count and the collection that follows
    put every value in the same bin."""
    return min(int((np.float64(value) - low) * scale), SELECT_BINS - 1)


@njit(cache=True)
def kth_largest(values, k):
    """The ``k``-th largest finite value (``1 <= k <=`` their count) by one histogram over
    their range, then a sort of the one bin it falls in. Why: numba's ``np.partition`` took
    ~50 µs for 4,096 scores, a quarter of a user's round; this takes ~12."""
    low, high = np.inf, -np.inf
    for value in values:
        if value > -np.inf:
            low, high = min(low, value), max(high, value)
    if high == low:
        return np.float32(high)
    scale = SELECT_BINS / (np.float64(high) - np.float64(low))
    counts = np.zeros(SELECT_BINS, np.int64)
    for value in values:
        if value > -np.inf:
            counts[_bin(value, low, scale)] += 1
    above, chosen_bin = 0, SELECT_BINS - 1
    while above + counts[chosen_bin] < k:
        above += counts[chosen_bin]
        chosen_bin -= 1
    held = np.empty(counts[chosen_bin], np.float32)
    taken = 0
    for value in values:
        if value > -np.inf:
            if _bin(value, low, scale) == chosen_bin:
                held[taken] = value
                taken += 1
    held.sort()
    return held[len(held) - (k - above)]


@njit(cache=True)
def _best(values, top):
    """Positions of the ``top`` largest finite ``values`` (fewer if fewer are finite); at
    the ``top``-th place equal values go to the lowest positions."""
    finite = 0
    for value in values:
        if value > -np.inf:
            finite += 1
    wanted = min(top, finite)
    chosen = np.empty(len(values), np.int64)
    if wanted == 0:
        return chosen[:0]
    bound = kth_largest(values, wanted)
    taken = 0
    for i in range(len(values)):  # without a branch: every position written, the kept counted
        chosen[taken] = i
        taken += values[i] > bound
    for i in range(len(values)):
        if taken == wanted:
            break
        if values[i] == bound:
            chosen[taken] = i
            taken += 1
    return chosen[:wanted]


@njit(cache=True)
def _sampled_rest(
    query, seen, picked, placed, sample_columns, sample_clusters, sample_slot, sample_vectors,
    mean,
):  # fmt: skip
    """The pseudo-item's sample at ``query``, its seen and ``picked`` items left out: writes
    the softmax-weighted mean of the rest's vectors into ``mean``; returns the largest
    sampled score and, for the sampled items of unread clusters, their ``Σ exp(score −
    peak)`` and how many they are (one pass of exponentials for both)."""
    sampled = np.empty(sample_columns.shape[1], np.float32)
    weighted_rows(query, sample_columns, sampled)
    for item in seen:
        if sample_slot[item] >= 0:
            sampled[sample_slot[item]] = -np.inf
    for item in picked:
        if sample_slot[item] >= 0:
            sampled[sample_slot[item]] = -np.inf
    peak = sampled.max()
    total, unread_total, drawn = 0.0, 0.0, 0
    dim = len(mean)
    summed = np.zeros(dim, np.float32)
    if peak == -np.inf:
        return peak, unread_total, drawn
    weights = np.empty(len(sampled), np.float32)
    for s in range(len(sampled)):  # apart from the sums, so that it vectorises
        weights[s] = exp32(sampled[s] - peak)
    for s in range(len(sampled)):
        if sampled[s] > -np.inf:
            total += weights[s]
            if placed[sample_clusters[s]] < 0:
                unread_total += weights[s]
                drawn += 1
    weighted_rows(weights, sample_vectors, summed)  # the left-out ones weigh exp(-inf) = 0
    for j in range(dim):
        mean[j] = summed[j] / total
    return peak, unread_total, drawn


@njit(cache=True, parallel=True)
def retrieve(
    queries, indptr, indices, top, reach,
    centroid_columns, sizes, starts, blocks, items, cluster_of, rank,
    sample_columns, sample_clusters, sample_slot, sample_vectors,
):  # fmt: skip
    """Per user with a history: their ``top`` best unseen items among the clusters read
    (``(n, top)`` item ids ascending, ``-1`` after ``counts`` of them), the softmax-weighted
    mean of the sampled rest ``(n, d)`` and the rest's log-sum-exp ``(n,)`` (what
    ``ClusterCandidates.retrieve`` describes). ``queries`` are ``[u, 1]`` rows, the histories
    CSR (``indptr``, ``indices``); the clusters as ``ItemClusters`` lays them out."""
    count, dim_in = queries.shape
    dim = sample_vectors.shape[1]
    n_items = cluster_of.shape[0]
    found = np.full((count, top), -1, np.int64)
    counts = np.zeros(count, np.int64)
    means = np.zeros((count, dim), np.float32)
    lses = np.full(count, -np.inf, np.float32)
    for r in prange(count):
        seen = indices[indptr[r] : indptr[r + 1]]
        if len(seen) == 0:
            continue
        query = queries[r]
        centroid_scores = np.empty(len(sizes), np.float32)
        weighted_rows(query, centroid_columns, centroid_scores)
        read = probe(centroid_scores, sizes, reach)
        placed = np.full(len(sizes), -1, np.int64)  # where each read cluster begins in `scores`
        width = 0
        for c in np.sort(read):
            placed[c] = width
            width += sizes[c]
        scores = np.empty(width, np.float32)
        ids = np.empty(width, np.int64)
        for c in np.sort(read):
            begin, size = starts[c], sizes[c]
            block = blocks[begin * dim_in : (begin + size) * dim_in].reshape(dim_in, size)
            weighted_rows(query, block, scores[placed[c] : placed[c] + size])
            ids[placed[c] : placed[c] + size] = items[begin : begin + size]
        unread_seen = 0
        for item in seen:
            c = cluster_of[item]
            if placed[c] >= 0:
                scores[placed[c] + rank[item]] = -np.inf
            else:
                unread_seen += 1
        chosen = _best(scores, top)
        picked = np.sort(ids[chosen])
        counts[r] = len(picked)
        found[r, : len(picked)] = picked
        scores[chosen] = -np.inf
        read_lse = _logsumexp(scores)

        peak, unread_total, drawn = _sampled_rest(
            query, seen, picked, placed, sample_columns, sample_clusters, sample_slot,
            sample_vectors, means[r],
        )  # fmt: skip
        left = n_items - width - unread_seen  # unseen items of unread clusters
        unread_lse = -np.inf
        if drawn > 0 and left > 0:  # each sampled one stands for left / drawn of them
            unread_lse = peak + np.log(unread_total) + np.log(left) - np.log(drawn)
        peak = max(read_lse, unread_lse)
        if peak > -np.inf:
            lses[r] = peak + np.log(np.exp(read_lse - peak) + np.exp(unread_lse - peak))
    return found, counts, means, lses
