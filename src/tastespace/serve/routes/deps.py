"""Dependencies the routes share: the loaded models, the session a request names, bounds."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi import Path as PathParam

from tastespace.serve.schemas import MAX_ID_CHARS
from tastespace.serve.sessions import ServedSession
from tastespace.serve.state import ServedModels
from tastespace.session import MAX_K

ModelName = Annotated[
    str | None, Query(max_length=200, description="Loaded model name (default: the first).")
]
K = Annotated[int, Query(ge=1, le=MAX_K, description="How many items to return.")]
ItemId = Annotated[str, PathParam(max_length=MAX_ID_CHARS, description="A raw item id.")]


async def served_models(request: Request) -> ServedModels:
    """The app's loaded models (``create_app`` puts them on ``app.state``). ``async`` because
    FastAPI runs a plain ``def`` dependency on a worker thread: a hop per request."""
    return request.app.state.served


Served = Annotated[ServedModels, Depends(served_models)]


async def named_session(served: Served, model: ModelName = None) -> ServedSession:
    """The session of the ``model`` query parameter (404 when no such model is loaded)."""
    return served.session(model)


Session = Annotated[ServedSession, Depends(named_session)]
