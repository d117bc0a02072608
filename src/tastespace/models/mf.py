"""Matrix factorisation through the ``implicit`` library: ALS and BPR, with fold-in for new users.

Both train with implicit's CPU classes named explicitly (``implicit.cpu.als``,
``implicit.cpu.bpr``) so a GPU on the machine never changes the result. A bundle keeps only the
item side; every user, seen in training or not, reaches the model by *fold-in*: a user vector
solved for on the fixed item side, so new users need no retraining.

* **ALS** (Hu, Koren & Volinsky 2008): the exact weighted least-squares solution
  ``x_u = (YᵀY + Yᵀ(C_u − I)Y + λI)⁻¹ Yᵀ C_u p(u)``, solved by implicit's ``recalculate_user``
  (Cholesky, one small ``factors × factors`` system per user).
* **BPR** (Rendle et al. 2009): implicit has no fold-in for BPR. The default is ridge least
  squares of the watched-item indicator on the item columns ``[factors, bias]``, which ranks
  best on validation users (``bench/mf_defaults.py``); the alternative, :func:`bpr_fold_in`,
  maximises the BPR objective itself on the fixed item side, with the expectation over
  negatives taken exactly (no sampling, hence deterministic).

Shapes, for 3 users, 5 items and ``factors = 2``::

    histories  csr (3, 5)       row u = items user u watched (weights: ratings or 1.0)
    item_vectors()  (5, 2)      the factor part only (BPR's bias column is split off)
    item_bias()     (5,)        BPR only: scores are ``u · y + β · bias`` (see ``BPR.fold_in``)
    user_vectors(h) (3, 2)      fold-in

Example
-------
>>> from tastespace.data import load_dataset
>>> ds = load_dataset("synthetic:users=200,items=60,genres=3,seed=1")
>>> als = ALS(factors=16, iterations=5).fit(ds)
>>> from tastespace.models import ItemIndices
>>> ids, scores = als.recommend(ItemIndices([[0, 1, 2]]), k=5)
>>> ids.shape, als.item_vectors().shape
((1, 5), (60, 16))
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar, Literal

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from tastespace.data.dataset import Dataset
from tastespace.errors import ConfigError
from tastespace.index.blocks import dot_scores
from tastespace.models.base import Recommender, SearchSpace
from tastespace.models.config import ModelConfig
from tastespace.models.fitting import FitRun
from tastespace.models.histories import Histories, as_histories
from tastespace.models.locality import inverse, locality_order, permuted, worth_reordering

log = logging.getLogger(__name__)

#: Most cells of one (interactions × items) block in BPR fold-in (16 MiB of float32).
FOLD_IN_BLOCK_CELLS = 1 << 22


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread while implicit works.

    Why: implicit parallelises over users/items with its own threads and calls BLAS inside them;
    a multi-threaded OpenBLAS/MKL underneath oversubscribes the cores (implicit measures up to
    10× slow-downs and warns at construction). Limiting BLAS only here, rather than silencing the
    warning or setting ``OPENBLAS_NUM_THREADS`` globally, keeps numpy's big matrix products
    (scoring, EASE) multi-threaded everywhere else.
    """
    with _blas_controller().limit(limits=1, user_api="blas"):
        yield


@functools.cache
def _blas_controller() -> Any:
    """threadpoolctl's view of the loaded thread pools, taken once: finding them reads
    ``/proc/self/maps`` (4.4 of the 12 ms a one-user ALS ``recommend`` took on the 40k
    catalog). implicit's BLAS (scipy's) is loaded before the first call, with implicit."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _binary_rows(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Positive entries only, as 1.0 (BPR ignores weights; zeros must not count as watched)."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.data = (out.data > 0).astype(np.float32)
    out.eliminate_zeros()
    out.sort_indices()
    return out


# -- ALS ----------------------------------------------------------------------------------------
# implicit calls the vector size "factors" and the sweeps "iterations".
IMPLICIT_ALIASES: dict[str, str] = {"dim": "factors", "epochs": "iterations"}


@dataclasses.dataclass(frozen=True)
class ALSConfig(ModelConfig):
    """Implicit-feedback ALS (defaults chosen on validation users with ``bench/mf_defaults.py``)."""

    ALIASES: ClassVar[dict[str, str]] = IMPLICIT_ALIASES

    factors: int = 128
    """Vector size."""
    regularization: float = 30.0
    """λ on user and item factors (not scaled by counts, as in implicit)."""
    alpha: float = 5.0
    """Confidence of a positive, C_ui = alpha × weight (implicit's convention: with binary data
    positives weigh alpha and unobserved cells 1, Hu et al.'s 1 + α·r with α = alpha − 1)."""
    iterations: int = 30
    """ALS sweeps."""
    num_threads: int = 0
    """implicit's threads (0 = all cores); ALS gives identical factors at any thread count
    (each user's and item's solve is independent)."""
    training_loss: bool = False
    """Compute implicit's training loss after every sweep for the progress callback (an extra
    pass over the data each sweep; off, the loss reads NaN)."""
    locality_order: Literal["auto", "on", "off"] = "auto"
    """Train on users and items renumbered so that neighbours share interactions
    (:mod:`tastespace.models.locality`); ``auto``: when the larger factor table outgrows the
    cache (20M interactions: 4 sweeps 14.0 s against 18.4 s). The vectors come back in the
    original numbering; the order changes which random start each item gets, not the quality."""

    def validate(self) -> None:
        self.check_positive("factors", "iterations", "alpha")
        self.check_positive("regularization", "num_threads", allow_zero=True)


class ALS(Recommender):
    """Alternating least squares for implicit feedback, with exact fold-in for any history.

    Item vectors are implicit's item factors; a user's vector is the weighted ridge solution on
    them (see the module docstring), so :meth:`user_vectors` of a training user's own history
    reproduces (up to ALS's last half-sweep) the factor the user had in training.
    """

    kind = "als"
    Config = ALSConfig
    config: ALSConfig

    def _fit(self, dataset: Dataset, validation: Any, run: FitRun) -> None:
        c = self.config
        clock = run.clock("sweeps", 1, 1, c.iterations)

        def report(iteration: int, _elapsed: float, loss: float | None) -> None:
            clock.step(iteration + 1, float("nan") if loss is None else loss)

        engine = self._engine(
            iterations=c.iterations,
            calculate_training_loss=c.training_loss and run.callback is not None,
        )
        positives = self._positives(dataset.interactions)
        reorder = c.locality_order == "on" or (
            c.locality_order == "auto" and worth_reordering(positives.shape, c.factors)
        )
        users, items = locality_order(positives) if reorder else (None, None)
        if users is not None:
            positives = permuted(positives, users, items)
        with _single_threaded_blas():
            engine.fit(positives, show_progress=False, callback=report)
        clock.finish()
        item_factors, user_factors = (
            np.asarray(engine.item_factors),
            np.asarray(engine.user_factors),
        )
        if users is not None:  # back to the dataset's numbering
            item_factors, user_factors = item_factors[inverse(items)], user_factors[inverse(users)]
        self.item_factors_ = np.ascontiguousarray(item_factors, dtype=np.float32)
        #: Training users' factors from the last sweep (in memory only; bundles fold users in).
        self.user_factors_ = np.ascontiguousarray(user_factors, dtype=np.float32)

    @staticmethod
    def _positives(matrix: sp.spmatrix) -> sp.csr_matrix:
        """Weights > 0 kept as given (a stored 0 must not become a positive with confidence 0)."""
        out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        out.data[out.data < 0] = 0.0
        out.eliminate_zeros()
        out.sort_indices()
        return out

    def _solver(self) -> Any:
        """implicit's ALS holding our item factors: its ``recalculate_user`` is the fold-in."""

        def build() -> Any:
            engine = self._engine()
            engine.item_factors = self.item_factors_
            return engine

        return self._derived("solver", build)

    def _engine(self, **options: Any) -> Any:
        """implicit's CPU ALS with this config (BLAS held to one thread while it starts)."""
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        with _single_threaded_blas():
            return AlternatingLeastSquares(
                factors=c.factors,
                regularization=c.regularization,
                alpha=c.alpha,
                num_threads=c.num_threads,
                random_state=c.seed,
                **options,
            )

    def _item_vectors(self) -> np.ndarray:
        """``(n_items, factors)`` float32 item factors."""
        return self.item_factors_

    def user_vectors(self, histories: Histories) -> np.ndarray:
        """``(n, factors)`` exact ALS solutions on the fixed item factors (empty history → 0)."""
        self._require_fitted()
        matrix, _ = as_histories(histories, self.n_items)
        positives = self._positives(matrix)
        if positives.shape[0] == 0:
            return np.zeros((0, self.config.factors), np.float32)
        engine = self._solver()
        with _single_threaded_blas():
            users = engine.recalculate_user(np.arange(positives.shape[0]), positives)
        return np.ascontiguousarray(np.atleast_2d(users), dtype=np.float32)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {"item_factors": self.item_factors_}, {}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.item_factors_ = np.ascontiguousarray(arrays["item_factors"], dtype=np.float32)


# -- BPR ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BPRConfig(ModelConfig):
    """Bayesian personalised ranking (defaults chosen with ``bench/mf_defaults.py``)."""

    ALIASES: ClassVar[dict[str, str]] = IMPLICIT_ALIASES

    factors: int = 64
    """Vector size (implicit adds one more column for the item bias)."""
    learning_rate: float = 0.01
    """implicit's SGD learning rate."""
    regularization: float = 0.01
    """implicit's L2 on the factors."""
    iterations: int = 30
    """SGD epochs over the interactions."""
    verify_negative_samples: bool = True
    """Resample negatives the user has watched."""
    fold_in: Literal["least_squares", "objective"] = "least_squares"
    """How a history becomes a user vector (see BPR.fold_in): ridge least squares, or
    fold_in_steps steps on the BPR objective itself."""
    fold_in_l2: float = 0.01
    """Least-squares ridge as a share of the mean diagonal of the item-side Gram matrix:
    scale-free, because the best absolute ridge moved 10× between 30 and 100 epochs."""
    fold_in_steps: int = 3
    """Minorise-maximise steps of the objective fold-in."""
    num_threads: int = 0
    """implicit's threads (0 = all cores); its BPR is lock-free SGD, so with more than one
    thread the same seed no longer gives the same model bit for bit (1 makes reruns identical)."""

    def validate(self) -> None:
        self.check_positive("factors", "iterations", "learning_rate", "fold_in_l2")
        self.check_positive("regularization", "fold_in_steps", "num_threads", allow_zero=True)
        if self.fold_in not in ("least_squares", "objective"):
            raise ConfigError(
                f"BPRConfig.fold_in must be 'least_squares' or 'objective', got {self.fold_in!r}"
            )


class BPR(Recommender):
    """BPR matrix factorisation; scores carry the learned item bias.

    implicit stores the bias as a last factor column (with a constant 1 on the user side);
    :meth:`item_vectors` returns the factor part and :meth:`item_bias` the bias. A user's
    scores are ``u · y_j + β_u · b_j`` with ``(u, β_u)`` from :meth:`fold_in`; with β = 1 (the
    ``"objective"`` fold-in, and every training user) they rank exactly like implicit's own
    ``user · item`` on the full columns. Items without training interactions keep what implicit
    gives them (their rows are never updated); pinning their bias to the lowest learned one
    instead cost 1–2 % Recall@20 / NDCG@100 on both MovieLens sets (3 seeds), so it is not done.
    """

    kind = "bpr"
    Config = BPRConfig
    config: BPRConfig
    dot_product = False  # the bias term is not part of the vectors

    def _fit(self, dataset: Dataset, validation: Any, run: FitRun) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        c = self.config
        positives = _binary_rows(dataset.interactions)
        total = positives.nnz
        clock = run.clock("sweeps", 1, 1, c.iterations)

        def report(epoch: int, _elapsed: float, correct: int, skipped: int) -> None:
            error = 1.0 - correct / max(total - skipped, 1)  # training ranking error
            clock.step(epoch + 1, error)

        with _single_threaded_blas():
            engine = BayesianPersonalizedRanking(
                factors=c.factors,
                learning_rate=c.learning_rate,
                regularization=c.regularization,
                iterations=c.iterations,
                num_threads=c.num_threads,
                verify_negative_samples=c.verify_negative_samples,
                random_state=c.seed,
            )
            engine.fit(positives, show_progress=False, callback=report)
        clock.finish()
        full = np.asarray(engine.item_factors, dtype=np.float32)
        counts = np.bincount(positives.indices, minlength=dataset.n_items).astype(np.float32)
        self.item_factors_ = np.ascontiguousarray(full[:, :-1])
        self.item_bias_ = full[:, -1].copy()
        self.item_counts_ = counts
        #: Training users' factors (bias column dropped; in memory only, bundles fold users in).
        self.user_factors_ = np.ascontiguousarray(
            np.asarray(engine.user_factors, dtype=np.float32)[:, :-1]
        )

    def _item_vectors(self) -> np.ndarray:
        """``(n_items, factors)`` float32: the factor part, without the bias column."""
        return self.item_factors_

    def item_bias(self) -> np.ndarray:
        """``(n_items,)`` float32 learned item bias."""
        self._require_fitted()
        return self.item_bias_

    def fold_in(self, histories: Histories) -> tuple[np.ndarray, np.ndarray]:
        """User vectors ``(n, factors)`` and the weight ``(n,)`` of the item bias in their scores.

        ``"least_squares"`` (the default; better on validation users, see
        ``bench/mf_defaults.py``): ridge regression of the user's watched-item indicator on the
        item columns ``[factors, bias]``; the coefficient on the bias column is the weight, so
        each user gets their own dose of popularity. ``"objective"``: :func:`bpr_fold_in`, the
        BPR objective maximised on the fixed item side, weight 1. An empty history gives the
        zero vector and weight 1: the learned bias alone ranks.
        """
        self._require_fitted()
        matrix, _ = as_histories(histories, self.n_items)
        positives = _binary_rows(matrix)
        weight = np.ones(positives.shape[0], np.float32)
        if self.config.fold_in == "objective":
            users = bpr_fold_in(
                positives,
                self.item_factors_,
                self.item_bias_,
                self.item_counts_,
                self.config.regularization,
                self.config.fold_in_steps,
            )
            return users, weight
        coefficients = np.asarray(positives @ self._least_squares_projection(), np.float32)
        has_history = np.diff(positives.indptr) > 0
        weight[has_history] = coefficients[has_history, -1]
        return np.ascontiguousarray(coefficients[:, :-1]), weight

    def _least_squares_projection(self) -> np.ndarray:
        """``(n_items, factors + 1)``: row ``j`` is what watching item ``j`` adds to ``(u, β)``."""

        def solve() -> np.ndarray:
            columns = np.hstack([self.item_factors_, self.item_bias_[:, None]]).astype(np.float64)
            gram = columns.T @ columns
            ridge = self.config.fold_in_l2 * max(np.trace(gram) / len(gram), 1e-12)
            gram[np.diag_indices_from(gram)] += ridge
            return np.linalg.solve(gram, columns.T).T.astype(np.float32)

        return self._derived("least_squares_projection", solve)

    def user_vectors(self, histories: Histories) -> np.ndarray:
        """``(n, factors)`` fold-in vectors (see :meth:`fold_in`; the bias weight is dropped)."""
        return self.fold_in(histories)[0]

    def score(self, histories: Histories) -> np.ndarray:
        """``(n, n_items)``: ``u @ item_vectors.T + β · item_bias`` with ``(u, β)`` from fold-in."""
        users, weight = self.fold_in(histories)
        return dot_scores(users, self.item_factors_) + weight[:, None] * self.item_bias_

    def _search_space(self) -> SearchSpace:
        """``[y_j, b_j]`` rows, searched with ``[u, β]`` queries (see :meth:`score`)."""
        return SearchSpace(np.column_stack([self.item_factors_, self.item_bias_]))

    def _search_queries(self, histories: sp.csr_matrix) -> np.ndarray:
        users, weight = self.fold_in(histories)
        return np.column_stack([users, weight])

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {
            "item_factors": self.item_factors_,
            "item_bias": self.item_bias_,
            "item_counts": self.item_counts_,
        }, {}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.item_factors_ = np.ascontiguousarray(arrays["item_factors"], dtype=np.float32)
        self.item_bias_ = np.asarray(arrays["item_bias"], dtype=np.float32)
        self.item_counts_ = np.asarray(arrays["item_counts"], dtype=np.float32)


def bpr_fold_in(
    histories: sp.csr_matrix,
    factors: np.ndarray,
    bias: np.ndarray,
    counts: np.ndarray,
    regularization: float,
    steps: int,
    block_cells: int = FOLD_IN_BLOCK_CELLS,
) -> np.ndarray:
    """User vectors that maximise BPR's objective on fixed item factors: ``(n, factors)``.

    For a user with watched set ``H`` the objective is the one implicit's SGD optimises for that
    user, with its sampling replaced by the exact expectation::

        f(u) = mean_{i∈H} Σ_{j∉H} w_j log σ(u·(y_i − y_j) + b_i − b_j) − (λ/2)‖u‖²

    with negatives weighted by training popularity, ``w_j ∝ counts_j`` (implicit draws a negative
    as a random interaction's item and skips the user's own). ``f`` is concave; each step moves
    ``u ← u + M⁻¹ ∇f(u)`` with ``M = ¼·E[(y_i − y_j)(y_i − y_j)ᵀ] + λI``, Böhning's bound on the
    curvature of the logistic loss, so every step increases ``f`` (minorise-maximise: no learning
    rate, no line search) and the steps from ``u = 0`` converge to the maximiser.

    Deterministic, and each user's result is independent of the other users in the call. Work
    is ``O(|H| × n_items)`` per user and step, in blocks of at most ``block_cells`` cells.
    ``histories`` must be binary CSR with sorted indices (see :func:`_binary_rows`).
    """
    n_users, d = histories.shape[0], factors.shape[1]
    out = np.zeros((n_users, d), np.float32)
    items32 = np.ascontiguousarray(factors, dtype=np.float32)
    bias32 = np.asarray(bias, dtype=np.float32)
    y = factors.astype(np.float64)
    weights = counts.astype(np.float64)
    moments = (weights @ y, (y * weights[:, None]).T @ y)
    chunk = max(1, block_cells // max(factors.shape[0], 1))
    for row in range(n_users):
        watched = histories.indices[histories.indptr[row] : histories.indptr[row + 1]]
        if len(watched) == 0:
            continue
        negatives = weights.copy()
        negatives[watched] = 0.0
        mass = negatives.sum()
        if mass <= 0:  # the user watched every trained item: no negatives, u = 0
            continue
        precision = _bohning_inverse(y, watched, weights, moments, mass, regularization)
        out[row] = _ascend(
            items32,
            bias32,
            watched,
            (negatives / mass).astype(np.float32),
            precision,
            regularization,
            steps,
            chunk,
        )
    return out


def _ascend(
    items: np.ndarray,
    bias: np.ndarray,
    watched: np.ndarray,
    negatives: np.ndarray,
    precision: np.ndarray,
    regularization: float,
    steps: int,
    chunk: int,
) -> np.ndarray:
    """``steps`` minorise-maximise steps for one user from ``u = 0`` (see :func:`bpr_fold_in`).

    ``negatives`` is the user's negative distribution (zero on ``watched``). The
    ``|H| × n_items`` matrix of pair weights ``σ(x_j − x_i)`` is built ``chunk`` rows at a time.
    """
    own = items[watched].astype(np.float64)
    u = np.zeros(items.shape[1])
    for _ in range(steps):
        scores = items @ u.astype(np.float32) + bias  # (n_items,)
        pull = np.empty(len(watched))  # Σ_j w_j σ(x_j − x_i), per watched item i
        push = np.zeros(items.shape[0])  # Σ_i σ(x_j − x_i), per item j (times w_j below)
        for start in range(0, len(watched), chunk):
            pair = scores[None, :] - scores[watched[start : start + chunk], None]
            expit(pair, out=pair)
            pull[start : start + chunk] = pair @ negatives
            push += pair.sum(axis=0)
        grad = (pull @ own - (push * negatives) @ items) / len(watched) - regularization * u
        u += precision @ grad
    return u.astype(np.float32)


def _bohning_inverse(
    y: np.ndarray,
    watched: np.ndarray,
    weights: np.ndarray,
    moments: tuple[np.ndarray, np.ndarray],
    mass: float,
    regularization: float,
) -> np.ndarray:
    """``(d, d)`` inverse of ``¼·E[(y_i − y_j)(y_i − y_j)ᵀ] + λI`` for one user.

    ``E`` is over ``i`` uniform on the history and ``j`` from the user's negative distribution;
    the negative moments are the catalog's (precomputed) minus the user's own items, so this
    costs ``O(|H| d²)``, nothing of size ``n_items``.
    """
    mean_all, second_all = moments
    own, w = y[watched], weights[watched]
    neg_mean = (mean_all - w @ own) / mass
    neg_second = (second_all - (own * w[:, None]).T @ own) / mass
    pos_mean = own.mean(axis=0)
    moment = (
        own.T @ own / len(own)
        - np.outer(pos_mean, neg_mean)
        - np.outer(neg_mean, pos_mean)
        + neg_second
    )
    return np.linalg.inv(0.25 * moment + max(regularization, 1e-6) * np.eye(y.shape[1]))
