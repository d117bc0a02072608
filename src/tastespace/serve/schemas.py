"""The HTTP API's request and response shapes (pydantic), shared by the routes and /docs.

Every list of items has one form — ``{"items": [record, ...], "total": N}`` — where a record is
``{"id": raw id, "title": ..., "genres": [...], "year": ..., "score": ...}`` (``year`` when the
catalog has one, ``score`` where results are ranked). Bounds live here, next to the fields they
guard, so a bad request is rejected before any model runs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainValidator

from tastespace.session import MAX_HISTORY, MAX_K

MAX_LIMIT = 500
MAX_QUERY_CHARS = 200
MAX_ID_CHARS = 500

RawId = int | str


def _history_entry(value: Any) -> int | str:
    """A raw id or title exactly as sent: a JSON integer or string, nothing coerced.

    Why strict: lax parsing read ``true`` as item 1 and ``2.0`` as item 2, answering for
    items nobody named.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("expected a raw item id or title (a JSON integer or string)")
    if isinstance(value, str) and len(value) > MAX_ID_CHARS:
        raise ValueError(f"a raw id or title has at most {MAX_ID_CHARS} characters")
    return value


HistoryEntry = Annotated[int | str, PlainValidator(_history_entry, json_schema_input_type=RawId)]


class Because(BaseModel):
    """A watched item and its share of what made a recommendation (``explain=1``)."""

    id: RawId
    title: str
    share: float


class ItemRecord(BaseModel):
    """One catalog item, in raw ids and words."""

    id: RawId
    title: str
    genres: list[str] = []
    year: int | None = None
    score: float | None = None
    because: list[Because] | None = None


class ItemList(BaseModel):
    """A page of items (search, catalog listing) or a ranked list (similar, recommend)."""

    items: list[ItemRecord]
    total: int = Field(description="Number of matches overall (for pages) or items returned.")


class ItemPage(ItemList):
    offset: int
    limit: int


class SimilarItems(ItemList):
    item: ItemRecord = Field(description="The item the neighbours are similar to.")
    model: str


class RecommendRequest(BaseModel):
    """A watch list to fold in: the user needs no account and the model no retraining."""

    model_config = ConfigDict(extra="forbid", strict=True)  # true is not k=1, "no" not False

    history: list[HistoryEntry] = Field(
        min_length=1,
        max_length=MAX_HISTORY,
        description="Watched items: raw ids or titles (exact, without year, or fuzzy).",
        examples=[["Toy Story (1995)", "Heat (1995)"]],
    )
    k: int = Field(10, ge=1, le=MAX_K, description="How many recommendations.")
    model: str | None = Field(None, description="Loaded model name; the first one by default.")
    exclude_seen: bool = Field(True, description="Leave the history's own items out.")
    skip_unknown: bool = Field(
        False, description="Ignore history entries not in the catalog instead of a 404."
    )


class Recommendations(ItemList):
    model: str
    skipped: list[RawId] = Field(description="History entries ignored (with skip_unknown).")
    fallback: bool = Field(
        False, description="True: no history entry was known, so these are the most popular."
    )


class ModelInfo(BaseModel):
    name: str
    kind: str
    n_items: int
    dim: int | None = Field(description="Item vector dimension (None when the model has none).")
    config: dict[str, Any]
    index: dict[str, Any] = Field(
        description="Top-k search: {'kind': 'exact'}, or an approximate kind with, per role "
        "('recommend', 'similar'), its parameters and its recall@10 measured against exact "
        "search on sampled queries when it was built."
    )


class ModelList(BaseModel):
    models: list[ModelInfo]
    default: str


class Health(BaseModel):
    status: str
    models: list[str]
    worker: int = Field(
        description="Process id of the worker that answered: with --workers N, tells them apart."
    )


class CatalogMap(BaseModel):
    """Column-wise 2-D layout of a whole catalog (one array per field keeps 60k items small)."""

    model: str
    method: str
    total: int
    ids: list[RawId]
    titles: list[str]
    x: list[float] = Field(description="Scaled so the central 96% of items lie in [-1, 1].")
    y: list[float]
    genre: list[int] = Field(description="Index into ``genres`` of the primary genre; -1: none.")
    genres: list[str]
    popularity: list[float] | None = Field(description="log(1 + ratings) when the catalog has it.")
