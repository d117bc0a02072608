"""Item resolution by raw id, exact title, title without year, and fuzzy match."""

from __future__ import annotations

import numpy as np
import pytest

from tastespace.data.catalog import AmbiguousItemError, ItemResolver
from tastespace.data.vocab import Vocabulary
from tastespace.errors import UnknownIdError

TITLES = ["Toy Story (1995)", "Toy Story 2 (1999)", "Heat (1995)", "Heat (2013)", "Jumanji (1995)"]


@pytest.fixture
def resolver():
    return ItemResolver(Vocabulary([1, 3113, 6, 900, 2]), TITLES)


def test_raw_id_wins_and_string_ids_are_coerced(resolver):
    assert resolver.resolve(6) == 2
    assert resolver.resolve("3113") == 1


def test_exact_title_and_title_without_year(resolver):
    assert resolver.resolve("toy story (1995)") == 0
    assert resolver.resolve("Toy Story") == 0
    assert resolver.resolve("Jumanji") == 4


def test_ambiguous_title_lists_candidates(resolver):
    with pytest.raises(AmbiguousItemError, match=r"Heat \(1995\).*Heat \(2013\)") as info:
        resolver.resolve("Heat")
    assert [index for index, _ in info.value.candidates] == [2, 3]


def test_fuzzy_match_and_unknown(resolver):
    assert resolver.resolve("Jumanjii") == 4
    with pytest.raises(UnknownIdError, match="no item matches"):
        resolver.resolve("Casablanca")
    with pytest.raises(KeyError):
        resolver.resolve("Casablanca")


def test_search_orders_shorter_titles_first(resolver):
    assert resolver.search("toy") == [0, 1]
    assert resolver.search("") == []


def test_resolve_many_can_skip_unknown(resolver):
    assert resolver.resolve_many(["Heat (1995)", "nope"], skip_unknown=True).tolist() == [2]
    with pytest.raises(UnknownIdError):
        resolver.resolve_many(["nope"])


def test_item_catalog_falls_back_to_raw_ids_and_drops_padding():
    import pandas as pd

    from tastespace.data.catalog import ItemCatalog
    from tastespace.data.dataset import FeatureTable
    from tastespace.data.vocab import Vocabulary

    catalog = ItemCatalog.from_table(
        Vocabulary(["a1", "b2"]), FeatureTable(pd.DataFrame(index=[0, 1]))
    )
    assert catalog.titles == ["a1", "b2"] and catalog.genre_lists() == [[], []]
    assert catalog.year_list() == [None, None]
    records = catalog.records(np.array([1, -1]), np.array([0.25, -np.inf]))
    assert records == [{"id": "b2", "title": "b2", "genres": [], "score": 0.25}]


def test_dataset_model_and_catalog_agree():
    from tastespace.data import load_dataset
    from tastespace.models.baselines import Popularity

    ds = load_dataset("synthetic:tiny")
    model = Popularity().fit(ds)
    assert model.catalog().titles == ds.titles() == ds.catalog().titles
    assert model.catalog().record(3) == ds.catalog().record(3)
    assert model.catalog() is model.catalog()  # derived once per fit
