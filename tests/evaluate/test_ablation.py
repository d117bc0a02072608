"""Feature ablation: a planted feature helps cold start; shuffling or removing it does not."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from tastespace.cli import app
from tastespace.data import load_dataset
from tastespace.errors import DataError
from tastespace.evaluate.ablation import feature_groups, shuffled, variants, without_group

runner = CliRunner()
DATA = "synthetic:users=400,items=300,genres=5,noise=0.05,seed=4"


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(DATA)


def test_variants_remove_exactly_one_group(dataset):
    table = dataset.items
    assert feature_groups(table) == ["genres", "numeric"]
    assert "genres" not in without_group(table, "genres").bags
    assert "year" not in without_group(table, "numeric").frame
    assert list(variants(table, 0)) == ["all", "no genres", "no numeric", "shuffled", "none"]
    with pytest.raises(DataError, match="no feature group 'tags'"):
        without_group(table, "tags")


def test_shuffling_moves_features_but_keeps_titles(dataset):
    table = dataset.items
    moved = shuffled(table, seed=0)
    assert moved.frame["title"].tolist() == table.frame["title"].tolist()
    assert sorted(moved.frame["year"]) == sorted(table.frame["year"])
    assert (moved.frame["year"].to_numpy() != table.frame["year"].to_numpy()).mean() > 0.5
    assert moved.bags["genres"].to_csr().sum() == table.bags["genres"].to_csr().sum()


@pytest.mark.slow
def test_the_planted_genre_feature_carries_cold_start():
    result = runner.invoke(
        app,
        [
            "ablate",
            "--data",
            DATA,
            "--seeds",
            "1",
            "--cold-fraction",
            "0.3",
            "-p",
            "epochs=12",
            "-p",
            "dim=16",
            "-p",
            "hidden=32",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    cold = {name: row["cold recall@20"] for name, row in rows.items()}
    assert cold["all"] > cold["shuffled"] + 0.1, cold
    assert cold["all"] > cold["no genres"] + 0.1, cold
    assert np.isfinite(rows["all"]["warm recall@20"])


@pytest.mark.fault(
    "cli",
    "ablate on a catalog without item features",
    "one line: no item features to ablate; exit 2",
)
def test_no_features_is_a_clear_error(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "plain.csv"
    path.write_text(
        "user,item,rating\n"
        + "".join(f"{u},{i},5\n" for u in range(30) for i in range(u % 5, u % 5 + 6))
    )
    result = subprocess.run(
        [sys.executable, "-m", "tastespace", "ablate", "--data", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "no item features to ablate" in result.stderr
    assert "Traceback" not in result.stderr
