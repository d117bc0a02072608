"""Train / held-out splits: strong generalisation, leave-last-out, a global time cutoff, random.

Every split hands the evaluator the same thing for the users it must score, a
:class:`HeldOutUsers`: their dense indices in the *original* dataset, the history a model may
see (``fold_in``) and the items it must find (``targets``), both users × n_items CSR in the order
of ``users``. Because the item vocabulary never changes, a model trained on ``train`` scores
held-out rows directly.

For 2 held-out users over 5 items::

    users    = [7, 12]
    fold_in  = [[1, 1, 0, 1, 0],      targets = [[0, 0, 1, 0, 0],
                [0, 1, 1, 0, 0]]                 [1, 0, 0, 0, 0]]

``fold_in.indptr`` / ``fold_in.indices`` are already the offsets + indices bag form that
``Recommender.user_vectors`` takes.

Each split writes how it was made into ``train.provenance["split"]`` (protocol, seed, counts),
so a model fitted on ``train`` carries it into its bundle and ``evaluate`` can rebuild exactly
the same held-out users.

Example
-------
>>> from tastespace.data.synthetic import load_synthetic
>>> split = strong_generalization(load_synthetic("tiny"), n_heldout=30, min_rating=4, seed=0)
>>> len(split.validation), len(split.test), split.train.n_users
(30, 30, 240)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tastespace.data.dataset import Dataset
from tastespace.errors import ConfigError, DataError

__all__ = [
    "HeldOutUsers",
    "HoldoutSplit",
    "StrongSplit",
    "TemporalSplit",
    "random_holdout",
    "strong_generalization",
    "temporal_cutoff",
    "temporal_leave_last_out",
]


@dataclass
class HeldOutUsers:
    """Users to evaluate: their input history and the items a model must predict.

    ``users`` holds int64 dense user indices in the original dataset; row ``k`` of ``fold_in``
    and ``targets`` (float32 CSR, ``len(users) × n_items``, disjoint per row) belongs to
    ``users[k]``.
    """

    users: np.ndarray
    fold_in: sp.csr_matrix
    targets: sp.csr_matrix

    def __len__(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return self.fold_in.shape[1]

    def histories(self) -> list[np.ndarray]:
        """Each user's fold-in items as an int64 array (for APIs that take lists of histories)."""
        m = self.fold_in
        return [m.indices[m.indptr[k] : m.indptr[k + 1]].astype(np.int64) for k in range(len(self))]

    def target_sets(self) -> list[np.ndarray]:
        """Each user's target items as an int64 array."""
        m = self.targets
        return [m.indices[m.indptr[k] : m.indptr[k + 1]].astype(np.int64) for k in range(len(self))]


@dataclass
class StrongSplit:
    """Strong generalisation: models train on ``train``; held-out users are never in it.

    ``train`` keeps the full item vocabulary and only the users in ``train_users`` (int64
    indices into the original dataset, in that order).
    """

    train: Dataset
    train_users: np.ndarray
    validation: HeldOutUsers
    test: HeldOutUsers


@dataclass
class HoldoutSplit:
    """Weak generalisation: ``train`` keeps every user, minus the ``test`` targets.

    ``test.fold_in`` is exactly the test users' rows of ``train``.
    """

    train: Dataset
    test: HeldOutUsers


TemporalSplit = HoldoutSplit
"""Name used for the temporal split; the random holdout returns the same shape."""


def strong_generalization(
    ds: Dataset,
    *,
    n_heldout: int | float = 0.1,
    min_positives: int = 5,
    fold_in_fraction: float = 0.8,
    seed: int = 0,
    min_rating: float | None = None,
) -> StrongSplit:
    """Split users into train / validation / test the Mult-VAE way (Liang et al. 2018).

    Why: this is the protocol the field reports numbers on, and it measures what tastespace
    promises: vectors for users the model never trained on, by fold-in.

    Parameters
    ----------
    ds
        The dataset; every stored interaction with weight > 0 counts as a positive.
    n_heldout
        Users in validation and again in test: a count, or a fraction of all users.
    min_positives
        Only users with at least this many positives may be held out; others stay in train.
    fold_in_fraction
        Share of a held-out user's items given as input; the rest (at least one) are targets.
    seed
        Seeds the choice of users and of fold-in items.
    min_rating
        Binarise first: keep ratings ≥ it, as 1.0 (the train set is binarised too).

    Raises
    ------
    DataError
        When fewer than ``2 × n_heldout`` users are eligible (the message says how many are).
    """
    if min_positives < 1:
        raise ConfigError("min_positives must be ≥ 1")
    if not 0 < fold_in_fraction < 1:
        raise ConfigError(
            f"fold_in_fraction must lie strictly between 0 and 1, got {fold_in_fraction}"
        )
    if min_rating is not None:
        ds = ds.binarize(min_rating)
    n = _heldout_count(n_heldout, ds.n_users)
    m = ds.interactions
    counts = np.bincount(_row_of_entry(m)[m.data > 0], minlength=ds.n_users)
    eligible = np.flatnonzero(counts >= min_positives)
    if 2 * n > len(eligible) or 2 * n >= ds.n_users:
        raise DataError(
            f"{len(eligible)} of {ds.n_users} users have ≥ {min_positives} positives"
            + (f" (ratings ≥ {min_rating:g})" if min_rating is not None else "")
            + f"; holding out {n} for validation and {n} for test needs {2 * n} of them and at "
            "least one user left to train on: lower n_heldout or min_positives"
        )
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(eligible)
    validation_users = np.sort(chosen[:n])
    test_users = np.sort(chosen[n : 2 * n])
    in_train = np.ones(ds.n_users, bool)
    in_train[chosen[: 2 * n]] = False
    train_users = np.flatnonzero(in_train).astype(np.int64)

    validation = _fold_in_split(ds.interactions, validation_users, fold_in_fraction, rng)
    test = _fold_in_split(ds.interactions, test_users, fold_in_fraction, rng)
    train = ds.subset_users(train_users, name=f"{ds.name}-train")
    train.provenance = {
        **ds.provenance,
        "split": {
            "protocol": "strong",
            "n_heldout": n_heldout,
            "seed": seed,
            "min_positives": min_positives,
            "fold_in_fraction": fold_in_fraction,
            "min_rating": min_rating,
        },
    }
    return StrongSplit(train=train, train_users=train_users, validation=validation, test=test)


def temporal_leave_last_out(ds: Dataset, *, n: int = 1, min_history: int = 2) -> TemporalSplit:
    """Hold out each user's last ``n`` interactions by timestamp (sequence-aware evaluation).

    Why: it asks "what comes next?" with no look-ahead, the question a live system answers.
    Users with at least ``min_history`` interactions are test users; the rest keep their whole
    history in ``train``. Timestamp ties are broken by item index, so the result is deterministic.

    Raises
    ------
    DataError
        When the dataset has no timestamps, or no user has ``min_history`` interactions.
    """
    if ds.timestamps is None:
        raise DataError(
            f"{ds.name}: temporal_leave_last_out needs timestamps and this dataset has none; "
            "use random_holdout or load a source with a timestamp column"
        )
    if n < 1:
        raise ConfigError("n must be ≥ 1")
    if min_history <= n:
        raise ConfigError(
            f"min_history ({min_history}) must exceed n ({n}) so every test user keeps a history"
        )
    m = ds.interactions
    rows = _row_of_entry(m)
    order = np.lexsort((m.indices, ds.timestamps, rows))  # by user, then time, then item
    position = np.empty(m.nnz, np.int64)
    position[order] = np.arange(m.nnz) - m.indptr[rows[order]]
    lengths = np.diff(m.indptr)
    from_end = lengths[rows] - 1 - position
    is_target = (from_end < n) & (lengths[rows] >= min_history)
    split = {"protocol": "temporal", "n": n, "min_history": min_history}
    return _holdout(ds, is_target, lengths >= min_history, split)


def temporal_cutoff(ds: Dataset, *, cutoff: str | float) -> TemporalSplit:
    """Everything before one moment trains; each user's interactions after it are targets.

    Why beside leave-last-out: a single global cutoff is what a deployed model meets — it is
    trained up to a day and judged on what follows, for every user at once, so no test
    interaction precedes a training one. ``cutoff`` is a date or date-time (``"2000-06-01"``,
    UTC), unix seconds, or a fraction in (0, 1) of the interactions (by time) to train on.
    Test users are those with interactions on both sides; items first seen after the cutoff
    are in the catalog with no training data (cold).
    """
    if ds.timestamps is None:
        raise DataError(
            f"{ds.name}: a time cutoff needs timestamps and this dataset has none; use the "
            "strong protocol or load a source with a timestamp column"
        )
    seconds = _cutoff_seconds(cutoff, ds.timestamps)
    is_target = ds.timestamps >= seconds
    m = ds.interactions
    rows = _row_of_entry(m)
    before = np.bincount(rows[~is_target], minlength=ds.n_users)
    after = np.bincount(rows[is_target], minlength=ds.n_users)
    both = (before > 0) & (after > 0)
    if not both.any():
        raise DataError(
            f"{ds.name}: no user has interactions both before and after the cutoff {cutoff!r} "
            f"({_date(seconds)}); choose a cutoff inside the data's span "
            f"({_date(int(ds.timestamps.min()))} … {_date(int(ds.timestamps.max()))})"
        )
    split = {"protocol": "time", "cutoff": cutoff, "cutoff_seconds": seconds}
    return _holdout(ds, is_target, both, split)


def random_holdout(
    ds: Dataset, *, fraction: float = 0.2, seed: int = 0, min_history: int = 2
) -> HoldoutSplit:
    """Hold out a random ``fraction`` of each user's interactions (no timestamps needed).

    Why: the baseline protocol when there is no time order. Every user with at least
    ``min_history`` interactions gets ``round(fraction × count)`` targets, at least one, and
    keeps at least one fold-in item; other users stay whole in ``train``.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    if min_history < 2:
        raise ConfigError("min_history must be ≥ 2 so every test user keeps a history")
    m = ds.interactions
    rows = _row_of_entry(m)
    lengths = np.diff(m.indptr)
    rng = np.random.default_rng(seed)
    rank = _random_rank(rows, m.indptr, rng)
    n_targets = np.clip(np.rint(fraction * lengths), 1, np.maximum(lengths - 1, 1))
    is_target = (rank < n_targets[rows]) & (lengths[rows] >= min_history)
    split = {"protocol": "random", "fraction": fraction, "seed": seed, "min_history": min_history}
    return _holdout(ds, is_target, lengths >= min_history, split)


# -- helpers ----------------------------------------------------------------------------------


def _cutoff_seconds(cutoff: str | float, timestamps: np.ndarray) -> int:
    """Unix seconds of a cutoff given as a fraction of interactions, seconds, or a date."""
    if isinstance(cutoff, bool):
        raise ConfigError("cutoff must be a date, unix seconds or a fraction, not a bool")
    text = str(cutoff).strip()
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None and 0 < number < 1:
        return int(np.quantile(timestamps, number, method="higher"))
    if number is not None and number >= 1:
        return int(number)
    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"cutoff {cutoff!r} is neither a date (e.g. 2000-06-01), unix seconds, nor a "
            "fraction in (0, 1) of the interactions"
        ) from err
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.timestamp())


def _date(seconds: int) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")


def _heldout_count(n_heldout: int | float, n_users: int) -> int:
    if isinstance(n_heldout, bool):
        raise ConfigError("n_heldout must be a count or a fraction, not a bool")
    if isinstance(n_heldout, int | np.integer):
        if n_heldout < 1:
            raise ConfigError(f"n_heldout must be ≥ 1, got {n_heldout}")
        return int(n_heldout)
    if not 0 < n_heldout < 0.5:
        raise ConfigError(f"a fractional n_heldout must lie in (0, 0.5), got {n_heldout}")
    return max(1, round(n_heldout * n_users))


def _row_of_entry(m: sp.csr_matrix) -> np.ndarray:
    return np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))


def _random_rank(rows: np.ndarray, indptr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random rank 0..len-1 of every entry within its row."""
    order = np.lexsort((rng.random(len(rows)), rows))
    rank = np.empty(len(rows), np.int64)
    rank[order] = np.arange(len(rows)) - indptr[rows[order]]
    return rank


def _select(m: sp.csr_matrix, mask: np.ndarray) -> sp.csr_matrix:
    """The entries of ``m`` where ``mask`` holds, same shape, float32."""
    counts = np.bincount(_row_of_entry(m)[mask], minlength=m.shape[0])
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(m.indptr.dtype)
    return sp.csr_matrix((m.data[mask].astype(np.float32), m.indices[mask], indptr), shape=m.shape)


def _fold_in_split(
    m: sp.csr_matrix, users: np.ndarray, fold_in_fraction: float, rng: np.random.Generator
) -> HeldOutUsers:
    sub = m[users]
    sub.sort_indices()
    positive = sub.data > 0
    sub = _select(sub, positive)
    rows = _row_of_entry(sub)
    lengths = np.diff(sub.indptr)
    n_targets = np.maximum(1, np.rint((1.0 - fold_in_fraction) * lengths)).astype(np.int64)
    n_targets = np.where(lengths >= 2, np.minimum(n_targets, lengths - 1), n_targets)
    is_target = _random_rank(rows, sub.indptr, rng) < n_targets[rows]
    return HeldOutUsers(
        users=users.astype(np.int64),
        fold_in=_select(sub, ~is_target),
        targets=_select(sub, is_target),
    )


def _holdout(
    ds: Dataset, is_target: np.ndarray, is_test_user: np.ndarray, split: dict[str, Any]
) -> HoldoutSplit:
    users = np.flatnonzero(is_test_user).astype(np.int64)
    if not len(users):
        raise DataError(
            f"{ds.name}: no user has ≥ {split['min_history']} interactions, so there is nothing "
            "to hold out; lower min_history"
        )
    m = ds.interactions
    kept = _select(m, ~is_target)
    timestamps = None if ds.timestamps is None else ds.timestamps[~is_target]
    prov = dict(ds.provenance)
    prov["split"] = {**split, "held_out_interactions": int(is_target.sum())}
    train = replace(
        ds, interactions=kept, timestamps=timestamps, name=f"{ds.name}-train", provenance=prov
    )
    test = HeldOutUsers(users=users, fold_in=kept[users], targets=_select(m, is_target)[users])
    return HoldoutSplit(train=train, test=test)
