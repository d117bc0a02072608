"""The synthetic catalog: deterministic, sized as configured, with the planted structure present."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from tastespace.data import load_dataset
from tastespace.data.synthetic import (
    PRESETS,
    SyntheticConfig,
    load_synthetic,
    make_synthetic,
    write_synthetic_csv,
)
from tastespace.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def tiny():
    return load_synthetic("tiny")


@pytest.fixture(scope="module")
def small():
    return load_synthetic("small")


def _rows(ds):
    return np.repeat(np.arange(ds.n_users), np.diff(ds.interactions.indptr))


def _same(a, b) -> bool:
    ma, mb = a.interactions, b.interactions
    return (
        np.array_equal(ma.indptr, mb.indptr)
        and np.array_equal(ma.indices, mb.indices)
        and np.array_equal(ma.data, mb.data)
        and np.array_equal(a.timestamps, b.timestamps)
    )


def test_same_seed_gives_identical_dataset(tiny):
    again = load_synthetic("tiny")
    assert _same(tiny, again)
    pd.testing.assert_frame_equal(tiny.items.frame, again.items.frame)
    pd.testing.assert_frame_equal(tiny.users.frame, again.users.frame)
    bags, bags_again = tiny.items.bags["genres"], again.items.bags["genres"]
    assert np.array_equal(bags.indices, bags_again.indices)
    assert np.array_equal(bags.offsets, bags_again.offsets)
    assert tiny.fingerprint() == again.fingerprint()


def test_different_seed_gives_different_dataset(tiny):
    other = load_synthetic("tiny,seed=1")
    assert not _same(tiny, other)
    assert not tiny.items.frame["title"].equals(other.items.frame["title"])


def test_ratings_switch_leaves_interactions_unchanged(tiny):
    unrated = load_synthetic("tiny", with_ratings=False)
    assert np.array_equal(unrated.interactions.indices, tiny.interactions.indices)
    assert np.array_equal(unrated.timestamps, tiny.timestamps)
    assert set(np.unique(unrated.interactions.data)) == {1.0}
    assert set(np.unique(tiny.interactions.data)) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_sizes_near_config(tiny, small):
    for ds, config in ((tiny, PRESETS["tiny"]), (small, PRESETS["small"])):
        assert (ds.n_users, ds.n_items) == (config.n_users, config.n_items)
        mean = ds.n_interactions / ds.n_users
        assert 0.85 * config.mean_history <= mean <= 1.1 * config.mean_history
        lengths = np.diff(ds.interactions.indptr)
        assert lengths.min() >= config.min_history
        assert lengths.max() > 3 * config.mean_history  # heavy tail
    assert load_dataset("synthetic:tiny").n_items == 200


def test_spec_overrides_small_preset():
    ds = load_synthetic("users=150,items=120,seed=3,genres=8")
    assert (ds.n_users, ds.n_items) == (150, 120)
    assert ds.items.bags["genres"].vocab == (
        "Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Animation",
    )  # fmt: skip
    assert ds.name == "synthetic-users=150,items=120,seed=3,genres=8"
    assert ds.provenance["source"] == "synthetic"
    assert ds.provenance["config"] == dataclasses.asdict(
        dataclasses.replace(PRESETS["small"], n_users=150, n_items=120, seed=3, n_genres=8)
    )
    assert SyntheticConfig(**ds.provenance["config"]).n_genres == 8  # round-trips


def test_many_genres_get_generated_names():
    config = SyntheticConfig(n_users=20, n_items=60, n_genres=26)
    assert config.genre_names[-2:] == ("Genre 25", "Genre 26")


def test_items_have_planted_primary_genre_first(small):
    bags = small.items.bags["genres"]
    lengths = bags.lengths()
    assert lengths.min() >= 1 and lengths.max() <= 3
    assert bags.first() == small.items.frame["planted_genre"].tolist()
    for row in range(50):  # genres within an item are distinct
        assert len(set(bags.row(row))) == len(bags.row(row))
    assert set(small.items.frame["planted_genre"]) == set(bags.vocab)  # every genre has items


def test_item_features_are_plausible(small):
    frame = small.items.frame
    assert frame["title"].is_unique
    assert frame["year"].between(1950, 2024).all()
    assert frame["runtime"].between(60, 240).all()
    assert frame["title"].str.endswith(")").all()
    years = frame.groupby("planted_genre")["year"].mean()
    assert years["Western"] < years["Animation"] - 20  # genre-dependent years
    assert set(small.users.frame.columns) == {"age", "planted_taste"}


def test_planted_taste_dominates_histories(small):
    m = small.interactions
    rows = _rows(small)
    item_genre = small.items.frame["planted_genre"].to_numpy()
    taste = small.users.frame["planted_taste"].to_numpy()
    on_taste = item_genre[m.indices] == taste[rows]
    per_user = np.bincount(rows, on_taste) / np.diff(m.indptr)
    chance = 1 / len(small.items.bags["genres"].vocab)
    assert per_user.mean() > 5 * chance
    assert np.median(per_user) > 0.5
    # on-taste interactions are rated higher than the rest
    assert m.data[on_taste].mean() > m.data[~on_taste].mean() + 0.5
    assert np.mean(m.data[on_taste] >= 4) > 0.8


def test_popularity_is_skewed_within_genre(small):
    counts = np.bincount(small.interactions.indices, minlength=small.n_items)
    top = np.sort(counts)[::-1]
    assert top[: small.n_items // 10].sum() > 0.3 * counts.sum()


def test_no_duplicate_pairs_and_increasing_timestamps(small):
    m = small.interactions
    rows = _rows(small)
    keys = rows.astype(np.int64) * small.n_items + m.indices
    assert len(np.unique(keys)) == m.nnz
    order = np.lexsort((small.timestamps, rows))
    ts = small.timestamps[order]
    same_user = rows[order][1:] == rows[order][:-1]
    assert np.all(np.diff(ts)[same_user] > 0)  # strictly increasing within a user
    assert small.timestamps.min() >= 946_684_800


def test_build_options_pass_through():
    ds = load_synthetic("tiny", min_rating=4)
    assert set(np.unique(ds.interactions.data)) == {1.0}
    assert ds.n_interactions < load_synthetic("tiny").n_interactions
    assert "rating < 4" in ds.provenance["filtered"]


def test_unknown_keys_are_errors_listing_valid_keys():
    with pytest.raises(DataError, match="valid keys: .*users"):
        load_synthetic("users=100,colour=red")
    with pytest.raises(DataError, match="valid keys"):
        load_synthetic("tiny", colour="red")
    with pytest.raises(DataError, match="unknown synthetic preset"):
        load_synthetic("enormous")
    with pytest.raises(DataError, match="expected int"):
        load_synthetic("users=many")
    with pytest.raises(ConfigError, match="n_items"):
        load_synthetic("items=5")
    with pytest.raises(ConfigError, match="noise"):
        SyntheticConfig(noise=1.5)


def test_write_csv_matches_generated_dataset(tmp_path):
    config = dataclasses.replace(PRESETS["tiny"], n_users=5000, n_items=300, mean_history=8.0)
    path = tmp_path / "ratings.csv"
    written = write_synthetic_csv(config, path, chunk_users=10)
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert written == len(frame)
    ds = make_synthetic(config)
    assert written == ds.n_interactions
    frame = frame.sort_values(["user_id", "item_id"], kind="stable")
    assert np.array_equal(frame["item_id"].to_numpy() - 1, ds.interactions.indices)
    assert np.array_equal(frame["rating"].to_numpy(), ds.interactions.data)
    assert np.array_equal(frame["timestamp"].to_numpy(), ds.timestamps)
    assert not list(tmp_path.glob(".*partial"))
