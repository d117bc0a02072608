"""The HTTP API and the explorer page: one FastAPI app over one or more loaded bundles.

Bundles are loaded (and their caches warmed) once, when the app is created; every request then
only reads them. Inputs are bounded by the pydantic schemas (k, history length, page size) and
the body-size middleware; who may ask is decided by ``serve/doors.py`` (Host allow-list, optional
bearer token); errors come back as ``{"detail": one line}`` (``serve/errors.py``). The routes
live in ``serve/routes/``, one module per group. /docs and /redoc load their scripts from this
server (``serve/routes/docs.py``), so they work offline.

Example
-------
>>> from fastapi.testclient import TestClient                          # doctest: +SKIP
>>> app = create_app(["runs/neural", "runs/ease"])                      # doctest: +SKIP
>>> client = TestClient(app, base_url="http://localhost")  # Host: localhost  # doctest: +SKIP
>>> client.get("/api/items/1/similar", params={"k": 5}).json()["items"]  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from tastespace import __version__
from tastespace.errors import ConfigError
from tastespace.serve.doors import BearerToken, HostAllowList, allowed_hosts
from tastespace.serve.errors import install_handlers
from tastespace.serve.limits import BodySizeLimit
from tastespace.serve.routes import cold_items, docs, items, maps, meta, page, recommend
from tastespace.serve.sessions import bundle_names
from tastespace.serve.state import ServedModels

logger = logging.getLogger(__name__)

SETTINGS_VARIABLE = "TASTESPACE_SERVE"
API_ROUTERS = (meta.router, items.router, cold_items.router, recommend.router, maps.router)


def create_app(
    bundles: Mapping[str, str | Path] | Sequence[str | Path],
    *,
    max_body_bytes: int = 1_000_000,
    token: str | None = None,
    allow_hosts: Iterable[str] = (),
    index: str = "auto",
) -> FastAPI:
    """The tastespace API + explorer over ``bundles`` (paths, or ``{name: path}``).

    The first bundle is the default model; others are picked with ``model=NAME``. With
    ``token``, every ``/api`` route needs ``Authorization: Bearer <token>``. Requests must name
    a loopback host (``localhost``, ``127.0.0.1``, ``::1``) or one of ``allow_hosts`` in their
    ``Host`` header (``"*"``: any). ``index``: ``auto`` searches with the index each bundle
    was fitted with; another kind is built at start-up (its recall shown by ``/api/models``).
    """
    hosts = allowed_hosts(allow_hosts)
    guard = [Depends(BearerToken(token))] if token is not None else []
    served = ServedModels(bundle_names(bundles), index)
    app = FastAPI(
        title="tastespace",
        version=__version__,
        summary="Neighbours, recommendations and maps from learned item embeddings.",
        docs_url=None,  # served by routes/docs.py, from local files
        redoc_url=None,
    )
    app.state.served = served
    app.state.sessions = served.sessions
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.add_middleware(HostAllowList, hosts=hosts)  # added last: runs first
    install_handlers(app)
    app.include_router(meta.health)
    for router in API_ROUTERS:
        app.include_router(router, dependencies=guard)
    app.include_router(page.router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    app.mount(docs.ASSETS_URL, StaticFiles(directory=docs.ASSETS), name="docs-assets")
    return app


def app_from_environment() -> FastAPI:
    """App factory for multi-process serving (``uvicorn --factory``, ``serve --workers N``).

    Each worker process calls it and loads the bundles named in ``$TASTESPACE_SERVE`` (JSON:
    ``{"bundles": {name: path}, "max_body_bytes": n, "threads": t, "token": s | null,
    "allow_hosts": [...], "index": kind}``), set by the CLI.
    """
    from tastespace.serve.threads import limit_threads

    try:
        settings = json.loads(os.environ[SETTINGS_VARIABLE])
    except (KeyError, ValueError) as err:
        raise ConfigError(
            f"${SETTINGS_VARIABLE} is missing or not JSON; start workers with `tastespace serve`"
        ) from err
    limit_threads(int(settings.get("threads", 1)))
    app = create_app(
        settings["bundles"],
        max_body_bytes=int(settings["max_body_bytes"]),
        token=settings.get("token"),
        allow_hosts=settings.get("allow_hosts", ()),
        index=settings.get("index", "auto"),
    )
    limit_threads(int(settings.get("threads", 1)))
    return app


__all__ = ["app_from_environment", "create_app"]
