"""Projections: shapes, determinism per seed, bad input, and the per-bundle cache."""

from __future__ import annotations

import numpy as np
import pytest

from tastespace.errors import ConfigError, DataError
from tastespace.viz import projection
from tastespace.viz.projection import cache_path, cached_project, project


@pytest.fixture(scope="module")
def vectors():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 12)) * 4
    return (np.repeat(centres, 40, axis=0) + rng.normal(size=(160, 12))).astype(np.float32)


@pytest.mark.parametrize("method", ["pca", "tsne", pytest.param("umap", marks=pytest.mark.slow)])
def test_same_seed_same_layout(vectors, method):
    first = project(vectors, method, seed=1)
    again = project(vectors, method, seed=1)
    assert first.shape == (len(vectors), 2)
    assert first.dtype == np.float32
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, again)
    if method != "pca":  # PCA has no randomness to seed
        assert not np.allclose(first, project(vectors, method, seed=2))


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_layout_keeps_planted_clusters(vectors, method):
    from tastespace.viz.purity import knn_purity

    labels = np.repeat(np.arange(4), 40)
    assert knn_purity(project(vectors, method), labels, k=5) > 0.95


def test_pca_of_one_dimension_gets_a_zero_axis():
    coords = project(np.arange(10, dtype=np.float32)[:, None], "pca", metric="euclidean")
    assert coords.shape == (10, 2)
    assert np.all(coords[:, 1] == 0)


def test_bad_input_is_a_clear_error(vectors):
    with pytest.raises(ConfigError, match="unknown projection method 'mds'"):
        project(vectors, "mds")
    with pytest.raises(DataError, match="at least 4"):
        project(vectors[:3], "pca")
    with pytest.raises(DataError, match="NaN"):
        project(np.full((10, 3), np.nan, np.float32), "pca")


def test_cache_is_reused_and_invalidated_by_new_vectors(vectors, tmp_path, monkeypatch):
    first = cached_project(tmp_path, vectors, "pca", seed=0)
    path = cache_path(tmp_path, "pca", 0)
    assert path == tmp_path / "projections" / "pca-0.npy"
    np.testing.assert_array_equal(np.load(path), first)

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(projection, "project", fail)
    np.testing.assert_array_equal(cached_project(tmp_path, vectors, "pca", seed=0), first)
    with pytest.raises(AssertionError, match="recomputed"):
        cached_project(tmp_path, vectors * -1.0, "pca", seed=0)
    assert cache_path(tmp_path, "umap", 0, n_neighbors=5) != cache_path(tmp_path, "umap", 0)


def test_bundle_with_a_cached_projection_still_loads(neural2d, bundle):
    from tastespace.models.base import Recommender

    coords = cached_project(bundle, neural2d.item_vectors(), "pca")
    assert (bundle / "projections" / "pca-0.npy").is_file()
    loaded = Recommender.load(bundle)
    np.testing.assert_allclose(loaded.item_vectors(), neural2d.item_vectors(), atol=1e-6)
    np.testing.assert_array_equal(cached_project(bundle, loaded.item_vectors(), "pca"), coords)
