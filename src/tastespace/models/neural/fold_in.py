"""Fold-in by solving: a user's vector is fitted to their history with the item side fixed.

Why: an encoder amortised over a few hundred training users leaves Recall@20 on the table on
small sets (4 % on ml-latest-small, docs/neural.md); solving each user's own small, convex problem —
the training objective's multinomial likelihood plus its L2 on the user vector — does not.
The user tower's output is the starting point, so a few dozen Adam steps settle it.

The gradient is written out rather than taken by autograd: for dot-product scores it is
``(n·softmax(z) − x) V + 2·l2·u`` (``n`` = history length), and skipping the autograd graph
makes a one-user fold-in several times cheaper, which is what a served request pays.
"""

from __future__ import annotations

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
