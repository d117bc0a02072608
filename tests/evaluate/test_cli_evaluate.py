"""``tastespace evaluate | benchmark | tune`` end to end on the tiny synthetic catalog."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tastespace.cli import app
from tastespace.errors import ConfigError, DataError

runner = CliRunner()
TINY = "synthetic:tiny"


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_benchmark_json_and_chart(tmp_path):
    png = tmp_path / "board.png"
    result = invoke(
        "benchmark",
        "--data",
        TINY,
        "--models",
        "popularity,ease",
        "--seeds",
        "2",
        "--n-heldout",
        "30",
        "--min-rating",
        "4",
        "-p",
        "ease.l2=30",
        "--json",
        "--png",
        str(png),
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [r["name"] for r in doc["rows"]] == ["ease", "popularity"]
    assert doc["rows"][0]["runs"][0]["params"] == {"l2": "30"}
    assert doc["protocol"]["seeds"] == [0, 1]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    progress = [line for line in result.stderr.splitlines() if "seed" in line]
    assert progress[0].startswith("[1/4] elapsed") and "ETA unknown" in progress[0]
    assert progress[-1].startswith("[4/4] elapsed") and "ETA 0:" in progress[-1]


def test_benchmark_table():
    result = invoke(
        "benchmark", "--data", TINY, "--models", "popularity", "--seeds", "1", "--n-heldout", "30"
    )
    assert result.exit_code == 0, result.output
    assert "R@20" in result.stdout and "popularity" in result.stdout


def test_benchmark_bad_param():
    result = invoke("benchmark", "--data", TINY, "--models", "ease", "-p", "l2=5")
    assert isinstance(result.exception, ConfigError)


def test_tune_then_evaluate_reproduces_the_test_metrics(tmp_path):
    bundle = tmp_path / "best"
    tuned = invoke(
        "tune",
        "--model",
        "ease",
        "--data",
        TINY,
        "--min-rating",
        "4",
        "--trials",
        "2",
        "--n-heldout",
        "30",
        "--seed",
        "1",
        "--out",
        str(bundle),
        "--json",
    )
    assert tuned.exit_code == 0, tuned.output
    tuned_doc = json.loads(tuned.stdout)
    assert tuned_doc["bundle"] and len(tuned_doc["trials"]) == 2
    scored = invoke(
        "evaluate",
        str(bundle),
        "--data",
        TINY,
        "--min-rating",
        "4",
        "--n-heldout",
        "30",
        "--seed",
        "1",
        "--json",
    )
    assert scored.exit_code == 0, scored.output
    doc = json.loads(scored.stdout)
    assert doc["trained_on"] == "train-split"
    assert doc["metrics"]["recall@20"] == pytest.approx(tuned_doc["test"]["recall@20"])
    assert doc["metrics"]["ndcg@100"] == pytest.approx(tuned_doc["test"]["ndcg@100"])


def test_evaluate_warns_when_the_bundle_saw_the_test_users(tmp_path):
    bundle = tmp_path / "pop"
    assert (
        invoke("fit", "--model", "popularity", "--data", TINY, "--out", str(bundle)).exit_code == 0
    )
    result = invoke("evaluate", str(bundle), "--data", TINY, "--protocol", "temporal")
    assert result.exit_code == 0, result.output
    assert "optimistic" in result.stderr
    assert "recall@20" in result.stdout


def test_evaluate_refuses_another_catalog(tmp_path):
    bundle = tmp_path / "pop"
    invoke("fit", "--model", "popularity", "--data", TINY, "--out", str(bundle))
    result = invoke("evaluate", str(bundle), "--data", "synthetic:users=300,items=150,seed=3")
    assert isinstance(result.exception, DataError)
    assert "catalog" in str(result.exception)


def test_tune_unknown_kind():
    result = invoke("tune", "--model", "popularity", "--data", TINY)
    assert isinstance(result.exception, ConfigError)
