"""item2vec (Barkan & Koenigstein 2016): skip-gram with negative sampling over user histories.

Each user's history is a "sentence" whose "words" are item indices; gensim's ``Word2Vec``
learns one vector per item such that items that share users land close together. Users have no
parameters: they fold in from their histories (pooled mean or item-kNN, see
:class:`~tastespace.models._cooccurrence_common.ItemEmbeddingModel`).

Word order: with ``window=0`` (the default) every pair of items in a history is a context pair —
the window spans the longest history and each history is reshuffled (seeded) every epoch, since a
set of watched items has no order. With a finite ``window`` and ``time_ordered=True`` the
histories are sorted by timestamp (when the dataset has them), so neighbours in time are
contexts; otherwise they are shuffled per epoch too.

Cost: the whole-history window trains on every pair, ``Σ_u n_u (n_u − 1)`` per epoch, which
grows with the square of history length (``synthetic:medium``, 1M interactions: 224 pairs
per interaction and epoch), and gensim's time is those pair updates: reading the histories
is 0.2 s of a 96 CPU-second epoch at 1M (``bench/item2vec_window.py``), so the fit is
bounded by a budget of pairs, ``max_pairs``, see :func:`plan_training`: whole-history epochs
while they fit (at most ``epochs``), and once a single epoch would exceed it, one epoch over
pieces of the shuffled histories (each item meets a random share of its co-watched items
instead of all of them). The default budget, :func:`pair_budget`, falls as ``1 / N`` for
small data, which needs many passes (both MovieLens leaderboard sets keep their 50 whole
epochs), and is ``pairs_per_interaction`` (50) per interaction on large data, with a
higher learning rate for that single cut epoch (``piece_lr``), so a fit costs a linear pass
plus at most ``50 N`` pair updates (at 1M, a tenth of the previous default's 2 whole epochs,
at the same test Recall@20, 0.165, in 2.2× ALS's time). On ml-100k's validation users
(seed 0, ``bench/item2vec_window.py``) every cheaper way to spend pairs ranked worse than
whole epochs: sliding windows of 5 or 20 over shuffled histories reached Recall@20 0.13 at 5
epochs and 0.12 at 57 (as many pairs as 5 whole epochs, which reach 0.23), and 10 whole
epochs at a 4× learning rate 0.34 against 0.40 for the 50 default epochs.

Determinism: gensim runs on every core by default (``workers=0``), and its threads
interleave their updates, so two fits differ slightly; ``workers=1`` is the reproducible
route: vector initialisation, negative draws and the shuffles are then all seeded by
``seed``, and a process-independent ``hashfxn`` replaces Python's salted ``hash``. Items that
never share a history with another item (or have fewer than ``min_count`` interactions) get
zero vectors.

Defaults follow Caselles-Dupré et al. (2018), "Word2vec applied to recommendation:
hyperparameters matter" (many epochs; the negative-sampling exponent and window matter),
re-tuned on MovieLens with ``bench/cooccurrence_defaults.py``: whole-history window, 50
epochs, uniform negatives (``ns_exponent=0``; gensim's 0.75 ranks worse for the validation
users of both ml-100k and ml-latest-small), and vectors centred before normalising
(``center``), since one direction shared by all skip-gram vectors otherwise dominates every
cosine.

Example
-------
>>> from tastespace.data import load_dataset
>>> model = Item2Vec(dim=16, epochs=2).fit(load_dataset("synthetic:tiny"))
>>> model.item_vectors().shape
(200, 16)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import warnings
import zlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np

from tastespace.data.dataset import Dataset
from tastespace.errors import ConfigError, DataWarning
from tastespace.models._cooccurrence_common import (
    ItemEmbeddingConfig,
    ItemEmbeddingModel,
    ordered_entries,
)
from tastespace.models.fitting import FitRun
from tastespace.models.progress import ProgressCallback, StageClock

__all__ = ["Item2Vec", "Item2VecConfig"]

log = logging.getLogger(__name__)

#: gensim silently truncates longer sentences; longer histories are cut into pieces this long.
MAX_SENTENCE = 10_000
#: pair_budget's small-data point: this many pairs for the whole fit at SMALL_DATA interactions
#: (ml-latest-small's 50 whole epochs, 434M pairs at 37,945, fit in it), falling as 1 / N.
SMALL_DATA, SMALL_DATA_PAIRS = 40_000, 450_000_000


@dataclasses.dataclass(frozen=True)
class Item2VecConfig(ItemEmbeddingConfig):
    """item2vec options (gensim names where they exist); see :func:`plan_training` for how
    epochs and max_pairs bound the work."""

    center: bool = True
    """Subtract the mean vector of the items with data (skip-gram vectors share one strong
    direction)."""
    window: int | None = 0
    """Context half-width in positions; 0 or None = the whole history."""
    negative: int = 5
    """Negative samples per pair."""
    ns_exponent: float = 0.0
    """Negatives drawn ∝ count^ns_exponent (0 = uniform; below 0 rare items are drawn more,
    which pushes rankings towards popular items)."""
    sample: float = 1e-3
    """Down-sampling threshold for frequent items (0 = off)."""
    epochs: int = 50
    """Passes over the histories, at most (max_pairs may allow fewer)."""
    lr: float = 0.025
    """Initial learning rate, decayed linearly to min_lr."""
    piece_lr: float = 0.1
    """Initial learning rate when the budget cuts the fit to one epoch over pieces (large data,
    where each pair is seen once)."""
    min_lr: float = 1e-4
    """Final learning rate."""
    min_count: int = 1
    """Items seen fewer times are left out of training (zero vectors)."""
    time_ordered: bool = False
    """With a finite window, order histories by timestamp instead of shuffling them."""
    workers: int = 0
    """gensim threads; 0 = every core this process may use. Only workers=1 is reproducible
    (threads interleave their updates in whatever order they run)."""
    max_pairs: int | Literal["auto"] | None = "auto"
    """Context pairs the whole fit may train on: 'auto' = pair_budget(interactions), a number =
    that many, None = no bound; see plan_training."""
    pairs_per_interaction: float = 50.0
    """With max_pairs='auto', the fewest pairs per interaction a fit trains on (large data)."""

    def validate(self) -> None:
        super().validate()
        if self.window is not None and self.window < 0:
            raise ConfigError(f"window must be ≥ 0 (0 = whole history), got {self.window}")
        self.check_positive(
            "negative", "epochs", "min_count", "lr", "piece_lr", "pairs_per_interaction"
        )
        self.check_positive("sample", "workers", allow_zero=True)
        if self.max_pairs != "auto":
            self.check_positive("max_pairs")


class Item2Vec(ItemEmbeddingModel):
    """Skip-gram item embeddings trained by gensim; see the module docstring."""

    kind = "item2vec"
    Config = Item2VecConfig

    def _fit(self, dataset: Dataset, validation: Any, run: FitRun) -> None:
        from gensim.models import Word2Vec

        cfg = self.config
        whole = not cfg.window
        ordered = cfg.time_ordered and not whole
        if ordered and dataset.timestamps is None:
            warnings.warn(
                f"{dataset.name} has no timestamps; time_ordered ignored, histories shuffled",
                DataWarning,
                stacklevel=3,
            )
            ordered = False
        histories = _histories(dataset, use_time=ordered)
        lengths = np.fromiter((len(h) for h in histories), np.int64, len(histories))
        budget = cfg.max_pairs
        if budget == "auto":
            budget = pair_budget(int(lengths.sum()), cfg.pairs_per_interaction)
        plan = plan_training(lengths, cfg.window or 0, cfg.epochs, budget)
        log.info("item2vec: %s", plan)
        corpus = _Corpus(histories, plan.pieces, shuffle=not ordered, seed=cfg.seed)
        tracker = _EpochProgress(run.callback, plan.epochs, len(corpus))
        corpus.listener = tracker.read
        w2v = Word2Vec(
            vector_size=cfg.dim,
            window=plan.window,
            shrink_windows=not whole,
            min_count=cfg.min_count,
            sg=1,
            hs=0,
            negative=cfg.negative,
            ns_exponent=cfg.ns_exponent,
            sample=cfg.sample,
            alpha=cfg.piece_lr if plan.cut else cfg.lr,
            min_alpha=cfg.min_lr,
            seed=cfg.seed,
            workers=cfg.workers or available_cores(),
            hashfxn=_stable_hash,
            epochs=plan.epochs,
        )
        vectors = np.zeros((dataset.n_items, cfg.dim), np.float32)
        known = np.zeros(dataset.n_items, bool)
        w2v.build_vocab(corpus_iterable=corpus)
        #: What the fit trained on: epochs, and the most context pairs each one held.
        self.epochs_, self.pairs_per_epoch_ = plan.epochs, plan.pairs_per_epoch
        if len(w2v.wv):
            w2v.train(
                corpus_iterable=corpus,
                total_examples=len(corpus),
                epochs=plan.epochs,
                callbacks=[tracker],
            )
            keys = np.asarray(w2v.wv.index_to_key, dtype=np.int64)
            vectors[keys] = w2v.wv.vectors
            known[keys] = True
        # An item alone in its history never meets a context: its vector is untrained noise.
        paired = [h for h in histories if len(h) > 1]
        known &= np.isin(np.arange(dataset.n_items), np.concatenate(paired) if paired else [])
        self._finish_fit(vectors, known)


def pair_budget(interactions: int, pairs_per_interaction: float = 50.0) -> int:
    """The default ``max_pairs`` for ``N`` interactions: the larger of
    ``pairs_per_interaction · N`` and ``SMALL_DATA_PAIRS · SMALL_DATA / N``.

    Small data needs many passes (ml-100k's validation Recall@20 climbs from 0.23 at 5 whole
    epochs to 0.40 at 50), so below the crossover (600k interactions at 50 per interaction)
    the budget falls only as ``1 / N``; above it a fraction of one epoch does (at 1M, one cut
    epoch at ``piece_lr`` ranks 0.168 validation Recall@20 against 0.143 for a whole epoch at
    ``lr``, for a fifth of its pairs), and the cost grows linearly with the interactions.
    """
    n = max(int(interactions), 1)
    return int(max(pairs_per_interaction * n, SMALL_DATA_PAIRS * SMALL_DATA / n))


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def context_pairs(lengths: np.ndarray, window: int) -> int:
    """Context pairs of one pass over sentences of ``lengths`` with a ``window`` half-width.

    Each position pairs with at most ``window`` neighbours on either side, so the count is at
    most ``2 · window · Σ n_u``: linear in interactions. A window spanning the longest
    history gives every ordered pair, ``Σ n_u (n_u − 1)``.
    """
    n = np.asarray(lengths, dtype=np.int64)
    w = np.clip(n - 1, 0, window)
    return int(np.sum(2 * (w * n - w * (w + 1) // 2)))


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """How a fit spends its pair budget: gensim's ``window``, the ``epochs``, and per history
    the lengths of the pieces it is cut into after each epoch's shuffle."""

    window: int
    epochs: int
    pieces: list[np.ndarray]
    pairs_per_epoch: int

    @property
    def cut(self) -> bool:
        """Whether histories are cut into pieces (the single-epoch fallback)."""
        return any(len(p) > 1 for p in self.pieces)

    def __str__(self) -> str:
        cut = sum(len(p) > 1 for p in self.pieces)
        return (
            f"{self.epochs} epochs × ≤{self.pairs_per_epoch:,} pairs, window {self.window}, "
            f"{cut:,} histories cut into pieces"
        )


def plan_training(
    lengths: np.ndarray, window: int, epochs: int, max_pairs: int | None
) -> TrainingPlan:
    """Epochs and pieces that keep ``epochs × pairs per epoch`` within ``max_pairs``.

    ``window=0`` (whole history): every pair of a history, ``W = Σ n_u (n_u − 1)`` per epoch.
    When ``epochs · W`` exceeds the budget, fewer whole epochs (``max_pairs // W``); when even
    one does, a single epoch over pieces (:func:`piece_lengths` with ``ρ = max_pairs / W``).
    A finite ``window`` pairs each position with at most ``2 · window`` others and only trims
    the epochs. At least one epoch always runs.
    """
    n = np.asarray(lengths, dtype=np.int64)
    whole = [np.array([m]) for m in n]
    if window:
        per_epoch = context_pairs(n, window)
        return TrainingPlan(window, _epochs(epochs, per_epoch, max_pairs), whole, per_epoch)
    every = int(np.sum(n * (n - 1)))
    longest = int(n.max(initial=1))
    if max_pairs is None or every <= max_pairs:
        return TrainingPlan(max(longest, 1), _epochs(epochs, every, max_pairs), whole, every)
    pieces = piece_lengths(n, max_pairs / every)
    per_epoch = sum(int(np.sum(p * (p - 1))) for p in pieces)
    return TrainingPlan(int(max(map(max, pieces))), 1, pieces, per_epoch)


def _epochs(epochs: int, per_epoch: int, max_pairs: int | None) -> int:
    if max_pairs is None or per_epoch == 0:
        return epochs
    return max(1, min(epochs, max_pairs // per_epoch))


def piece_lengths(lengths: np.ndarray, rho: float) -> list[np.ndarray]:
    """Per history, the lengths of near-equal pieces of about ``ρ (n_u − 1) + 1`` items.

    Each item then meets about ``ρ (n_u − 1)`` random co-watched items per epoch instead of all
    ``n_u − 1`` (at least one), so one epoch holds at most ``ρ Σ n_u (n_u − 1) + Σ n_u`` pairs
    and every user keeps the whole-history weight ``∝ n_u²``.
    """
    n = np.asarray(lengths, dtype=np.int64)
    size = np.maximum(2, np.floor(rho * (n - 1)).astype(np.int64) + 1)
    counts = np.maximum(1, np.ceil(n / size).astype(np.int64))
    return [
        np.diff(np.linspace(0, m, k + 1).round().astype(np.int64))
        for m, k in zip(n, counts, strict=True)
    ]


def _histories(dataset: Dataset, use_time: bool) -> list[list[int]]:
    """One list of item indices per user with any positives (time order when ``use_time``)."""
    users, items = ordered_entries(dataset.interactions, dataset.timestamps if use_time else None)
    cuts = np.flatnonzero(np.diff(users)) + 1
    out = []
    for history in np.split(items, cuts):
        for start in range(0, len(history), MAX_SENTENCE):
            out.append(history[start : start + MAX_SENTENCE].tolist())
    return [h for h in out if h]


class _Corpus:
    """Re-iterable sentences; each pass (vocabulary scan, then one per epoch) reshuffles every
    history from a stream seeded by ``(seed, pass)``, so runs repeat exactly, and cuts it into
    pieces of the given lengths (see :func:`piece_lengths`). ``listener`` hears how many
    sentences of the pass were read, every 1 % of them."""

    def __init__(
        self, histories: list[list[int]], pieces: list[np.ndarray], shuffle: bool, seed: int
    ) -> None:
        self.histories = histories
        self.pieces = pieces
        self.shuffle = shuffle
        self.seed = seed
        self.passes = 0
        self.listener: Callable[[int], None] | None = None

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.passes])
        self.passes += 1
        every, read = max(len(self) // 100, 1), 0
        for history, sizes in zip(self.histories, self.pieces, strict=True):
            if self.shuffle:
                history = [history[k] for k in rng.permutation(len(history))]
            start = 0
            for size in sizes:
                yield history[start : start + size]
                start += size
                read += 1
                if self.listener is not None and read % every == 0:
                    self.listener(read)

    def __len__(self) -> int:
        return sum(len(sizes) for sizes in self.pieces)


class _EpochProgress:
    """gensim callback (``on_epoch_begin`` / ``on_epoch_end``) plus the corpus listener: one
    :class:`StageClock` per epoch, stepped by sentences read, so the ETA follows the epoch's
    real pace (gensim's workers trail the reader by a few thousand words at most)."""

    def __init__(self, callback: ProgressCallback | None, epochs: int, sentences: int) -> None:
        self.callback, self.epochs, self.sentences = callback, epochs, sentences
        self.clock: StageClock | None = None
        self.epoch = 0

    def read(self, count: int) -> None:
        if self.clock is not None:
            self.clock.step(count)

    def on_epoch_begin(self, _model: Any) -> None:
        self.epoch += 1
        self.clock = StageClock(self.callback, "epoch", self.epoch, self.epochs, self.sentences)

    def on_epoch_end(self, _model: Any) -> None:
        if self.clock is not None:
            self.clock.finish()
        self.clock = None

    def on_train_begin(self, _model: Any) -> None:
        pass

    def on_train_end(self, _model: Any) -> None:
        pass


def _stable_hash(text: str) -> int:
    """Process-independent stand-in for ``hash`` (gensim seeds some vectors by hashing)."""
    return zlib.crc32(str(text).encode())
