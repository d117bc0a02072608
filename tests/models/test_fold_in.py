"""Neural fold-in solvers: the candidate solve is the exact solve when the candidates cover the
catalog, and a user's vector is the same bits alone or batched."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.models.neural.fold_in import solve_on_candidates, solve_user_vectors

N_ITEMS, DIM = 300, 8
SOLVER = {"l2": 2.0, "steps": 30, "lr": 0.05}


def problem(n_users: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    items = torch.as_tensor(rng.standard_normal((N_ITEMS, DIM)).astype(np.float32))
    bias = torch.as_tensor(rng.standard_normal(N_ITEMS).astype(np.float32))
    histories = sp.random(n_users, N_ITEMS, density=0.05, format="csr", random_state=seed)
    histories.data[:] = 1.0
    start = torch.as_tensor(0.1 * rng.standard_normal((n_users, DIM)).astype(np.float32))
    return items, bias, histories.astype(np.float32), start


def every_other_item(start: torch.Tensor, histories: sp.csr_matrix) -> np.ndarray:
    """A 'retrieval' that returns every item outside the history: the candidates are all."""
    ids = np.full((histories.shape[0], N_ITEMS), -1, np.int64)
    for r in range(histories.shape[0]):
        rest = np.setdiff1d(np.arange(N_ITEMS), histories[r].indices)
        ids[r, : len(rest)] = rest
    return ids


def top_by_score(items: torch.Tensor, bias: torch.Tensor, top: int):
    def retrieve(start: torch.Tensor, histories: sp.csr_matrix) -> np.ndarray:
        scores = (start @ items.T + bias).numpy()
        scores[histories.toarray() > 0] = -np.inf
        return np.argsort(-scores, axis=1, kind="stable")[:, :top]

    return retrieve


def test_candidates_covering_the_catalog_give_the_exact_solution():
    items, bias, histories, start = problem()
    exact = solve_user_vectors(items, bias, histories, start, **SOLVER)
    covered = solve_on_candidates(
        items,
        bias,
        histories,
        start,
        retrieve=every_other_item,
        tail=np.empty(0, np.int64),
        **SOLVER,
    )
    torch.testing.assert_close(covered, exact, rtol=1e-4, atol=1e-4)


def test_top_and_tail_candidates_land_near_the_exact_solution():
    items, bias, histories, start = problem()
    exact = solve_user_vectors(items, bias, histories, start, **SOLVER)
    tail = np.sort(np.random.default_rng(1).choice(N_ITEMS, 60, replace=False))
    approx = solve_on_candidates(
        items, bias, histories, start, retrieve=top_by_score(items, bias, 60), tail=tail, **SOLVER
    )
    x = torch.as_tensor(histories.toarray())

    def objective(users: torch.Tensor) -> torch.Tensor:
        log_p = torch.log_softmax(users @ items.T + bias, dim=1)
        return -(x * log_p).sum(dim=1) + SOLVER["l2"] * (users**2).sum(dim=1)

    best, begun, reached = objective(exact), objective(start), objective(approx)
    share = ((reached - best) / (begun - best)).numpy()
    # random items are the hard case (no structure, a flat softmax); measured 0.12 / 0.36
    assert np.median(share) < 0.2 and share.max() < 0.5, share


def test_a_user_solved_alone_gets_the_same_bits_as_in_a_batch():
    items, bias, histories, start = problem()
    tail = np.arange(0, N_ITEMS, 7)
    solve = dict(retrieve=top_by_score(items, bias, 40), tail=tail, **SOLVER)
    batch = solve_on_candidates(items, bias, histories, start, **solve)
    for row in (0, 13, 39):
        alone = solve_on_candidates(items, bias, histories[row], start[row : row + 1], **solve)
        assert torch.equal(alone[0], batch[row])
