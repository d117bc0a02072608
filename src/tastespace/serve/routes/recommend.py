"""Recommendations for a watch list: fold it in and rank the catalog, batched across requests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tastespace.serve.errors import answers
from tastespace.serve.routes.deps import Served
from tastespace.serve.schemas import Recommendations, RecommendRequest
from tastespace.serve.state import is_small, run_query

router = APIRouter(tags=["recommend"])


@router.post(
    "/api/recommend",
    response_model=Recommendations,
    response_model_exclude_none=True,
    responses={
        404: {"description": "A history entry or the model is unknown"},
        413: {"description": "Request body too large"},
        422: {"description": "Invalid request, or an ambiguous title (with candidates)"},
    },
)
async def recommend(
    request: RecommendRequest,
    served: Served,
    explain: Annotated[
        bool, Query(description="Add `because`: the watched items behind each item, with shares.")
    ] = False,
) -> dict[str, Any]:
    """Fold in a watch list (raw ids or titles) and rank the catalog for it; concurrent
    requests share one model call (``serve/batching.py``)."""
    session = served.session(request.model)
    history = list(request.history)
    with answers(session):
        indices, skipped = await run_query(
            lambda: session.resolve_history("request", history, request.skip_unknown),
            small=is_small(session, len(history)),
        )
        if indices:
            ids, scores = await served.batchers[session.name].recommend(
                indices, request.k, request.exclude_seen
            )
        else:  # every entry skipped: the most popular items, flagged
            found, best, _ = session.rank([[]], request.k)
            ids, scores = found[0], best[0]
    items = session.records(ids, scores)
    if explain:
        why = await run_query(lambda: session.because(indices, items), small=False)
        for item, because in zip(items, why, strict=True):
            item["because"] = because
    return {
        "items": items,
        "total": len(items),
        "model": session.name,
        "skipped": skipped,
        "fallback": not indices,
    }
