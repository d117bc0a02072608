"""Honest evaluation by default: fit on a split, keep its recipe, score exactly its test users.

``fit_heldout`` makes the split, fits on its train part (validation users steer early
stopping), and the model records the split and the data source in its bundle. Later,
``evaluate_bundle`` rebuilds the same split from that record — same data, loader options,
protocol and seed — checks the model really was trained on its train part (fingerprint), and
scores the held-out users. A bundle fitted on every user is scored too, but says so
(``trained_on="all-users"``: those figures are optimistic).

Protocols: ``strong`` (held-out users, 80/20 fold-in; Liang et al. 2018), ``temporal`` (each
user's last ``n`` items), ``time`` (one global cutoff: a date, unix seconds or a fraction).

Example
-------
>>> from tastespace.data import load_dataset
>>> from tastespace.models.baselines import EASE
>>> run = fit_heldout(EASE(l2=50.0), load_dataset("synthetic:tiny"), holdout=30, seed=1)
>>> result = evaluate_bundle(run.model)        # data and split come from the model's record
>>> result.trained_on, int(result.metrics["users"]) <= 30
('train-split', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from tastespace.data.dataset import Dataset
from tastespace.data.splits import (
    StrongSplit,
    TemporalSplit,
    strong_generalization,
    temporal_cutoff,
    temporal_leave_last_out,
)
from tastespace.errors import ConfigError, DataError
from tastespace.evaluate.protocol import DEFAULT_CUTOFFS, evaluate_model
from tastespace.models.base import Recommender

Protocol = Literal["strong", "temporal", "time"]
PROTOCOLS = ("strong", "temporal", "time")
DEFAULT_HOLDOUT = 0.1
MIN_TEMPORAL_HISTORY = 5


@dataclass
class HeldOutRun:
    """A model fitted on a split's train part, and the split (its test users unseen)."""

    model: Recommender
    split: StrongSplit | TemporalSplit

    def evaluate(self, cutoffs: Sequence[int] = DEFAULT_CUTOFFS) -> dict[str, float]:
        """Recall / NDCG / … on the split's test users (fold-in only)."""
        return evaluate_model(self.model, self.split.test, cutoffs, _genres(self.split.train))


@dataclass
class Evaluation:
    """What ``evaluate_bundle`` measured and how: the split's recipe and what the model saw."""

    metrics: dict[str, float]
    dataset: str
    split: dict[str, Any]
    trained_on: Literal["train-split", "all-users", "unknown"]
    notes: list[str] = field(default_factory=list)


def make_split(
    dataset: Dataset,
    protocol: str = "strong",
    *,
    holdout: int | float = DEFAULT_HOLDOUT,
    seed: int = 0,
    last_n: int = 1,
    cutoff: str | float | None = None,
) -> StrongSplit | TemporalSplit:
    """The split one protocol makes; its recipe lands in ``split.train.provenance["split"]``."""
    if protocol == "strong":
        return strong_generalization(dataset, n_heldout=holdout, seed=seed)
    if protocol == "temporal":
        history = max(MIN_TEMPORAL_HISTORY, last_n + 1)
        return temporal_leave_last_out(dataset, n=last_n, min_history=history)
    if protocol == "time":
        if cutoff is None:
            raise ConfigError(
                "the time protocol needs a cutoff: a date, unix seconds or a fraction"
            )
        return temporal_cutoff(dataset, cutoff=cutoff)
    raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")


def fit_heldout(
    model: Recommender,
    dataset: Dataset,
    *,
    protocol: str = "strong",
    holdout: int | float = DEFAULT_HOLDOUT,
    seed: int = 0,
    last_n: int = 1,
    cutoff: str | float | None = None,
    **fit_options: Any,
) -> HeldOutRun:
    """Split ``dataset``, fit ``model`` on the train part; the model records the split.

    ``holdout``: users in validation and again in test (strong protocol), a count or a fraction;
    ``fit_options`` (``callback``, ``training``) go to ``model.fit``.
    """
    split = make_split(dataset, protocol, holdout=holdout, seed=seed, last_n=last_n, cutoff=cutoff)
    validation = split.validation if isinstance(split, StrongSplit) else None
    model.fit(split.train, validation=validation, **fit_options)
    return HeldOutRun(model, split)


def recipe(model: Recommender, **overrides: Any) -> dict[str, Any]:
    """The split to rebuild: the model's record, with any explicitly given value replacing
    its counterpart (``holdout``, ``seed``, ``last_n``, ``cutoff``, ``protocol``)."""
    recorded = dict(model.split_ or {})
    given = {key: value for key, value in overrides.items() if value is not None}
    protocol = given.get("protocol", recorded.get("protocol", "strong"))
    if protocol != recorded.get("protocol"):
        recorded = {}  # another protocol: the record's parameters don't apply
    return {
        "protocol": protocol,
        "holdout": given.get("holdout", recorded.get("n_heldout", DEFAULT_HOLDOUT)),
        "seed": given.get("seed", recorded.get("seed", 0)),
        "last_n": given.get("last_n", recorded.get("n", 1)),
        "cutoff": given.get("cutoff", recorded.get("cutoff")),
    }


def evaluate_bundle(
    model: Recommender,
    dataset: Dataset | None = None,
    *,
    cutoffs: Sequence[int] = DEFAULT_CUTOFFS,
    **overrides: Any,
) -> Evaluation:
    """Score ``model`` on the held-out users of the split it was fitted on.

    Without ``dataset`` the data is loaded again from the model's record (``fit`` /
    ``load_dataset`` write it); ``overrides`` (``protocol``, ``holdout``, ``seed``, ``last_n``,
    ``cutoff``) replace recorded split parameters.
    """
    dataset, split, plan = rebuild_split(model, dataset, **overrides)
    trained_on, notes = _trained_on(model, split, dataset)
    metrics = evaluate_model(model, split.test, cutoffs, _genres(dataset))
    return Evaluation(metrics, dataset.name, plan, trained_on, notes)


def rebuild_split(
    model: Recommender, dataset: Dataset | None = None, **overrides: Any
) -> tuple[Dataset, StrongSplit | TemporalSplit, dict[str, Any]]:
    """The data (reloaded from the model's record when None), the split the model was fitted
    on (:func:`recipe`, with ``overrides``), and that recipe — what every held-out report of
    one bundle (evaluate, report, compare) must share."""
    from tastespace.data.load import reload_dataset

    if dataset is None:
        if model.data_ is None:
            raise DataError(
                "the bundle does not record its data source (fitted before tastespace recorded "
                "it, or on data built by hand); pass the data explicitly",
                options=("dataset",),
            )
        dataset = reload_dataset(model.data_)
    if model.item_ids_ != dataset.item_ids:
        raise DataError(
            f"the model was fitted on a {model.n_items:,}-item catalog that differs from "
            f"{dataset.name}'s {dataset.n_items:,} items; evaluate on the data it was fitted on, "
            "with the same item_features / item_col",
            options=("item_features", "item_col"),
        )
    plan = recipe(model, **overrides)
    return dataset, make_split(dataset, **plan), plan


def _trained_on(
    model: Recommender, split: StrongSplit | TemporalSplit, dataset: Dataset
) -> tuple[Literal["train-split", "all-users", "unknown"], list[str]]:
    if model.fingerprint_ == split.train.fingerprint():
        return "train-split", []
    if model.fingerprint_ == dataset.fingerprint():
        return "all-users", [
            "this bundle was fitted on every user of this data, the held-out ones included, so "
            "these figures are optimistic; fit with holdout=N (fit_heldout) and evaluate that "
            "bundle"
        ]
    return "unknown", [
        "the bundle was fitted on other interactions than this split's train part (different "
        "data, min_rating, protocol, seed or n_heldout?)"
    ]


def _genres(dataset: Dataset) -> Any:
    bag = dataset.items.bags.get("genres")
    return None if bag is None else bag.to_csr()
