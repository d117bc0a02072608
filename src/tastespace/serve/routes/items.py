"""The catalog: pages and title search, one item by raw id, and an item's neighbours."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from tastespace.serve.errors import answers
from tastespace.serve.routes.deps import ItemId, K, Served, Session
from tastespace.serve.schemas import MAX_LIMIT, MAX_QUERY_CHARS, ItemPage, ItemRecord, SimilarItems
from tastespace.serve.sessions import ServedSession
from tastespace.serve.state import is_small, run_query

router = APIRouter(tags=["items"])
UNKNOWN = {404: {"description": "Unknown item id or model"}}


def item_index(session: ServedSession, raw: str) -> int:
    """Dense index of a raw id (never a title: a path names one item exactly)."""
    with answers(session):
        return session.resolver.item_ids.index(raw)


@router.get("/api/items", response_model=ItemPage, response_model_exclude_none=True)
def items(
    served: Served,
    session: Session,
    q: Annotated[
        str | None, Query(max_length=MAX_QUERY_CHARS, description="Title words to search.")
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
) -> dict[str, Any]:
    """Catalog in its own order, or the titles matching ``q`` (best first), a page at a time."""
    text = " ".join((q or "").lower().split())
    matches = served.search(session.name, text) if text else range(session.model.n_items)
    page = matches[offset : offset + limit]
    return {
        "items": [session.record(i) for i in page],
        "total": len(matches),
        "offset": offset,
        "limit": limit,
    }


@router.get(
    "/api/items/{item_id}",
    response_model=ItemRecord,
    response_model_exclude_none=True,
    responses=UNKNOWN,
)
async def item(item_id: ItemId, session: Session) -> dict[str, Any]:
    return session.record(item_index(session, item_id))


@router.get(
    "/api/items/{item_id}/similar",
    response_model=SimilarItems,
    response_model_exclude_none=True,
    responses=UNKNOWN,
)
async def similar(item_id: ItemId, session: Session, k: K = 10) -> dict[str, Any]:
    """The ``k`` items closest to this one in the model's space (cosine), best first."""
    item_index(session, item_id)  # 404 unless an exact raw id: a path never names a title

    def work() -> dict[str, Any]:
        with answers(session):  # the CLI's `similar`, given that id
            item, found = session.similar_records(item_id, k=k)
        return {"item": item, "items": found, "total": len(found), "model": session.name}

    return await run_query(work, small=is_small(session))
