"""The front door: a fitted model that speaks raw ids and titles and answers in DataFrames.

Models work in dense item indices (``models/histories.py``); people know MovieLens ids, SKUs and
titles. A :class:`Session` owns the translation — id and fuzzy-title resolution, the policy for
unknown ids, exclusions and filters, the popularity fallback for an empty history — so the CLI
and the HTTP API are thin shells over it.

Example
-------
>>> import tastespace
>>> from tastespace.data import load_dataset
>>> from tastespace.models.baselines import EASE
>>> session = tastespace.open(EASE(l2=50.0).fit(load_dataset("synthetic:tiny")))
>>> recs = session.recommend(history=[1, 2, 3], k=3)
>>> recs.columns.tolist()[:3], len(recs)
(['item', 'title', 'score'], 3)
>>> bool(session.recommend(history=[], k=3)["fallback"].all())  # popularity, flagged
True
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from tastespace.data.catalog import AmbiguousItemError, ItemResolver, display_titles
from tastespace.errors import ConfigError, DataError, TastespaceError
from tastespace.index.base import check_k
from tastespace.index.blocks import QUERY_BLOCK, fixed_blocks
from tastespace.index.topk import mask_rows, topk_rows
from tastespace.models.base import Recommender
from tastespace.models.histories import ItemIndices, as_histories

if TYPE_CHECKING:
    from tastespace.data.dataset import Dataset
    from tastespace.evaluate.compare import Comparison

MAX_K = 1000
MAX_HISTORY = 10_000

UnknownPolicy = Literal["error", "skip"]
#: ``filter=``: a function of :attr:`Session.catalog` returning a boolean mask of allowed items,
#: or the raw ids (or titles) allowed.
ItemFilter = Callable[[pd.DataFrame], Any] | Collection[Any]


@dataclass
class Recommendation:
    """One user's answer as JSON-ready records: label, items, what was skipped, and whether
    the list is the popularity fallback (the history held no known item)."""

    user: Any
    items: list[dict[str, Any]]
    skipped: list[Any] = field(default_factory=list)
    fallback: bool = False
    error: str | None = None  # why this user's history could not be read (no items then)
    watched: list[int] = field(default_factory=list)  # the history's item indices, resolved


@dataclass
class AddedItems:
    """What :meth:`Session.add_items` placed, and what of their features the model can't use:
    ``unseen`` = ``{column: (items holding one, values)}`` for categorical values the model
    never learned (they encode as unknown), ``missing`` = input columns the new items lack."""

    ids: list[Any]
    unseen: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    def lines(self, examples: int = 5) -> list[str]:
        """The report as sentences (what the CLI prints)."""
        out = [f"added {len(self.ids)} items ({_listing(self.ids, examples)})"]
        for column, (rows, values) in self.unseen.items():
            out.append(
                f"{_count(len(values), 'unseen value')} of {column} ({_count(rows, 'item')}): "
                f"{_listing(values, examples)} — not learned in training, encoded as unknown"
            )
        out += [f"no {c!r} column: treated as missing for every new item" for c in self.missing]
        return out


class Session:
    """A fitted model plus everything needed to speak in raw ids and titles."""

    def __init__(self, model: Recommender, name: str = "model") -> None:
        model._require_fitted()
        assert model.item_ids_ is not None and model.items_ is not None
        self.model = model
        self.name = name
        frame = model.items_.frame
        self.titles: list[str] = display_titles(frame, model.item_ids_)
        self.resolver = ItemResolver(model.item_ids_, self.titles)
        self.genres = model.items_.bags.get("genres")
        self.years = frame["year"].to_numpy() if "year" in frame else None
        self._catalog: pd.DataFrame | None = None

    @classmethod
    def open(cls, path: str | Path) -> Session:
        """The session over a bundle directory written by ``fit`` / ``Recommender.save``."""
        return cls(Recommender.load(path), name=Path(path).name)

    def __repr__(self) -> str:
        return f"Session({self.name!r}: {self.model.kind}, {self.model.n_items:,} items)"

    # -- the catalog ------------------------------------------------------------------------
    @property
    def catalog(self) -> pd.DataFrame:
        """One row per item: ``item`` (raw id), ``title``, the catalog's columns, bags as lists."""
        if self._catalog is None:
            model = self.model
            assert model.item_ids_ is not None and model.items_ is not None
            out = pd.DataFrame(
                {"item": model.item_ids_.raws(np.arange(model.n_items)), "title": self.titles}
            )
            for column in model.items_.frame.columns:
                if column != "title":
                    out[column] = model.items_.frame[column].to_numpy()
            for name, bag in model.items_.bags.items():
                out[name] = [bag.row(i) for i in range(bag.n_rows)]
            self._catalog = out
        return self._catalog

    def resolve(self, item: Any) -> int:
        """Dense index of a raw id or (fuzzy) title; ``KeyError`` subclasses name the query."""
        return self.resolver.resolve(item)

    def record(self, index: int, score: float | None = None) -> dict[str, Any]:
        """JSON-ready description of one item (the CLI's and the HTTP API's item shape)."""
        assert self.model.item_ids_ is not None
        out: dict[str, Any] = {
            "id": self.model.item_ids_.raw(int(index)),
            "title": self.titles[index],
            "genres": self.genres.row(int(index)) if self.genres else [],
        }
        if self.years is not None and np.isfinite(self.years[index]):
            out["year"] = int(self.years[index])
        if score is not None:
            out["score"] = round(float(score), 6)
        return out

    def records(self, ids: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        return [self.record(i, s) for i, s in zip(ids, scores, strict=True) if i >= 0]

    # -- DataFrame answers ------------------------------------------------------------------
    def recommend(
        self,
        history: Sequence[Any] = (),
        k: int = 10,
        *,
        exclude: Iterable[Any] = (),
        filter: ItemFilter | None = None,  # noqa: A002 — the name users expect
        include_seen: bool = False,
        unknown: UnknownPolicy = "error",
        explain: bool = False,
    ) -> pd.DataFrame:
        """Top-``k`` items for a watch list of raw ids or titles (fold-in, no retraining).

        Columns: ``item`` (raw id), ``title``, ``score``, ``genres`` / ``year`` where the
        catalog has them, ``fallback`` (True: the history held no known item, so these are the
        most popular items). ``exclude`` removes items; ``filter`` keeps only allowed ones.
        With ``unknown="skip"`` unknown entries are ignored and listed in ``.attrs["skipped"]``;
        with ``"error"`` (default) the first one raises a ``KeyError`` naming it. ``explain``
        adds ``because``: the watched items that explain each row most, with their shares.
        """
        frame = self.recommend_many(
            [(None, history)],
            k,
            exclude=exclude,
            filter=filter,
            include_seen=include_seen,
            unknown=unknown,
            explain=explain,
        )
        return frame.drop(columns="user").reset_index(drop=True).pipe(_keep_attrs, frame)

    def recommend_many(
        self,
        histories: Mapping[Any, Sequence[Any]] | Sequence[tuple[Any, Sequence[Any]]],
        k: int = 10,
        *,
        exclude: Iterable[Any] = (),
        filter: ItemFilter | None = None,  # noqa: A002
        include_seen: bool = False,
        unknown: UnknownPolicy = "error",
        explain: bool = False,
    ) -> pd.DataFrame:
        """:meth:`recommend` for ``{user: history}`` (or ``(user, history)`` pairs) in one
        batch; a long frame with a ``user`` column, ranks in order within each user."""
        pairs = list(histories.items()) if isinstance(histories, Mapping) else list(histories)
        _check_policy(unknown)
        rows, skipped = self._resolve_all(pairs, unknown == "skip")
        blocked = self._blocked(exclude, filter, unknown == "skip")
        ids, scores, fallback = self.rank(rows, k, not include_seen, blocked)
        parts = []
        for r, (user, _) in enumerate(pairs):
            keep = ids[r] >= 0
            part = self._describe(ids[r][keep], scores[r][keep])
            part.insert(0, "user", user)
            part["fallback"] = bool(fallback[r])
            if explain:
                part["because"] = self._explained(rows[r], ids[r][keep])
            parts.append(part)
        out = pd.concat(parts, ignore_index=True)
        out.attrs["skipped"] = {user: s for (user, _), s in zip(pairs, skipped, strict=True) if s}
        if len(pairs) == 1:
            out.attrs["skipped"] = skipped[0]
        return out

    def similar(self, item: Any, k: int = 10) -> pd.DataFrame:
        """The ``k`` items closest to ``item`` (raw id or title) by cosine, itself excluded.

        Ties (e.g. cold items with identical features) rank by catalog order.
        """
        check_k(k, MAX_K)
        index = self.resolve(item)
        ids, scores = self.model.similar_items(index, k=k)
        keep = ids >= 0
        return self._describe(ids[keep], scores[keep])

    def item_vectors(self) -> pd.DataFrame:
        """Item vectors indexed by raw id (index ``item``), columns ``v0 … v{d-1}``."""
        assert self.model.item_ids_ is not None
        vectors = self.model.item_vectors()
        index = pd.Index(self.model.item_ids_.raws(np.arange(len(vectors))), name="item")
        return _vector_frame(vectors, index)

    def user_vectors(
        self,
        histories: Mapping[Any, Sequence[Any]] | Sequence[Sequence[Any]],
        *,
        unknown: UnknownPolicy = "error",
    ) -> pd.DataFrame:
        """Folded-in vectors for ``{user: [raw ids or titles]}`` (index ``user``), or for a list
        of histories (index 0..n-1)."""
        _check_policy(unknown)
        if isinstance(histories, Mapping):
            pairs = list(histories.items())
        else:
            pairs = list(enumerate(histories))
        rows, _ = self._resolve_all(pairs, unknown == "skip")
        vectors = self.model.user_vectors(ItemIndices(rows)) if rows else np.empty((0, 0))
        return _vector_frame(vectors, pd.Index([user for user, _ in pairs], name="user"))

    # -- what the space is worth ---------------------------------------------------------------
    def report(
        self,
        out: str | Path = "report.html",
        data: Dataset | None = None,
        *,
        k: int = 10,
        **split: Any,
    ) -> dict[str, Any]:
        """Write the embedding health report (``tastespace report``) on the held-out users of
        the split the model was fitted on (``data`` reloaded from the bundle's record when
        None; ``split`` overrides ``holdout``, ``seed``, ``protocol`` …); returns its numbers
        with ``written``, the page and its PNGs."""
        from tastespace.evaluate.heldout import rebuild_split
        from tastespace.viz.report import build_report, write_report

        _, held_out, plan = rebuild_split(self.model, data, **split)
        built = build_report(self.model, held_out, k=k, seed=plan["seed"])
        written = write_report(built, Path(out), title=f"{self.name}: what the space is worth")
        return {**built.numbers, "written": written}

    def compare(
        self,
        other: Session | Recommender | str | Path,
        data: Dataset | None = None,
        *,
        k: int = 10,
        **split: Any,
    ) -> Comparison:
        """Overlap@k of the two models' neighbourhoods and paired Recall@20 / NDCG@100
        (``other`` − this) on the held-out users of this model's split (``tastespace compare``)."""
        from tastespace.evaluate.compare import compare_models
        from tastespace.evaluate.heldout import rebuild_split

        b = other if isinstance(other, Session) else open_session(other)
        _, held_out, _ = rebuild_split(self.model, data, **split)
        return compare_models(self.model, b.model, held_out.test, k=k)

    # -- shared by the CLI and the HTTP API -------------------------------------------------
    def similar_records(self, item: Any, k: int = 10) -> tuple[dict[str, Any], list[dict]]:
        """The item ``item`` names and its ``k`` nearest neighbours, as records."""
        check_k(k, MAX_K)
        index = self.resolve(item)
        ids, scores = self.model.similar_items(index, k=k)
        return self.record(index), self.records(ids, scores)

    def because(
        self, history: list[int], items: list[dict[str, Any]], n: int = 3
    ) -> list[list[dict[str, Any]]]:
        """For each recommended item record, the ``n`` watched items (indices in ``history``)
        that explain it most: raw id, title and share of the positive contributions (see
        :mod:`tastespace.models.explain`). An empty history explains nothing."""
        assert self.model.item_ids_ is not None
        index = self.model.item_ids_.index
        return self._explained(history, [index(item["id"]) for item in items], n, key="id")

    def _explained(
        self, history: Sequence[int], ids: Sequence[int], n: int = 3, key: str = "item"
    ) -> list[list[dict[str, Any]]]:
        from tastespace.models.explain import explain

        if not history:
            return [[] for _ in ids]
        assert self.model.item_ids_ is not None
        raw = self.model.item_ids_.raw
        why = explain(self.model, list(history), [int(i) for i in ids])
        return [
            [{key: raw(i), "title": self.titles[i], "share": round(s, 4)} for i, s in why.top(r, n)]
            for r in range(len(ids))
        ]

    def answer(
        self,
        histories: Sequence[tuple[Any, Sequence[Any]]],
        k: int = 10,
        exclude_seen: bool = True,
        skip_unknown: bool = False,
        exclude: Iterable[Any] = (),
    ) -> list[Recommendation]:
        """Recommendations for ``(user label, [raw ids or titles])`` pairs, as records.

        With ``skip_unknown`` a batch is lenient per user: unknown entries are skipped, and a
        history that cannot be read at all (an ambiguous title, too long, not a list) becomes
        that user's ``error`` while the others are still answered. Without it the first
        problem raises.
        """
        pairs = list(histories)
        rows: list[list[int]] = []
        skipped: list[list[Any]] = []
        errors: list[str | None] = []
        for pair in pairs:
            try:
                (indices,), (missing,) = self._resolve_all([pair], skip_unknown)
            except TastespaceError as err:
                if not skip_unknown:
                    raise
                indices, missing = [], []
                errors.append(str(err))
            else:
                errors.append(None)
            rows.append(indices)
            skipped.append(missing)
        blocked = self._blocked(exclude, None, skip_unknown)
        ids, scores, fallback = self.rank(rows, k, exclude_seen, blocked)
        return [
            Recommendation(user, [], skipped[r], False, errors[r])
            if errors[r] is not None
            else Recommendation(
                user,
                self.records(ids[r], scores[r]),
                skipped[r],
                bool(fallback[r]),
                watched=rows[r],
            )
            for r, (user, _) in enumerate(pairs)
        ]

    def resolve_history(
        self, user: Any, history: Sequence[Any], skip_unknown: bool = False
    ) -> tuple[list[int], list[Any]]:
        """Item indices of a history of raw ids or titles, and the entries skipped as unknown.

        An ambiguous title always raises (its candidates are the user's to choose from).
        """
        if len(history) > MAX_HISTORY:
            raise DataError(f"history of {user!r} has {len(history)} items (limit {MAX_HISTORY})")
        indices, missing = [], []
        for entry in history:
            try:
                indices.append(self.resolver.resolve(entry))
            except AmbiguousItemError:
                raise
            except KeyError:
                if not skip_unknown:
                    raise
                missing.append(entry)
        return indices, missing

    # -- cold items -------------------------------------------------------------------------
    def add_items(self, items: str | Path | pd.DataFrame) -> AddedItems:
        """Put new items, described by features only (a CSV/Parquet or DataFrame keyed by
        ``item``, ``id`` or its first column: title, genres ``a|b``, numerics), in the catalog;
        the session serves them from then on (``self.model`` is a grown copy).

        Items with identical features get identical vectors and tie at cosine 1.0; ties rank
        by catalog order (the earlier item first).
        """
        from tastespace.data.generic import load_item_features

        model = self.model
        assert model.items_ is not None
        ids, table = load_item_features(items, multi_valued=dict.fromkeys(model.items_.bags, "|"))
        grown = model.with_items(ids, table)
        encoder = getattr(model, "item_encoder_", None)  # models with a content path
        added = AddedItems(
            ids=grown.item_ids_.raws(np.arange(model.n_items, grown.n_items)),  # type: ignore[union-attr]
            unseen=encoder.unseen(table) if encoder is not None else {},
            missing=encoder.missing(table) if encoder is not None else [],
        )
        type(self).__init__(self, grown, self.name)
        return added

    # -- dense ranking ----------------------------------------------------------------------
    def rank(
        self,
        rows: Sequence[Sequence[int]],
        k: int,
        exclude_seen: bool = True,
        blocked: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, scores, fallback)`` for histories of dense indices: ``(n, k)`` padded with
        ``-1`` / ``-inf``, and per row whether the popularity fallback answered (empty row).

        ``blocked`` (bool per item) removes items from every row.
        """
        check_k(k, MAX_K)
        n = len(rows)
        ids = np.full((n, k), -1, np.int64)
        scores = np.full((n, k), -np.inf, np.float32)
        fallback = np.array([len(r) == 0 for r in rows], bool)
        warm = np.flatnonzero(~fallback)
        if len(warm) and blocked is None:
            histories = ItemIndices([rows[r] for r in warm])
            ids[warm], scores[warm] = self.model.recommend(histories, k, exclude_seen)
        elif len(warm):
            for start, stop in fixed_blocks(len(warm)):  # fixed blocks: same answer alone
                block = warm[start:stop]
                padded = [rows[r] for r in block] + [[]] * (QUERY_BLOCK - len(block))
                found = self._masked_topk(ItemIndices(padded), k, exclude_seen, blocked)
                ids[block], scores[block] = (part[: len(block)] for part in found)
        if fallback.any():
            popular = np.array(self.popularity(), dtype=np.float32, copy=True)
            if blocked is not None:
                popular[blocked] = -np.inf
            ids[fallback], scores[fallback] = topk_rows(popular[None, :], k)
        return ids, scores, fallback

    def popularity(self) -> np.ndarray:
        """Training users per item (the empty-history ranking)."""
        model = self.model
        if model.item_popularity_ is not None:
            return model.item_popularity_
        frame = model.items_.frame if model.items_ is not None else pd.DataFrame()
        if "log_popularity" in frame:
            return np.expm1(frame["log_popularity"].to_numpy(np.float64, na_value=0.0))
        raise DataError(
            f"{self.name}: this bundle records no item popularity (saved by an older tastespace),"
            " so an empty history has no fallback; refit it, or give at least one known item"
        )

    def _masked_topk(
        self, histories: ItemIndices, k: int, exclude_seen: bool, blocked: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        matrix, _ = as_histories(histories, self.model.n_items)
        block = np.array(self.model.score(matrix), dtype=np.float32, copy=True)
        mask_rows(block, matrix if exclude_seen else None)
        block[:, blocked] = -np.inf
        return topk_rows(block, k)

    def _resolve_all(
        self, pairs: Sequence[tuple[Any, Sequence[Any]]], skip_unknown: bool
    ) -> tuple[list[list[int]], list[list[Any]]]:
        rows, skipped = [], []
        for user, history in pairs:
            if isinstance(history, str | bytes) or not isinstance(history, Iterable):
                raise DataError(
                    f"history of {user!r} must be a list of raw ids or titles, got {history!r}"
                )
            indices, missing = self.resolve_history(user, list(history), skip_unknown)
            rows.append(indices)
            skipped.append(missing)
        return rows, skipped

    def _blocked(
        self, exclude: Iterable[Any], keep: ItemFilter | None, skip_unknown: bool
    ) -> np.ndarray | None:
        """Items no answer may contain (bool per item), or None when nothing is excluded."""
        n = self.model.n_items
        excluded = self.resolve_history("exclude", list(exclude), skip_unknown)[0]
        if not excluded and keep is None:
            return None
        blocked = np.zeros(n, bool)
        blocked[excluded] = True
        if keep is None:
            return blocked
        if callable(keep):
            allowed = np.asarray(keep(self.catalog), dtype=object)
            if allowed.shape != (n,) or not all(isinstance(v, bool | np.bool_) for v in allowed):
                raise DataError(
                    f"filter must return one True/False per catalog item ({n}), got shape "
                    f"{allowed.shape}; e.g. filter=lambda items: items['year'] >= 1990"
                )
            blocked |= ~allowed.astype(bool)
        else:
            allowed_rows = self.resolve_history("filter", list(keep), skip_unknown)[0]
            blocked |= ~np.isin(np.arange(n), allowed_rows)
        return blocked

    def _describe(self, ids: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        """Catalog rows ``ids`` as ``item, title, score[, genres][, year]``."""
        catalog = self.catalog
        out = pd.DataFrame(
            {
                "item": catalog["item"].to_numpy()[ids],
                "title": [self.titles[i] for i in ids],
                "score": scores.astype(np.float64),
            }
        )
        for column in ("genres", "year"):
            if column in catalog:
                out[column] = catalog[column].to_numpy()[ids]
        return out


def open_session(source: str | Path | Recommender, name: str | None = None) -> Session:
    """A :class:`Session` over a bundle directory or a fitted model (``tastespace.open``)."""
    if isinstance(source, Recommender):
        return Session(source, name=name or source.kind)
    if isinstance(source, str | Path):
        session = Session.open(source)
        if name is not None:
            session.name = name
        return session
    raise ConfigError(
        f"tastespace.open takes a bundle directory or a fitted model, not {type(source).__name__}"
    )


def _vector_frame(vectors: np.ndarray, index: pd.Index) -> pd.DataFrame:
    columns = [f"v{j}" for j in range(vectors.shape[1] if vectors.ndim == 2 else 0)]
    return pd.DataFrame(np.asarray(vectors, dtype=np.float32), index=index, columns=columns)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _listing(values: Sequence[Any], limit: int) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", … ({len(values)} in all)" if len(values) > limit else "")


def _keep_attrs(frame: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    frame.attrs = dict(source.attrs)
    return frame


def _check_policy(unknown: str) -> None:
    if unknown not in ("error", "skip"):
        raise ConfigError(f"unknown must be 'error' or 'skip', got {unknown!r}")
