"""Cold items served: new items described by features only join a bundle's catalog."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

import tastespace
from tastespace.cli import main
from tastespace.errors import ConfigError, DataError
from tastespace.models.baselines import EASE
from tastespace.models.neural import NeuralRecommender

FAST = dict(epochs=6, dim=16, hidden=32, seed=0)


@pytest.fixture(scope="module")
def fitted(planted):
    return NeuralRecommender(**FAST).fit(planted)


@pytest.fixture(scope="module")
def bundle(fitted, tmp_path_factory):
    return fitted.save(tmp_path_factory.mktemp("cold") / "neural")


def genre_of(planted, genre: str) -> pd.DataFrame:
    """The planted items of one genre (the group a new item should join)."""
    frame = planted.items.frame
    return frame[frame["planted_genre"] == genre]


def new_items(planted, genre: str, n: int = 2) -> pd.DataFrame:
    """Items that look like the planted ``genre``'s: its genre bag and its typical numerics."""
    group = genre_of(planted, genre)
    return pd.DataFrame(
        {
            "item": [f"new-{k}" for k in range(n)]
            if planted.item_ids.ids.dtype.kind == "O"
            else [10_000 + k for k in range(n)],
            "title": [f"Brand New {genre} Film {k} (2030)" for k in range(n)],
            "genres": [genre] * n,
            "year": [float(group["year"].median()) + k for k in range(n)],
            "runtime": [float(group["runtime"].median())] * n,
        }
    )


def test_a_new_item_lands_among_its_group(fitted, planted):
    genre = planted.items.frame["planted_genre"].iloc[0]
    session = tastespace.open(fitted)
    added = session.add_items(new_items(planted, genre))
    assert added.ids == [10_000, 10_001] and added.unseen == {}
    neighbours = session.similar(10_000, k=10)
    planted_genre = dict(
        zip(session.catalog["item"], session.catalog["planted_genre"], strict=True)
    )
    share = np.mean([planted_genre[item] == genre for item in neighbours["item"]])
    assert share >= 0.8, f"{share:.0%} of the new item's neighbours are {genre}"
    recs = session.recommend(history=genre_of(planted, genre).index[:8].to_numpy() + 1, k=20)
    assert 10_000 in set(recs["item"]) or 10_001 in set(recs["item"])


def test_new_items_get_the_content_vector_and_bias(fitted, planted):
    table = new_items(planted, planted.items.frame["planted_genre"].iloc[3])
    session = tastespace.open(fitted)
    session.add_items(table)
    grown = session.model
    vectors, bias = fitted.embed_items(grown.items_.take(np.arange(planted.n_items, grown.n_items)))
    np.testing.assert_allclose(grown.item_vectors()[planted.n_items :], vectors, atol=1e-6)
    np.testing.assert_allclose(grown.item_bias()[planted.n_items :], bias, atol=1e-6)
    assert np.any(bias != 0)
    np.testing.assert_array_equal(grown.item_vectors()[: planted.n_items], fitted.item_vectors())
    assert fitted.n_items == planted.n_items  # the original model is untouched


def test_add_items_cli_writes_a_bundle_that_serves_them(
    bundle, planted, tmp_path, capsys, monkeypatch
):
    path = tmp_path / "new_items.csv"
    table = new_items(planted, planted.items.frame["planted_genre"].iloc[0])
    table.loc[1, "genres"] = "Space Opera|" + table.loc[1, "genres"]
    table.to_csv(path, index=False)
    out = tmp_path / "grown"
    monkeypatch.setattr(
        sys, "argv", ["tastespace", "add-items", str(bundle), str(path), "-o", str(out)]
    )
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    assert exited.value.code in (0, None), captured.err
    assert "added 2 items" in captured.out
    assert "1 unseen value of genres (1 item): 'Space Opera'" in captured.out
    grown = tastespace.open(out)
    assert grown.model.n_items == planted.n_items + 2
    frame = grown.similar(10_001, k=3)
    assert len(frame) == 3
    assert grown.catalog.set_index("item").loc[10_001, "genres"][0] == "Space Opera"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["extra"]["module_items"] == planted.n_items


@pytest.mark.fault("add-items", "an id already in the catalog", "DataError naming the id")
def test_known_id_is_refused(fitted, planted):
    table = new_items(planted, planted.items.frame["planted_genre"].iloc[0])
    table.loc[0, "item"] = int(planted.item_ids.raw(5))
    with pytest.raises(DataError, match=r"already in the catalog \(e\.g\. \[6\]\)"):
        tastespace.open(fitted).add_items(table)


@pytest.mark.fault("add-items", "a model without a content path", "ConfigError naming the model")
def test_models_without_features_cannot_embed_new_items(planted):
    session = tastespace.open(EASE(l2=50.0).fit(planted))
    with pytest.raises(ConfigError, match="ease learns item vectors from interactions only"):
        session.add_items(new_items(planted, "Drama"))


@pytest.mark.fault("add-items", "a column the catalog lacks", "DataError naming it")
def test_unknown_column_is_refused(fitted, planted):
    table = new_items(planted, planted.items.frame["planted_genre"].iloc[0])
    table["budget"] = 1.0
    with pytest.raises(DataError, match=r"column\(s\) \['budget'\] the catalog lacks"):
        tastespace.open(fitted).add_items(table)


def test_identical_features_tie_in_catalog_order(fitted, planted):
    table = new_items(planted, planted.items.frame["planted_genre"].iloc[0], n=3)
    table["year"] = table["year"].iloc[0]  # three indistinguishable items
    session = tastespace.open(fitted)
    session.add_items(table)
    frame = session.similar(10_001, k=2)
    assert frame["item"].tolist() == [10_000, 10_002]
    assert np.allclose(frame["score"], 1.0, atol=1e-5)
