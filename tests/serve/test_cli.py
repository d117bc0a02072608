"""``tastespace serve``: loopback by default, a warning for 0.0.0.0, errors as one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tastespace.cli import app


@pytest.fixture
def uvicorn_calls(monkeypatch):
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_help_names_the_loopback_default():
    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "127.0.0.1" in result.output and "0.0.0.0" in result.output


def test_serves_on_loopback_by_default(movie_bundles, uvicorn_calls):
    result = CliRunner().invoke(app, ["serve", str(movie_bundles["ease"]), "--port", "8123"])
    assert result.exit_code == 0, result.output
    ((served, options),) = uvicorn_calls
    assert options["host"] == "127.0.0.1" and options["port"] == 8123
    assert list(served.state.sessions) == ["ease"]
    assert "warning" not in result.output


def test_warns_when_binding_every_interface(movie_bundles, uvicorn_calls):
    bundles = [str(p) for p in movie_bundles.values()]
    result = CliRunner().invoke(app, ["serve", *bundles, "--host", "0.0.0.0"])
    assert result.exit_code == 0
    assert "exposes the API" in result.stderr
    assert uvicorn_calls[0][1]["host"] == "0.0.0.0"
    assert list(uvicorn_calls[0][0].state.sessions) == ["ease", "ease-strong"]


def test_bad_log_level_is_an_error(movie_bundles, uvicorn_calls):
    from tastespace.errors import ConfigError

    result = CliRunner().invoke(app, ["serve", str(movie_bundles["ease"]), "--log-level", "loud"])
    assert isinstance(result.exception, ConfigError) and not uvicorn_calls
