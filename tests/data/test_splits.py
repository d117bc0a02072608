"""Evaluation splits: disjoint where they must be, complete, deterministic, with clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tastespace.data.splits import (
    HeldOutUsers,
    random_holdout,
    strong_generalization,
    temporal_leave_last_out,
)
from tastespace.data.synthetic import load_synthetic
from tastespace.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def ds():
    return load_synthetic("users=600,items=300,history=20,seed=5")


@pytest.fixture(scope="module")
def split(ds):
    return strong_generalization(ds, n_heldout=60, min_rating=4, seed=1)


def _items(m, k) -> set[int]:
    return set(m.indices[m.indptr[k] : m.indptr[k + 1]].tolist())


def _check_partition(held: HeldOutUsers, source) -> None:
    """Fold-in and targets are disjoint per user and together are the user's items."""
    assert held.fold_in.shape == held.targets.shape == (len(held), source.shape[1])
    for k, user in enumerate(held.users):
        fold_in, targets = _items(held.fold_in, k), _items(held.targets, k)
        assert not fold_in & targets
        assert fold_in | targets == _items(source, user)
        assert len(targets) >= 1


def test_strong_split_users_are_disjoint(ds, split):
    train, val, test = set(split.train_users), set(split.validation.users), set(split.test.users)
    assert len(val) == len(test) == 60
    assert not train & val and not train & test and not val & test
    assert train | val | test == set(range(ds.n_users))
    assert split.train.n_users == len(split.train_users) == ds.n_users - 120
    assert split.train.n_items == ds.n_items
    assert split.train.item_ids == ds.item_ids
    assert split.train_users.dtype == split.validation.users.dtype == np.int64


def test_strong_split_train_rows_are_the_original_binarised_rows(ds, split):
    binary = ds.binarize(4).interactions
    for k in (0, 17, len(split.train_users) - 1):
        assert _items(split.train.interactions, k) == _items(binary, split.train_users[k])
    assert set(np.unique(split.train.interactions.data)) == {1.0}
    assert split.train.user_ids.raws([0]) == ds.user_ids.raws([split.train_users[0]])


def test_strong_split_fold_in_and_targets_partition_each_user(ds, split):
    binary = ds.binarize(4).interactions
    _check_partition(split.validation, binary)
    _check_partition(split.test, binary)
    assert split.validation.fold_in.dtype == np.float32
    held = np.concatenate([split.validation.users, split.test.users])
    assert np.diff(binary.indptr)[held].min() >= 5  # only eligible users are held out
    share = split.test.fold_in.nnz / (split.test.fold_in.nnz + split.test.targets.nnz)
    assert share == pytest.approx(0.8, abs=0.03)
    assert len(split.test.histories()) == len(split.test.target_sets()) == 60


def test_strong_split_is_deterministic_by_seed(ds, split):
    again = strong_generalization(ds, n_heldout=60, min_rating=4, seed=1)
    assert np.array_equal(again.test.users, split.test.users)
    assert np.array_equal(again.test.targets.indices, split.test.targets.indices)
    assert np.array_equal(again.validation.fold_in.indptr, split.validation.fold_in.indptr)
    other = strong_generalization(ds, n_heldout=60, min_rating=4, seed=2)
    assert not np.array_equal(other.test.users, split.test.users)


def test_strong_split_fraction_and_ineligible_users(ds):
    split = strong_generalization(ds, n_heldout=0.1, min_positives=25)
    assert len(split.test) == len(split.validation) == 60
    lengths = np.diff(ds.interactions.indptr)
    held = np.concatenate([split.validation.users, split.test.users])
    assert lengths[held].min() >= 25
    assert set(np.flatnonzero(lengths < 25)) <= set(split.train_users)  # short users train
    # without binarising, raw ratings pass through to fold-in and targets
    assert split.test.targets.data.max() > 1


def test_strong_split_too_few_eligible_users(ds):
    with pytest.raises(DataError, match=r"\d+ of 600 users have ≥ 60 positives"):
        strong_generalization(ds, n_heldout=100, min_positives=60)
    with pytest.raises(ConfigError):
        strong_generalization(ds, n_heldout=0)
    with pytest.raises(ConfigError):
        strong_generalization(ds, fold_in_fraction=1.0)


def test_temporal_targets_are_each_users_latest_items(ds):
    split = temporal_leave_last_out(ds, n=2, min_history=5)
    lengths = np.diff(ds.interactions.indptr)
    assert np.array_equal(split.test.users, np.flatnonzero(lengths >= 5))
    _check_partition(split.test, ds.interactions)
    for k, user in enumerate(split.test.users[:100]):
        latest = set(ds.history(user)[-2:].tolist())  # history() is in time order
        assert _items(split.test.targets, k) == latest
        assert _items(split.test.fold_in, k) == set(ds.history(user)[:-2].tolist())
    # train keeps every user, minus exactly the targets, with timestamps still aligned
    assert split.train.n_users == ds.n_users
    assert split.train.n_interactions == ds.n_interactions - split.test.targets.nnz
    assert len(split.train.timestamps) == split.train.n_interactions
    user = split.test.users[0]
    assert np.array_equal(split.train.history(user), ds.history(user)[:-2])
    assert (split.test.fold_in != split.train.interactions[split.test.users]).nnz == 0


def test_temporal_split_needs_timestamps(ds):
    with pytest.raises(DataError, match="needs timestamps"):
        temporal_leave_last_out(dataclasses.replace(ds, timestamps=None))
    with pytest.raises(ConfigError, match="min_history"):
        temporal_leave_last_out(ds, n=3, min_history=3)
    with pytest.raises(DataError, match="no user has ≥ 10000"):
        temporal_leave_last_out(ds, min_history=10_000)


def test_random_holdout(ds):
    split = random_holdout(ds, fraction=0.25, seed=3)
    assert len(split.test) == ds.n_users  # every synthetic user has ≥ 5 interactions
    _check_partition(split.test, ds.interactions)
    share = split.test.targets.nnz / ds.n_interactions
    assert share == pytest.approx(0.25, abs=0.02)
    assert split.train.n_interactions == ds.n_interactions - split.test.targets.nnz
    again = random_holdout(ds, fraction=0.25, seed=3)
    assert np.array_equal(again.test.targets.indices, split.test.targets.indices)
    other = random_holdout(ds, fraction=0.25, seed=4)
    assert not np.array_equal(other.test.targets.indices, split.test.targets.indices)
    with pytest.raises(ConfigError, match="fraction"):
        random_holdout(ds, fraction=1.5)


def _ratings_csv(tmp_path):
    """Three users on both sides of 2000-06-01, one only before, one only after."""
    rows = ["user,item,rating,timestamp"]
    for user, stamps in {
        "a": ["1999-01-01", "2000-01-01", "2000-07-01"],
        "b": ["2000-02-01", "2000-08-01", "2000-09-01"],
        "c": ["1999-05-01", "2001-01-01"],
        "d": ["1999-03-01", "1999-04-01"],
        "e": ["2000-12-01"],
    }.items():
        rows += [f"{user},{k + 1},5,{stamp}T00:00:00Z" for k, stamp in enumerate(stamps)]
    path = tmp_path / "r.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_time_cutoff_trains_on_the_past_and_tests_on_the_future(tmp_path):
    from tastespace.data import load_dataset
    from tastespace.data.splits import temporal_cutoff

    ds = load_dataset(_ratings_csv(tmp_path))
    split = temporal_cutoff(ds, cutoff="2000-06-01")
    cutoff = int(np.datetime64("2000-06-01T00:00:00", "s").astype(np.int64))
    assert split.train.timestamps.max() < cutoff
    assert split.train.n_interactions == int((ds.timestamps < cutoff).sum())
    assert ds.user_ids.raws(split.test.users) == ["a", "b", "c"]  # d: no future, e: no past
    _check_partition(split.test, ds.interactions[:, :])
    for k, user in enumerate(split.test.users):
        assert _items(split.test.fold_in, k) == _items(split.train.interactions, user)
    assert split.train.provenance["split"]["cutoff_seconds"] == cutoff
    by_fraction = temporal_cutoff(ds, cutoff=0.5)
    median = np.quantile(ds.timestamps, 0.5, method="higher")
    assert by_fraction.train.timestamps.max() < median <= ds.timestamps.max()
    as_seconds = temporal_cutoff(ds, cutoff=str(cutoff))
    assert (as_seconds.test.targets != split.test.targets).nnz == 0


@pytest.mark.fault("splits", "time cutoff outside the data or unparseable", "one-line error")
def test_time_cutoff_errors(tmp_path, ds):
    from tastespace.data import load_dataset
    from tastespace.data.splits import temporal_cutoff

    dated = load_dataset(_ratings_csv(tmp_path))
    with pytest.raises(
        DataError, match=r"both before and after the cutoff '1990-01-01'.*1999-01-01"
    ):
        temporal_cutoff(dated, cutoff="1990-01-01")
    with pytest.raises(ConfigError, match="neither a date"):
        temporal_cutoff(dated, cutoff="next tuesday-ish")
    with pytest.raises(DataError, match="needs timestamps"):
        temporal_cutoff(dataclasses.replace(ds, timestamps=None), cutoff=0.5)
