"""``tastespace map`` and ``tastespace export`` through the real Typer app."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from tastespace.cli import app
from tastespace.errors import BundleError, ConfigError

runner = CliRunner()


def test_map_writes_png_html_and_caches_the_projection(bundle, tmp_path):
    result = runner.invoke(
        app,
        [
            "map",
            str(bundle),
            "--method",
            "pca",
            "--out",
            str(tmp_path / "m.png"),
            "--html",
            str(tmp_path / "m.html"),
            "--labels",
            "10",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    assert "<canvas" in (tmp_path / "m.html").read_text(encoding="utf-8")
    assert (bundle / "projections" / "pca-0.npy").is_file()
    stages = [line.split("] ", 1)[1] for line in result.stderr.splitlines() if line.startswith("[")]
    assert stages[0].startswith("laying out") and "with PCA" in stages[0]
    assert stages[1:] == ["drawing the PNG", "finding 10 neighbours per item for the page", "done"]


def test_map_feature_draws_the_genre_plane(bundle, tmp_path):
    out = tmp_path / "genres.png"
    result = runner.invoke(app, ["map", str(bundle), "--feature", "genre", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_export_round_trip_through_the_cli(bundle, neural2d, tmp_path):
    result = runner.invoke(
        app, ["export", str(bundle), "--format", "npy", "--out", str(tmp_path / "v")]
    )
    assert result.exit_code == 0, result.output
    vectors = np.load(tmp_path / "v" / "vectors.npy", allow_pickle=False)
    np.testing.assert_allclose(vectors, neural2d.item_vectors(), atol=1e-6)


@pytest.mark.parametrize(
    "args, error, message",
    [
        (["map", "{bundle}", "--method", "mds", "--out", "x.png"], ConfigError, "--method 'mds'"),
        (["map", "{bundle}", "--feature", "colour", "--out", "x.png"], ConfigError, "colour"),
        (["map", "{bundle}"], ConfigError, "nothing to write"),
        (["map", "{missing}", "--out", "x.png"], BundleError, "not a tastespace bundle"),
        (["export", "{bundle}", "--format", "csv", "--out", "x"], ConfigError, "'csv'"),
        (["export", "{missing}", "--format", "npy", "--out", "x"], BundleError, "bundle"),
    ],
)
def test_bad_input_raises_tastespace_errors(bundle, tmp_path, args, error, message):
    filled = [a.format(bundle=bundle, missing=tmp_path / "nope") for a in args]
    result = runner.invoke(app, filled)
    assert isinstance(result.exception, error)
    assert message in str(result.exception)
    assert "\n" not in str(result.exception)


def test_main_turns_errors_into_exit_code_2(tmp_path):
    code = (
        "import sys; from tastespace.cli import main; "
        f"sys.argv = ['tastespace', 'map', {str(tmp_path / 'nope')!r}, '--method', 'mds', "
        "'--out', 'x.png']; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown --method 'mds'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_map_top_caches_its_own_layout(bundle, tmp_path):
    result = runner.invoke(
        app,
        ["map", str(bundle), "--method", "pca", "--top", "50", "--out", str(tmp_path / "t.png")],
    )
    assert result.exit_code == 0, result.output
    assert (bundle / "projections" / "pca-0-top50.npy").is_file()
