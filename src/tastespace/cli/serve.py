"""``tastespace serve``: the HTTP API and web explorer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tastespace.cli.common import console, err_console

if TYPE_CHECKING:
    from fastapi import FastAPI

LOOPBACK = "127.0.0.1"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
EVERY_INTERFACE = ("0.0.0.0", "::", "")

Bundles = Annotated[
    list[Path],
    typer.Argument(help="One or more bundle directories; the first is the default model."),
]
Host = Annotated[
    str,
    typer.Option(
        help="Interface to bind. Default 127.0.0.1: only this machine can connect. "
        "0.0.0.0 exposes the API to the network (set --token, and --allow-host for the "
        "names clients use)."
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        help="Require 'Authorization: Bearer TOKEN' on every /api route (401 otherwise); "
        "default: $TASTESPACE_TOKEN when set. The explorer takes it once from /?token=TOKEN.",
    ),
]
AllowHost = Annotated[
    list[str] | None,
    typer.Option(
        help="Also answer requests whose Host header names this host (repeatable); "
        "localhost, 127.0.0.1 and ::1 always work, others get 400 (DNS-rebinding guard). "
        "'*' turns the check off.",
    ),
]
Port = Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)]
MaxBodyBytes = Annotated[
    int, typer.Option(help="Refuse request bodies larger than this (413).", min=1024)
]
Threads = Annotated[
    int,
    typer.Option(
        help="Compute threads per request (BLAS, torch). 1 serves many small requests "
        "fastest; raise it for few, large ones.",
        min=1,
    ),
]
Workers = Annotated[
    int,
    typer.Option(
        help="Server processes (each loads the bundles). More than 1 uses more cores; "
        "each new connection goes to the worker with the fewest open ones.",
        min=1,
        max=64,
    ),
]
LogLevel = Annotated[str, typer.Option(help=f"uvicorn log level: {', '.join(LOG_LEVELS)}.")]
IndexKind = Annotated[
    str,
    typer.Option(
        "--index",
        help="Top-k search: auto (the index each bundle was fitted with), exact, or hnsw / "
        "ivfpq (built at start-up, recall measured; /api/models shows it).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command()(serve)


def serve(
    bundles: Bundles,
    host: Host = LOOPBACK,
    token: Token = None,
    allow_host: AllowHost = None,
    port: Port = 8000,
    max_body_bytes: MaxBodyBytes = 1_000_000,
    threads: Threads = 1,
    workers: Workers = 1,
    log_level: LogLevel = "warning",
    index: IndexKind = "auto",
) -> None:
    """Serve the JSON API and the explorer page (map, search, neighbours, recommendations).

    Open http://127.0.0.1:8000/ for the explorer and /docs for the API reference.

    Examples:

      tastespace serve runs/neural

      tastespace serve runs/neural runs/ease --port 8080

      TASTESPACE_TOKEN=s3cret tastespace serve runs/neural --host 0.0.0.0 --allow-host my-box.lan
    """
    from tastespace.errors import ConfigError
    from tastespace.serve.doors import TOKEN_VARIABLE
    from tastespace.serve.threads import limit_threads

    if log_level not in LOG_LEVELS:
        raise ConfigError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    if token is None:  # read here, not by click: an exported but empty token is an error
        token = os.environ.get(TOKEN_VARIABLE)
    hosts = _allowed_hosts(host, allow_host, token)
    limit_threads(threads)  # before numpy / torch load: their pools start small
    import uvicorn

    from tastespace.serve.app import SETTINGS_VARIABLE, create_app
    from tastespace.serve.sessions import bundle_names

    app = create_app(  # also checks every bundle loads and the options are usable
        bundles, max_body_bytes=max_body_bytes, token=token, allow_hosts=hosts, index=index
    )
    limit_threads(threads)  # and again for anything that sized its pool at import
    from tastespace.serve.balancer import Balancer, can_balance

    # bound now, so that a busy port is an error before the server says it is serving
    balancer = Balancer(workers, host, port, log_level) if workers > 1 and can_balance() else None
    _announce(app, host, port, workers, token)
    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
        return
    del app  # each worker loads its own copy
    settings: dict[str, Any] = {
        "bundles": {name: str(path.resolve()) for name, path in bundle_names(bundles).items()},
        "max_body_bytes": max_body_bytes,
        "threads": threads,
        "token": token,
        "allow_hosts": hosts,
        "index": index,
    }
    os.environ[SETTINGS_VARIABLE] = json.dumps(settings)
    if balancer is not None:
        balancer.run()
        return
    uvicorn.run(  # no descriptor passing (Windows, macOS): the workers share a socket
        "tastespace.serve.app:app_from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level=log_level,
    )


def _allowed_hosts(host: str, allow_host: list[str] | None, token: str | None) -> list[str]:
    """The Host names to answer besides loopback: those given, plus the bound address when it
    is a name clients use; binding every interface is warned about."""
    from tastespace.serve.doors import LOOPBACK_HOSTS

    hosts = list(allow_host or [])
    if host not in (*EVERY_INTERFACE, *LOOPBACK_HOSTS):
        hosts.append(host)  # the address it binds is a name clients use
    if host in EVERY_INTERFACE:
        err_console.print(
            f"[yellow]warning:[/] binding {host or 'all interfaces'} exposes the API to every "
            "machine that can reach this one"
            + ("" if token else ", without authentication (set --token)")
            + "; clients must use a name given with --allow-host",
            highlight=False,
        )
    return hosts


def _announce(app: FastAPI, host: str, port: int, workers: int, token: str | None) -> None:
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"serving {', '.join(app.state.sessions)} on http://{shown}:{port}/ "
        f"with {workers} worker{'s' if workers > 1 else ''} (API docs at /docs; Ctrl+C stops)",
        highlight=False,
        markup=False,
    )
    if token:
        console.print(
            f"token required on /api: open http://{shown}:{port}/?token=<your token> once",
            highlight=False,
            markup=False,
        )
