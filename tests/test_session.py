"""The raw-id front door (``tastespace.open``): raw ids and titles in, DataFrames out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tastespace
from tastespace.data.catalog import AmbiguousItemError
from tastespace.errors import ConfigError, DataError, UnknownIdError
from tastespace.models.baselines import EASE
from tastespace.models.histories import ItemIndices
from tests.serve.movies import CLUSTERS, write_movies

FAMILY = [title for title, _ in CLUSTERS["family"]]
CRIME = [title for title, _ in CLUSTERS["crime"]]


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    ratings, items = write_movies(tmp_path_factory.mktemp("movies"))
    return tastespace.load_dataset(ratings, item_features=items)


@pytest.fixture(scope="module")
def model(movies):
    return EASE(l2=10.0).fit(movies)


@pytest.fixture(scope="module")
def session(model):
    return tastespace.open(model)


def test_raw_ids_are_not_indices(session, model, movies):
    # MovieLens-style ids start at 1; index 0 is id 1. The front door must not be off by one.
    frame = session.recommend(history=[1, 2, 3], k=5)
    ids, scores = model.recommend(ItemIndices(movies.item_ids.indices([1, 2, 3])), k=5)
    assert frame["item"].tolist() == movies.item_ids.raws(ids)
    np.testing.assert_allclose(frame["score"].to_numpy(), scores, rtol=1e-6)
    assert frame.columns.tolist() == ["item", "title", "score", "genres", "fallback"]


def test_titles_resolve_and_answers_stay_in_taste(session):
    frame = session.recommend(history=["Toy Story (1995)", "aladdin", "Lion King"], k=3)
    assert set(frame["title"]) <= set(FAMILY)
    assert not set(frame["title"]) & {"Toy Story (1995)", "Aladdin (1992)"}  # seen excluded
    kept = session.recommend(history=["Toy Story (1995)"], k=24, include_seen=True)
    assert "Toy Story (1995)" in set(kept["title"])


@pytest.mark.fault("session", "unknown raw id", "KeyError naming the id")
def test_unknown_id_raises_a_key_error_naming_it(session):
    with pytest.raises(KeyError, match="9999"):
        session.recommend(history=[1, 9999])
    with pytest.raises(UnknownIdError, match="Casablanca"):
        session.similar("Casablanca")


@pytest.mark.fault("session", "unknown raw id with unknown='skip'", "skipped and listed")
def test_skip_policy_lists_what_it_skipped(session):
    frame = session.recommend(history=[1, 9999, "Casablanca"], k=4, unknown="skip")
    assert frame.attrs["skipped"] == [9999, "Casablanca"]
    assert frame["item"].tolist() == session.recommend(history=[1], k=4)["item"].tolist()
    with pytest.raises(ConfigError, match="'error' or 'skip'"):
        session.recommend(history=[1], unknown="ignore")


@pytest.mark.fault("session", "ambiguous title", "error listing the candidates")
def test_ambiguous_title_lists_candidates(session):
    with pytest.raises(AmbiguousItemError, match=r"\(1995\).*\[id \d+\].*be more specific"):
        session.recommend(history=["1995"])


@pytest.mark.fault("session", "empty history", "popularity fallback, flagged")
def test_empty_history_falls_back_to_popularity(session, movies):
    frame = session.recommend(history=[], k=5)
    counts = np.diff(movies.interactions.tocsc().indptr)
    expected = np.argsort(-counts, kind="stable")[:5]
    assert frame["fallback"].all()
    assert frame["item"].tolist() == movies.item_ids.raws(expected)
    skipped = session.recommend(history=["Casablanca"], k=5, unknown="skip")
    assert skipped["fallback"].all() and skipped.attrs["skipped"] == ["Casablanca"]


def test_exclude_and_filter(session):
    base = session.recommend(history=["Heat (1995)"], k=3)
    first = base["item"].iloc[0]
    without = session.recommend(history=["Heat (1995)"], k=3, exclude=[first])
    assert first not in set(without["item"]) and without["item"].iloc[0] == base["item"].iloc[1]
    crime_only = session.recommend(
        history=["Toy Story (1995)"], k=5, filter=lambda c: c["genres"].map(lambda g: "Crime" in g)
    )
    assert len(crime_only) == 5 and all("Crime" in g for g in crime_only["genres"])
    listed = session.recommend(history=["Toy Story (1995)"], k=10, filter=["Heat", "Casino"])
    assert set(listed["title"]) == {"Heat (1995)", "Casino (1995)"}


@pytest.mark.fault("session", "filter returns the wrong shape", "DataError saying what to return")
def test_bad_filter_is_a_clear_error(session):
    with pytest.raises(DataError, match="one True/False per catalog item"):
        session.recommend(history=[1], filter=lambda c: [True])


def test_similar_is_a_frame_of_neighbours(session):
    frame = session.similar("Heat (1995)", k=4)
    assert frame.columns.tolist() == ["item", "title", "score", "genres"]
    assert set(frame["title"]) <= set(CRIME) and "Heat (1995)" not in set(frame["title"])
    assert frame["score"].is_monotonic_decreasing


def test_vectors_are_keyed_by_raw_id(session, model, movies):
    items = session.item_vectors()
    assert items.index.name == "item" and items.index.tolist() == movies.item_ids.raws(
        np.arange(movies.n_items)
    )
    np.testing.assert_array_equal(items.to_numpy(), model.item_vectors())
    with pytest.raises(NotImplementedError):  # EASE has item rows but no user vectors
        session.user_vectors({"ann": [1, 2]})


def test_user_vectors_fold_in_by_raw_id(movies):
    from tastespace.models.cooccurrence import PPMISVD

    fitted = PPMISVD(dim=4).fit(movies)
    frame = tastespace.open(fitted).user_vectors({"ann": ["Heat (1995)", 8], "bob": []})
    assert frame.index.tolist() == ["ann", "bob"] and frame.shape == (2, 4)
    expected = fitted.user_vectors(ItemIndices([movies.item_ids.indices(["7", 8]), []]))
    np.testing.assert_allclose(frame.to_numpy(), expected, rtol=1e-6)


def test_bundle_and_model_answer_alike(session, model, tmp_path):
    loaded = tastespace.open(model.save(tmp_path / "ease"))
    assert loaded.name == "ease"
    pd.testing.assert_frame_equal(
        loaded.recommend(history=[1, 7], k=5), session.recommend(history=[1, 7], k=5)
    )
    pd.testing.assert_frame_equal(loaded.recommend(history=[], k=3), session.recommend(k=3))


@pytest.mark.fault("session", "not a bundle or model", "ConfigError naming the type")
def test_open_refuses_other_things():
    with pytest.raises(ConfigError, match="bundle directory or a fitted model, not int"):
        tastespace.open(3)


def test_filtered_answers_do_not_depend_on_the_batch(session):
    def drama(items):
        return items["genres"].map(lambda genres: "Drama" in genres)

    many = session.recommend_many({user: [user] for user in range(1, 21)}, k=3, filter=drama)
    assert set(many["user"]) == set(range(1, 21))
    for user in (1, 16, 17, 20):
        alone = session.recommend(history=[user], k=3, filter=drama)
        mine = many[many["user"] == user]
        assert mine["item"].tolist() == alone["item"].tolist()
        np.testing.assert_array_equal(mine["score"].to_numpy(), alone["score"].to_numpy())


def test_lenient_batch_answers_the_users_it_can(session):
    answers = session.answer(
        [("a", FAMILY[:2]), ("b", ["no such movie"]), ("c", "not a list")], k=3, skip_unknown=True
    )
    assert [a.user for a in answers] == ["a", "b", "c"]
    assert answers[0].items and answers[0].error is None
    assert answers[1].fallback and answers[1].skipped == ["no such movie"]  # all unknown: popular
    assert answers[2].items == [] and "must be a list" in answers[2].error
    with pytest.raises(DataError, match="must be a list"):
        session.answer([("a", FAMILY[:2]), ("c", "not a list")], k=3)
