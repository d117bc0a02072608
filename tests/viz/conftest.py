"""A tiny neural bundle with a 2-D genre table, trained once for the viz and CLI tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny():
    from tastespace.data import load_dataset

    return load_dataset("synthetic:tiny")


@pytest.fixture(scope="session")
def neural2d(tiny):
    from tastespace.models.neural import NeuralRecommender

    return NeuralRecommender(epochs=3, dim=16, hidden=32, genre_dim=2).fit(tiny)


@pytest.fixture(scope="session")
def bundle(neural2d, tmp_path_factory):
    return neural2d.save(tmp_path_factory.mktemp("viz") / "neural")
