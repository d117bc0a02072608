"""Honest evaluation by default: ``fit --holdout`` records the split, ``evaluate`` reuses it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from tastespace.cli import app
from tastespace.data import load_dataset
from tastespace.errors import DataError
from tastespace.evaluate.heldout import evaluate_bundle, fit_heldout
from tastespace.models.base import Recommender
from tastespace.models.baselines import EASE

runner = CliRunner()
TINY = "synthetic:tiny"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def write_ratings(folder):
    """The tiny catalog as a plain user,item,rating CSV plus an item file (ratings 1-5)."""
    ds = load_dataset(TINY)
    matrix = ds.interactions.tocoo()
    frame = pd.DataFrame(
        {
            "user": [f"u{u}" for u in ds.user_ids.raws(matrix.row)],
            "item": ds.item_ids.raws(matrix.col),
            "rating": matrix.data,
        }
    )
    ratings, items = folder / "ratings.csv", folder / "items.csv"
    frame.to_csv(ratings, index=False)
    catalog = ds.items.frame.assign(item=ds.item_ids.raws(range(ds.n_items)))
    catalog[["item", "title", "year"]].to_csv(items, index=False)
    return ratings, items


def test_python_api_records_and_reuses_the_split(tmp_path):
    run = fit_heldout(EASE(l2=50.0), load_dataset(TINY), holdout=30, seed=3)
    direct = run.evaluate()
    path = run.model.save(tmp_path / "ease")
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["split"]["protocol"] == "strong" and manifest["split"]["seed"] == 3
    assert manifest["split"]["n_heldout"] == 30
    assert manifest["data"] == {"source": TINY, "options": {}, "reloadable": True}
    result = evaluate_bundle(Recommender.load(path))
    assert result.trained_on == "train-split" and result.notes == []
    assert result.metrics == pytest.approx(direct)
    assert result.metrics["users"] == len(run.split.test) == 30


def test_cli_fit_holdout_then_evaluate_without_data(tmp_path, monkeypatch):
    ratings, items = write_ratings(tmp_path)
    bundle = tmp_path / "runs" / "ease"
    fitted = invoke(
        "fit",
        "-m",
        "ease",
        "-p",
        "l2=50",
        "--data",
        str(ratings),
        "--item-features",
        str(items),
        "--min-rating",
        "4",
        "--holdout",
        "30",
        "--split-seed",
        "2",
        "-o",
        str(bundle),
    )
    assert fitted.exit_code == 0, fitted.output
    assert "30 validation + 30 test users held out (seed 2)" in " ".join(fitted.stdout.split())
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["data"]["options"] == {"min_rating": 4.0, "item_features": str(items)}
    monkeypatch.chdir(tmp_path / "runs")  # the record holds absolute paths
    scored = invoke("evaluate", "ease", "--json")
    assert scored.exit_code == 0, scored.output
    doc = json.loads(scored.stdout)
    assert doc["trained_on"] == "train-split" and doc["seed"] == 2
    expected = fit_heldout(
        EASE(l2=50.0), load_dataset(ratings, item_features=items, min_rating=4), holdout=30, seed=2
    ).evaluate()
    assert doc["metrics"] == pytest.approx(expected)
    other = json.loads(invoke("evaluate", "ease", "--seed", "5", "--json").stdout)
    assert other["trained_on"] == "unknown"  # an explicit option replaces the record


def test_time_protocol_round_trip(tmp_path):
    bundle = tmp_path / "t"
    fitted = invoke(
        "fit",
        "-m",
        "ease",
        "--data",
        TINY,
        "--protocol",
        "time",
        "--cutoff",
        "0.7",
        "-o",
        str(bundle),
    )
    assert fitted.exit_code == 0, fitted.output
    doc = json.loads(invoke("evaluate", str(bundle), "--json").stdout)
    assert doc["protocol"] == "time" and doc["trained_on"] == "train-split"
    assert doc["split"]["cutoff"] == "0.7" and doc["metrics"]["users"] > 0


def test_bundle_fitted_on_everyone_is_flagged_optimistic(tmp_path):
    bundle = tmp_path / "all"
    assert invoke("fit", "-m", "popularity", "--data", TINY, "-o", str(bundle)).exit_code == 0
    result = invoke("evaluate", str(bundle))
    assert result.exit_code == 0 and "recall@20" in result.stdout
    assert "optimistic" in result.stderr
    assert "fit with --holdout N (fit_heldout)" in " ".join(result.stderr.split())


@pytest.mark.fault(
    "evaluate", "bundle fitted on a DataFrame, no --data", "DataError: pass the data (dataset)"
)
def test_dataframe_fit_needs_data_to_evaluate():
    frame = pd.DataFrame({"user": [1, 1, 2, 2, 3, 3] * 5, "item": list(range(30))})
    run = fit_heldout(EASE(l2=5.0), load_dataset(frame), holdout=1, seed=0)
    assert run.model.data_["reloadable"] is False
    with pytest.raises(DataError, match="in-memory table.*pass the data explicitly$") as err:
        evaluate_bundle(run.model)
    assert err.value.options == ("dataset",)  # the CLI adds "(option --data)"


@pytest.mark.fault("evaluate", "loader options without --data", "ConfigError: need --data")
def test_loader_options_need_data(tmp_path):
    bundle = tmp_path / "ease"
    invoke("fit", "-m", "ease", "--data", TINY, "--holdout", "30", "-o", str(bundle))
    result = invoke("evaluate", str(bundle), "--min-rating", "4")
    assert result.exit_code != 0 and "need --data" in str(result.exception)
