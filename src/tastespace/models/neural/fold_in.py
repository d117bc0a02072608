"""Fold-in by solving: a user's vector is fitted to their history with the item side fixed.

Why: an encoder amortised over a few hundred training users leaves Recall@20 on the table on
small sets (docs/neural.md, fifth round); solving each user's own small, convex problem —
the training objective's multinomial likelihood plus its L2 on the user vector — does not.
The user tower's output is the starting point, so a few dozen Adam steps settle it.
"""

from __future__ import annotations

from collections.abc import Callable

import scipy.sparse as sp
import torch

Logits = Callable[[torch.Tensor], torch.Tensor]
CELLS_PER_CHUNK = 1 << 24
"""Users are solved in chunks of about this many (user, item) logits (64 MiB of floats)."""


def solve_user_vectors(
    logits: Logits,
    histories: sp.csr_matrix,
    start: torch.Tensor,
    *,
    l2: float,
    steps: int,
    lr: float,
) -> torch.Tensor:
    """Minimise ``-Σ x·log_softmax(logits(u)) + l2·‖u‖²`` per user from ``start``.

    ``logits`` maps ``(b, dim)`` user vectors to ``(b, n_items)`` scores with the items fixed;
    ``histories`` is ``(n, n_items)``. Deterministic: plain Adam from a given start.
    """
    n_users, n_items = histories.shape
    rows = max(1, CELLS_PER_CHUNK // max(n_items, 1))
    chunks = []
    for begin in range(0, n_users, rows):
        x = torch.as_tensor(
            (histories[begin : begin + rows] > 0).toarray(),
            dtype=torch.float32,
            device=start.device,
        )
        chunks.append(_solve_chunk(logits, x, start[begin : begin + rows], l2, steps, lr))
    return torch.cat(chunks) if chunks else start.detach().clone()


def _solve_chunk(
    logits: Logits, x: torch.Tensor, start: torch.Tensor, l2: float, steps: int, lr: float
) -> torch.Tensor:
    users = start.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([users], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            nll = -(x * torch.log_softmax(logits(users), dim=1)).sum()
            loss = nll + l2 * users.square().sum()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return users.detach()
