"""The candidate solve's quasi-Newton steps as one compiled loop per user, for the CPU.

Why: a step is a few small products per user (``L × d`` logits, their softmax, a weighted
mean, a ``d × d`` triangular solve), so in torch it is some 40 dispatched operations, each a
few microseconds of overhead around a few hundred nanoseconds of arithmetic: a one-user
request spent ~3 ms a round there, 1,000 users 0.35–0.60 s (docs/benchmarks-index.md). Here
numba compiles the whole of :meth:`Surrogate.minimise`'s step loop (``fold_in.py``), and each
user runs it start to end on one thread (``prange`` over users).

Batch-invariant by construction: a user's arithmetic reads only their own rows and runs in one
fixed order. The loops over dimensions are elementwise (``m[j] += p[c]·v[c, j]``), which the
compiler vectorises without reordering a sum; the candidates' logits are dot products over the
``d`` coordinates (:func:`_row_dots`), the one loop compiled with reassociation allowed, so that
it vectorises: its order of summation is then fixed by the compiled code and ``d`` alone (a
row's bits do not move with its address: ``tests/models/test_cpu_steps.py``). The exact Hessian
and its LU factor stay in torch (one batched product per group: 93 GFLOP/s in float32, 262 in
bfloat16 where the CPU has it, its operands made here by :func:`centred_bfloat16`), and the
surrogate is the same function as the torch path's, so both end at the same minimum
(``tests/models/test_fold_in.py``).

The candidates come in one layout, ``vectors`` ``(g, W, d)``: a second, transposed one for the
logits (an elementwise sum over candidates) was as fast per step, but transposing it took
0.13 ms of a one-user round's 0.44 ms gather at 100k items (docs/benchmarks-index.md,
session 19).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import njit, prange


def use_torch_threads() -> None:
    """Run the kernels on as many threads as torch may use on the calling thread (numba's
    count is per thread too), so a caller that limits torch limits them."""
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


EXP_FLOOR = np.float32(-87.33)
"""Below this ``exp`` is under float32's smallest normal number; :func:`exp32` gives 0."""


@njit(cache=True, inline="always")
def exp32(value):
    """``exp`` of a float32 by range reduction and a degree-7 polynomial (Cody & Waite's
    split of ln 2; Cephes's ``expf`` coefficients). Why: numba without Intel's SVML calls
    libm once per element, which no loop vectorises, and the steps' and retrieval's
    exponentials then cost more than their products (4.1M exponentials took 15 ms as
    ``np.exp`` in float64, 5.1 ms in float32, 1.3 ms here). Relative error at most 8.2e-8
    on [-87.3, 0] (float32's own ``exp``: 2.1e-7); 0 below :data:`EXP_FLOOR`, NaN for NaN."""
    if value < EXP_FLOOR:
        return np.float32(0.0)
    whole = np.floor(value * np.float32(1.4426950408889634) + np.float32(0.5))
    part = value - whole * np.float32(0.693145751953125) - whole * np.float32(1.428606765330187e-06)
    poly = np.float32(1.9875691500e-4)
    poly = poly * part + np.float32(1.3981999507e-3)
    poly = poly * part + np.float32(8.3334519073e-3)
    poly = poly * part + np.float32(4.1665795894e-2)
    poly = poly * part + np.float32(1.6666665459e-1)
    poly = poly * part + np.float32(5.0000001201e-1)
    mantissa = poly * part * part + part + np.float32(1.0)
    return mantissa * np.int32((np.int32(whole) + np.int32(127)) << 23).view(np.float32)


@njit(cache=True)
def _dot(left: np.ndarray, right: np.ndarray) -> float:
    total = 0.0
    for i in range(left.shape[0]):
        total += left[i] * right[i]
    return total


@njit(cache=True)
def weighted_rows(weights, rows, out):
    """``out = Σ_k weights[k]·rows[k]``, row after row (elementwise over a row, so it
    vectorises without reordering a sum): ``rows`` transposed gives a matrix-vector product.
    Four rows are added per pass over ``out``, in the same order one at a time would add
    them (the same bits), so ``out`` is loaded and stored a quarter as often: a gradient over
    576 candidates of 100 floats took 3.0 against 6.7 µs."""
    out[:] = 0.0
    count, k = len(weights), 0
    while k + 4 <= count:
        w0, w1, w2, w3 = weights[k], weights[k + 1], weights[k + 2], weights[k + 3]
        r0, r1, r2, r3 = rows[k], rows[k + 1], rows[k + 2], rows[k + 3]
        for i in range(len(out)):
            total = out[i]
            total += r0[i] * w0
            total += r1[i] * w1
            total += r2[i] * w2
            total += r3[i] * w3
            out[i] = total
        k += 4
    for rest in range(k, count):
        weight = weights[rest]
        row = rows[rest]
        for i in range(len(out)):
            out[i] += row[i] * weight


@njit(cache=True, fastmath={"reassoc"})
def _row_dots(rows, vector, out):
    """``out[c] = rows[c]·vector``: reassociated so that it vectorises (see the module's
    docstring), in an order that depends on ``len(vector)`` only. Four rows share a pass over
    ``vector`` (576 logits of 100 floats: 3.9 against 5.4 µs one at a time); the last rows of
    a count not divisible by four go through the same four-row loop, padded with copies, so
    every row takes the same arithmetic wherever it sits."""
    count = len(out)
    for c in range(0, count, 4):
        r0 = rows[c]
        r1 = rows[min(c + 1, count - 1)]
        r2 = rows[min(c + 2, count - 1)]
        r3 = rows[min(c + 3, count - 1)]
        t0, t1 = np.float32(0.0), np.float32(0.0)
        t2, t3 = np.float32(0.0), np.float32(0.0)
        for j in range(len(vector)):
            value = vector[j]
            t0 += r0[j] * value
            t1 += r1[j] * value
            t2 += r2[j] * value
            t3 += r3[j] * value
        out[c] = t0
        if c + 1 < count:
            out[c + 1] = t1
        if c + 2 < count:
            out[c + 2] = t2
        if c + 3 < count:
            out[c + 3] = t3


@njit(cache=True)
def _evaluate(
    users, vectors, offsets, length, pulled, l2, rest_lse, rest_mean, anchor, spread,
    logits, slope, delta,
):  # fmt: skip
    """The surrogate's value at ``users`` (one user's row). Leaves each candidate's
    ``exp(logit − peak)`` in ``logits`` and the pseudo-item's gradient in ``slope``; returns
    ``(value, their sum with the pseudo-item's, the pseudo-item's)``."""
    width, dim = vectors.shape
    _row_dots(vectors, users, logits)
    for c in range(width):
        logits[c] += offsets[c]
    for j in range(dim):
        delta[j] = users[j] - anchor[j]
    weighted_rows(delta, spread, slope)  # δᵀ·spread (symmetric)
    linear, curved = 0.0, 0.0
    for j in range(dim):
        linear += rest_mean[j] * delta[j]
        curved += slope[j] * delta[j]
        slope[j] += rest_mean[j]
    rest = rest_lse + linear + 0.5 * curved
    peak = np.float32(rest)
    for c in range(width):
        peak = max(peak, logits[c])
    for c in range(width):  # apart from the sum below, so that it vectorises
        logits[c] = exp32(logits[c] - peak)
    total = 0.0
    for c in range(width):
        total += logits[c]
    rest_weight = np.exp(rest - peak)
    total += rest_weight
    value = length * (peak + np.log(total)) - _dot(pulled, users) + l2 * _dot(users, users)
    return value, total, rest_weight


@njit(cache=True)
def _gradient(vectors, weights, total, rest_weight, slope, length, pulled, l2, users, grad):
    """``n·E_softmax[v] − Σ_history v + 2·l2·u`` from :func:`_evaluate`'s weights."""
    dim = vectors.shape[1]
    weighted_rows(weights, vectors, grad)
    scale = length / total
    for j in range(dim):
        grad[j] = scale * (grad[j] + rest_weight * slope[j]) - pulled[j] + 2 * l2 * users[j]


@njit(cache=True)
def _lu_solve(lu_columns, pivots, rhs):
    """``rhs ← A⁻¹·rhs`` from LAPACK's ``getrf`` factor of ``A``, given column by column
    (``lu_columns[j]`` is column ``j``: the substitutions then run down contiguous columns)
    and its 1-based row interchanges."""
    dim = rhs.shape[0]
    for i in range(dim):
        swap = pivots[i] - 1
        if swap != i:
            rhs[i], rhs[swap] = rhs[swap], rhs[i]
    for j in range(dim):  # unit lower triangle
        known = rhs[j]
        column = lu_columns[j]
        for i in range(j + 1, dim):
            rhs[i] -= column[i] * known
    for j in range(dim - 1, -1, -1):  # upper triangle
        column = lu_columns[j]
        rhs[j] /= column[j]
        known = rhs[j]
        for i in range(j):
            rhs[i] -= column[i] * known


@njit(cache=True, parallel=True)
def start_statistics(
    vectors, offsets, lengths, pulled, l2, rest_lse, rest_mean, anchor, spread, users,
):  # fmt: skip
    """Per user at ``users``: the softmax over candidates and pseudo-item ``(g, W + 1)``, the
    softmax-weighted mean vector ``(g, d)`` and the pseudo-item's gradient ``(g, d)``, which
    the torch side forms the exact Hessian from."""
    count, width, dim = vectors.shape
    probs = np.empty((count, width + 1), np.float32)
    means = np.empty((count, dim), np.float32)
    slopes = np.empty((count, dim), np.float32)
    for r in prange(count):
        delta = np.empty(dim, np.float32)
        _, total, rest_weight = _evaluate(
            users[r], vectors[r], offsets[r], lengths[r], pulled[r], l2, rest_lse[r],
            rest_mean[r], anchor[r], spread, probs[r, :width], slopes[r], delta,
        )  # fmt: skip
        for c in range(width):
            probs[r, c] /= total
        probs[r, width] = rest_weight / total
        # the mean is the gradient's first term: E[v] = (grad + pulled − 2·l2·u) / n
        _gradient(
            vectors[r], probs[r, :width], 1.0, probs[r, width], slopes[r], 1.0,
            np.zeros(dim, np.float32), 0.0, users[r], means[r],
        )  # fmt: skip
    return probs, means, slopes


@njit(cache=True, parallel=True)
def centred_bfloat16(vectors, probs, means):
    """Each user's candidates centred on their mean, ``v − m``, and those times their
    probability ``p·(v − m)``, both ``(g, W, d)`` as bfloat16 bits (``uint16``, rounded to
    nearest even as torch rounds): the operands of the Hessian's product
    (``fold_in.Surrogate._hessian``), in one pass (0.15 against 0.70 ms of torch operations for
    24 users × 576 candidates)."""
    count, width, dim = vectors.shape
    weighted = np.empty((count, width, dim), np.uint16)
    centred = np.empty((count, width, dim), np.uint16)
    for r in prange(count):
        plain, scaled = np.empty(dim, np.float32), np.empty(dim, np.float32)
        for c in range(width):
            for j in range(dim):
                plain[j] = vectors[r, c, j] - means[r, j]
                scaled[j] = plain[j] * probs[r, c]
            _to_bfloat16(plain.view(np.uint32), centred[r, c])
            _to_bfloat16(scaled.view(np.uint32), weighted[r, c])
    return weighted, centred


@njit(cache=True, inline="always")
def _to_bfloat16(bits, out):
    """float32 bits to bfloat16 bits, rounded to nearest, ties to even (finite values)."""
    for j in range(len(bits)):
        bit = bits[j]
        out[j] = (bit + np.uint32(0x7FFF) + ((bit >> np.uint32(16)) & np.uint32(1))) >> np.uint32(
            16
        )


@njit(cache=True, parallel=True)
def minimise(
    vectors, offsets, lengths, pulled, l2, rest_lse, rest_mean, anchor, spread,
    users, lu_columns, pivots, steps, halvings, rounding,
):  # fmt: skip
    """``steps`` damped quasi-Newton steps per user from ``users`` ``(g, d)``: each step
    ``H⁻¹·grad`` by L-BFGS's two-loop recursion over the factored Hessian and the steps taken
    so far, halved (up to ``halvings`` times) while it would raise the surrogate by more than
    ``rounding`` of its value. The same algorithm as ``fold_in.Surrogate.minimise``."""
    count, width, dim = vectors.shape
    reached = users.copy()
    for r in prange(count):
        at = reached[r]
        logits = np.empty(width, np.float32)
        slope, delta = np.empty(dim, np.float32), np.empty(dim, np.float32)
        grad, new_grad = np.empty(dim, np.float32), np.empty(dim, np.float32)
        step, trial = np.empty(dim, np.float32), np.empty(dim, np.float32)
        moved, turned = np.zeros((steps, dim), np.float32), np.zeros((steps, dim), np.float32)
        weights, alphas = np.zeros(steps), np.zeros(steps)
        problem = (
            vectors[r], offsets[r], lengths[r], pulled[r], l2, rest_lse[r], rest_mean[r],
            anchor[r], spread,
        )  # fmt: skip
        now, total, rest_weight = _evaluate(at, *problem, logits, slope, delta)
        _gradient(
            vectors[r], logits, total, rest_weight, slope, lengths[r], pulled[r], l2, at, grad
        )
        pairs = 0
        for taken in range(steps):
            step[:] = grad
            for p in range(pairs - 1, -1, -1):
                alphas[p] = weights[p] * _dot(moved[p], step)
                step -= alphas[p] * turned[p]
            _lu_solve(lu_columns[r], pivots[r], step)
            for p in range(pairs):
                beta = weights[p] * _dot(turned[p], step)
                step += (alphas[p] - beta) * moved[p]
            share = np.float32(1.0)
            for halved in range(halvings + 1):
                for j in range(dim):
                    trial[j] = at[j] - share * step[j]
                value, total, rest_weight = _evaluate(trial, *problem, logits, slope, delta)
                if halved == halvings or not value > now + rounding * abs(now):
                    break
                share *= np.float32(0.5)
            now = value
            if taken < steps - 1:
                _gradient(
                    vectors[r], logits, total, rest_weight, slope, lengths[r], pulled[r], l2,
                    trial, new_grad,
                )  # fmt: skip
                moved[pairs] = trial - at
                turned[pairs] = new_grad - grad
                curvature = _dot(moved[pairs], turned[pairs])
                weights[pairs] = 1.0 / curvature if curvature > 1e-12 else 0.0
                pairs += 1
                grad[:] = new_grad
            at[:] = trial
    return reached


@njit(cache=True)
def candidate_ids(indptr, indices, top_starts, tops, rows, width):
    """Per user of ``rows``: their candidates — history (CSR ``indptr`` / ``indices``), then
    their tops (``tops[top_starts[r]:top_starts[r + 1]]``) — padded with 0 to ``width``
    columns ``(g, width)``, how many are real ``(g,)`` and how many are history ``(g,)``."""
    ids = np.zeros((len(rows), width), np.int64)
    counts = np.empty(len(rows), np.int64)
    lengths = np.empty(len(rows), np.int64)
    for g in range(len(rows)):
        r = rows[g]
        seen, begin = indptr[r + 1] - indptr[r], top_starts[r]
        lengths[g] = seen
        counts[g] = seen + top_starts[r + 1] - begin
        for c in range(seen):
            ids[g, c] = indices[indptr[r] + c]
        for c in range(counts[g] - seen):
            ids[g, seen + c] = tops[begin + c]
    return ids, counts, lengths


@njit(cache=True, parallel=True)
def candidate_arrays(table, ids, counts, lengths):
    """What the steps read of each user's candidates ``ids`` ``(g, W)`` (the first
    ``counts`` real, the first ``lengths`` of them the history) in ``table``'s ``[v, b]``
    rows: their vectors ``(g, W, d)``, logit offsets ``(g, W)`` (the bias, ``-inf`` for
    pads), the history indicator ``(g, W)`` and its vectors' sum ``(g, d)``, in one pass per
    user (as torch's gather and product they took 0.17 s for 1,000 users). Rows are copied
    element by element out of the whole contiguous table: slice assignments through a view
    of its first ``d`` columns took 86–128 against 26–53 µs a user of 576 candidates (one
    thread, three runs)."""
    count, width = ids.shape
    dim = table.shape[1] - 1
    vectors = np.empty((count, width, dim), np.float32)
    offsets = np.empty((count, width), np.float32)
    history = np.zeros((count, width), np.float32)
    pulled = np.zeros((count, dim), np.float32)
    for r in prange(count):
        user_vectors = vectors[r]
        for c in range(width):
            target = user_vectors[c]
            if c < counts[r]:
                source = table[ids[r, c]]
                for j in range(dim):
                    target[j] = source[j]
                offsets[r, c] = source[dim]
            else:
                for j in range(dim):
                    target[j] = 0.0
                offsets[r, c] = -np.inf
        for c in range(lengths[r]):
            history[r, c] = 1.0
            for j in range(dim):
                pulled[r, j] += user_vectors[c, j]
    return vectors, offsets, history, pulled
