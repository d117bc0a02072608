"""Hyper-parameters of the neural two-tower model (defaults chosen with ``bench/neural.py``)."""

from __future__ import annotations

import dataclasses
from typing import Literal

from tastespace.models.config import ModelConfig


@dataclasses.dataclass(frozen=True)
class NeuralConfig(ModelConfig):
    """Item tower, user tower, loss and training options.

    Shapes: the user tower maps a history bag through ``hidden`` units to ``dim``; the item tower
    concatenates an ``id_dim`` ID embedding, a ``genre_dim`` genre bag, ``bag_dim`` per other
    categorical and the numeric block, then an MLP of width ``item_hidden`` to ``dim`` (+1 bias).

    Defaults come from sweeps on ml-100k and ml-latest-small (3 seeds each; docs/neural.md).
    Mean pooling and ``dim=100`` beat sqrt-n pooling and ``dim=200``. ``tied_history`` also
    feeds each history item's item-tower output (features + ID) into the user tower, so rarely
    watched items still carry their genres (ml-latest-small test Recall@20 0.287 → 0.296).
    ``ema_decay`` evaluates and keeps an exponential moving average of the weights, which the
    noisy early-stopping curve of a small set needs (ml-100k 0.363 → 0.379). ``id_dropout``
    hides this share of item IDs per batch so the feature path learns cold start; 0.15 cost
    warm items 3 % on ml-latest-small, 0.05 keeps cold start. User features are off by default
    because fold-in users usually arrive with a history only; trained with them, unknown-feature
    users score worse. ``patience=None`` waits about 60 optimiser steps (3 to 30 epochs) for a
    better validation score: 20 epochs on ml-100k, 30 on ml-latest-small, 3 on a 1M-interaction
    set that peaks in its third epoch. ``epochs`` is only a ceiling for early stopping: 300
    because one ml-latest-small split peaked at epoch 227, which a ceiling of 200 cut short.
    """

    dim: int = 100
    hidden: int = 600
    id_dim: int = 64
    genre_dim: int = 8
    bag_dim: int = 8
    item_hidden: int = 256
    pooling: Literal["sqrtn", "mean", "attention"] = "mean"
    tied_history: bool = True
    history_dropout: float = 0.5
    id_dropout: float = 0.05
    cosine_temperature: float | None = None
    loss: Literal["auto", "full", "sampled"] = "auto"
    full_softmax_max_items: int = 50_000
    num_negatives: int = 2048
    epochs: int = 300
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-6
    patience: int | None = None
    ema_decay: float | None = 0.99
    validation_users: float = 0.05
    use_item_features: bool = True
    use_user_features: bool = False
    device: str = "cpu"
    threads: int | None = None
    checkpoint_dir: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        self.check_positive("dim", "hidden", "id_dim", "genre_dim", "bag_dim", "item_hidden")
        self.check_positive("epochs", "batch_size", "lr", "num_negatives", "full_softmax_max_items")
        self.check_positive("patience", "cosine_temperature")
        self.check_positive("weight_decay", allow_zero=True)
        self.check_fraction("history_dropout", "id_dropout", "ema_decay", "validation_users")
