"""Temporal leave-last-out evaluation: fit on everything before each user's last ``n`` items,
then ask the model to find those ``n`` from the earlier history.

Why next to strong generalisation: strong generalisation asks "how well does fold-in serve a
user the model never saw?" with a random 20 % of items hidden; leave-last-out asks "what comes
next?" with no look-ahead, the question a live system answers. Here the test users *are* in the
training data (only their last items are removed), so the two protocols are complementary.

Example
-------
>>> from tastespace.data import load_dataset
>>> from tastespace.models.baselines import Popularity
>>> result = evaluate_temporal(Popularity, load_dataset("synthetic:tiny"), n=1)
>>> 0.0 <= result["recall@20"] <= 1.0
True
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import scipy.sparse as sp

from tastespace.data.dataset import Dataset
from tastespace.data.splits import TemporalSplit, temporal_leave_last_out
from tastespace.evaluate.memory import PeakMemory
from tastespace.evaluate.protocol import DEFAULT_CUTOFFS, evaluate_model

#: Users with fewer interactions stay whole in train (same bar as strong generalisation's).
DEFAULT_MIN_HISTORY = 5


def temporal_split(
    dataset: Dataset,
    *,
    n: int = 1,
    min_history: int = DEFAULT_MIN_HISTORY,
    min_rating: float | None = None,
) -> TemporalSplit:
    """Binarise (when ``min_rating`` is given), then hold out each user's last ``n`` items."""
    if min_rating is not None:
        dataset = dataset.binarize(min_rating)
    return temporal_leave_last_out(dataset, n=n, min_history=max(min_history, n + 1))


def genre_matrix(dataset: Dataset) -> sp.csr_matrix | None:
    """Items × genres incidence for intra-list diversity, or None when the catalog has none."""
    bag = dataset.items.bags.get("genres")
    return None if bag is None else bag.to_csr()


def evaluate_temporal(
    model_factory: Callable[[], Any],
    dataset: Dataset,
    *,
    n: int = 1,
    min_history: int = DEFAULT_MIN_HISTORY,
    min_rating: float | None = None,
    cutoffs: Sequence[int] = DEFAULT_CUTOFFS,
) -> dict[str, float]:
    """Fit a fresh model on the temporal train split and score the held-out last items.

    Parameters
    ----------
    model_factory
        Called once with no arguments; returns an unfitted model (a ``Recommender`` class such
        as ``EASE`` works, as does ``lambda: ALS(factors=64)``).
    dataset
        Needs timestamps (MovieLens has them; :class:`~tastespace.errors.DataError` otherwise).
    n
        How many of each user's latest interactions become targets.
    min_history
        Only users with at least this many interactions (and more than ``n``) are test users.
    min_rating
        Binarise first: ratings ≥ it become positives, the rest are dropped.

    Returns
    -------
    dict
        :func:`~tastespace.evaluate.evaluate_model`'s metrics plus ``fit_seconds`` and
        ``peak_rss_mib`` (resident-memory rise during ``fit``; see :mod:`.memory`).
    """
    split = temporal_split(dataset, n=n, min_history=min_history, min_rating=min_rating)
    model = model_factory()
    started = time.perf_counter()
    with PeakMemory() as memory:
        model.fit(split.train)
    fit_seconds = time.perf_counter() - started
    results = evaluate_model(model, split.test, cutoffs, genre_matrix(split.train))
    results["fit_seconds"] = fit_seconds
    results["peak_rss_mib"] = memory.delta_mib
    return results
