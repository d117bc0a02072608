"""Fold-in by solving: a user's vector is fitted to their history with the item side fixed.

Why: an encoder amortised over a few hundred training users leaves Recall@20 on the table on
small sets (4 % on ml-latest-small, docs/neural.md); solving each user's own small, convex problem —
the training objective's multinomial likelihood plus its L2 on the user vector — does not.
The user tower's output is the starting point, so a few dozen Adam steps settle it.

The gradient is written out rather than taken by autograd: for dot-product scores it is
``(n·softmax(z) − x) V + 2·l2·u`` (``n`` = history length), and skipping the autograd graph
makes a one-user fold-in several times cheaper, which is what a served request pays.

Two solvers minimise that objective. :func:`solve_user_vectors` takes the softmax over the
whole catalog (exact; every step reads the item table twice, so its cost grows with the
catalog). :func:`solve_on_candidates` takes it over each user's candidates — the history,
the ``top`` items the start vector scores highest (retrieved through the model's index) and
a fixed uniform sample of the rest, weighted to stand for everything not retrieved — so a
step costs the same on 4,000 items or 4 million (``bench/fold_in.py`` measures both).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.index.blocks import fixed_blocks, pad_rows

BETAS, EPS = (0.9, 0.999), 1e-8
"""Adam's usual constants (Kingma & Ba 2015)."""


def solve_user_vectors(
    items: torch.Tensor,
    bias: torch.Tensor,
    histories: sp.csr_matrix,
    start: torch.Tensor,
    *,
    l2: float,
    steps: int,
    lr: float,
) -> torch.Tensor:
    """Minimise ``-Σ x·log_softmax(u·Vᵀ + b) + l2·‖u‖²`` per user by Adam from ``start``.

    ``items`` is ``(n_items, dim)``, ``bias`` ``(n_items,)``, ``histories`` ``(n, n_items)``.
    Deterministic, and batch-invariant: users are solved in fixed blocks of ``QUERY_BLOCK``
    (padded with empty histories), so a user's vector is the same bits alone or batched.
    """
    chunks = []
    with torch.no_grad():
        for begin, stop in fixed_blocks(histories.shape[0]):
            x = torch.as_tensor(
                (histories[begin:stop] > 0).toarray(), dtype=torch.float32, device=start.device
            )
            users = start[begin:stop].detach().clone()
            solved = _adam(items, bias, pad_rows(x), pad_rows(users), l2, steps, lr)
            chunks.append(solved[: stop - begin])
    return torch.cat(chunks) if chunks else start.detach().clone()


def _adam(
    items: torch.Tensor,
    bias: torch.Tensor,
    x: torch.Tensor,
    users: torch.Tensor,
    l2: float,
    steps: int,
    lr: float,
) -> torch.Tensor:
    lengths = x.sum(dim=1, keepdim=True)
    first, second = torch.zeros_like(users), torch.zeros_like(users)
    beta1, beta2 = BETAS
    for step in range(1, steps + 1):
        probs = torch.softmax(torch.addmm(bias, users, items.T), dim=1)
        grad = torch.addmm(users, probs.mul_(lengths).sub_(x), items, beta=2 * l2)
        first.lerp_(grad, 1 - beta1)
        second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (second / (1 - beta2**step)).sqrt_().add_(EPS)
        users.addcdiv_(first, denom, value=-lr / (1 - beta1**step))
    return users


def solve_on_candidates(
    items: torch.Tensor,
    bias: torch.Tensor,
    histories: sp.csr_matrix,
    start: torch.Tensor,
    *,
    l2: float,
    steps: int,
    lr: float,
    retrieve: Callable[[torch.Tensor, sp.csr_matrix], np.ndarray],
    tail: np.ndarray,
    rounds: int = 1,
) -> torch.Tensor:
    """Like :func:`solve_user_vectors`, with each user's softmax restricted to candidates.

    ``retrieve(users, histories)`` gives ``(n, top)`` item ids per user (history excluded,
    ``-1`` pads); ``tail`` is a fixed sample of item ids whose logits carry
    ``log(rest / sampled)``, so ``Σ exp`` over them estimates the part of the normaliser outside
    history ∪ top. The steps are split into ``rounds``; each round retrieves the candidates
    again from the vectors reached so far (Adam's moments carry over), because the solution's
    top items are not all among the start vector's.

    Batch-invariant: a user's arrays depend only on their own history (each is padded to a
    power-of-two length), and products are elementwise or per-user (``bmm``), whose bits do
    not depend on the other users (measured; ``tests/models/test_fold_in.py`` keeps it so).
    """
    histories = (histories > 0).astype(np.float32).tocsr()
    n_items = items.shape[0]
    users = start.detach().clone()
    first, second = torch.zeros_like(users), torch.zeros_like(users)
    bounds = np.linspace(0, steps, rounds + 1).round().astype(int)
    with torch.no_grad():
        for begin, end in zip(bounds[:-1], bounds[1:], strict=True):
            top = retrieve(users, histories)
            lists = [
                (
                    histories.indices[histories.indptr[r] : histories.indptr[r + 1]],
                    top[r][top[r] >= 0],
                )
                for r in range(histories.shape[0])
            ]
            widths = np.array([_bucket(len(h) + len(t)) for h, t in lists], np.int64)
            for width in np.unique(widths):
                rows = torch.as_tensor(np.flatnonzero(widths == width))
                problem = _candidate_problem(
                    items, bias, [lists[r] for r in rows.tolist()], int(width), tail, n_items
                )
                state = (users[rows], first[rows], second[rows])
                solved = _adam_candidates(*problem, *state, l2, range(begin + 1, end + 1), lr)
                users[rows], first[rows], second[rows] = solved
    return users


def _bucket(length: int) -> int:
    """Padded candidate-list length: the next power of two (at least 64)."""
    return max(64, 1 << max(0, int(length - 1).bit_length()))


def _candidate_problem(
    items: torch.Tensor,
    bias: torch.Tensor,
    lists: list[tuple[np.ndarray, np.ndarray]],
    width: int,
    tail: np.ndarray,
    n_items: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per user: candidate vectors ``(g, L, d)``, logit offsets ``(g, L)`` (``-inf`` for pads
    and tail items already among the candidates, ``log`` weight for the tail) and the history
    indicator ``(g, L)``. ``L = width + len(tail)``."""
    g, span = len(lists), width + len(tail)
    ids = np.zeros((g, span), np.int64)
    offset = np.full((g, span), -np.inf, np.float32)
    x = np.zeros((g, span), np.float32)
    for r, (history, top) in enumerate(lists):
        chosen = np.concatenate([history, top])
        ids[r, : len(chosen)] = chosen
        offset[r, : len(chosen)] = 0.0
        x[r, : len(history)] = 1.0
        fresh = ~np.isin(tail, chosen)
        ids[r, width:] = tail
        if fresh.any():
            offset[r, width:][fresh] = np.log((n_items - len(chosen)) / fresh.sum())
    index = torch.as_tensor(ids)
    offsets = bias[index] + torch.as_tensor(offset)
    return items[index], offsets, torch.as_tensor(x)


def _adam_candidates(
    vectors: torch.Tensor,
    offsets: torch.Tensor,
    x: torch.Tensor,
    users: torch.Tensor,
    first: torch.Tensor,
    second: torch.Tensor,
    l2: float,
    steps: range,
    lr: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Adam steps ``steps`` (numbered from 1 overall, for the bias correction)."""
    lengths = x.sum(dim=1, keepdim=True)
    pulled = torch.bmm(x.unsqueeze(1), vectors).squeeze(1)  # Σ over the history of v_i
    beta1, beta2 = BETAS
    for step in steps:
        logits = (vectors * users.unsqueeze(1)).sum(dim=2).add_(offsets)
        probs = torch.softmax(logits, dim=1).mul_(lengths)
        grad = torch.bmm(probs.unsqueeze(1), vectors).squeeze(1).sub_(pulled)
        grad.add_(users, alpha=2 * l2)
        first.lerp_(grad, 1 - beta1)
        second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (second / (1 - beta2**step)).sqrt_().add_(EPS)
        users.addcdiv_(first, denom, value=-lr / (1 - beta1**step))
    return users, first, second
