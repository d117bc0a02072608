"""k-NN genre purity on planted layouts: clusters score high, shuffled labels score chance."""

from __future__ import annotations

import numpy as np
import pytest

from tastespace.errors import DataError
from tastespace.viz.purity import knn_purity, neighbours, purity_report


def planted(n_per: int = 100, groups: int = 5, spread: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-20, 20, size=(groups, 2))
    coords = np.repeat(centres, n_per, axis=0) + rng.normal(scale=spread, size=(groups * n_per, 2))
    return coords, np.repeat([f"g{g}" for g in range(groups)], n_per)


def test_separated_clusters_are_pure_and_shuffled_is_chance():
    coords, labels = planted()
    report = purity_report(coords, labels, k=10, seed=0)
    assert report.purity == pytest.approx(1.0)
    # five equal groups: a random neighbour shares the label with probability ~ (100-1)/499
    assert report.shuffled == pytest.approx(99 / 499, abs=0.03)
    assert report.lift > 4


def test_random_layout_has_no_structure():
    coords, labels = planted()
    coords = np.random.default_rng(1).uniform(size=coords.shape)
    report = purity_report(coords, labels, k=10)
    assert abs(report.purity - report.shuffled) < 0.04


def test_shuffle_is_seeded():
    coords, labels = planted(spread=8.0)
    assert purity_report(coords, labels, seed=4) == purity_report(coords, labels, seed=4)


def test_neighbours_exclude_self_even_with_duplicate_points():
    coords = np.zeros((6, 2))
    ids = neighbours(coords, k=3)
    assert ids.shape == (6, 3)
    assert not np.any(ids == np.arange(6)[:, None])


def test_cosine_neighbours_in_high_dimensions():
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(3, 20))
    scale = rng.uniform(0.5, 5, size=(90, 1))  # lengths vary, directions cluster
    x = np.repeat(directions, 30, axis=0) * scale + rng.normal(scale=0.05, size=(90, 20))
    labels = np.repeat([0, 1, 2], 30)
    assert knn_purity(x, labels, k=5, metric="cosine") == pytest.approx(1.0)


def test_label_count_must_match():
    with pytest.raises(DataError, match="one label per point"):
        knn_purity(np.zeros((4, 2)), ["a", "b"])
