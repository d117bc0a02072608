"""Fold-in by solving: a user's vector is fitted to their history with the item side fixed.

Why: an encoder amortised over a few hundred training users leaves Recall@20 on the table on
small sets (4 % on ml-latest-small, docs/neural.md); solving each user's own small, convex problem —
the training objective's multinomial likelihood plus its L2 on the user vector — does not.
The user tower's output is the starting point, so a few dozen Adam steps settle it.

The gradient is written out rather than taken by autograd: for dot-product scores it is
``(n·softmax(z) − x) V + 2·l2·u`` (``n`` = history length), and skipping the autograd graph
makes a one-user fold-in several times cheaper, which is what a served request pays.

Two solvers minimise that objective. :func:`solve_user_vectors` takes the softmax over the
whole catalog by Adam (exact; every step reads the item table twice, so 30 steps read it 60
times). :func:`solve_on_candidates` reads it once per round (two rounds): each round's exact
pass picks the user's ``top`` items and sums up the rest in one pseudo-item (the rest's
log-sum-exp exact, its direction estimated on a fixed sample of ``TAIL_SAMPLE`` items, a
curvature that keeps steps near the pass), then damped quasi-Newton steps solve over history + top
+ 1 vectors (``bench/fold_in.py`` measures both). With retrieval from clusters
(``retrieval.py``) a round reads only part of the catalog; on the CPU the retrieval, the
candidates' gather and the steps run as compiled loops per user (``cpu_retrieval.py``,
``cpu_steps.py``), the exact Hessian and its factor as torch's batched products.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch

from tastespace.index.blocks import (
    QUERY_BLOCK,
    block_scores,
    fixed_blocks,
    pad_rows,
    row_logsumexp,
)
from tastespace.index.exact import lowest_ids_first
from tastespace.index.refine import refine_top_k

if TYPE_CHECKING:
    from tastespace.models.neural.retrieval import ClusterCandidates

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


TAIL_SAMPLE = 4096
"""Items over which the pseudo-item's direction (the rest's softmax-weighted mean vector) is
estimated; the rest's log-sum-exp stays exact. Larger catalogs would otherwise pay a second
pass over the item table per round for it (bench/fold_in.py measures both)."""


TAIL_CURVATURE = 0.5
"""The pseudo-item's curvature as a share of the catalog's covariance. The rest's own
covariance under its softmax is smaller than the uniform one (the softmax leans towards the
user), so the whole of it overstates the curvature and slows the steps: on a 40k-item catalog
0.5 left the solve 0.017 of the way back to the start against 0.068 at 1 and 0.028 at 0.25
(ml-latest-small Recall@20 within 0.003 of the exact solve at 0.35–1; bench/fold_in.py)."""


def tail_sample(n_items: int, size: int = TAIL_SAMPLE) -> np.ndarray:
    """The catalog positions the pseudo-item's mean is taken over: all of them up to ``size``
    items, else a fixed seeded subset, the same for every user, call and batch (a
    self-normalised estimate: uniform draws weighted by their softmax)."""
    if n_items <= size:
        return np.arange(n_items)
    return np.sort(np.random.default_rng(0).choice(n_items, size, replace=False))


@dataclasses.dataclass(frozen=True)
class TailSample:
    """What the pseudo-item needs of an item table, the same for every user: the sampled
    positions, their vectors and the curvature (``TAIL_CURVATURE`` × their covariance).
    The model builds it once per fitted state; a request would otherwise redraw it."""

    positions: torch.Tensor  # (s,)
    vectors: torch.Tensor  # (s, d)
    spread: torch.Tensor  # (d, d)

    @classmethod
    def of(cls, items: torch.Tensor, size: int = TAIL_SAMPLE) -> TailSample:
        positions = torch.as_tensor(tail_sample(items.shape[0], size), device=items.device)
        vectors = items[positions]
        return cls(positions, vectors, _covariance(vectors).mul_(TAIL_CURVATURE))


def solve_on_candidates(
    table: torch.Tensor,
    histories: sp.csr_matrix,
    start: torch.Tensor,
    *,
    l2: float,
    top: int,
    rounds: int = 2,
    tail: TailSample | None = None,
    candidates: ClusterCandidates | None = None,
) -> torch.Tensor:
    """Minimise the objective of :func:`solve_user_vectors` by damped quasi-Newton steps on a
    per-user surrogate that touches only history + ``top`` + 1 item vectors.

    ``table`` is ``(n_items, dim + 1)``, each item's vector and bias side by side (the
    passes are then one product with ``[u, 1]``); ``tail`` defaults to
    ``TailSample.of(table[:, :-1])``.

    Each of ``rounds`` begins with one exact pass over the catalog at the vectors reached so far
    (the anchor) that finds each user's ``top`` unseen items and folds every other non-history
    item into one pseudo-item (:class:`Tail`): its logit is the log-sum-exp of theirs at the
    anchor, moving with ``u`` along their softmax-weighted mean vector and curving up with
    ``TAIL_CURVATURE`` times the catalog's covariance, so the normaliser and its gradient are
    exact at the anchor (the mean up to its sample) and a step cannot run off towards the rest.
    ``NEWTON_STEPS`` steps (each halved while it would raise the surrogate) then solve the
    surrogate: it is convex, its Hessian ``d × d`` per user, factored once in the first round
    (:class:`Factors`) and corrected by BFGS after each step.

    With ``candidates`` (``retrieval.py``) a round reads only the clusters of the catalog the
    user scores highest instead of the whole of it, and ``tail`` is theirs.

    Batch-invariant: the passes run in blocks of at least ``QUERY_BLOCK`` rows
    (:func:`pass_rows`), a user's candidate arrays
    depend only on their own row (each padded to a multiple of 64), and the steps'
    products and solves are per user (``bmm``, batched LU), whose bits do not
    depend on the other users (``tests/models/test_fold_in.py`` keeps it so).
    """
    users, _ = _solve(table, histories, start, l2, top, rounds, tail, candidates)
    return users


@dataclasses.dataclass(frozen=True)
class LastPass:
    """The last round's exact pass: each user's vector there (``[a, 1]``), their scores of
    every item (seen ones ``-inf``) and their ``top`` items, by row (users with a history)."""

    anchors: torch.Tensor  # (n, dim + 1)
    scores: dict[int, torch.Tensor]
    tops: list[np.ndarray]


def solve_and_rank(
    table: torch.Tensor,
    norms: torch.Tensor,
    histories: sp.csr_matrix,
    start: torch.Tensor,
    k: int,
    *,
    l2: float,
    top: int,
    rounds: int = 2,
    tail: TailSample | None = None,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`solve_on_candidates`, and each user's top-``k`` unseen items at the vector
    reached, exactly, from the last pass's scores (``index/refine.py``) instead of another
    pass: ``(users, ids, scores, answered)``; rows not ``answered`` (no history, or fewer
    candidates than ``k``) are left for a search. ``norms`` are ``table``'s row norms."""
    users, last = _solve(table, histories, start, l2, top, rounds, tail, keep_last=True)
    n = len(users)
    ids, scores = np.full((n, k), -1, np.int64), np.full((n, k), -np.inf, np.float32)
    answered = np.zeros(n, bool)
    queries = lifted(users)
    for row, anchor_scores in last.scores.items():
        found = refine_top_k(
            table, norms, queries[row], last.anchors[row], anchor_scores, last.tops[row], k
        )
        if found is not None:
            ids[row], scores[row] = found
            answered[row] = True
    return users, ids, scores, answered


def _solve(
    table: torch.Tensor,
    histories: sp.csr_matrix,
    start: torch.Tensor,
    l2: float,
    top: int,
    rounds: int,
    tail: TailSample | None,
    candidates: ClusterCandidates | None = None,
    keep_last: bool = False,
) -> tuple[torch.Tensor, LastPass | None]:
    """:func:`solve_on_candidates`'s rounds; ``keep_last`` (exact passes only) returns the
    last round's pass."""
    histories = _positive(histories)
    users = start.detach().clone()
    # an empty history leaves only the L2 term: its minimum is u = 0 (and the padding rows of
    # a fixed block cost nothing)
    empty = np.diff(histories.indptr) == 0
    device = users.device
    users[torch.as_tensor(empty, device=device)] = 0.0
    items = table[:, :-1]
    with torch.no_grad():
        if candidates is not None:
            tail = candidates.tail
        tail = TailSample.of(items) if tail is None else tail
        factors = Factors.empty(users)
        for round_ in range(rounds):
            kept = {} if keep_last and round_ == rounds - 1 else None
            if candidates is None:
                tops, rest_mean, rest_lse = _anchor(table, histories, users, top, tail, kept)
            else:
                tops, rest_mean, rest_lse = candidates.retrieve(histories, users, top)
            anchor = users.clone()
            lists = CandidateLists.of(histories, tops)
            widths = _bucket(lists.counts())
            widths[empty] = 0
            for width in np.unique(widths[~empty]):
                same_width = np.flatnonzero(widths == width)
                for chosen in _step_groups(same_width, int(width), items.shape[1]):
                    rows = torch.as_tensor(chosen, device=device)
                    rest = Tail(rest_lse[rows], rest_mean[rows], anchor[rows], tail.spread)
                    padded = lists.padded(chosen, int(width))
                    surrogate = Surrogate.of(table, padded, rest, l2)
                    if round_ == 0:
                        users[rows], factor = surrogate.minimise(users[rows])
                        factors.keep(rows, factor)
                    else:
                        users[rows], _ = surrogate.minimise(users[rows], factors.of(rows))
    if not keep_last:
        return users, None
    return users, LastPass(lifted(anchor), kept, tops)


@dataclasses.dataclass(frozen=True)
class Factors:
    """Each user's LU-factored Hessian from the first round, which later rounds start their
    BFGS corrections from: a Hessian costs ``L·d²`` per user, a quarter of the solve's time,
    and a fresh one each round did no better (5M split Recall@20 0.2834 fresh, 0.2847 kept;
    docs/benchmarks-index.md)."""

    lu: torch.Tensor  # (n, d, d)
    pivots: torch.Tensor  # (n, d)

    @classmethod
    def empty(cls, users: torch.Tensor) -> Factors:
        """Room for one factor per row of ``users`` ``(n, d)``, on their device."""
        n, dim = users.shape
        return cls(users.new_zeros((n, dim, dim)), users.new_zeros((n, dim), dtype=torch.int32))

    def keep(self, rows: torch.Tensor, factor: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.lu[rows], self.pivots[rows] = factor

    def of(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lu[rows], self.pivots[rows]


NEWTON_STEPS = 4
"""Quasi-Newton steps per round, from one exact Hessian (the first round's: :class:`Factors`).
On 300 users of a 40k-item catalog 4 land where 3 full Newton steps (a Hessian each, the
previous form) did — a median 0.0169 and p90 0.0290 of the way from the minimum back to the
start — in 0.69 CPU seconds instead of 0.93; 3 leave 0.0181. The same count runs in every
round: 1 step after the second pass left that objective unchanged yet cost 0.011 Recall@20 on
5M interactions (0.2752 against 0.2834, exact 0.2864), as 2 full Newton steps a round had cost
0.0026 (docs/benchmarks-index.md)."""
HALVINGS = 4
"""How often a step that would raise the surrogate is halved before it is taken."""
ROUNDING = 1e-6
"""A rise of the surrogate this small relative to its value is float32 rounding, not a step
too long: a user already at their minimum otherwise "rose" at every trial and made the whole
group pay all ``HALVINGS`` (160 of 632 batched steps on a 40k-item catalog did)."""


COMPILED_STEPS = True
"""Whether the CPU runs the steps compiled (``cpu_steps.py``): 1,000 users' step kernel on a
40k-item catalog took 0.10–0.13 s against ~0.35–0.6 s as torch operations
(docs/benchmarks-index.md, session 18). Off, every
device takes the torch form, which the tests hold to the same minimum and the same bits alone
or batched."""


@dataclasses.dataclass(frozen=True)
class Tail:
    """The pseudo-item of one round: every item outside a user's candidates as one logit,
    ``lse + mean·δ + ½·δᵀ·spread·δ`` with ``δ = u − anchor``. Value and slope are the rest's
    at the anchor; the curvature (the catalog's covariance) keeps a step from running off
    towards the rest, where a linear logit would let the surrogate fall without bound."""

    lse: torch.Tensor  # (g,)
    mean: torch.Tensor  # (g, d)
    anchor: torch.Tensor  # (g, d)
    spread: torch.Tensor  # (d, d)

    def logit(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pseudo-item's logit ``(g,)`` at ``users`` and its gradient ``(g, d)``."""
        delta = users - self.anchor
        # δᵀ·spread per user; padded to QUERY_BLOCK rows, a row's bits do not depend on the
        # batch (an elementwise product summed took 13 ms for 1,000 users, this 0.14)
        curved = (pad_rows(delta) @ self.spread)[: len(delta)]
        logit = self.lse + (self.mean * delta).sum(1) + 0.5 * (curved * delta).sum(1)
        return logit, self.mean + curved


class Surrogate:
    """One round's per-user objective over candidate vectors ``(g, L, d)`` with logit offsets
    ``(g, L)`` (the bias; ``-inf`` for pads), history indicator ``x`` ``(g, L)`` and the
    pseudo-item ``tail``."""

    def __init__(
        self,
        vectors: torch.Tensor,
        offsets: torch.Tensor,
        x: torch.Tensor,
        tail: Tail,
        l2: float,
        pulled: torch.Tensor | None = None,
    ):
        self.vectors, self.offsets, self.tail, self.l2 = vectors, offsets, tail, l2
        self.lengths = x.sum(dim=1, keepdim=True)
        if pulled is None:  # Σ history v_i
            pulled = per_user_bmm(x.unsqueeze(1), vectors).squeeze(1)
        self.pulled = pulled

    @classmethod
    def of(
        cls,
        table: torch.Tensor,
        padded: tuple[np.ndarray, np.ndarray, np.ndarray],
        tail: Tail,
        l2: float,
    ) -> Surrogate:
        """The surrogate of some users over their candidates ``padded``
        (:meth:`CandidateLists.padded`) of ``table`` (``[v, b]`` rows): gathered compiled
        where the steps run compiled."""
        ids, counts, lengths = padded
        if not (COMPILED_STEPS and table.device.type == "cpu"):
            items, bias = table[:, :-1], table[:, -1]
            vectors, offsets, x = _candidate_problem(items, bias, ids, counts, lengths)
            return cls(vectors, offsets, x, tail, l2)
        from tastespace.models.neural import cpu_steps

        cpu_steps.use_torch_threads()
        gathered = cpu_steps.candidate_arrays(table.contiguous().numpy(), ids, counts, lengths)
        vectors, offsets, x, pulled = map(torch.from_numpy, gathered)
        return cls(vectors, offsets, x, tail, l2, pulled)

    def logits(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(g, L + 1)`` logits (the pseudo-item's last) and the pseudo-item's gradient."""
        # a row times the transposed candidates: (g, L, d) @ (g, d, 1) would take another
        # kernel for one user than for several, and its bits would depend on the batch
        candidates = per_user_bmm(users.unsqueeze(1), self.vectors.transpose(1, 2))
        candidates = candidates.squeeze(1).add_(self.offsets)
        rest, slope = self.tail.logit(users)
        return torch.cat([candidates, rest.unsqueeze(1)], dim=1), slope

    def value(self, logits: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        """``n·lse(logits) − Σ_history v·u + l2·‖u‖²`` per user (constants dropped), given
        ``logits`` from :meth:`logits` of ``users``."""
        return (
            self.lengths[:, 0] * row_logsumexp(logits)
            - (self.pulled * users).sum(1)
            + self.l2 * users.square().sum(1)
        )

    def minimise(
        self, users: torch.Tensor, factor: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``NEWTON_STEPS`` damped quasi-Newton steps from ``users``, and the factor used.

        The surrogate's exact Hessian is factored at the start (unless ``factor``, an earlier
        round's, is given); each later step corrects it by the steps taken so far (L-BFGS's
        two-loop recursion over that factor), since a Hessian costs ``L·d²`` per user where a
        gradient costs ``L·d``. On the CPU the steps run compiled (``cpu_steps.py``, unless
        :data:`COMPILED_STEPS` is off), elsewhere as torch operations."""
        if COMPILED_STEPS and users.device.type == "cpu":
            return self._minimise_compiled(users, factor)
        logits, slope = self.logits(users)
        now = self.value(logits, users)
        probs = torch.softmax(logits, dim=1)
        mean = self._mean(probs, slope)
        grad = self._gradient(mean, users)
        if factor is None:
            factor = torch.linalg.lu_factor(self._hessian(probs, mean, slope))
        pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for taken in range(NEWTON_STEPS):
            step = two_loop(factor, pairs, grad)
            reached, logits, slope, now = self._damped(users, step, now)
            if taken < NEWTON_STEPS - 1:
                new_grad = self._gradient(self._mean(torch.softmax(logits, 1), slope), reached)
                pairs.append(bfgs_pair(reached - users, new_grad - grad))
                grad = new_grad
            users = reached
        return users, factor

    def _minimise_compiled(
        self, users: torch.Tensor, factor: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        from tastespace.models.neural import cpu_steps  # numba: compiled at first use

        cpu_steps.use_torch_threads()
        tail = self.tail
        problem = [
            self.vectors,
            self.offsets,
            self.lengths[:, 0],
            self.pulled,
            self.l2,
            tail.lse,
            tail.mean,
            tail.anchor,
            tail.spread,
            users,
        ]
        arrays = [a.contiguous().numpy() if isinstance(a, torch.Tensor) else a for a in problem]
        if factor is None:
            probs, mean, slope = map(torch.from_numpy, cpu_steps.start_statistics(*arrays))
            operands = None
            if hessian_dtype(users.device) == torch.bfloat16:
                bits = cpu_steps.centred_bfloat16(arrays[0], probs.numpy(), mean.numpy())
                operands = tuple(torch.from_numpy(b).view(torch.bfloat16) for b in bits)
            factor = torch.linalg.lu_factor(self._hessian(probs, mean, slope, operands))
        lu, pivots = factor
        reached = cpu_steps.minimise(
            *arrays,
            lu.mT.contiguous().numpy(),
            pivots.contiguous().numpy(),
            NEWTON_STEPS,
            HALVINGS,
            ROUNDING,
        )
        return torch.from_numpy(reached), factor

    def _mean(self, probs: torch.Tensor, slope: torch.Tensor) -> torch.Tensor:
        """``(g, d)``: the softmax-weighted mean vector (the pseudo-item's is its slope)."""
        near, rest = probs[:, :-1], probs[:, -1:]
        return per_user_bmm(near.unsqueeze(1), self.vectors).squeeze(1) + rest * slope

    def _gradient(self, mean: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        return self.lengths * mean - self.pulled + 2 * self.l2 * users

    def _hessian(
        self,
        probs: torch.Tensor,
        mean: torch.Tensor,
        slope: torch.Tensor,
        operands: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``(g, d, d)``: ``n·Cov_softmax(v) + 2·l2·I``, the pseudo-item adding its curvature.
        Every candidate enters: keeping only the 64 (256) of most weight one by one, the others
        as their mean plus the catalog's spread, cost 0.016 (0.0006) Recall@20 on the 5M split
        (docs/benchmarks-index.md). The candidates are centred on the mean before their
        product, which then runs in :func:`hessian_dtype`: it only preconditions the steps,
        whose gradients stay float32; ``operands`` are the product's two sides (weighted and
        plain centred candidates) when the caller has them (``cpu_steps.centred_bfloat16``)."""
        near, rest = probs[:, :-1], probs[:, -1:]
        if operands is None:
            dtype = hessian_dtype(mean.device)
            centred = self.vectors - mean.unsqueeze(1)
            operands = ((centred * near.unsqueeze(2)).to(dtype), centred.to(dtype))
        hessian = _second_moment(*operands).float()
        off = slope - mean  # the pseudo-item's vector, centred
        # + rest·off·offᵀ + rest·spread, × n, + 2·l2·I, in place and by one rounding an
        # operation (a fused multiply-add may round otherwise in a kernel's scalar tail)
        hessian += (rest * off).unsqueeze(2) * off.unsqueeze(1)
        hessian += rest.unsqueeze(2) * self.tail.spread
        hessian.mul_(self.lengths.unsqueeze(2)).diagonal(dim1=1, dim2=2).add_(2 * self.l2)
        return hessian

    def _damped(
        self, users: torch.Tensor, step: torch.Tensor, now: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``users − share·step`` with each user's share halved (up to ``HALVINGS`` times)
        while it would raise their objective; the new point's logits, pseudo-item gradient
        and value come back for the next step, which would otherwise compute them again."""
        share = torch.ones_like(self.lengths)
        for _ in range(HALVINGS):
            trial = users - share * step
            logits, slope = self.logits(trial)
            value = self.value(logits, trial)
            worse = value > now + ROUNDING * now.abs()
            if not worse.any():
                return trial, logits, slope, value
            share[worse] *= 0.5
        trial = users - share * step
        logits, slope = self.logits(trial)
        return trial, logits, slope, self.value(logits, trial)


@functools.cache
def _native_bf16() -> bool:
    import llvmlite.binding  # numba's own compiler: it knows the CPU's features

    features = llvmlite.binding.get_host_cpu_features()
    return bool(features.get("avx512bf16") or features.get("amx-bf16"))


def hessian_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on a CPU that multiplies it natively (AVX512-BF16 or AMX), else float32.
    Why: the Hessian's product is the solve's largest (``L·d²`` per user); on this machine's
    AVX512-BF16 cores it ran 2.8× faster in bfloat16, and 300 users of a 40k-item catalog
    ended as close to their minimum as in float32 (median 0.0169, p90 0.0290 of the way back
    to the start, ``bench/fold_in.py --objective``). A CPU without it would emulate it, and
    the GPU path keeps float32 (not measured)."""
    return torch.bfloat16 if device.type == "cpu" and _native_bf16() else torch.float32


def per_user_bmm(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``torch.bmm``, each user's product the same bits however many users share the batch:
    a batch of one goes to another kernel than a batch of two or more (a ``(1, 576)·(576,
    100)`` product differed in the last bit), so a lone user is multiplied as a batch of two
    views of itself (a copy would change the operands' layout, and with it the kernel)."""
    if len(left) != 1:
        return torch.bmm(left, right)
    return torch.bmm(left.expand(2, -1, -1), right.expand(2, -1, -1))[:1]


def _second_moment(weighted: torch.Tensor, centred: torch.Tensor) -> torch.Tensor:
    """``weightedᵀ·centred`` per user ``(g, d, d)``, the same bits alone or batched. In
    bfloat16 a lone user's batch of two views of itself took another kernel than a batch did
    at some widths (1,088 and 1,600 candidates, not 576), and two copies did not."""
    if weighted.dtype != torch.bfloat16 or len(weighted) != 1:
        return per_user_bmm(weighted.mT, centred)
    return torch.bmm(weighted.repeat(2, 1, 1).mT, centred.repeat(2, 1, 1))[:1]


def bfgs_pair(moved: torch.Tensor, turned: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """One step's L-BFGS pair ``(s, y, 1/sᵀy)``; a user whose curvature along the step is not
    positive gets weight 0 (the pair then leaves their direction alone)."""
    curvature = (moved * turned).sum(dim=1, keepdim=True)
    weight = torch.where(curvature > 1e-12, 1.0 / curvature.clamp_min(1e-12), 0.0)
    return moved, turned, weight


def two_loop(
    factor: tuple[torch.Tensor, torch.Tensor],
    pairs: list[tuple[torch.Tensor, ...]],
    grad: torch.Tensor,
) -> torch.Tensor:
    """``H⁻¹·grad`` for the BFGS update of the factored Hessian by ``pairs`` (Nocedal &
    Wright's two-loop recursion; dot products elementwise, per user)."""
    alphas = []
    for moved, turned, weight in reversed(pairs):
        alpha = weight * (moved * grad).sum(dim=1, keepdim=True)
        grad = grad - alpha * turned
        alphas.append(alpha)
    direction = torch.linalg.lu_solve(*factor, grad.unsqueeze(2)).squeeze(2)
    for (moved, turned, weight), alpha in zip(pairs, reversed(alphas), strict=True):
        beta = weight * (turned * direction).sum(dim=1, keepdim=True)
        direction = direction + (alpha - beta) * moved
    return direction


def _covariance(vectors: torch.Tensor) -> torch.Tensor:
    """``(d, d)`` covariance of the rows (uniform weights)."""
    centred = vectors - vectors.mean(dim=0)
    return centred.T @ centred / max(len(vectors), 1)


PASS_BYTES = 64 << 20
"""Logits one product of a pass may hold. MKL gives a row the same bits in any block of 12
rows or more (index/exact.py searches in such blocks too), and a 16-row block cost 2.2× per
user what a 64-row one did on the 40k catalog (docs/benchmarks-index.md), so a pass takes as
many users at once as this allows (at most 256, at least ``QUERY_BLOCK``)."""


def pass_rows(n_items: int) -> int:
    """Users per product of a pass over ``n_items`` items (see :data:`PASS_BYTES`)."""
    return int(np.clip(PASS_BYTES // (4 * max(n_items, 1)), QUERY_BLOCK, 256))


def _anchor(
    table: torch.Tensor,
    histories: sp.csr_matrix,
    users: torch.Tensor,
    top: int,
    tail: TailSample,
    kept: dict[int, torch.Tensor] | None = None,
) -> tuple[list[np.ndarray], torch.Tensor, torch.Tensor]:
    """One exact pass at ``users``: per user the ``top`` unseen items by score, and what the
    pseudo-item needs of the rest: their softmax-weighted mean vector (over the items of
    ``tail``) and their exact log-sum-exp. ``kept`` receives each user's scores (seen items
    ``-inf``) by row."""
    n, dim = users.shape
    device = users.device
    tops = [np.zeros(0, np.int64)] * n
    means, lses = users.new_zeros((n, dim)), users.new_zeros(n)
    queries = lifted(users)
    for begin, stop in fixed_blocks(n, pass_rows(len(table))):
        counts = np.diff(histories.indptr[begin : stop + 1])
        # rows with a history only: the empty ones (the padding of a one-user request) are
        # not solved, and their top-k would cost 15 times the user's own; rows after the
        # last of them are not even copied out of the product (0.5 of a one-user pass's 1.9 ms)
        live = begin + np.flatnonzero(counts)
        if not len(live):
            continue
        logits = block_scores(pad_rows(queries[begin:stop]), table, int(live[-1] - begin) + 1)
        seen = histories.indices[histories.indptr[begin] : histories.indptr[stop]]
        rows = torch.as_tensor(np.repeat(np.arange(stop - begin), counts), device=device)
        logits[rows, torch.as_tensor(seen.astype(np.int64), device=device)] = -torch.inf
        if len(live) < len(logits):
            logits = logits[torch.as_tensor(live - begin, device=device)]
        found, finite = top_columns(logits, top)
        if kept is not None:
            kept.update(zip(live.tolist(), logits.clone(), strict=True))
        logits.scatter_(1, torch.as_tensor(found, device=device), -torch.inf)
        where = torch.as_tensor(live, device=device)
        lses[where] = row_logsumexp(logits)
        weights = torch.softmax(logits[:, tail.positions], dim=1).nan_to_num_(0.0)
        means[where] = torch.mm(pad_rows(weights), tail.vectors)[: len(live)]
        for row, ids, keep in zip(live, found, finite, strict=True):
            tops[row] = ids if keep.all() else ids[keep]
    return tops, means, lses


def lifted(users: torch.Tensor) -> torch.Tensor:
    """``[u, 1]`` per row: the query that scores ``u·v + b`` against ``[v, b]`` rows."""
    return torch.cat([users, users.new_ones((len(users), 1))], dim=1)


def top_columns(logits: torch.Tensor, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the columns of its ``top`` largest logits (in item order, which the
    candidates' gather reads best) and whether each is finite.

    A row's ``top``-th largest logit is bounded from below by a larger quantile of every
    ``SELECT_STRIDE``-th column; only the columns at or above it (a median 1.7 × ``top`` on
    the 40k catalog) go to numpy's introselect, which then works on a few hundred values
    instead of the whole row (the whole-row selection was the pass's largest cost after the
    product). A row whose bound lets fewer than ``top`` through is selected whole. Equal
    logits at the ``top``-th place go to the lowest item indices (the synthetic 40k catalog
    has such ties in 4 % of rows), so the choice does not depend on how it was made."""
    values = logits.cpu().numpy()
    rows, n = values.shape
    top = min(top, n)
    found = np.empty((rows, top), np.int64)
    bounds = _selection_bounds(values, top)
    for row, bound in enumerate(bounds):
        line = values[row]
        columns = np.flatnonzero(line >= bound)
        if len(columns) < top:  # NaN bounds included
            columns = np.arange(n)
        chosen, _ = lowest_ids_first(line[columns], top)  # ascending columns: ties by item
        found[row] = columns[np.sort(chosen)]
    return found, np.isfinite(np.take_along_axis(values, found, axis=1))


SELECT_STRIDE = 8
"""Every how many columns :func:`top_columns` samples for its bound; it asks the sample for
1.5 times the share of ``top`` it should hold, so a bound that lets too few through is rare."""


def _selection_bounds(values: np.ndarray, top: int) -> np.ndarray:
    """Per row a value at or below its ``top``-th largest in most rows (``-inf`` where the
    sample is too small to say)."""
    sample = values[:, ::SELECT_STRIDE]
    size = sample.shape[1]
    wanted = int(1.5 * top / SELECT_STRIDE) + 8
    if wanted >= size:
        return np.full(len(values), -np.inf, np.float32)
    return np.partition(sample, size - wanted, axis=1)[:, size - wanted]


def _positive(histories: sp.csr_matrix) -> sp.csr_matrix:
    """``histories`` where every stored weight is positive (only their pattern is read), as
    it comes: a request pays no copies for it (three CSR rebuilds otherwise)."""
    histories = histories.tocsr()
    if np.all(histories.data > 0):
        return histories
    return (histories > 0).tocsr()


STEP_BYTES = 8 << 20
"""Candidate vectors one group of the steps may hold. Every step reads them several times
(logits, then the softmax-weighted mean), so a group that fits the last-level cache reads
them from there: 1,000 users × 576 candidates × 100 floats are 230 MB."""


def _step_groups(rows: np.ndarray, width: int, dim: int) -> list[np.ndarray]:
    """``rows`` (users of one candidate width) in groups of at most :data:`STEP_BYTES` of
    candidate vectors (one user at least)."""
    size = max(1, STEP_BYTES // (4 * width * dim))
    return [rows[begin : begin + size] for begin in range(0, len(rows), size)]


def _bucket(lengths: np.ndarray) -> np.ndarray:
    """Padded candidate-list lengths: the next multiple of 64 (users of one length share a
    batch; a power of two wasted up to half of every step)."""
    return np.maximum(64, -(-lengths // 64) * 64).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class CandidateLists:
    """Each user's candidates in one round: their history, then their ``tops`` (all users'
    tops end to end, ``top_starts`` where each begins), built once a round; a list per user
    and its padding per group cost 19 ms of a 1,000-user request in Python."""

    histories: sp.csr_matrix
    top_starts: np.ndarray  # (n + 1,)
    tops: np.ndarray

    @classmethod
    def of(cls, histories: sp.csr_matrix, tops: list[np.ndarray]) -> CandidateLists:
        starts = np.zeros(len(tops) + 1, np.int64)
        np.cumsum([len(chosen) for chosen in tops], out=starts[1:])
        flat = np.concatenate(tops).astype(np.int64) if tops else np.zeros(0, np.int64)
        return cls(histories, starts, flat)

    def counts(self) -> np.ndarray:
        """Candidates per user (history and tops)."""
        return np.diff(self.histories.indptr) + np.diff(self.top_starts)

    def padded(self, rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per user of ``rows``: their candidates padded with 0 to ``width`` columns
        ``(g, width)``, how many are real, and how many are history (they come first)."""
        from tastespace.models.neural import cpu_steps  # numba

        indptr, indices = self.histories.indptr, self.histories.indices
        return cpu_steps.candidate_ids(indptr, indices, self.top_starts, self.tops, rows, width)


def _candidate_problem(
    items: torch.Tensor,
    bias: torch.Tensor,
    ids: np.ndarray,
    counts: np.ndarray,
    lengths: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per user: candidate vectors ``(g, width, d)``, logits' offsets ``(g, width)`` (the
    bias; ``-inf`` for pads) and the history indicator ``(g, width)`` (history first), of
    the candidates ``ids`` (:meth:`CandidateLists.padded`)."""
    g, width = ids.shape
    columns = np.arange(width)
    offset = np.where(columns < counts[:, None], 0.0, -np.inf).astype(np.float32)
    x = (columns < lengths[:, None]).astype(np.float32)
    # index_select copies rows at twice the speed of advanced indexing (37 against 70 ms for
    # 256 users × 576 candidates of 100 floats)
    device = items.device
    flat = torch.as_tensor(ids.reshape(-1), device=device)
    vectors = items.index_select(0, flat).view(g, width, items.shape[1])
    offsets = bias.index_select(0, flat).view(g, width) + torch.as_tensor(offset, device=device)
    return vectors, offsets, torch.as_tensor(x, device=device)
