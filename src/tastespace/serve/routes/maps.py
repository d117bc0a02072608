"""The 2-D map of the whole catalog, computed once per model and method, served gzipped."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tastespace.serve.errors import answers
from tastespace.serve.routes.deps import Served, Session
from tastespace.serve.schemas import CatalogMap

router = APIRouter(tags=["map"])


@router.get(
    "/api/map",
    response_model=CatalogMap,
    responses={200: {"description": "Columns of the 2-D layout (gzipped when accepted)"}},
)
def catalog_map(
    request: Request,
    served: Served,
    session: Session,
    method: Literal["pca", "tsne", "umap"] = "pca",
) -> Response:
    """2-D layout of the whole catalog with titles, primary genres and popularity."""
    with answers(session):
        body, zipped = served.maps.get(session, method, served.paths[session.name])
    headers = {"Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(zipped, media_type="application/json", headers=headers)
    return Response(body, media_type="application/json", headers=headers)
