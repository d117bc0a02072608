"""Shared fixtures: small planted datasets and the location of the real MovieLens zips."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_MOVIELENS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "movielens"


def movielens_zip(name: str) -> Path:
    """Path of a real GroupLens zip, or skip the test saying why."""
    path = SHARED_MOVIELENS / f"{name}.zip"
    if not path.exists():
        pytest.skip(f"{path} not present (real MovieLens copies live in ../shared/data/movielens)")
    return path


@pytest.fixture(scope="session")
def planted():
    """A small synthetic catalog with strong planted genre structure (few genres, little noise)."""
    from tastespace.data import load_dataset

    return load_dataset("synthetic:users=600,items=180,genres=6,noise=0.05,seed=7")


@pytest.fixture(scope="session")
def planted_split(planted):
    from tastespace.data.splits import strong_generalization

    return strong_generalization(planted, n_heldout=60, seed=0)
