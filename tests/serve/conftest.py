"""Bundles for the API and explorer tests, trained once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")


@pytest.fixture(scope="session")
def tiny():
    from tastespace.data import load_dataset

    return load_dataset("synthetic:tiny")


@pytest.fixture(scope="session")
def neural_bundle(tiny, tmp_path_factory) -> Path:
    from tastespace.models.neural import NeuralRecommender

    path = tmp_path_factory.mktemp("bundles") / "neural"
    NeuralRecommender(epochs=3, dim=16, hidden=32).fit(tiny).save(path)
    return path


@pytest.fixture(scope="session")
def ease_bundle(tiny, tmp_path_factory) -> Path:
    from tastespace.models.baselines import EASE

    path = tmp_path_factory.mktemp("bundles") / "ease"
    EASE(l2=50.0).fit(tiny).save(path)
    return path


@pytest.fixture(scope="session")
def movie_bundles(tmp_path_factory) -> dict[str, Path]:
    """Two EASE bundles (different ridge strengths) over the planted movie catalog."""
    from tastespace.data import load_dataset
    from tastespace.models.baselines import EASE
    from tests.serve.movies import write_movies

    folder = tmp_path_factory.mktemp("movies")
    ratings, items = write_movies(folder)
    dataset = load_dataset(ratings, item_features=items)
    out = {}
    for name, l2 in (("ease", 10.0), ("ease-strong", 200.0)):
        out[name] = EASE(l2=l2).fit(dataset).save(folder / name)
    return out
