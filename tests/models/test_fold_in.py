"""Neural fold-in solvers: the candidate solve reaches the exact minimum when the candidates
cover the catalog and lands near it with a few, and a user's vector is the same bits alone or
batched."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from tastespace.models.neural.fold_in import (
    SELECT_STRIDE,
    TailSample,
    _anchor,
    bfgs_pair,
    solve_on_candidates,
    solve_user_vectors,
    top_columns,
    two_loop,
)
from tastespace.models.neural.retrieval import ClusterCandidates

N_ITEMS, DIM = 300, 8
SOLVER = {"l2": 2.0, "steps": 30, "lr": 0.05}


@pytest.fixture(params=[True, False], ids=["compiled", "torch"])
def steps(request, monkeypatch):
    """Both forms of the quasi-Newton steps: compiled (the CPU's) and torch (other devices')."""
    from tastespace.models.neural import fold_in

    monkeypatch.setattr(fold_in, "COMPILED_STEPS", request.param)
    return request.param


@pytest.fixture(params=[torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
def hessian_precision(request, monkeypatch):
    """Both precisions of the Hessian's product: bfloat16 runs only where the CPU has it."""
    from tastespace.models.neural import fold_in

    native = fold_in.hessian_dtype(torch.device("cpu"))
    if request.param == torch.bfloat16 and native != torch.bfloat16:
        pytest.skip("this CPU does not multiply bfloat16 natively")
    monkeypatch.setattr(fold_in, "hessian_dtype", lambda device: request.param)
    return request.param


def problem(n_users: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    items = torch.as_tensor(rng.standard_normal((N_ITEMS, DIM)).astype(np.float32))
    bias = torch.as_tensor(rng.standard_normal(N_ITEMS).astype(np.float32))
    histories = sp.random(n_users, N_ITEMS, density=0.05, format="csr", random_state=seed)
    histories.data[:] = 1.0
    start = torch.as_tensor(0.1 * rng.standard_normal((n_users, DIM)).astype(np.float32))
    return items, bias, histories.astype(np.float32), start


def table(items: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """What the candidate solve reads: each item's vector and bias side by side."""
    return torch.column_stack([items, bias])


def objective(items, bias, histories, users: torch.Tensor) -> torch.Tensor:
    """What both solvers minimise, per user: ``-Σ x·log_softmax(u·Vᵀ + b) + l2·‖u‖²``."""
    x = torch.as_tensor(histories.toarray())
    log_p = torch.log_softmax(users @ items.T + bias, dim=1)
    return -(x * log_p).sum(dim=1) + SOLVER["l2"] * (users**2).sum(dim=1)


def gradient_norm(items, bias, histories, users: torch.Tensor) -> torch.Tensor:
    users = users.clone().requires_grad_(True)
    objective(items, bias, histories, users).sum().backward()
    return users.grad.norm(dim=1)


def test_candidates_covering_the_catalog_reach_the_exact_minimum(steps):
    items, bias, histories, start = problem()
    covered = solve_on_candidates(
        table(items, bias), histories, start, l2=SOLVER["l2"], top=N_ITEMS
    )
    adam = solve_user_vectors(items, bias, histories, start, **SOLVER)
    # Newton on the exact objective: a stationary point, at least as low as 30 Adam steps
    shrink = gradient_norm(items, bias, histories, covered) / gradient_norm(
        items, bias, histories, start
    )
    assert shrink.max() < 1e-2, shrink
    reached, adam_reached = (objective(items, bias, histories, u) for u in (covered, adam))
    assert (reached <= adam_reached + 1e-5).all()


def way_back(items, bias, histories, start):
    """A measure of solved vectors: per user, how far above the minimum (every item a
    candidate) their objective is, as a share of the start's."""
    best = objective(
        items,
        bias,
        histories,
        solve_on_candidates(table(items, bias), histories, start, l2=2.0, top=N_ITEMS),
    )
    begun = objective(items, bias, histories, start)
    return lambda solved: (
        (objective(items, bias, histories, solved) - best) / (begun - best)
    ).numpy()


def test_top_candidates_and_the_pseudo_item_land_near_the_minimum(steps):
    items, bias, histories, start = problem()
    share = way_back(items, bias, histories, start)
    shares = []
    for top in (60, 120):
        shares.append(
            share(solve_on_candidates(table(items, bias), histories, start, l2=2.0, top=top))
        )
    # random items are the hard case (no structure, a flat softmax): measured median 0.04 and
    # 0.0008 of the way back to the start, worst user 0.28 and 0.003
    assert np.median(shares[1]) < 0.01 and shares[1].max() < 0.02, shares[1]
    assert np.median(shares[0]) < 0.1 and np.median(shares[1]) < np.median(shares[0])


@pytest.mark.parametrize("tail,top", [(N_ITEMS, 40), (100, 40), (100, 120)])
def test_a_user_solved_alone_gets_the_same_bits_as_in_a_batch(tail, top, steps):
    """120 candidates: the users' candidate lists fall into more than one padded width."""
    items, bias, histories, start = problem()
    batch = solve_on_candidates(
        table(items, bias), histories, start, l2=2.0, top=top, tail=TailSample.of(items, tail)
    )
    for row in (0, 13, 39):
        alone = solve_on_candidates(
            table(items, bias),
            histories[row],
            start[row : row + 1],
            l2=2.0,
            top=top,
            tail=TailSample.of(items, tail),
        )
        assert torch.equal(alone[0], batch[row])


def clustered(items, bias, reads: float, tail: int = N_ITEMS) -> ClusterCandidates:
    """Candidates from 17 clusters of the catalog (about √300), ``reads`` items read per
    candidate wanted."""
    return ClusterCandidates.of(table(items, bias), TailSample.of(items, tail), reads, 17)


def test_clusters_read_whole_give_the_exact_pass_candidates():
    items, bias, histories, start = problem()
    whole = clustered(items, bias, reads=N_ITEMS)
    tops, means, lses = whole.retrieve(histories, start, 40)
    want_tops, want_means, want_lses = _anchor(table(items, bias), histories, start, 40, whole.tail)
    for got, want in zip(tops, want_tops, strict=True):
        np.testing.assert_array_equal(got, want)
    assert torch.allclose(means, want_means, atol=1e-5)
    assert torch.allclose(lses, want_lses, atol=1e-5)


def test_reading_part_of_the_clusters_lands_near_the_minimum():
    items, bias, histories, start = problem()
    share = way_back(items, bias, histories, start)
    shares = {}
    for reach in (150, 100):  # half and a third of the catalog read for 60 candidates
        candidates = clustered(items, bias, reads=reach / 60)
        shares[reach] = share(
            solve_on_candidates(
                table(items, bias), histories, start, l2=2.0, top=60, candidates=candidates
            )
        )
    # random items are the hard case (no clusters to find): measured medians 0.0014 and
    # 0.0043 of the way back to the start, worst users 0.032 and 0.039; the exact pass with
    # the same 60 candidates: median 0.0010
    assert np.median(shares[150]) < 0.003 and shares[150].max() < 0.06, shares[150]
    assert np.median(shares[100]) < 0.01 and shares[100].max() < 0.08, shares[100]
    assert np.median(shares[150]) < np.median(shares[100])


def test_a_user_solved_from_clusters_gets_the_same_bits_alone_as_in_a_batch(steps):
    items, bias, histories, start = problem()
    candidates = clustered(items, bias, reads=100 / 40, tail=100)
    options = {"l2": 2.0, "top": 40, "candidates": candidates}
    batch = solve_on_candidates(table(items, bias), histories, start, **options)
    for row in (0, 13, 39):
        alone = solve_on_candidates(
            table(items, bias), histories[row], start[row : row + 1], **options
        )
        assert torch.equal(alone[0], batch[row]), row


def test_a_sampled_pseudo_item_direction_still_lands_near_the_minimum():
    items, bias, histories, start = problem()
    share = way_back(items, bias, histories, start)
    shares = {}
    for tail in (300, 200):  # the whole catalog, two thirds of it
        approx = solve_on_candidates(
            table(items, bias), histories, start, l2=2.0, top=120, tail=TailSample.of(items, tail)
        )
        shares[tail] = share(approx)
    # random items are the hard case (a flat tail): measured median 0.0008 and worst 0.003
    # of the way back to the start with the exact direction, 0.0015 and 0.012 from the sample
    assert np.median(shares[200]) < 0.005 and shares[200].max() < 0.03, shares[200]
    assert np.median(shares[300]) <= np.median(shares[200])


def test_the_tail_sample_is_fixed_and_covers_small_catalogs():
    from tastespace.models.neural.fold_in import tail_sample

    assert np.array_equal(tail_sample(50, 100), np.arange(50))
    drawn = tail_sample(1000, 100)
    assert len(np.unique(drawn)) == 100 and np.array_equal(drawn, tail_sample(1000, 100))


def test_a_flat_catalog_far_larger_than_the_candidates_does_not_run_away():
    # 3,000 random items, 50 candidates: most of the softmax lies outside them. A pseudo-item
    # whose logit is linear in u let the solve run off towards the rest (measured: a median
    # 9× the start's distance to the minimum, worst 30×); its curvature holds it near.
    rng = np.random.default_rng(0)
    items = torch.as_tensor(rng.standard_normal((3000, 16)).astype(np.float32))
    bias = torch.as_tensor(rng.standard_normal(3000).astype(np.float32))
    histories = sp.random(40, 3000, density=20 / 3000, format="csr", random_state=0)
    histories.data[:] = 1.0
    histories = histories.astype(np.float32)
    start = torch.zeros((40, 16))
    exact = solve_user_vectors(items, bias, histories, start, l2=2.0, steps=300, lr=0.05)
    approx = solve_on_candidates(
        table(items, bias), histories, start, l2=2.0, top=50, tail=TailSample.of(items, 1000)
    )

    def value(users):
        x = torch.as_tensor(histories.toarray())
        log_p = torch.log_softmax(users @ items.T + bias, dim=1)
        return -(x * log_p).sum(dim=1) + 2.0 * (users**2).sum(dim=1)

    share = ((value(approx) - value(exact)) / (value(start) - value(exact))).numpy()
    # measured: median 0.055, worst 0.24 of the way back to the start
    assert np.median(share) < 0.1 and share.max() < 0.5, share


def test_the_two_loop_direction_is_the_bfgs_updated_inverse_times_the_gradient():
    """The recursion over an LU factor equals the explicit BFGS update of the inverse."""
    rng = np.random.default_rng(3)
    g, d = 5, 6
    a = rng.standard_normal((g, d, 2 * d))
    hessian = torch.as_tensor(a @ a.transpose(0, 2, 1) / d + np.eye(d), dtype=torch.float64)
    steps = [torch.as_tensor(rng.standard_normal((g, d))) for _ in range(2)]
    turns = [torch.bmm(hessian, s.unsqueeze(2)).squeeze(2) + 0.1 * s for s in steps]
    grad = torch.as_tensor(rng.standard_normal((g, d)))
    pairs = [bfgs_pair(s, y) for s, y in zip(steps, turns, strict=True)]
    got = two_loop(torch.linalg.lu_factor(hessian), pairs, grad)

    inverse = torch.linalg.inv(hessian)
    eye = torch.eye(d, dtype=torch.float64)
    for s, y in zip(steps, turns, strict=True):
        rho = 1.0 / (s * y).sum(1)[:, None, None]
        left = eye - rho * s.unsqueeze(2) * y.unsqueeze(1)
        inverse = left @ inverse @ left.transpose(1, 2) + rho * s.unsqueeze(2) * s.unsqueeze(1)
    want = torch.bmm(inverse, grad.unsqueeze(2)).squeeze(2)
    assert torch.allclose(got, want, atol=1e-10), (got - want).abs().max()


def test_a_pair_without_positive_curvature_leaves_the_newton_direction():
    hessian = torch.eye(3, dtype=torch.float64).repeat(2, 1, 1) * 2
    step = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    turn = torch.tensor([[-1.0, 0.0, 0.0], [4.0, 0.0, 0.0]], dtype=torch.float64)
    grad = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    got = two_loop(torch.linalg.lu_factor(hessian), [bfgs_pair(step, turn)], grad)
    assert torch.allclose(got[0], grad[0] / 2)  # sᵀy < 0: the plain Newton step
    # sᵀy > 0: the curvature along s becomes 4 (yᵀs / sᵀs), the other directions keep 2
    assert torch.allclose(got[1], torch.tensor([0.25, 0.5, 0.5], dtype=torch.float64))


def test_top_columns_are_the_largest_in_item_order_with_the_masked_ones_flagged():
    logits = torch.tensor([[0.5, 3.0, -torch.inf, 2.0, 1.0], [4.0, 0.0, 1.0, -1.0, 2.0]])
    found, finite = top_columns(logits, 3)
    assert found.tolist() == [[1, 3, 4], [0, 2, 4]]
    assert finite.all()
    found, finite = top_columns(logits, 5)
    assert found.tolist() == [[0, 1, 2, 3, 4]] * 2
    assert finite.tolist()[0] == [True, True, False, True, True]


@pytest.mark.parametrize("layout", ["random", "ties", "few_pass_the_bound", "mixed"])
def test_top_columns_match_a_full_sort_with_ties_to_the_lowest_items(layout):
    rng = np.random.default_rng(3)
    values = rng.standard_normal((6, 5000)).astype(np.float32)
    if layout == "ties":  # a few values repeated many times, ties at the 200th place
        values = rng.integers(0, 40, (6, 5000)).astype(np.float32)
    if layout == "few_pass_the_bound":  # the sampled columns hold the best: the whole row is read
        values[:, ::SELECT_STRIDE] += 10.0
    values[:, :50] = -np.inf  # seen items
    if layout == "mixed":  # rows selected together beside rows selected whole
        values[::3, ::SELECT_STRIDE] += 10.0
        values[1, 200:] = -np.inf  # a history covering most of the catalog
    found, finite = top_columns(torch.from_numpy(values), 200)
    for row, line in enumerate(values):
        best = np.sort(np.lexsort((np.arange(len(line)), -line))[:200])
        np.testing.assert_array_equal(found[row], best)
    assert finite.all() == (layout != "mixed")


def test_a_user_alone_gets_the_batch_bits_on_a_catalog_whose_rows_torch_reduces_in_parallel(steps):
    """torch sums a single row of 32,768 values or more on every thread at once and a row of a
    block on one; the pass's log-sum-exp must not see the difference (10 of 256 rows of
    40,000 logits differed in the last bit before it padded a lone row)."""
    rng = np.random.default_rng(5)
    n_items, dim = 33_000, 4
    items = torch.as_tensor(rng.standard_normal((n_items, dim)).astype(np.float32))
    bias = torch.as_tensor(rng.standard_normal(n_items).astype(np.float32))
    histories = sp.random(12, n_items, density=5e-4, format="csr", random_state=5)
    histories.data[:] = 1.0
    start = torch.as_tensor(rng.standard_normal((12, dim)).astype(np.float32))
    options = {"l2": 2.0, "top": 40, "tail": TailSample.of(items, 100)}
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        batch = solve_on_candidates(table(items, bias), histories, start, **options)
        for row in range(12):
            alone = solve_on_candidates(
                table(items, bias), histories[row], start[row : row + 1], **options
            )
            assert torch.equal(alone[0], batch[row]), row
    finally:
        torch.set_num_threads(threads)


def test_a_user_alone_gets_the_batch_bits_with_candidate_lists_of_a_real_models_size(
    steps, hessian_precision
):
    """A batch of one user's ``(1, L)·(L, d)`` products takes another kernel than a batch of
    several once ``L·d`` is large (576 candidates × 100 dimensions differed in the last bit)."""
    rng = np.random.default_rng(7)
    n_items, dim, n_users = 2_000, 100, 6
    items = torch.as_tensor(rng.standard_normal((n_items, dim)).astype(np.float32) / 10)
    bias = torch.as_tensor(rng.standard_normal(n_items).astype(np.float32))
    histories = sp.random(n_users, n_items, density=0.02, format="csr", random_state=7)
    histories.data[:] = 1.0
    start = torch.as_tensor(rng.standard_normal((n_users, dim)).astype(np.float32) / 10)
    options = {"l2": 2.0, "top": 1_000, "tail": TailSample.of(items, 500)}
    batch = solve_on_candidates(table(items, bias), histories, start, **options)
    for row in range(n_users):
        alone = solve_on_candidates(
            table(items, bias), histories[row], start[row : row + 1], **options
        )
        assert torch.equal(alone[0], batch[row]), row


def test_steps_in_cache_sized_groups_give_the_bits_of_one_group(monkeypatch, steps):
    """Users of one candidate width are stepped in groups of at most STEP_BYTES of vectors;
    a user's vector must not depend on how the batch was cut."""
    from tastespace.models.neural import fold_in

    items, bias, histories, start = problem()
    options = {"l2": 2.0, "top": 40, "tail": TailSample.of(items, 100)}
    whole = solve_on_candidates(table(items, bias), histories, start, **options)
    monkeypatch.setattr(fold_in, "STEP_BYTES", 3 * 64 * DIM * 4)  # three users a group
    assert len(fold_in._step_groups(np.arange(40), 64, DIM)) == 14
    grouped = solve_on_candidates(table(items, bias), histories, start, **options)
    assert torch.equal(grouped, whole)


def test_compiled_and_torch_steps_end_at_the_same_vectors(monkeypatch):
    from tastespace.models.neural import fold_in

    items, bias, histories, start = problem()
    options = {"l2": 2.0, "top": 40, "tail": TailSample.of(items, 100)}
    solved = {}
    for compiled in (True, False):
        monkeypatch.setattr(fold_in, "COMPILED_STEPS", compiled)
        solved[compiled] = solve_on_candidates(table(items, bias), histories, start, **options)
    assert not torch.equal(solved[True], start)
    # the same steps in another order of float32 sums: measured within 2e-6
    torch.testing.assert_close(solved[True], solved[False], rtol=0, atol=1e-4)
    values = {c: objective(items, bias, histories, u) for c, u in solved.items()}
    torch.testing.assert_close(values[True], values[False], rtol=1e-5, atol=0)


def test_a_user_retrieved_alone_gets_the_batch_bits_at_a_real_models_sizes():
    """A lone user's softmax-weighted mean over the 4,096-item sample took another kernel than
    a batch's (one user against the same user among 16 differed), and their log-sum-exp over
    what was read depended on how long the batch's widest row was."""
    rng = np.random.default_rng(11)
    n_items, dim, n_users = 20_000, 33, 40
    scored = torch.as_tensor(rng.standard_normal((n_items, dim)).astype(np.float32) / 3)
    histories = sp.random(n_users, n_items, density=1e-3, format="csr", random_state=11)
    histories.data[:] = 1.0
    users = torch.as_tensor(rng.standard_normal((n_users, dim - 1)).astype(np.float32))
    candidates = ClusterCandidates.of(scored, TailSample.of(scored[:, :-1]))
    tops, means, lses = candidates.retrieve(histories, users, 512)  # 4,096 of 20,000 read
    for row in range(n_users):
        alone = candidates.retrieve(histories[row], users[row : row + 1], 512)
        np.testing.assert_array_equal(alone[0][0], tops[row])
        assert torch.equal(alone[1][0], means[row]), row
        assert torch.equal(alone[2][0], lses[row]), row
