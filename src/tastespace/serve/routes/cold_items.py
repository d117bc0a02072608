"""``POST /api/items``: new items, described by features only, join a loaded model's catalog.

In memory only (the bundle on disk is unchanged; ``tastespace add-items`` writes a new one). The
model's content path gives each new item its vector and bias; categorical values the model never
learned come back in ``unseen`` rather than being dropped silently.
"""

from __future__ import annotations

import threading
from typing import Any

import pandas as pd
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from tastespace.serve.errors import answers
from tastespace.serve.routes.deps import Served
from tastespace.serve.schemas import MAX_ID_CHARS, RawId

MAX_NEW_ITEMS = 1000

router = APIRouter(tags=["items"])
_growing = threading.Lock()  # one catalog change at a time; reads see the old or the new one


class NewItem(BaseModel):
    """One item the model has never seen: its id and features (no interactions)."""

    model_config = ConfigDict(extra="forbid")

    id: RawId = Field(description="A raw id not yet in the catalog.")
    title: str | None = Field(None, max_length=MAX_ID_CHARS)
    genres: list[str] = Field(default_factory=list, max_length=100)
    features: dict[str, float | str | None] = Field(
        default_factory=dict, description='Other catalog columns, e.g. {"year": 2031}.'
    )


class NewItems(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[NewItem] = Field(min_length=1, max_length=MAX_NEW_ITEMS)
    model: str | None = Field(None, description="Loaded model name; the first one by default.")


class UnseenValues(BaseModel):
    items: int = Field(description="New items holding at least one such value.")
    values: list[str]


class AddedItems(BaseModel):
    model: str
    added: list[RawId]
    total: int = Field(description="Items in the catalog now.")
    unseen: dict[str, UnseenValues] = Field(
        description="Categorical values the model never learned (encoded as unknown)."
    )
    missing: list[str] = Field(description="Model inputs the new items lack.")


@router.post(
    "/api/items",
    response_model=AddedItems,
    status_code=201,
    responses={422: {"description": "A known id, an unknown column, or a model that can't"}},
)
def add_items(request: NewItems, served: Served) -> dict[str, Any]:
    """Add cold items to a loaded model's catalog; they are served at once (similar,
    recommend, search, map)."""
    session = served.session(request.model)
    frame = pd.DataFrame(
        [
            {"item": new.id, "title": new.title, "genres": new.genres, **new.features}
            for new in request.items
        ]
    )
    if frame["title"].isna().all():
        frame = frame.drop(columns="title")
    with _growing, answers(session):
        added = session.add_items(frame)
        served.refresh(session.name)
    return {
        "model": session.name,
        "added": added.ids,
        "total": session.model.n_items,
        "unseen": {k: {"items": n, "values": v} for k, (n, v) in added.unseen.items()},
        "missing": added.missing,
    }
