"""``fit`` progress: one event stream from every model, as a bar, JSON Lines, or nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tastespace.cli.progress import describe
from tastespace.models.progress import Progress


def _fit(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tastespace", "fit", "--data", "synthetic:tiny", "--out",
         str(tmp_path / "bundle"), *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def _events(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith('{"event"')]


def test_label_names_stage_loss_best_score_and_eta():
    event = Progress(3, 50, 2, 10, 0.4123, 8.0, best_score=0.312)
    assert describe(event) == "epoch 3/50 · loss 0.412 · best val R@20 0.3120 · ETA 0:32"
    solve = Progress(2, 2, 1, 3, float("nan"), 60.0, stage="solve")
    assert describe(solve) == "solve 2/2 · ETA 2:00"
    assert describe(Progress(1, 1, 4, 4, 0.5, 1.0, scored=True, stage="sweeps")) == (
        "sweeps · loss 0.500"
    )


@pytest.mark.parametrize(
    ("model", "options", "stages"),
    [
        ("ease", [], ["gram", "solve"]),
        ("als", ["-p", "iterations=3"], ["sweeps"]),
        ("item2vec", ["--epochs", "2", "--dim", "8"], ["epoch", "epoch"]),
        ("glove", ["--epochs", "2", "--dim", "8"], ["co-occurrence", "epoch", "epoch"]),
    ],
)
def test_json_progress_goes_to_stderr_and_the_result_to_stdout(tmp_path, model, options, stages):
    done = _fit(tmp_path, "--model", model, "--json", *options)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # stdout: exactly the one result object
    assert result["kind"] == model
    events = _events(done.stderr)
    assert [e["stage"] for e in events if e["scored"]] == stages
    for e in events:
        assert 0 < e["batch"] <= e["batches"] and e["seconds"] >= 0
        assert e["eta_seconds"] is None or e["eta_seconds"] >= 0


def test_neural_reports_batches_and_the_best_validation_score(tmp_path):
    done = _fit(tmp_path, "--epochs", "2", "--json", "-p", "batch_size=64")
    assert done.returncode == 0, done.stderr
    scored = [e for e in _events(done.stderr) if e["scored"]]
    assert [e["epoch"] for e in scored] == [1, 2]
    assert all(e["batch"] == e["batches"] > 1 for e in scored)
    assert all(e["loss"] is not None for e in scored)


def test_quiet_silences_progress(tmp_path):
    done = _fit(tmp_path, "--model", "ease", "--json", "--quiet")
    assert done.returncode == 0, done.stderr
    assert _events(done.stderr) == [] and json.loads(done.stdout)["kind"] == "ease"
