"""``tastespace serve``: the HTTP API and web explorer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tastespace.cli.common import console, err_console

LOOPBACK = "127.0.0.1"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to ``app``."""
    app.command()(serve)


def serve(
    bundles: Annotated[
        list[Path],
        typer.Argument(help="One or more bundle directories; the first is the default model."),
    ],
    host: Annotated[
        str,
        typer.Option(
            help="Interface to bind. Default 127.0.0.1: only this machine can connect. "
            "0.0.0.0 exposes the API to the network (no authentication!)."
        ),
    ] = LOOPBACK,
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    max_body_bytes: Annotated[
        int, typer.Option(help="Refuse request bodies larger than this (413).", min=1024)
    ] = 1_000_000,
    log_level: Annotated[
        str, typer.Option(help=f"uvicorn log level: {', '.join(LOG_LEVELS)}.")
    ] = "warning",
) -> None:
    """Serve the JSON API and the explorer page (map, search, neighbours, recommendations).

    Open http://127.0.0.1:8000/ for the explorer and /docs for the API reference.

    Examples:

      tastespace serve runs/neural

      tastespace serve runs/neural runs/ease --port 8080
    """
    import uvicorn

    from tastespace.errors import ConfigError
    from tastespace.serve.app import create_app

    if log_level not in LOG_LEVELS:
        raise ConfigError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {log_level!r}")
    if host in ("0.0.0.0", "::", ""):
        err_console.print(
            f"[yellow]warning:[/] binding {host or 'all interfaces'} exposes the API to every "
            "machine that can reach this one, without authentication; use --host 127.0.0.1 "
            "unless that is what you want",
            highlight=False,
        )
    app = create_app(bundles, max_body_bytes=max_body_bytes)
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"serving {', '.join(app.state.sessions)} on http://{shown}:{port}/ "
        f"(API docs at /docs; Ctrl+C stops)",
        highlight=False,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level)
