"""Hyper-parameter search with Optuna on validation users, test metrics reported once.

The protocol is the leaderboard's strong-generalisation split: every trial trains on the train
users (validation users passed to ``fit`` for early stopping), is scored on the validation users'
Recall@20, and only the winning configuration is ever scored on the test users. Choosing on test
users, or looking at test scores per trial, would make the reported figure optimistic.

Search spaces are data, one per model kind (:data:`SEARCH_SPACES`), so the CLI, tests and docs
read the same definition. The TPE sampler is seeded, so a run with the same seed and trial count
proposes the same configurations.

Example
-------
>>> from tastespace.data import load_dataset
>>> result = tune_model("ease", load_dataset("synthetic:tiny"), trials=3, n_heldout=30)
>>> sorted(result.best_params)
['l2']
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from tastespace.data.dataset import Dataset
from tastespace.data.splits import StrongSplit, strong_generalization
from tastespace.errors import ConfigError, TastespaceError
from tastespace.evaluate.leaderboard import SELECTION_METRIC, fit_measured, validation_score
from tastespace.evaluate.protocol import DEFAULT_CUTOFFS, evaluate_model
from tastespace.evaluate.temporal import genre_matrix

log = logging.getLogger(__name__)

DEFAULT_TRIALS = 20

#: ``progress(trial number, options, validation score or None when the trial failed)``.
TrialCallback = Callable[[int, dict[str, Any], float | None], None]


@dataclasses.dataclass(frozen=True)
class FloatRange:
    """A float drawn from ``[low, high]``, on a log scale when ``log``."""

    low: float
    high: float
    log: bool = False


@dataclasses.dataclass(frozen=True)
class IntRange:
    """An int drawn from ``[low, high]`` in ``step``s (or on a log scale)."""

    low: int
    high: int
    step: int = 1
    log: bool = False


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of a few values (ints, floats, strings, bools or None)."""

    values: tuple[Any, ...]


Param = FloatRange | IntRange | Choice

#: kind → option → range. Ranges bracket each model's default and the values the literature
#: tunes (EASE: Steck 2019; item2vec: Caselles-Dupré et al. 2018; Mult-DAE/VAE: Liang et al.
#: 2018); popularity has nothing to tune.
SEARCH_SPACES: dict[str, dict[str, Param]] = {
    "ease": {"l2": FloatRange(10.0, 5000.0, log=True)},
    "neural": {
        "dim": Choice((50, 100, 200)),
        "hidden": Choice((300, 600, 1000)),
        "history_dropout": FloatRange(0.1, 0.7),
        "lr": FloatRange(3e-3, 3e-2, log=True),
        "weight_decay": FloatRange(1e-8, 1e-4, log=True),
        "ema_decay": Choice((None, 0.97, 0.99, 0.995)),
        "vector_l2": FloatRange(0.5, 8.0, log=True),
    },
    "item2vec": {
        "dim": Choice((32, 64, 128)),
        "negative": IntRange(3, 20),
        "ns_exponent": FloatRange(-1.0, 1.0),
        "sample": FloatRange(1e-5, 1e-2, log=True),
        "epochs": IntRange(10, 100, step=10),
        "lr": FloatRange(0.005, 0.1, log=True),
        "window": Choice((0, 5, 20)),
        "center": Choice((True, False)),
    },
    "glove": {
        "dim": Choice((32, 64, 128)),
        "x_max": FloatRange(5.0, 200.0, log=True),
        "alpha": FloatRange(0.5, 1.0),
        "epochs": IntRange(5, 50, step=5),
        "lr": FloatRange(0.01, 0.2, log=True),
    },
    "ppmi-svd": {
        "dim": Choice((32, 64, 128, 256)),
        "smoothing": FloatRange(0.5, 1.0),
        "shift": FloatRange(1.0, 10.0, log=True),
        "eigen_power": FloatRange(0.0, 1.0),
    },
    "als": {
        "factors": Choice((32, 64, 128, 256)),
        "regularization": FloatRange(1.0, 300.0, log=True),
        "alpha": FloatRange(0.5, 50.0, log=True),
        "iterations": IntRange(10, 60, step=10),
    },
    "bpr": {
        "factors": Choice((32, 64, 128, 256)),
        "learning_rate": FloatRange(1e-3, 0.1, log=True),
        "regularization": FloatRange(1e-4, 0.1, log=True),
        "iterations": IntRange(15, 150, step=15),
        "fold_in_l2": FloatRange(0.003, 0.3, log=True),
    },
}


def search_space(kind: str) -> dict[str, Param]:
    """The space for ``kind``; a :class:`ConfigError` naming the tunable kinds otherwise."""
    if kind not in SEARCH_SPACES:
        from tastespace.models.registry import MODELS

        reason = "has no hyper-parameters to tune" if kind in MODELS else "is not a model kind"
        raise ConfigError(f"{kind!r} {reason}; tunable kinds: {', '.join(sorted(SEARCH_SPACES))}")
    return SEARCH_SPACES[kind]


def check_space(
    kind: str, space: Mapping[str, Param], fixed: Mapping[str, Any] | None = None
) -> None:
    """Every searched option must exist on the model's config and not also be fixed."""
    from tastespace.models.registry import model_class

    config = model_class(kind).Config()
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(space) - fields)
    if unknown:
        raise ConfigError(f"search space for {kind!r} names unknown option(s) {unknown}")
    clash = sorted(set(space) & set(fixed or {}))
    if clash:
        raise ConfigError(f"option(s) {clash} are both fixed and searched; drop one")


def suggest(trial: Any, space: Mapping[str, Param]) -> dict[str, Any]:
    """Draw one configuration from ``space`` with an Optuna trial."""
    params: dict[str, Any] = {}
    for name, spec in space.items():
        if isinstance(spec, FloatRange):
            params[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
        elif isinstance(spec, IntRange):
            step = 1 if spec.log else spec.step
            params[name] = trial.suggest_int(name, spec.low, spec.high, step=step, log=spec.log)
        else:
            params[name] = trial.suggest_categorical(name, list(spec.values))
    return params


@dataclasses.dataclass
class TuneResult:
    """The winner: its options, validation score, test metrics (computed once), every trial."""

    kind: str
    best_params: dict[str, Any]
    best_validation: float
    test_metrics: dict[str, float]
    trials: list[dict[str, Any]]
    seconds: float
    seed: int
    model: Any = dataclasses.field(repr=False, default=None)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "seed": self.seed,
            "best_params": self.best_params,
            f"validation_{SELECTION_METRIC}": self.best_validation,
            "test": self.test_metrics,
            "trials": self.trials,
            "seconds": self.seconds,
        }


def tune_model(
    kind: str,
    dataset: Dataset,
    *,
    trials: int | None = None,
    minutes: float | None = None,
    seed: int = 0,
    n_heldout: int | float = 0.1,
    min_rating: float | None = None,
    fixed: Mapping[str, Any] | None = None,
    space: Mapping[str, Param] | None = None,
    progress: TrialCallback | None = None,
) -> TuneResult:
    """Search ``kind``'s space on validation users, then score the best model on test users.

    Parameters
    ----------
    trials, minutes
        Budget: stop after this many trials and/or this much wall time (a trial already running
        finishes). Neither given: :data:`DEFAULT_TRIALS` trials.
    seed
        Seeds the split, the TPE sampler and every model.
    fixed
        Options held constant in every trial (e.g. ``{"epochs": 50}``).
    space
        Overrides :data:`SEARCH_SPACES` for this call.
    progress
        Called after each trial with its number, options and validation score (None if failed).

    Raises
    ------
    ConfigError
        Unknown kind or option, a bad budget, or every trial failing.
    """
    from tastespace.models.registry import model_class

    space = dict(search_space(kind) if space is None else space)
    fixed = dict(fixed or {})
    check_space(kind, space, fixed)
    trials = _trial_budget(trials, minutes)
    split = strong_generalization(dataset, n_heldout=n_heldout, seed=seed, min_rating=min_rating)
    started = time.perf_counter()
    search = _Search(model_class(kind), split, space, fixed, seed, progress)
    _optimise(search.objective, trials, minutes, seed)
    if search.best_model is None:
        first = search.history[0].get("error") if search.history else "none ran"
        raise ConfigError(
            f"all {len(search.history)} {kind} trials failed (first: {first}); "
            "narrow the search space or fix the options"
        )
    test = evaluate_model(search.best_model, split.test, DEFAULT_CUTOFFS, genre_matrix(split.train))
    return TuneResult(
        kind=kind,
        best_params=search.best_params,
        best_validation=search.best_score,
        test_metrics=test,
        trials=search.history,
        seconds=time.perf_counter() - started,
        seed=seed,
        model=search.best_model,
    )


def _trial_budget(trials: int | None, minutes: float | None) -> int | None:
    """The trial count to run (``None`` = until ``minutes`` run out); bad budgets refused."""
    if trials is not None and trials < 1:
        raise ConfigError(f"trials must be ≥ 1, got {trials}")
    if minutes is not None and not minutes > 0:
        raise ConfigError(f"minutes must be > 0, got {minutes}")
    return DEFAULT_TRIALS if trials is None and minutes is None else trials


@dataclasses.dataclass
class _Search:
    """One tuning run's trials: fits each proposal, records it, keeps the best model."""

    cls: type
    split: StrongSplit
    space: Mapping[str, Param]
    fixed: Mapping[str, Any]
    seed: int
    progress: TrialCallback | None
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best_score: float = -math.inf
    best_model: Any = None
    best_params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def objective(self, trial: Any) -> float:
        """Optuna's objective: validation Recall@20 of one proposal (failed fits are pruned)."""
        import optuna

        params = {**self.fixed, **suggest(trial, self.space)}
        record: dict[str, Any] = {"trial": trial.number, "params": params}
        self.history.append(record)
        try:
            model = self.cls(**{**params, "seed": self.seed})
            seconds, _ = fit_measured(model, self.split)
            score = validation_score(model, self.split)
        except TastespaceError as err:
            record["error"] = str(err)
            self._report(trial.number, params, None)
            raise optuna.TrialPruned(str(err)) from err
        record.update({f"validation_{SELECTION_METRIC}": score, "fit_seconds": seconds})
        self._report(trial.number, params, score)
        if score > self.best_score:
            self.best_score, self.best_model, self.best_params = score, model, params
        return score

    def _report(self, number: int, params: dict[str, Any], score: float | None) -> None:
        if self.progress is not None:
            self.progress(number, params, score)


def _optimise(
    objective: Callable[[Any], float], trials: int | None, minutes: float | None, seed: int
) -> None:
    """Run a seeded TPE study over ``objective`` (Optuna's per-trial logging kept quiet)."""
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed)
        )
        study.optimize(
            objective, n_trials=trials, timeout=None if minutes is None else minutes * 60
        )
    finally:
        optuna.logging.set_verbosity(verbosity)
