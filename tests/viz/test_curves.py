"""`tastespace curves`: the recorded per-epoch history as PNG, TensorBoard scalars and JSON."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tastespace.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def neural_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("curves") / "neural"
    result = runner.invoke(
        app,
        [
            "fit",
            "--data",
            "synthetic:tiny",
            "--out",
            str(out),
            "-p",
            "epochs=3",
            "-p",
            "dim=8",
            "-p",
            "patience=10",
        ],
    )
    assert result.exit_code == 0, result.output
    return out


def test_json_is_the_manifest_history(neural_bundle):
    manifest = json.loads((neural_bundle / "manifest.json").read_text())
    result = runner.invoke(app, ["curves", str(neural_bundle), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["history"] == manifest["extra"]["train_report"]["history"]
    assert [row["epoch"] for row in report["history"]] == [1, 2, 3]


def test_png_and_tensorboard_scalars(neural_bundle, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    png, logdir = tmp_path / "curves.png", tmp_path / "tb"
    result = runner.invoke(
        app, ["curves", str(neural_bundle), "--out", str(png), "--tensorboard", str(logdir)]
    )
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = EventAccumulator(str(logdir))
    events.Reload()
    history = json.loads((neural_bundle / "manifest.json").read_text())["extra"]["train_report"][
        "history"
    ]
    losses = [scalar.value for scalar in events.Scalars("loss")]
    assert losses == pytest.approx([row["loss"] for row in history], rel=1e-6)
    assert [scalar.step for scalar in events.Scalars("loss")] == [1, 2, 3]


@pytest.mark.fault(
    "cli",
    "curves on a bundle with no training history (ease)",
    "one line naming the model kind, exit 2",
)
def test_bundle_without_history_is_one_line(tmp_path):
    out = tmp_path / "ease"
    assert (
        runner.invoke(
            app, ["fit", "--model", "ease", "--data", "synthetic:tiny", "--out", str(out)]
        ).exit_code
        == 0
    )
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "tastespace", "curves", str(out)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "ease bundle records no per-epoch training history" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
