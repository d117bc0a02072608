"""The leaderboard: every model fitted on the identical strong-generalisation split, per seed.

For each seed the dataset is split once (:func:`~tastespace.data.splits.strong_generalization`)
and every contender sees exactly that split: it trains on the train users (with the validation
users passed to ``fit`` for early stopping where the model supports it), picks its grid point on
the validation users' Recall@20 when it has a grid, and is scored once on the test users. Rows
report the mean over seeds with the spread (sample std, min and max), fit seconds of the chosen
configuration and the rise in resident memory during that fit (:mod:`.memory`).

A contender is anything with ``fit(train, validation)`` and ``recommend(fold_in, k,
exclude_seen=True)``: every tastespace model, and the peers of ``bench/peers.py`` that run other
libraries directly. Rows say which they are: ``source`` = ``"tastespace"``, ``"peer"`` (another
library as its users call it: a competitor) or ``"engine"`` (the engine under a tastespace model,
run directly with the same options: a control that shows nothing is lost in wrapping, not a
competitor).

Example
-------
>>> from tastespace.data import load_dataset
>>> board = run_leaderboard(load_dataset("synthetic:tiny"), ["popularity", "ease"], seeds=(0,),
...                         n_heldout=30, tune={})
>>> [row.name for row in board.sorted_by("recall@20")]
['ease', 'popularity']
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tastespace.data.dataset import Dataset
from tastespace.data.splits import StrongSplit, strong_generalization
from tastespace.errors import ConfigError, TastespaceError
from tastespace.evaluate.eta import JobClock
from tastespace.evaluate.memory import PeakMemory
from tastespace.evaluate.protocol import DEFAULT_CUTOFFS, evaluate_model
from tastespace.evaluate.temporal import genre_matrix

log = logging.getLogger(__name__)

#: Columns the leaderboard shows, in order (all of ``evaluate_model``'s metrics are kept).
HEADLINE_METRICS = ("recall@20", "recall@50", "ndcg@100", "mrr@20", "coverage@20", "diversity@20")
#: Validation metric that grid points (and ``tastespace tune``) are chosen on.
SELECTION_METRIC = "recall@20"
#: Small grids tuned on validation users by default. EASE's ridge strength depends on the
#: dataset's size and density, so a fixed default would handicap the baseline every model must
#: beat (Steck 2019 tunes it too). ml-latest-small picks 100, ml-100k 100–300; 30 is there so
#: that the sparsest sets are not pinned to the grid's edge.
DEFAULT_GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "ease": {"l2": (30.0, 100.0, 300.0, 1000.0)}
}

SOURCES = ("tastespace", "peer", "engine")


@dataclasses.dataclass(frozen=True)
class Contender:
    """A leaderboard row's recipe.

    ``build(params)`` returns an unfitted model; ``params`` always includes ``seed``. ``grid``
    maps option names to candidate values; every combination is fitted and the best on
    validation Recall@20 is kept.
    """

    name: str
    build: Callable[[dict[str, Any]], Any]
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    grid: Mapping[str, Sequence[Any]] = dataclasses.field(default_factory=dict)
    source: str = "tastespace"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"source must be one of {SOURCES}, got {self.source!r}")

    def grid_points(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values (one empty point when there is no grid)."""
        names = list(self.grid)
        return [
            dict(zip(names, values, strict=True))
            for values in itertools.product(*(self.grid[n] for n in names))
        ]


def tastespace_contender(
    name: str,
    options: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
) -> Contender:
    """A contender for a registry model; ``options`` may carry ``kind`` when ``name`` is a label.

    >>> tastespace_contender("ease-strong", {"kind": "ease", "l2": 900.0}).params
    {'l2': 900.0}
    """
    from tastespace.models.registry import model_class

    options = dict(options or {})
    kind = options.pop("kind", name)
    try:
        cls = model_class(kind)  # unknown kinds fail here, before any fitting
    except ImportError as err:
        raise ConfigError(
            f"{kind} needs an engine that is not installed ({err}); "
            "pip install 'tastespace[engines]'"
        ) from err
    cls.Config().with_options(options)  # so do unknown options
    if grid is None:  # the default grid, unless the caller fixed one of its options
        default = DEFAULT_GRIDS.get(kind, {})
        grid = {} if options.keys() & default.keys() else default
    if grid:
        cls.Config().with_options({k: v[0] for k, v in grid.items()})

    def build(params: dict[str, Any]) -> Any:
        return cls(**params)

    return Contender(name=name, build=build, params=options, grid=dict(grid), source="tastespace")


@dataclasses.dataclass
class SeedRun:
    """One contender on one seed: the chosen grid point and what it scored."""

    seed: int
    params: dict[str, Any]
    metrics: dict[str, float]
    fit_seconds: float
    peak_rss_mib: float
    validation_score: float | None = None
    tune_seconds: float = 0.0
    config: dict[str, Any] | None = None


@dataclasses.dataclass
class LeaderboardRow:
    """A contender's runs over seeds; ``error`` is set (``runs`` empty) when it could not run."""

    name: str
    source: str
    runs: list[SeedRun] = dataclasses.field(default_factory=list)
    error: str | None = None

    def values(self, metric: str) -> np.ndarray:
        """Per-seed values of a metric, ``fit_seconds`` or ``peak_rss_mib`` (NaN where missing)."""
        out = []
        for run in self.runs:
            if metric in ("fit_seconds", "peak_rss_mib", "tune_seconds"):
                out.append(getattr(run, metric))
            else:
                out.append(run.metrics.get(metric, math.nan))
        return np.asarray(out, dtype=np.float64)

    def stats(self, metric: str) -> dict[str, float]:
        """Mean, sample std (0 for one seed), min and max over seeds."""
        v = self.values(metric)
        v = v[~np.isnan(v)]
        if not len(v):
            return {"mean": math.nan, "std": math.nan, "min": math.nan, "max": math.nan}
        return {
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()),
            "max": float(v.max()),
        }

    def mean(self, metric: str) -> float:
        return self.stats(metric)["mean"]

    def to_json(self, metrics: Sequence[str]) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "error": self.error,
            "metrics": {
                m: self.stats(m) for m in (*metrics, "fit_seconds", "peak_rss_mib", "tune_seconds")
            },
            "runs": [dataclasses.asdict(run) for run in self.runs],
        }


@dataclasses.dataclass
class Leaderboard:
    """Rows in the order contenders were given, plus how the split was made."""

    dataset: str
    rows: list[LeaderboardRow]
    protocol: dict[str, Any]
    memory_method: str
    seconds: float

    def sorted_by(self, metric: str = SELECTION_METRIC) -> list[LeaderboardRow]:
        """Rows that ran, best mean first; failed rows last."""
        ran = [r for r in self.rows if r.runs]
        failed = [r for r in self.rows if not r.runs]
        return sorted(ran, key=lambda r: -np.nan_to_num(r.mean(metric), nan=-np.inf)) + failed

    def row(self, name: str) -> LeaderboardRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no row {name!r}; rows: {[r.name for r in self.rows]}")

    def metrics(self) -> list[str]:
        """Headline metrics that at least one row has (diversity needs a genres bag)."""
        seen = {m for row in self.rows for run in row.runs for m in run.metrics}
        return [m for m in HEADLINE_METRICS if m in seen]

    def to_json(self) -> dict[str, Any]:
        """One JSON-able document: protocol, memory method and every row with its runs."""
        metrics = self.metrics()
        return {
            "dataset": self.dataset,
            "protocol": self.protocol,
            "memory_method": self.memory_method,
            "seconds": self.seconds,
            "metrics": metrics,
            "rows": [row.to_json(metrics) for row in self.sorted_by()],
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Leaderboard:
        """Inverse of :meth:`to_json` (per-seed runs are kept, so every statistic recomputes)."""
        rows = [
            LeaderboardRow(
                name=row["name"],
                source=row["source"],
                runs=[SeedRun(**run) for run in row["runs"]],
                error=row.get("error"),
            )
            for row in doc["rows"]
        ]
        return cls(
            doc["dataset"], rows, dict(doc["protocol"]), doc["memory_method"], doc["seconds"]
        )


def merge_leaderboards(boards: Sequence[Leaderboard]) -> Leaderboard:
    """One board from runs of the same protocol on the same data (e.g. rows re-run later).

    The splits are deterministic in (dataset, seed, n_heldout, min_rating), so rows from
    separate runs saw identical splits. A row name met twice keeps the later board's row.
    """
    if not boards:
        raise ConfigError("nothing to merge")
    first = boards[0]
    for board in boards[1:]:
        if board.dataset != first.dataset or board.protocol != first.protocol:
            raise ConfigError(
                f"cannot merge {board.dataset} ({board.protocol}) into {first.dataset} "
                f"({first.protocol}): different data or protocol"
            )
    rows: dict[str, LeaderboardRow] = {}
    for board in boards:
        rows.update({row.name: row for row in board.rows})
    methods = {b.memory_method for b in boards}
    return Leaderboard(
        first.dataset,
        list(rows.values()),
        dict(first.protocol),
        "/".join(sorted(methods)),
        sum(b.seconds for b in boards),
    )


def format_stat(stats: Mapping[str, float], digits: int = 3) -> str:
    """``0.412 ± 0.011`` (or ``-`` when missing)."""
    if math.isnan(stats["mean"]):
        return "-"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def resolve_contenders(
    models: Sequence[str | Contender] | Mapping[str, Mapping[str, Any]],
    tune: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
) -> list[Contender]:
    """Turn kinds / ``{name: options}`` / ready contenders into contenders with their grids.

    ``tune=None`` uses :data:`DEFAULT_GRIDS`; ``{}`` tunes nothing; ``{name: {option: values}}``
    sets a row's grid (rows not named get none).
    """
    if isinstance(models, Mapping):
        items: list[tuple[str, Mapping[str, Any] | None] | Contender] = [
            (name, options) for name, options in models.items()
        ]
    else:
        items = [m if isinstance(m, Contender) else (m, None) for m in models]
    contenders = []
    for item in items:
        if isinstance(item, Contender):
            contenders.append(item)
            continue
        name, options = item
        grid = None if tune is None else dict(tune.get(name, {}))
        contenders.append(tastespace_contender(name, options, grid))
    names = [c.name for c in contenders]
    if len(set(names)) != len(names):
        raise ConfigError(f"leaderboard row names must be unique, got {names}")
    if not contenders:
        raise ConfigError("no models to compare; name at least one")
    return contenders


def run_leaderboard(
    dataset: Dataset,
    models: Sequence[str | Contender] | Mapping[str, Mapping[str, Any]],
    *,
    seeds: Sequence[int] = (0, 1, 2),
    n_heldout: int | float = 0.1,
    min_rating: float | None = None,
    tune: Mapping[str, Mapping[str, Sequence[Any]]] | None = None,
    cutoffs: Sequence[int] = DEFAULT_CUTOFFS,
    progress: Callable[[str], None] | None = None,
) -> Leaderboard:
    """Fit every model on the identical split for each seed and collect the test metrics.

    Parameters
    ----------
    dataset
        Any dataset; ``min_rating`` binarises it first (the Mult-VAE protocol uses 4).
    models
        Registry kinds (``["ease", "als"]``), ``{name: options}`` (options may include
        ``kind``), or :class:`Contender` objects (peers), mixed freely in a list.
    seeds
        One split per seed; a row's spread is over these.
    n_heldout
        Users held out for validation and again for test (count or fraction of all users).
    tune
        Grids chosen on validation Recall@20; ``None`` = :data:`DEFAULT_GRIDS` (EASE's l2).
    progress
        Called with a short line before each fit (the CLI prints it).

    Raises
    ------
    ConfigError
        For unknown kinds or options, before anything is fitted.
    """
    contenders = resolve_contenders(models, tune)
    if not seeds:
        raise ConfigError("give at least one seed")
    started = time.perf_counter()
    rows = {c.name: LeaderboardRow(c.name, c.source) for c in contenders}
    method = "unavailable"
    clock = JobClock([c.name for _ in seeds for c in contenders])
    job = -1
    for seed in seeds:
        split = strong_generalization(
            dataset, n_heldout=n_heldout, seed=int(seed), min_rating=min_rating
        )
        genres = genre_matrix(split.train)
        for contender in contenders:
            job += 1
            row = rows[contender.name]
            if row.error is not None:
                continue
            if progress is not None:
                progress(f"{clock.status(job)} — seed {seed}: {_contender_label(contender)}")
            fit_started = time.perf_counter()
            fitted = _run_into_row(contender, row, split, int(seed), cutoffs, genres)
            if fitted is None:
                continue
            method = fitted
            clock.finished(job, time.perf_counter() - fit_started)
    return Leaderboard(
        dataset=dataset.name,
        rows=list(rows.values()),
        protocol=_protocol(seeds, n_heldout, min_rating, cutoffs),
        memory_method=method,
        seconds=time.perf_counter() - started,
    )


def _contender_label(contender: Contender) -> str:
    points = len(contender.grid_points())
    return contender.name + (f" ({points} grid points)" if points > 1 else "")


def _run_into_row(
    contender: Contender,
    row: LeaderboardRow,
    split: StrongSplit,
    seed: int,
    cutoffs: Sequence[int],
    genres: Any,
) -> str | None:
    """Run one contender on one seed into its row; the memory method, or ``None`` when it
    failed (the row then records the error and drops its runs: a row never mixes seeds it
    could and could not run)."""
    try:
        run, method = _run_one(contender, split, seed, cutoffs, genres)
    except (ImportError, TastespaceError) as err:
        log.warning("%s failed: %s", contender.name, err)
        row.error = f"{type(err).__name__}: {err}"
        row.runs.clear()
        return None
    row.runs.append(run)
    log.info("seed %s %s: %s", seed, contender.name, run.metrics)
    return method


def _protocol(
    seeds: Sequence[int], n_heldout: int | float, min_rating: float | None, cutoffs: Sequence[int]
) -> dict[str, Any]:
    """How the split was made, recorded with the board so two boards can be compared."""
    return {
        "kind": "strong-generalization",
        "seeds": [int(s) for s in seeds],
        "n_heldout": n_heldout,
        "min_rating": min_rating,
        "fold_in_fraction": 0.8,
        "selection": f"validation {SELECTION_METRIC}",
        "cutoffs": list(cutoffs),
    }


def fit_measured(model: Any, split: StrongSplit) -> tuple[float, PeakMemory]:
    """Fit on the split's train users (validation passed along); seconds and memory of the fit."""
    gc.collect()
    started = time.perf_counter()
    with PeakMemory() as memory:
        model.fit(split.train, split.validation)
    return time.perf_counter() - started, memory


def validation_score(model: Any, split: StrongSplit) -> float:
    """Validation-user Recall@20: what grid points and tuning trials are chosen on."""
    return evaluate_model(model, split.validation, cutoffs=(20,))[SELECTION_METRIC]


def _run_one(
    contender: Contender,
    split: StrongSplit,
    seed: int,
    cutoffs: Sequence[int],
    genres: Any,
) -> tuple[SeedRun, str]:
    points = contender.grid_points()
    tune_started = time.perf_counter()
    best: tuple[float, Any, dict[str, Any], float, PeakMemory] | None = None
    for point in points:
        params = {**contender.params, **point, "seed": seed}
        model = contender.build(params)
        seconds, memory = fit_measured(model, split)
        score = validation_score(model, split) if len(points) > 1 else None
        if best is None or (score is not None and score > best[0]):
            best = (score if score is not None else math.nan, model, point, seconds, memory)
        del model
    if best is None:
        raise ConfigError(f"{contender.name}: its grid has no points to fit")
    score, model, point, seconds, memory = best
    metrics = evaluate_model(model, split.test, cutoffs, genres)
    config = getattr(model, "config", None)
    run = SeedRun(
        seed=seed,
        params={**contender.params, **point},
        config=config.to_json() if hasattr(config, "to_json") else None,
        metrics=metrics,
        fit_seconds=seconds,
        peak_rss_mib=memory.delta_mib,
        validation_score=None if math.isnan(score) else score,
        tune_seconds=time.perf_counter() - tune_started if len(points) > 1 else 0.0,
    )
    return run, memory.method
