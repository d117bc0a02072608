"""``tastespace serve``: loopback by default, a warning for 0.0.0.0, errors as one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tastespace.cli import app


@pytest.fixture
def uvicorn_calls(monkeypatch):
    """uvicorn.run and the workers' balancer recorded instead of run; thread caps
    (process-wide) left alone."""
    import uvicorn

    from tastespace.serve import balancer, threads

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    listen = lambda host, port: calls.append(("listen", host, port)) or []  # noqa: E731
    monkeypatch.setattr(balancer, "_listen", listen)  # no port taken
    recorded = lambda self: calls.append(("balancer", vars(self)))  # noqa: E731
    monkeypatch.setattr(balancer.Balancer, "run", recorded)
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
    options = ["--workers", "2", "--max-body-bytes", "5000", "--port", "8124"]
    result = CliRunner().invoke(app, ["serve", bundle, *options])
    assert result.exit_code == 0, result.output
    target, balanced = uvicorn_calls[-1]  # every connection through the balancer
    assert target == "balancer" and balanced["size"] == 2
    assert ("listen", "127.0.0.1", 8124) in uvicorn_calls
    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    assert settings["max_body_bytes"] == 5000 and list(settings["bundles"]) == ["ease"]
    assert list(app_from_environment().state.sessions) == ["ease"]  # what each worker runs
    assert uvicorn_calls[-2:] == [("threads", 1), ("threads", 1)]


def test_token_from_the_environment_locks_the_api(movie_bundles, uvicorn_calls):
    from tests.serve.client import local_client

    bundle = str(movie_bundles["ease"])
    result = CliRunner().invoke(app, ["serve", bundle], env={"TASTESPACE_TOKEN": "abc123"})
    assert result.exit_code == 0, result.output
    assert "/?token=<your token>" in result.output and "abc123" not in result.output
    client = local_client(uvicorn_calls[-1][0])
    assert client.get("/api/models").status_code == 401
    assert client.get("/api/models", headers={"Authorization": "Bearer abc123"}).is_success
    flag = CliRunner().invoke(
        app, ["serve", bundle, "--token", "xyz"], env={"TASTESPACE_TOKEN": "a"}
    )
    assert flag.exit_code == 0
    assert local_client(uvicorn_calls[-1][0]).get("/api/models").status_code == 401


@pytest.mark.fault(
    "serve", "empty $TASTESPACE_TOKEN", "ConfigError before serving, names the token"
)
def test_an_empty_token_is_an_error_not_an_open_server(movie_bundles, uvicorn_calls):
    from tastespace.errors import ConfigError

    bundle = str(movie_bundles["ease"])
    for options, env in ((["--token", ""], {}), ([], {"TASTESPACE_TOKEN": ""})):
        result = CliRunner().invoke(app, ["serve", bundle, *options], env=env)
        assert isinstance(result.exception, ConfigError), options
        assert "token is empty" in str(result.exception)
    assert all(call[0] == "threads" for call in uvicorn_calls)


def test_allowed_hosts_include_the_bound_address(movie_bundles, uvicorn_calls):
    from tests.serve.client import local_client

    bundle = str(movie_bundles["ease"])
    options = ["--host", "10.1.2.3", "--allow-host", "my-box.lan", "--allow-host", "other"]
    result = CliRunner().invoke(app, ["serve", bundle, *options])
    assert result.exit_code == 0, result.output
    client = local_client(uvicorn_calls[-1][0])
    for host, status in (("10.1.2.3:8000", 200), ("my-box.lan", 200), ("other", 200), ("x", 400)):
        assert client.get("/healthz", headers={"host": host}).status_code == status, host


def test_workers_get_the_token_and_hosts(movie_bundles, uvicorn_calls, monkeypatch):
    import json
    import os

    from tastespace.serve.app import SETTINGS_VARIABLE, app_from_environment
    from tests.serve.client import local_client

    monkeypatch.delenv(SETTINGS_VARIABLE, raising=False)
    bundle = str(movie_bundles["ease"])
    options = ["--workers", "2", "--token", "tok", "--allow-host", "my-box.lan"]
    assert CliRunner().invoke(app, ["serve", bundle, *options]).exit_code == 0
    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    assert settings["token"] == "tok" and settings["allow_hosts"] == ["my-box.lan"]
    client = local_client(app_from_environment())
    assert client.get("/api/models", headers={"host": "my-box.lan"}).status_code == 401
    authorised = {"host": "my-box.lan", "Authorization": "Bearer tok"}
    assert client.get("/api/models", headers=authorised).status_code == 200
