"""``tastespace serve``: loopback by default, a warning for 0.0.0.0, errors as one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tastespace.cli import app


@pytest.fixture
def uvicorn_calls(monkeypatch):
    """uvicorn.run recorded instead of run; thread caps (process-wide) left alone."""
    import uvicorn

    from tastespace.serve import threads

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setattr(threads, "limit_threads", lambda n: calls.append(("threads", n)) and None)
    return calls


def test_help_names_the_loopback_default():
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "127.0.0.1" in result.output and "0.0.0.0" in result.output


def test_serves_on_loopback_by_default(movie_bundles, uvicorn_calls):
    result = CliRunner().invoke(app, ["serve", str(movie_bundles["ease"]), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert uvicorn_calls[0] == ("threads", 1)
    served, options = uvicorn_calls[-1]
    assert options["host"] == "127.0.0.1" and options["port"] == 8123
    assert list(served.state.sessions) == ["ease"]
    assert "warning" not in result.output


def test_warns_when_binding_every_interface(movie_bundles, uvicorn_calls):
    bundles = [str(p) for p in movie_bundles.values()]
    result = CliRunner().invoke(app, ["serve", *bundles, "--host", "0.0.0.0"])
    assert result.exit_code == 0
    assert "exposes the API" in result.stderr
    served, options = uvicorn_calls[-1]
    assert options["host"] == "0.0.0.0"
    assert list(served.state.sessions) == ["ease", "ease-strong"]


def test_bad_log_level_is_an_error(movie_bundles, uvicorn_calls):
    from tastespace.errors import ConfigError

    result = CliRunner().invoke(app, ["serve", str(movie_bundles["ease"]), "--log-level", "loud"])
    assert isinstance(result.exception, ConfigError) and not uvicorn_calls


def test_workers_hand_the_bundles_to_an_app_factory(movie_bundles, uvicorn_calls, monkeypatch):
    import json
    import os

    from tastespace.serve.app import SETTINGS_VARIABLE, app_from_environment

    monkeypatch.delenv(SETTINGS_VARIABLE, raising=False)
    bundle = str(movie_bundles["ease"])
    options = ["--workers", "2", "--max-body-bytes", "5000"]
    result = CliRunner().invoke(app, ["serve", bundle, *options])
    assert result.exit_code == 0, result.output
    target, options = uvicorn_calls[-1]
    assert target == "tastespace.serve.app:app_from_environment"
    assert options["factory"] is True and options["workers"] == 2
    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    assert settings["max_body_bytes"] == 5000 and list(settings["bundles"]) == ["ease"]
    assert list(app_from_environment().state.sessions) == ["ease"]  # what each worker runs
    assert uvicorn_calls[-2:] == [("threads", 1), ("threads", 1)]
