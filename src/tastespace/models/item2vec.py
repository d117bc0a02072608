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

Cost: the whole-history window trains on every pair, ``Σ_u n_u²`` per epoch, so users with
thousands of items dominate; on large data a finite ``window`` (e.g. 20, shuffled) is the
cheap alternative.

Determinism: gensim is only reproducible with ``workers=1`` (the default); vector
initialisation, negative draws and the shuffles are then all seeded by ``seed``, and a
process-independent ``hashfxn`` replaces Python's salted ``hash``. Items that never share a
history with another item (or have fewer than ``min_count`` interactions) get zero vectors.

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
import warnings
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from tastespace.data.dataset import Dataset
from tastespace.errors import ConfigError, DataWarning
from tastespace.models._cooccurrence_common import (
    ItemEmbeddingConfig,
    ItemEmbeddingModel,
    ordered_entries,
)

__all__ = ["Item2Vec", "Item2VecConfig"]

#: gensim silently truncates longer sentences; longer histories are cut into pieces this long.
MAX_SENTENCE = 10_000


@dataclasses.dataclass(frozen=True)
class Item2VecConfig(ItemEmbeddingConfig):
    """item2vec options (gensim names where they exist).

    ``window``: context half-width in positions, ``0`` or ``None`` = whole history;
    ``negative``: negative samples per pair, drawn ∝ ``count^ns_exponent`` (0 = uniform; below
    0 rare items are drawn as negatives more often, which pushes rankings towards popular
    items); ``sample``: down-sampling threshold for frequent items (0 = off);
    ``lr`` / ``min_lr``: linearly decayed learning rate; ``time_ordered``: with a finite
    window, order histories by timestamp; ``workers``: gensim threads (> 1 is faster but not
    reproducible).
    """

    center: bool = True
    window: int | None = 0
    negative: int = 5
    ns_exponent: float = 0.0
    sample: float = 1e-3
    epochs: int = 50
    lr: float = 0.025
    min_lr: float = 1e-4
    min_count: int = 1
    time_ordered: bool = False
    workers: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.window is not None and self.window < 0:
            raise ConfigError(f"window must be ≥ 0 (0 = whole history), got {self.window}")
        self.check_positive("negative", "epochs", "min_count", "workers", "lr")
        self.check_positive("sample", allow_zero=True)


class Item2Vec(ItemEmbeddingModel):
    """Skip-gram item embeddings trained by gensim; see the module docstring."""

    kind = "item2vec"
    Config = Item2VecConfig

    def _fit(self, dataset: Dataset, validation: Any) -> None:
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
        longest = max((len(h) for h in histories), default=1)
        corpus = _Corpus(histories, shuffle=not ordered, seed=cfg.seed)
        w2v = Word2Vec(
            vector_size=cfg.dim,
            window=max(longest, 1) if whole else int(cfg.window or 1),
            shrink_windows=not whole,
            min_count=cfg.min_count,
            sg=1,
            hs=0,
            negative=cfg.negative,
            ns_exponent=cfg.ns_exponent,
            sample=cfg.sample,
            alpha=cfg.lr,
            min_alpha=cfg.min_lr,
            seed=cfg.seed,
            workers=cfg.workers,
            hashfxn=_stable_hash,
            epochs=cfg.epochs,
        )
        vectors = np.zeros((dataset.n_items, cfg.dim), np.float32)
        known = np.zeros(dataset.n_items, bool)
        w2v.build_vocab(corpus_iterable=corpus)
        if len(w2v.wv):
            w2v.train(corpus_iterable=corpus, total_examples=len(histories), epochs=cfg.epochs)
            keys = np.asarray(w2v.wv.index_to_key, dtype=np.int64)
            vectors[keys] = w2v.wv.vectors
            known[keys] = True
        # An item alone in its history never meets a context: its vector is untrained noise.
        paired = [h for h in histories if len(h) > 1]
        known &= np.isin(np.arange(dataset.n_items), np.concatenate(paired) if paired else [])
        self._finish_fit(vectors, known)


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
    history from a stream seeded by ``(seed, pass)``, so runs repeat exactly."""

    def __init__(self, histories: list[list[int]], shuffle: bool, seed: int) -> None:
        self.histories = histories
        self.shuffle = shuffle
        self.seed = seed
        self.passes = 0

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.passes])
        self.passes += 1
        for history in self.histories:
            yield [history[k] for k in rng.permutation(len(history))] if self.shuffle else history

    def __len__(self) -> int:
        return len(self.histories)


def _stable_hash(text: str) -> int:
    """Process-independent stand-in for ``hash`` (gensim seeds some vectors by hashing)."""
    return zlib.crc32(str(text).encode())
