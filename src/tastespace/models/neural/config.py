"""Hyper-parameters of the neural two-tower model (defaults chosen with ``bench/neural.py``)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

from tastespace.errors import ConfigError
from tastespace.models.config import ModelConfig

SPARSE_TABLES = ("ids", "history", "users")
"""The embedding tables that can train on sparse gradients: item IDs, history, free users."""
SPARSE_MAX_SHARE = 0.05
"""``sparse_gradients="auto"`` puts a table on sparse gradients when a step reads at most this
share of its rows: measured (bench/neural_scale.py tables), the catch-up step costs about five
times dense Adam per row it updates, so it breaks even near 3–10 % of the table."""


@dataclasses.dataclass(frozen=True)
class NeuralConfig(ModelConfig):
    """Item tower, user tower, fold-in, loss and training schedule of the two-tower model.

    Shapes: the user tower maps a history bag through ``hidden`` units to ``dim``; each warm
    item has an ID row (``dim`` + 1: vector, bias; ``dim`` under ``item_tower="concat"``); the
    content path concatenates a ``genre_dim`` genre bag, ``bag_dim`` per other categorical and
    the numeric block, then an MLP of width ``item_hidden`` to ``dim`` + 1, and gives items
    unseen in training their vectors; ``item_tower`` says how it meets the ID row.
    How each default was measured: docs/neural.md.
    """

    #: Run options of bundles written before they moved to ``TrainingOptions``, and the
    #: candidate fold-in's uniform tail (replaced by the pseudo-item).
    RETIRED: ClassVar[frozenset[str]] = frozenset(
        {"device", "threads", "checkpoint_dir", "resume", "fold_in_tail"}
    )

    dim: int = 100
    """Vector size of users and items (100 beat 200 on validation users)."""
    hidden: int = 600
    """Width of the user tower's hidden layer."""
    genre_dim: int = 8
    """Size of the genre embedding (2 makes the learned genre plane plottable)."""
    bag_dim: int = 8
    """Embedding size of every other categorical bag (tags, user features)."""
    item_hidden: int = 256
    """Width of the content path's MLP (features → item vector)."""
    item_tower: Literal["free", "concat", "sum"] = "free"
    """How a warm item's ID and features combine: ``free`` ID rows (features feed only cold
    items), ``concat`` (the ID embedding concatenated with the features in one MLP, the seed's
    design) or ``sum`` (ID row + the features' MLP vector, LightFM-style). Items without an ID
    row take the content path under all three. Without item features ``concat`` and ``sum``
    reduce to an ID embedding (a ConfigWarning says so). Measured: docs/benchmarks.md."""
    pooling: Literal["sqrtn", "mean", "attention"] = "mean"
    """How the user tower pools the history bag (mean beat sqrt-n on validation users)."""
    tied_history: bool = True
    """Also feed each history item's own vector and bias into the user tower."""
    history_dropout: float = 0.5
    """Share of history items dropped per training step, in [0, 1)."""
    cosine_temperature: float | None = None
    """Score by cosine / temperature instead of the dot product (needs fold_in="encoder")."""
    loss: Literal["auto", "full", "sampled"] = "auto"
    """Softmax over the full catalog, sampled softmax with log-Q correction, or auto (full up
    to full_softmax_max_items)."""
    full_softmax_max_items: int = 10_000
    """Largest catalog that auto trains with the full softmax; above it a step's item tower
    runs only for the batch's positives and the sampled negatives. Measured break-even: a full
    step costs 0.73× a sampled one at 5k items, 1.06× at 10k, 2.2× at 20k (ml-latest-small's
    9.7k items stay exact; docs/benchmarks-scale.md)."""
    num_negatives: int = 2048
    """Negatives per step of the sampled softmax, drawn ∝ count^0.75."""
    epochs: int = 300
    """Ceiling on epochs; early stopping on validation users usually ends the fit sooner."""
    batch_size: int = 256
    """Training users per optimiser step."""
    lr: float = 0.01
    """Adam learning rate."""
    weight_decay: float = 1e-6
    """Adam's L2 weight decay on the network's weights."""
    patience: int | None = None
    """Epochs without a better validation score before stopping; None waits about 60 optimiser
    steps (1 to 30 epochs)."""
    ema_decay: float | None = None
    """Keep and evaluate an exponential moving average of the weights with this decay; helps
    the encoder path's noisy curve (ml-100k Recall@20 0.363 → 0.379), not the solve path."""
    validation_users: float = 0.05
    """Share of training users set aside for early stopping when no validation set is given."""
    validation_max_users: int | None = 1000
    """At most this many validation users are solved per epoch (a seeded sample), so early
    stopping does not grow with the user base (10k users took 87 s an epoch at 20M)."""
    sparse_gradients: Literal["auto", "on", "off"] = "auto"
    """ID, history and free-user tables on sparse gradients, stepped by catch-up Adam (dense
    Adam's arithmetic at the cost of the rows a step reads; optim.py): on, off, or auto per
    table, for the tables a step reads at most SPARSE_MAX_SHARE of (the free users of 20k+
    users; MovieLens sets stay dense)."""
    fold_in: Literal["solve", "encoder"] = "solve"
    """How a user becomes a vector: solve their likelihood with the items fixed, started from
    the tower's prediction, or take the user tower's output as it is (faster, less accurate:
    ml-latest-small Recall@20 0.297 vs 0.309)."""
    vector_l2: float = 2.0
    """L2 on the free vectors: vector_l2 · (mean ‖u‖² + Σ‖v‖² / n_users) (2 beat 3)."""
    fold_in_steps: int = 30
    """Adam steps of the solve (30 from the tower's start land nearly as close as 50 from
    zero)."""
    fold_in_lr: float = 0.05
    """Adam learning rate of the solve."""
    fold_in_candidates: int = 512
    """Above ``fold_in_exact_max_items`` items: solve each user over their history, the
    ``fold_in_candidates`` items their vector ranks highest and one pseudo-item standing for
    the rest (re-anchored by an exact pass ``fold_in_rounds`` times, damped quasi-Newton steps in
    between), reading the item table twice instead of 60 times. 0: always the exact solve (30 Adam
    steps over the whole catalog)."""
    fold_in_exact_max_items: int = 10_000
    """Largest catalog folded in by the exact solve (ml-latest-small's 9.7k items stay exact;
    at 40k items the candidate solve is several times faster: docs/benchmarks-index.md)."""
    fold_in_rounds: int = 2
    """Rounds of the candidate solve (each re-picks the candidates at the vectors reached)."""
    fold_in_retrieval: Literal["clusters", "passes"] = "clusters"
    """How a round of the candidate solve finds its candidates: read the k-means clusters of
    the catalog the user scores highest (8 items read per candidate; retrieval.py), or one
    exact pass over the whole catalog (the cost then grows with it). Measured in
    docs/benchmarks-index.md."""
    use_item_features: bool = True
    """Feed item features (genres, tags, numerics) into the content path."""
    use_user_features: bool = False
    """Feed user features into the user tower; off because fold-in users usually arrive with
    a history only, and users without features then score worse."""

    def validate(self) -> None:
        self.check_positive("dim", "hidden", "genre_dim", "bag_dim", "item_hidden")
        self.check_positive("epochs", "batch_size", "lr", "num_negatives", "full_softmax_max_items")
        self.check_positive("patience", "cosine_temperature", "validation_max_users")
        self.check_positive("weight_decay", "vector_l2", allow_zero=True)
        self.check_positive("fold_in_steps", "fold_in_lr", "fold_in_rounds")
        self.check_positive("fold_in_candidates", "fold_in_exact_max_items", allow_zero=True)
        self.check_fraction("history_dropout", "ema_decay", "validation_users")
        if self.fold_in == "solve" and self.cosine_temperature is not None:
            raise ConfigError(
                "NeuralConfig.fold_in='solve' needs dot-product scores (its L2 on the user vector"
                " means nothing under cosine); with cosine_temperature use fold_in='encoder'"
            )
