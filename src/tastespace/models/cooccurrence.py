"""Item embeddings from the item × item co-occurrence matrix: GloVe and PPMI + truncated SVD.

Both start from ``X`` (:func:`~tastespace.models._cooccurrence_common.cooccurrence_matrix`:
how many users have both items, or ``1/distance``-weighted pairs inside a time-ordered
``window``) and differ in how they turn it into ``d`` dimensions:

* :class:`GloVe` (Pennington et al. 2014) fits ``w_i · w̃_j + b_i + b̃_j ≈ log X_ij`` over the
  nonzeros, weighted by ``f(x) = min(1, (x / x_max)^alpha)``; item vectors are ``w + w̃``.
* :class:`PPMISVD` (Levy, Goldberg & Dagan 2015) takes the shifted positive PMI of ``X`` with
  context-distribution smoothing and keeps the top ``dim`` singular directions, ``U Σ^p``.

Neither has user factors: users fold in from their histories (pooled mean or item-kNN, see
:class:`~tastespace.models._cooccurrence_common.ItemEmbeddingModel`). Items that co-occur with
nothing in training get zero vectors.

Example
-------
>>> from tastespace.data import load_dataset
>>> ds = load_dataset("synthetic:tiny")
>>> PPMISVD(dim=16).fit(ds).item_vectors().shape
(200, 16)
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import scipy.sparse as sp

from tastespace.data.dataset import Dataset
from tastespace.errors import ConfigError
from tastespace.models._cooccurrence_common import (
    ItemEmbeddingConfig,
    ItemEmbeddingModel,
    cooccurrence_matrix,
)
from tastespace.models.fitting import FitRun
from tastespace.models.progress import ProgressCallback, StageClock

logger = logging.getLogger(__name__)

__all__ = ["GloVe", "GloVeConfig", "PPMISVD", "PPMISVDConfig", "fit_glove", "ppmi_matrix"]


# -- GloVe ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class GloVeConfig(ItemEmbeddingConfig):
    """GloVe options (defaults chosen with ``bench/cooccurrence_defaults.py``)."""

    x_max: float = 100.0
    """Count where the weighting f(x) = min(1, (x / x_max)^alpha) reaches 1."""
    alpha: float = 0.75
    """Exponent of the weighting, which stops rare pairs from dominating."""
    epochs: int = 10
    """Adam passes over the nonzeros; few on purpose: fitting log counts more closely ranks
    worse (ml-100k validation Recall@20 0.36 after 10 epochs, 0.30 after 30)."""
    lr: float = 0.05
    """Adam learning rate."""
    batch_size: int = 65_536
    """Nonzeros per minibatch."""
    window: int = 0
    """Co-occurrence window in positions of a user's time order (0 = whole history)."""

    def validate(self) -> None:
        super().validate()
        self.check_positive("x_max", "epochs", "lr", "batch_size")
        self.check_positive("alpha", allow_zero=True)


def fit_glove(
    x: sp.csr_matrix,
    dim: int,
    *,
    x_max: float = 100.0,
    alpha: float = 0.75,
    epochs: int = 50,
    lr: float = 0.05,
    batch_size: int = 65_536,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Minimise ``Σ f(X_ij)(w_i·w̃_j + b_i + b̃_j − log X_ij)²`` over the nonzeros of ``x``.

    Why minibatch Adam on the nonzeros with hand-written gradients: the cost scales with
    ``nnz × dim``, no dense ``n × n`` matrix is ever built, and a batch's gradient is two sparse
    products (``G @ W̃`` and ``Gᵀ @ W`` with ``G`` the batch's residuals), which scipy does
    faster than autograd's gather / scatter. Returns ``(w + w̃, b + b̃, loss per epoch)``; the
    loss is the ``f``-weighted mean squared error over all nonzeros, comparable across epochs.
    ``progress`` hears every batch (see :mod:`tastespace.models.progress`).
    """
    coo = x.tocoo()
    n, nnz = x.shape[0], coo.nnz
    rng = np.random.default_rng(seed)
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    counts = coo.data.astype(np.float64)
    target = np.log(counts).astype(np.float32)
    weight = np.minimum(1.0, (counts / x_max) ** alpha).astype(np.float32)
    scale = 0.5 / dim
    params = [
        rng.uniform(-scale, scale, (n, dim)).astype(np.float32),  # w
        rng.uniform(-scale, scale, (n, dim)).astype(np.float32),  # w̃
        np.zeros(n, np.float32),  # b
        np.zeros(n, np.float32),  # b̃
    ]
    w, wt, b, bt = params
    adam = _Adam(params, lr)
    total_weight = float(weight.sum()) or 1.0
    losses: list[float] = []
    batches = -(-nnz // batch_size)
    for epoch in range(epochs):
        clock = StageClock(progress, "epoch", epoch + 1, epochs, batches)
        order = rng.permutation(nnz)
        epoch_loss = 0.0
        for batch, start in enumerate(range(0, nnz, batch_size), 1):
            idx = order[start : start + batch_size]
            epoch_loss += _glove_step(adam, rows[idx], cols[idx], weight[idx], target[idx])
            clock.step(batch, epoch_loss / total_weight * nnz / min(start + batch_size, nnz))
        losses.append(epoch_loss / total_weight)
        clock.finish(loss=losses[-1])
        logger.debug("glove epoch %d loss %.4f", epoch, losses[-1])
    return w + wt, b + bt, losses


def _glove_step(
    adam: _Adam, r: np.ndarray, c: np.ndarray, f: np.ndarray, target: np.ndarray
) -> float:
    """One Adam step on a batch of nonzeros ``(r, c)``; returns its ``f``-weighted squared
    error (before the step). The gradients of ``w`` and ``w̃`` are the two sparse products."""
    w, wt, b, bt = adam.params
    n = len(w)
    residual = np.einsum("ij,ij->i", w[r], wt[c]) + b[r] + bt[c] - target
    loss = float(np.dot(f, residual * residual))
    g = (2.0 / len(r)) * f * residual
    grad = sp.csr_matrix((g, (r, c)), shape=(n, n))
    adam.step(
        [
            np.asarray(grad @ wt),
            np.asarray(grad.T @ w),
            np.bincount(r, g, n).astype(np.float32),
            np.bincount(c, g, n).astype(np.float32),
        ]
    )
    return loss


class _Adam:
    """Adam (Kingma & Ba 2015) updating numpy arrays in place."""

    def __init__(self, params: list[np.ndarray], lr: float, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.betas
        step = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= (step * m / (np.sqrt(v) + self.eps)).astype(p.dtype)


class GloVe(ItemEmbeddingModel):
    """GloVe on item co-occurrence; see the module docstring.

    >>> from tastespace.data import load_dataset
    >>> model = GloVe(dim=8, epochs=2).fit(load_dataset("synthetic:tiny"))
    >>> from tastespace.models import ItemIndices
    >>> model.recommend(ItemIndices([3, 17]), k=5)[0].shape
    (5,)
    """

    kind = "glove"
    Config = GloVeConfig

    def _fit(self, dataset: Dataset, validation: Any, run: FitRun) -> None:
        cfg = self.config
        counting = run.clock("co-occurrence", 1, 1, 1)
        x = cooccurrence_matrix(dataset.interactions, dataset.timestamps, cfg.window)
        counting.finish()
        vectors = np.zeros((dataset.n_items, cfg.dim), np.float32)
        known = np.diff(x.indptr) > 0
        self.losses_: list[float] = []
        if x.nnz:
            vectors, _, self.losses_ = fit_glove(
                x,
                cfg.dim,
                x_max=cfg.x_max,
                alpha=cfg.alpha,
                epochs=cfg.epochs,
                lr=cfg.lr,
                batch_size=cfg.batch_size,
                seed=cfg.seed,
                progress=run.callback,
            )
        self._finish_fit(vectors, known)


# -- PPMI + SVD -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PPMISVDConfig(ItemEmbeddingConfig):
    """PPMI-SVD options (defaults chosen with ``bench/cooccurrence_defaults.py``)."""

    dim: int = 256
    """Vector size (the SVD's rank; below the number of items)."""
    smoothing: float = 0.75
    """Context-distribution exponent in (0, 1] (0.75 damps popular contexts)."""
    shift: float = 1.0
    """The k of shifted PPMI, max(PMI − log k, 0); 1 = plain PPMI."""
    eigen_power: float = 0.5
    """Item vectors are U Σ^eigen_power."""
    n_iter: int = 7
    """Power iterations of the randomised SVD."""
    window: int = 0
    """Co-occurrence window in positions of a user's time order (0 = whole history)."""

    def validate(self) -> None:
        super().validate()
        if self.shift < 1:
            raise ConfigError(f"shift must be ≥ 1 (1 = plain PPMI), got {self.shift}")
        if not 0 < self.smoothing <= 1:
            raise ConfigError(f"smoothing must lie in (0, 1], got {self.smoothing}")


def ppmi_matrix(x: sp.csr_matrix, smoothing: float = 0.75, shift: float = 1.0) -> sp.csr_matrix:
    """Shifted positive PMI of a co-occurrence matrix, with context-distribution smoothing.

    ``PMI_ij = log(X_ij · Σ_c X_·c^α / (X_i· · X_·j^α))``, i.e. ``log P(i,j) / (P(i) P_α(j))``
    with ``P_α(j) ∝ X_·j^α`` (Levy et al. 2015; at ``α = 1`` this is ``log X_ij·D / (X_i· X_·j)``
    with ``D = Σ X``). Returns ``max(PMI − log shift, 0)`` as float32 CSR, zeros dropped.
    """
    x = sp.csr_matrix(x, dtype=np.float64)
    row_sum = np.asarray(x.sum(axis=1)).ravel()
    col_smoothed = np.asarray(x.sum(axis=0)).ravel() ** smoothing
    coo = x.tocoo()
    pmi = (
        np.log(coo.data)
        + np.log(col_smoothed.sum())
        - np.log(row_sum[coo.row])
        - np.log(col_smoothed[coo.col])
        - np.log(shift)
    )
    keep = pmi > 0
    out = sp.csr_matrix(
        (pmi[keep].astype(np.float32), (coo.row[keep], coo.col[keep])), shape=x.shape
    )
    out.sort_indices()
    return out


class PPMISVD(ItemEmbeddingModel):
    """Shifted PPMI of item co-occurrence, factorised by randomised truncated SVD.

    >>> from tastespace.data import load_dataset
    >>> model = PPMISVD(dim=8).fit(load_dataset("synthetic:tiny"))
    >>> model.similar_items(0, k=3)[0].shape
    (3,)
    """

    kind = "ppmi-svd"
    Config = PPMISVDConfig

    def _fit(self, dataset: Dataset, validation: Any, run: FitRun) -> None:
        from sklearn.utils.extmath import randomized_svd

        cfg = self.config
        if cfg.dim >= dataset.n_items:
            raise ConfigError(
                f"dim={cfg.dim} must be below the number of items ({dataset.n_items}); lower dim"
            )
        x = cooccurrence_matrix(dataset.interactions, dataset.timestamps, cfg.window)
        ppmi = ppmi_matrix(x, cfg.smoothing, cfg.shift)
        known = np.diff(ppmi.indptr) > 0
        if ppmi.nnz == 0:
            self._finish_fit(np.zeros((dataset.n_items, cfg.dim), np.float32), known)
            return
        u, sigma, _ = randomized_svd(
            ppmi, cfg.dim, n_iter=cfg.n_iter, random_state=cfg.seed, flip_sign=True
        )
        self.singular_values_ = sigma.astype(np.float32)
        self._finish_fit(u * sigma**cfg.eigen_power, known)
