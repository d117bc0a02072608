"""The HTTP API and the explorer page: one FastAPI app over one or more loaded bundles.

Bundles are loaded (and their caches warmed) once, when the app is created; every request then
only reads them. Inputs are bounded by the pydantic schemas (k, history length, page size) and
the body-size middleware; errors come back as ``{"detail": message}`` — 404 for an unknown
item or model, 422 for an ambiguous title (with ``candidates``) or an unusable request, 413 for
an oversized body.

Example
-------
>>> from fastapi.testclient import TestClient                          # doctest: +SKIP
>>> client = TestClient(create_app(["runs/neural", "runs/ease"]))      # doctest: +SKIP
>>> client.get("/api/items/1/similar", params={"k": 5}).json()["items"]  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from tastespace import __version__
from tastespace.data.catalog import AmbiguousItemError
from tastespace.errors import ConfigError, TastespaceError, UnknownIdError
from tastespace.serve.batching import RecommendBatcher
from tastespace.serve.limits import BodySizeLimit
from tastespace.serve.maps import MapCache
from tastespace.serve.queries import MAX_K, ModelSession
from tastespace.serve.schemas import (
    MAX_ID_CHARS,
    MAX_LIMIT,
    MAX_QUERY_CHARS,
    CatalogMap,
    Health,
    ItemPage,
    ItemRecord,
    ModelInfo,
    ModelList,
    Recommendations,
    RecommendRequest,
    SimilarItems,
)
from tastespace.serve.sessions import bundle_names, load_sessions

logger = logging.getLogger(__name__)
T = TypeVar("T")

SETTINGS_VARIABLE = "TASTESPACE_SERVE"
SEARCH_CACHE = 4096
#: Queries on catalogs up to this size (and histories up to INLINE_MAX_HISTORY) run inline.
INLINE_MAX_ITEMS = 20_000
INLINE_MAX_HISTORY = 1_000
STATIC = Path(__file__).resolve().parent / "static"
#: The explorer loads nothing from elsewhere; the browser enforces it.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


ModelName = Annotated[
    str | None, Query(max_length=200, description="Loaded model name (default: the first).")
]
K = Annotated[int, Query(ge=1, le=MAX_K, description="How many items to return.")]
ItemId = Annotated[str, PathParam(max_length=MAX_ID_CHARS, description="A raw item id.")]


class ApiError(Exception):
    """An error answered as ``{"detail": message, **extra}`` with ``status``."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.detail, self.extra = status, detail, extra


async def _run(work: Callable[[], T], small: bool) -> T:
    """Run a query on the event loop when it is small, else on the thread pool.

    Why: a 4k-item catalog answers in well under a millisecond, less than handing the call to a
    worker thread and back costs; a 60k-item catalog or a 1,000-item history would stall every
    other connection while it runs, so those go to threads.
    """
    return work() if small else await run_in_threadpool(work)


@contextmanager
def _answers(session: ModelSession) -> Iterator[None]:
    """Library errors → HTTP answers, with candidates (raw ids) for ambiguous titles."""
    try:
        yield
    except AmbiguousItemError as err:
        candidates = [session.record(index) for index, _ in err.candidates]
        raise ApiError(422, str(err), candidates=candidates) from err
    except UnknownIdError as err:
        raise ApiError(404, str(err)) from err
    except TastespaceError as err:
        raise ApiError(422, str(err)) from err


def create_app(
    bundles: Mapping[str, str | Path] | Sequence[str | Path], *, max_body_bytes: int = 1_000_000
) -> FastAPI:
    """The tastespace API + explorer over ``bundles`` (paths, or ``{name: path}``).

    The first bundle is the default model; others are picked with ``model=NAME``.
    """
    paths = bundle_names(bundles)
    sessions = load_sessions(paths)
    default = next(iter(sessions))
    infos = [
        ModelInfo(
            name=name,
            kind=s.model.kind,
            n_items=s.model.n_items,
            dim=s.dim,
            config=s.model.config.to_json(),
        )
        for name, s in sessions.items()
    ]
    maps = MapCache()
    batchers = {
        name: RecommendBatcher(s.model, inline=s.model.n_items <= INLINE_MAX_ITEMS)
        for name, s in sessions.items()
    }

    app = FastAPI(
        title="tastespace",
        version=__version__,
        summary="Neighbours, recommendations and maps from learned item embeddings.",
    )
    app.state.sessions = sessions
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, err: ApiError) -> JSONResponse:
        return JSONResponse({"detail": err.detail, **err.extra}, status_code=err.status)

    def session_for(model: str | None) -> ModelSession:
        name = default if model is None else model
        if name not in sessions:
            raise ApiError(404, f"unknown model {name!r}; loaded: {', '.join(sessions)}")
        return sessions[name]

    @functools.lru_cache(maxsize=SEARCH_CACHE)
    def search(name: str, text: str) -> tuple[int, ...]:
        """All title matches, best first; cached because a search box asks again and again
        (typing, backspacing, paging) and a fuzzy pass over a large catalog is not cheap."""
        session = sessions[name]
        return tuple(session.resolver.search(text, limit=session.model.n_items))

    def item_index(session: ModelSession, raw: str) -> int:
        with _answers(session):
            return session.resolver.item_ids.index(raw)

    @app.get("/healthz", response_model=Health, tags=["meta"])
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": list(sessions)}

    @app.get("/api/models", response_model=ModelList, tags=["meta"])
    def models() -> dict[str, Any]:
        return {"models": infos, "default": default}

    @app.get(
        "/api/items", response_model=ItemPage, response_model_exclude_none=True, tags=["items"]
    )
    def items(
        q: Annotated[
            str | None, Query(max_length=MAX_QUERY_CHARS, description="Title words to search.")
        ] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
        model: ModelName = None,
    ) -> dict[str, Any]:
        """Catalog in its own order, or the titles matching ``q`` (best first), a page at a
        time."""
        session = session_for(model)
        text = " ".join((q or "").lower().split())
        matches = search(session.name, text) if text else range(session.model.n_items)
        page = matches[offset : offset + limit]
        return {
            "items": [session.record(i) for i in page],
            "total": len(matches),
            "offset": offset,
            "limit": limit,
        }

    @app.get(
        "/api/items/{item_id}",
        response_model=ItemRecord,
        response_model_exclude_none=True,
        tags=["items"],
        responses={404: {"description": "Unknown item id or model"}},
    )
    async def item(item_id: ItemId, model: ModelName = None) -> dict[str, Any]:
        session = session_for(model)
        return session.record(item_index(session, item_id))

    @app.get(
        "/api/items/{item_id}/similar",
        response_model=SimilarItems,
        response_model_exclude_none=True,
        tags=["items"],
        responses={404: {"description": "Unknown item id or model"}},
    )
    async def similar(item_id: ItemId, k: K = 10, model: ModelName = None) -> dict[str, Any]:
        """The ``k`` items closest to this one in the model's space (cosine), best first."""
        session = session_for(model)
        index = item_index(session, item_id)

        def work() -> dict[str, Any]:
            with _answers(session):
                ids, scores = session.model.similar_items(index, k=k)
            found = session.records(ids, scores)
            return {
                "item": session.record(index),
                "items": found,
                "total": len(found),
                "model": session.name,
            }

        return await _run(work, small=session.model.n_items <= INLINE_MAX_ITEMS)

    @app.post(
        "/api/recommend",
        response_model=Recommendations,
        response_model_exclude_none=True,
        tags=["recommend"],
        responses={
            404: {"description": "A history entry or the model is unknown"},
            413: {"description": "Request body too large"},
            422: {"description": "Invalid request, or an ambiguous title (with candidates)"},
        },
    )
    async def recommend(request: RecommendRequest) -> dict[str, Any]:
        """Fold in a watch list (raw ids or titles) and rank the catalog for it; concurrent
        requests share one model call (``serve/batching.py``)."""
        session = session_for(request.model)
        history = list(request.history)
        small = session.model.n_items <= INLINE_MAX_ITEMS and len(history) <= INLINE_MAX_HISTORY
        with _answers(session):
            indices, skipped = await _run(
                lambda: session.resolve_history("request", history, request.skip_unknown), small
            )
            ids, scores = await batchers[session.name].recommend(
                indices, request.k, request.exclude_seen
            )
        items = session.records(ids, scores)
        return {"items": items, "total": len(items), "model": session.name, "skipped": skipped}

    @app.get(
        "/api/map",
        response_model=CatalogMap,
        tags=["map"],
        responses={200: {"description": "Columns of the 2-D layout (gzipped when accepted)"}},
    )
    def catalog_map(
        request: Request,
        model: ModelName = None,
        method: Literal["pca", "tsne", "umap"] = "pca",
    ) -> Response:
        """2-D layout of the whole catalog with titles, primary genres and popularity."""
        session = session_for(model)
        with _answers(session):
            body, zipped = maps.get(session, method, paths[session.name])
        headers = {"Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(zipped, media_type="application/json", headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(
            STATIC / "index.html",
            headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def app_from_environment() -> FastAPI:
    """App factory for multi-process serving (``uvicorn --factory``, ``serve --workers N``).

    Each worker process calls it and loads the bundles named in ``$TASTESPACE_SERVE`` (JSON:
    ``{"bundles": {name: path}, "max_body_bytes": n, "threads": t}``), set by the CLI.
    """
    from tastespace.serve.threads import limit_threads

    try:
        settings = json.loads(os.environ[SETTINGS_VARIABLE])
    except (KeyError, ValueError) as err:
        raise ConfigError(
            f"${SETTINGS_VARIABLE} is missing or not JSON; start workers with `tastespace serve`"
        ) from err
    limit_threads(int(settings.get("threads", 1)))
    app = create_app(settings["bundles"], max_body_bytes=int(settings["max_body_bytes"]))
    limit_threads(int(settings.get("threads", 1)))
    return app


__all__ = ["ApiError", "app_from_environment", "create_app"]
