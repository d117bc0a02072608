"""Exact top-k of a query from the exact scores of a nearby one, without a pass over the table.

Why: the neural fold-in ends with a pass over the whole catalog at its last anchor ``a`` and
then moves the user a little, to ``q``. Searching at ``q`` would read the table once more —
for one user a third of the request. But ``q·x = a·x + (q − a)·x ≤ a·x + ‖q − a‖·‖x‖``
(Cauchy–Schwarz), so once the exact scores of a shortlist give a ``k``-th best score ``t``,
every item whose bound stays below ``t`` is out, and only the rest are scored. On a 40k-item
catalog a median 618 items were left to score (docs/benchmarks-index.md).

The answer is the exact search's bit for bit: scores come from a ``QUERY_BLOCK``-row product
with at least ``QUERY_BLOCK`` rows of the table, whose bits MKL gives as in the whole-table
product (``tests/index/test_refine.py`` keeps it so), and equal scores go by item index.
"""

from __future__ import annotations

import numpy as np
import torch

from tastespace.index.blocks import QUERY_BLOCK, block_scores, pad_rows
from tastespace.index.topk import topk_rows

RESCORE_SHARE = 0.25
"""The most of the catalog a refinement rescores before it leaves the query to the search: the
rows it scores are gathered first, so rescoring nearly all of them cost more than one pass
(a weakly trained 100k-item model left 63,000–99,990 items to rescore for 16 of 16 users: 35 ms
a user against 4.7 ms for the index)."""

ROUNDING = 1e-5
"""Slack on the bound, relative to ``(‖q‖ + ‖a‖)·‖x‖``: float32 products of ~100 terms err by
far less (6e-8 per term), and a bound short by rounding would drop an item that belongs."""


def refine_top_k(
    table: torch.Tensor,
    norms: torch.Tensor,
    query: torch.Tensor,
    anchor: torch.Tensor,
    anchor_scores: torch.Tensor,
    shortlist: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Top-``k`` ``(ids, scores)`` of ``query @ table.T`` among the items ``anchor_scores``
    leaves finite (``-inf`` marks excluded ones), or None when ``shortlist`` (finite items,
    ideally the anchor's best) holds fewer than ``max(k, QUERY_BLOCK)`` of them or the bound
    leaves more than ``RESCORE_SHARE`` of the catalog to score.

    ``table`` is ``(n, w)``, ``norms`` its rows' norms, ``query`` and ``anchor`` ``(w,)``, and
    ``anchor_scores`` ``(n,)`` the exact scores of ``anchor``."""
    if len(shortlist) < max(k, QUERY_BLOCK):
        return None
    listed = _scores(table, query, shortlist)
    threshold = torch.topk(listed, k).values[-1]
    reach = torch.linalg.vector_norm(query - anchor)
    slack = ROUNDING * (torch.linalg.vector_norm(query) + torch.linalg.vector_norm(anchor))
    bound = anchor_scores + (reach + slack) * norms
    bound[torch.as_tensor(shortlist, device=table.device)] = -torch.inf
    rest = torch.nonzero(bound >= threshold).squeeze(1).cpu().numpy()
    if len(shortlist) + len(rest) > RESCORE_SHARE * len(table):
        return None
    pool = np.sort(np.concatenate([shortlist, rest]))
    ids, scores = topk_rows(_scores(table, query, pool).cpu().numpy()[None, :], k)
    ids[ids >= 0] = pool[ids[ids >= 0]]
    return ids[0], scores[0]


def _scores(table: torch.Tensor, query: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
    """``table[rows] @ query`` with the bits of the whole-table product (``rows`` ≥ 16)."""
    listed = table[torch.as_tensor(rows, device=table.device)]
    return block_scores(pad_rows(query.unsqueeze(0)), listed, 1)[0]
