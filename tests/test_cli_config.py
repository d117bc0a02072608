"""`fit --config`, `fit --from` and `tune --config-out`: a run's options as data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tastespace.cli import app

runner = CliRunner()
DATA = "synthetic:tiny"


def manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def fit(*args: str) -> None:
    result = runner.invoke(app, ["fit", *args])
    assert result.exit_code == 0, result.output


def test_config_file_sets_every_option_and_flags_win(tmp_path):
    config = tmp_path / "fit.toml"
    config.write_text(f'data = "{DATA}"\nmodel = "ease"\nseed = 3\n\n[params]\nl2 = 30\n')
    fit("--config", str(config), "--out", str(tmp_path / "a"))
    assert manifest(tmp_path / "a")["kind"] == "ease"
    options = manifest(tmp_path / "a")["config"]
    assert (options["seed"], options["l2"]) == (3, 30.0)
    fit("--config", str(config), "-p", "l2=5", "--seed", "4", "--out", str(tmp_path / "b"))
    assert manifest(tmp_path / "b")["config"]["l2"] == 5.0
    assert manifest(tmp_path / "b")["config"]["seed"] == 4


def test_from_bundle_reruns_its_kind_and_options(tmp_path):
    fit(
        "--data",
        DATA,
        "--model",
        "als",
        "-p",
        "factors=6",
        "-p",
        "iterations=3",
        "--out",
        str(tmp_path / "first"),
    )
    fit("--from", str(tmp_path / "first"), "--data", DATA, "--out", str(tmp_path / "again"))
    first, again = manifest(tmp_path / "first"), manifest(tmp_path / "again")
    assert again["kind"] == "als" and again["config"] == first["config"]
    fit(
        "--from",
        str(tmp_path / "first"),
        "--data",
        DATA,
        "-p",
        "factors=4",
        "--out",
        str(tmp_path / "changed"),
    )
    assert manifest(tmp_path / "changed")["config"]["factors"] == 4


def test_tuned_options_round_trip_through_a_config(tmp_path):
    out = tmp_path / "best.toml"
    result = runner.invoke(
        app,
        [
            "tune",
            "--model",
            "ease",
            "--data",
            DATA,
            "--trials",
            "2",
            "--config-out",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    best = json.loads(result.stdout)["best_params"]
    fit("--config", str(out), "--out", str(tmp_path / "tuned"))
    assert manifest(tmp_path / "tuned")["config"]["l2"] == pytest.approx(best["l2"])


def one_line_error(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tastespace", *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.fault(
    "cli",
    "fit --config with an unknown key",
    "one line naming the file, the key and the valid keys; exit 2",
)
def test_unknown_config_key(tmp_path):
    config = tmp_path / "fit.toml"
    config.write_text(f'data = "{DATA}"\nepochz = 3\n')
    message = one_line_error("fit", "--config", str(config), "--out", str(tmp_path / "x"))
    assert "fit.toml: unknown option 'epochz'" in message and "epochs" in message


@pytest.mark.fault(
    "cli",
    "fit --config that is not valid TOML",
    "one line naming the file and the TOML error; exit 2",
)
def test_invalid_toml(tmp_path):
    config = tmp_path / "fit.toml"
    config.write_text('data = "unterminated\n')
    assert "fit.toml: not valid TOML" in one_line_error(
        "fit", "--config", str(config), "--out", "x"
    )


@pytest.mark.fault(
    "cli", "fit --config naming a missing file", "one line: cannot read the config file; exit 2"
)
def test_missing_config(tmp_path):
    message = one_line_error("fit", "--config", str(tmp_path / "nope.toml"), "--out", "x")
    assert "nope.toml: cannot read the config file" in message


@pytest.mark.fault(
    "cli", "fit --config whose [params] is not a table", "one line naming [params]; exit 2"
)
def test_params_not_a_table(tmp_path):
    config = tmp_path / "fit.toml"
    config.write_text(f'data = "{DATA}"\nparams = 3\n')
    assert "[params] must be a table" in one_line_error(
        "fit", "--config", str(config), "--out", "x"
    )


@pytest.mark.fault(
    "cli", "fit --from a folder that is not a bundle", "one line: not a tastespace bundle; exit 2"
)
def test_from_not_a_bundle(tmp_path):
    message = one_line_error("fit", "--from", str(tmp_path), "--data", DATA, "--out", "x")
    assert "not a tastespace bundle" in message
