"""Hyper-parameters of the neural two-tower model (defaults chosen with ``bench/neural.py``)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from tastespace.errors import ConfigError
from tastespace.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class NeuralConfig(ModelConfig):
    """Item tower, user tower, fold-in, loss and training options.

    Shapes: the user tower maps a history bag through ``hidden`` units to ``dim``; each warm
    item has a free ``dim`` + 1 ID row (vector, bias); the content path concatenates a
    ``genre_dim`` genre bag, ``bag_dim`` per other categorical and the numeric block, then an MLP
    of width ``item_hidden`` to ``dim`` + 1, and gives items unseen in training their vectors.

    ``fold_in="solve"`` (default) trains a free vector per training user with the item rows
    under ``vector_l2`` · (mean ‖u‖² + Σ‖v‖² / n_users), and folds a new user in by
    ``fold_in_steps`` Adam steps (rate ``fold_in_lr``) on the same objective with the items
    fixed, started from the user tower's prediction. ``fold_in="encoder"`` is the Mult-DAE
    path: the user tower's output is the vector, nothing is solved (faster, less accurate).
    Over six splits (docs/neural.md, sixth round) solve with ``vector_l2=2``, ``lr=0.01`` and no
    weight average gives ml-latest-small Recall@20 / NDCG@100 0.309 / 0.346 against the
    encoder's 0.297 / 0.343 (EASE 0.314 / 0.344); ``vector_l2`` 2 beat 3 on validation users.
    30 solve steps from the tower's start land nearly as close as 50 from zero.

    Earlier sweeps (docs/neural.md): mean pooling and ``dim=100`` beat sqrt-n pooling and
    ``dim=200``. ``tied_history`` also feeds each history item's vector into the user tower.
    ``ema_decay`` evaluates and keeps an exponential moving average of the weights, which the
    encoder path's noisy early-stopping curve needs (ml-100k 0.363 → 0.379 at ``lr=3e-3``);
    the solve path does better without it. User features are off by default because fold-in
    users usually arrive with a history only; trained with them, unknown-feature users score
    worse (and the solve refines the vector from the history alone). ``patience=None`` waits
    about 60 optimiser steps (3 to 30 epochs) for a better validation score. ``epochs`` is only
    a ceiling for early stopping. ``checkpoint_dir`` writes ``last.pt`` after every epoch;
    ``resume=True`` continues from it, refused (``CheckpointError``) unless the data and every
    option but ``epochs``, ``device``, ``threads`` match (:mod:`.checkpoint`).
    """

    #: Run options of bundles written before they moved to ``TrainingOptions``.
    RETIRED: ClassVar[frozenset[str]] = frozenset({"device", "threads", "checkpoint_dir", "resume"})

    dim: int = 100
    hidden: int = 600
    genre_dim: int = 8
    bag_dim: int = 8
    item_hidden: int = 256
    pooling: Literal["sqrtn", "mean", "attention"] = "mean"
    tied_history: bool = True
    history_dropout: float = 0.5
    cosine_temperature: float | None = None
    loss: Literal["auto", "full", "sampled"] = "auto"
    full_softmax_max_items: int = 50_000
    num_negatives: int = 2048
    epochs: int = 300
    batch_size: int = 256
    lr: float = 0.01
    weight_decay: float = 1e-6
    patience: int | None = None
    ema_decay: float | None = None
    validation_users: float = 0.05
    fold_in: Literal["solve", "encoder"] = "solve"
    vector_l2: float = 2.0
    fold_in_steps: int = 30
    fold_in_lr: float = 0.05
    use_item_features: bool = True
    use_user_features: bool = False

    def validate(self) -> None:
        self.check_positive("dim", "hidden", "genre_dim", "bag_dim", "item_hidden")
        self.check_positive("epochs", "batch_size", "lr", "num_negatives", "full_softmax_max_items")
        self.check_positive("patience", "cosine_temperature")
        self.check_positive("weight_decay", "vector_l2", allow_zero=True)
        self.check_positive("fold_in_steps", "fold_in_lr")
        self.check_fraction("history_dropout", "ema_decay", "validation_users")
        if self.fold_in == "solve" and self.cosine_temperature is not None:
            raise ConfigError(
                "NeuralConfig.fold_in='solve' needs dot-product scores (its L2 on the user vector"
                " means nothing under cosine); with cosine_temperature use fold_in='encoder'"
            )
