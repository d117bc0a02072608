"""The ``Recommender`` protocol every tastespace model implements.

A model learns from a :class:`~tastespace.data.Dataset` and then serves five questions, all
batch-first with numpy in and out, in *dense indices*: histories are a users × items CSR matrix
or :class:`~tastespace.models.histories.ItemIndices` (a plain list is refused, so a raw id can't
pass for an index; raw ids and titles go through ``tastespace.open``):

* ``item_vectors()`` → ``(n_items, d)`` float32;
* ``user_vectors(histories)`` → ``(n, d)``: fold-in from watch histories, so a user never seen in
  training needs no retraining;
* ``score(histories)`` → ``(n, n_items)``: a dot product by default; models whose scores are not a
  dot product (EASE, item-kNN) override it;
* ``recommend(histories, k)`` / ``similar_items(items, k)`` → ``(ids, scores)`` of shape ``(n, k)``
  (or ``(k,)`` for one query), best first, padded with ``-1`` / ``-inf``; both search an
  :class:`~tastespace.index.Index` (exact unless :meth:`Recommender.build_index` chose an
  approximate one; ``exact=True`` always searches exactly, as evaluation does);
* ``save(dir)`` / ``load(dir)``: a bundle with the id maps and the item catalog (see ``io``).

Subclasses implement ``_fit``, ``_item_vectors``, ``user_vectors`` (or ``score``) and the pair
``_state`` / ``_restore``; everything else lives here once. Anything computed from the learned
state (unit vectors, neighbour lists, solvers) goes through :meth:`Recommender._derived`, which
``fit`` and ``load`` empty, so a refit can never serve vectors of the previous fit.
"""

from __future__ import annotations

import copy
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tastespace.data.bags import Bags
from tastespace.data.catalog import ItemCatalog
from tastespace.data.dataset import Dataset, FeatureTable
from tastespace.data.vocab import Vocabulary
from tastespace.errors import BundleError, ConfigError, DataError, NotFittedError, TastespaceError
from tastespace.index.base import (
    Index,
    Metric,
    build_index,
    check_k,
    index_from_bytes,
    resolve_kind,
)
from tastespace.index.blocks import QUERY_BLOCK, dot_scores, fixed_blocks, pad_histories
from tastespace.index.recall import measure_recall
from tastespace.index.topk import mask_rows, topk_rows
from tastespace.models.config import ModelConfig
from tastespace.models.fitting import (
    FitRun,
    ProgressCallback,
    TrainingOptions,
    ValidationMetric,
    recall_at_20,
)
from tastespace.models.histories import Histories, as_histories

T = TypeVar("T")
RECALL_SAMPLE = 1000
"""Queries an approximate index's recall is measured on when it is built."""
RECALL_K = 10


@dataclass(frozen=True)
class SearchSpace:
    """What ``recommend`` searches: one row per item, the metric, and the factor that turns
    the index's scores into the model's (``1 / temperature`` for scaled cosines)."""

    items: np.ndarray
    metric: Metric = "dot"
    scale: float = 1.0


class Recommender(ABC):
    """Shared behaviour of every model; see the module docstring for the contract."""

    kind: ClassVar[str]
    Config: ClassVar[type[ModelConfig]] = ModelConfig
    #: True when ``score`` is ``user_vectors @ item_vectors.T`` (enables fast paths and maps).
    dot_product: ClassVar[bool] = True
    #: Roles an approximate index is built for (``recommend`` only with a search space).
    approximate_roles: ClassVar[tuple[str, ...]] = ("recommend", "similar")
    #: Histories one fold-in call of ``recommend`` takes: ``QUERY_BLOCK``, unless the model's
    #: fold-in gives a row the same bits in a block of any height from ``QUERY_BLOCK`` up.
    fold_in_rows: ClassVar[int] = QUERY_BLOCK

    def __init__(self, config: ModelConfig | None = None, **options: Any) -> None:
        base = config if config is not None else self.Config()
        if not isinstance(base, self.Config):
            raise TypeError(f"{type(self).__name__} takes a {self.Config.__name__}")
        self.config = base.with_options(options) if options else base
        self.item_ids_: Vocabulary | None = None
        self.items_: FeatureTable | None = None
        self.fingerprint_: str | None = None
        #: Training users per item: the ranking for an empty history (``tastespace.open``).
        self.item_popularity_: np.ndarray | None = None
        #: Where the training data came from (``load_dataset``'s source and options) and the
        #: split that held users out, so ``evaluate`` can rebuild it; None when unknown.
        self.data_: dict[str, Any] | None = None
        self.split_: dict[str, Any] | None = None
        self.fit_seconds_: float | None = None
        self._cache: dict[str, Any] = {}
        self._forget_indexes()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"

    # -- training ---------------------------------------------------------------------------
    def fit(
        self,
        dataset: Dataset,
        validation: Any = None,
        *,
        callback: ProgressCallback | None = None,
        training: TrainingOptions | None = None,
        metric: ValidationMetric | None = None,
    ) -> Self:
        """Learn from ``dataset``; returns ``self``.

        ``validation`` (held-out users) enables early stopping where the model supports it,
        scored by ``metric`` (default: Recall@20); ``callback`` hears about every epoch of
        iterative models; ``training`` says where and how to run (device, threads,
        checkpoints) without changing what is learned.
        """
        if dataset.n_interactions == 0:
            raise DataError(f"{dataset.name}: no interactions to learn from")
        started = time.perf_counter()
        self.item_ids_ = dataset.item_ids
        self.items_ = dataset.items
        self.fingerprint_ = dataset.fingerprint()
        self.item_popularity_ = dataset.item_user_counts()
        self.data_ = dataset.provenance.get("loader")
        self.split_ = dataset.provenance.get("split")
        self._forget_derived()
        self._forget_indexes()
        run = FitRun(training or TrainingOptions(), callback, metric or recall_at_20)
        self._fit(dataset, validation, run)
        self._forget_derived()
        self.fit_seconds_ = time.perf_counter() - started
        return self

    @abstractmethod
    def _fit(self, dataset: Dataset, validation: Any, run: FitRun) -> None: ...

    # -- derived state ------------------------------------------------------------------------
    def _derived(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()`` once per fitted state; arrays come back read-only (gensim's rule), so
        no caller can edit a cached value in place."""
        if name not in self._cache:
            self._cache[name] = _read_only(compute())
        return self._cache[name]

    def _forget_derived(self) -> None:
        """Drop everything computed from the learned state (``fit`` and ``load`` call this)."""
        self._cache = {}

    def _forget_indexes(self) -> None:
        """Drop a built or stored approximate index: search exactly until one is built."""
        self.index_info_: dict[str, Any] = {"kind": "exact"}
        self._built_indexes: dict[str, Index] = {}
        self._stored_indexes: dict[str, np.ndarray] = {}

    @property
    def is_fitted(self) -> bool:
        return self.item_ids_ is not None

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load() first")

    @property
    def n_items(self) -> int:
        return len(self._vocabulary())

    def _vocabulary(self) -> Vocabulary:
        if self.item_ids_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load() first")
        return self.item_ids_

    def item_table(self) -> FeatureTable:
        """The feature table of the items the model was fitted on (or loaded with)."""
        if self.items_ is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() or load() first")
        return self.items_

    def catalog(self) -> ItemCatalog:
        """Ids, titles, genres and years of the items the model was fitted on."""
        item_ids, table = self._vocabulary(), self.item_table()
        return self._derived("catalog", lambda: ItemCatalog.from_table(item_ids, table))

    # -- vectors ----------------------------------------------------------------------------
    def item_vectors(self) -> np.ndarray:
        """``(n_items, d)`` float32 item embeddings (read-only)."""
        self._require_fitted()
        return self._derived(
            "item_vectors", lambda: np.asarray(self._item_vectors(), dtype=np.float32)
        )

    def _item_vectors(self) -> np.ndarray:
        """The model's item embeddings; :meth:`item_vectors` caches them read-only."""
        raise NotImplementedError(f"{type(self).__name__} has no item vectors")

    def user_vectors(self, histories: Histories) -> np.ndarray:
        """``(n, d)`` float32 user embeddings folded in from histories."""
        raise NotImplementedError(f"{type(self).__name__} has no user vectors")

    def score(self, histories: Histories) -> np.ndarray:
        """``(n, n_items)`` scores for each history (higher = more recommended), each row the
        same bits alone or batched (a plain matrix product's rows are not)."""
        matrix, _ = as_histories(histories, self.n_items)
        return dot_scores(self.user_vectors(matrix), self.item_vectors())

    # -- queries ----------------------------------------------------------------------------
    def recommend(
        self, histories: Histories, k: int = 10, exclude_seen: bool = True, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores per history; seen items excluded by default.

        Users are folded in (and scored, for models without a search space) in fixed blocks
        of ``QUERY_BLOCK`` rows, the last padded with empty histories, and the index gives a
        row the same bits alone or batched: a history gets the same ranking alone or in any
        batch. Searches the model's index (``exact=True``: exact search whatever was built).
        """
        self._require_fitted()
        check_k(k)
        matrix, single = as_histories(histories, self.n_items)
        space = self._space()
        if space is not None:
            ids, scores = self._search_histories(matrix, k, exclude_seen, exact)
            if space.scale != 1.0:
                scores *= np.float32(space.scale)
            return (ids[0], scores[0]) if single else (ids, scores)
        n = matrix.shape[0]
        ids = np.empty((n, k), np.int64)
        scores = np.empty((n, k), np.float32)
        for start, stop in fixed_blocks(n):
            block = pad_histories(matrix[start:stop])
            block_scores = np.asarray(self.score(block), dtype=np.float32)
            mask_rows(block_scores, block if exclude_seen else None)
            block_ids, block_top = topk_rows(block_scores, k)
            ids[start:stop] = block_ids[: stop - start]
            scores[start:stop] = block_top[: stop - start]
        return (ids[0], scores[0]) if single else (ids, scores)

    def similar_items(
        self, items: int | np.ndarray | list[int], k: int = 10, exact: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` most similar items (cosine) to each item, the item itself excluded."""
        self._require_fitted()
        check_k(k)
        single = np.isscalar(items)
        query = self._item_query(items)
        self_mask = sp.csr_matrix(
            (np.ones(len(query), np.float32), query, np.arange(len(query) + 1)),
            shape=(len(query), self.n_items),
        )
        index = self.index("similar", exact=exact)
        ids, scores = index.search(self.item_vectors()[query], k, self_mask)
        return (ids[0], scores[0]) if single else (ids, scores)

    def _search_histories(
        self, matrix: sp.csr_matrix, k: int, exclude_seen: bool, exact: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`recommend` for a model with a search space: fold in, then search its index."""
        queries = self._blockwise(self._search_queries, matrix, self._space().items.shape[1])
        index = self.index("recommend", exact=exact)
        return index.search(queries, k, matrix if exclude_seen else None)

    # -- search indexes -----------------------------------------------------------------------
    def _search_space(self) -> SearchSpace | None:
        """The rows ``recommend`` searches; None when scores are not an inner product."""
        return SearchSpace(self.item_vectors()) if self.dot_product else None

    def _search_queries(self, histories: sp.csr_matrix) -> np.ndarray:
        """One query row per history in the space of :meth:`_search_space`."""
        return self.user_vectors(histories)

    def _blockwise(self, fold_in: Any, matrix: sp.csr_matrix, width: int) -> np.ndarray:
        """``fold_in`` applied to fixed blocks of ``fold_in_rows`` histories (one shorter than
        ``QUERY_BLOCK`` padded with empty ones) and stacked: a fold-in that solves per block
        gives a row the same vector alone or batched."""
        parts = [
            np.asarray(fold_in(pad_histories(matrix[start:stop])), np.float32)[: stop - start]
            for start, stop in fixed_blocks(matrix.shape[0], self.fold_in_rows)
        ]
        return np.concatenate(parts) if parts else np.empty((0, width), np.float32)

    def _space(self) -> SearchSpace | None:
        """:meth:`_search_space`, built once per fitted state (it may stack a bias column)."""
        return self._derived("search_space", self._search_space)

    def _index_rows(self, role: str) -> tuple[np.ndarray, Metric]:
        if role == "similar":
            return self.item_vectors(), "cosine"
        space = self._space()
        if space is None:
            raise NotImplementedError(f"{type(self).__name__} scores are not an inner product")
        return space.items, space.metric

    def index(self, role: str = "recommend", exact: bool = False) -> Index:
        """The index ``recommend`` (role ``"recommend"``) or ``similar_items`` (``"similar"``)
        searches: the built approximate one, else (or with ``exact``) exact search."""
        if not exact and role in self._stored_indexes:
            restored = index_from_bytes(self._stored_indexes.pop(role))
            if restored.n_items != self.n_items:
                raise BundleError(
                    f"the stored {role} index covers {restored.n_items:,} items, the model "
                    f"{self.n_items:,}; rebuild it with build_index, or search the exact index",
                    options=("index",),
                )
            self._built_indexes[role] = restored
        if not exact and role in self._built_indexes:
            return self._built_indexes[role]
        return self._derived(
            f"exact_index.{role}", lambda: build_index("exact", *self._index_rows(role))
        )

    def build_index(
        self,
        kind: str = "auto",
        histories: sp.csr_matrix | None = None,
        seed: int = 0,
        **params: Any,
    ) -> dict[str, Any]:
        """Choose the search index (``auto``, ``exact``, ``hnsw``, ``ivfpq``); kept by
        :meth:`save`. An approximate index's recall@10 against exact search is measured on a
        seeded sample of ``histories`` (training users; one-item histories when None) and of
        items, and returned (and stored) as ``{"kind", "recommend": {...}, "similar": {...}}``."""
        self._require_fitted()
        kind = resolve_kind(kind, self.n_items)
        self._forget_indexes()
        info: dict[str, Any] = {"kind": kind}
        if kind != "exact":
            roles = [r for r in self.approximate_roles if r != "recommend" or self._space()]
            for role in roles:
                index = build_index(kind, *self._index_rows(role), **params)
                queries, exclude = self._recall_queries(role, histories, seed)
                exact = self.index(role, exact=True)
                recall = measure_recall(index, exact, queries, RECALL_K, exclude)
                self._built_indexes[role] = index
                info[role] = {
                    **index.describe(),
                    f"recall@{RECALL_K}": round(recall, 4),
                    "recall_queries": len(queries),
                }
        self.index_info_ = info
        return info

    def _recall_queries(
        self, role: str, histories: sp.csr_matrix | None, seed: int
    ) -> tuple[np.ndarray, sp.csr_matrix]:
        """Sampled queries and their exclusions, as ``recommend`` / ``similar_items`` send them."""
        rng = np.random.default_rng(seed)
        if role == "recommend" and histories is not None:
            rows = rng.choice(histories.shape[0], min(RECALL_SAMPLE, histories.shape[0]), False)
            matrix, _ = as_histories(histories[np.sort(rows)], self.n_items)
        else:
            items = np.sort(rng.choice(self.n_items, min(RECALL_SAMPLE, self.n_items), False))
            matrix = sp.csr_matrix(
                (np.ones(len(items), np.float32), items, np.arange(len(items) + 1)),
                shape=(len(items), self.n_items),
            )
        if role == "similar":
            return self.item_vectors()[matrix.indices], matrix
        width = self._index_rows(role)[0].shape[1]
        return self._blockwise(self._search_queries, matrix, width), matrix

    def _item_query(self, items: int | np.ndarray | list[int]) -> np.ndarray:
        """Validated 1-D array of dense item indices."""
        given = np.atleast_1d(np.asarray(items))
        if len(given) and given.dtype.kind not in "iu":
            raise DataError(
                f"similar_items takes dense item indices (integers 0..{self.n_items - 1}), not "
                f"{given.tolist()[0]!r}; for raw ids or titles use "
                "tastespace.open(model).similar(item)"
            )
        query = given.astype(np.int64)
        if len(query) and (query.min() < 0 or query.max() >= self.n_items):
            raise DataError(f"item index out of range 0..{self.n_items - 1}")
        return query

    # -- growing the catalog ----------------------------------------------------------------
    def with_items(self, ids: np.ndarray | list[Any], table: FeatureTable) -> Self:
        """A copy whose catalog also holds new items (raw ``ids``, features ``table``), placed
        from features alone; known items keep their indices and vectors."""
        from tastespace.data.append import append_items

        self._require_fitted()
        assert self.item_ids_ is not None and self.items_ is not None
        item_ids, items = append_items(self.item_ids_, self.items_, np.asarray(ids), table)
        grown = copy.copy(self)
        grown._grow(len(item_ids) - len(self.item_ids_))
        grown.item_ids_, grown.items_ = item_ids, items
        grown._cache = {}  # the copy's own derived state (item vectors of the grown catalog)
        grown._forget_indexes()  # an index of the old catalog lacks the new rows
        if self.item_popularity_ is not None:
            added = np.zeros(len(item_ids) - len(self.item_ids_), np.float32)
            grown.item_popularity_ = np.concatenate([self.item_popularity_, added])
        return grown

    def _grow(self, n_new: int) -> None:
        """Make room for ``n_new`` items with no training data (called on the copy)."""
        raise ConfigError(
            f"{self.kind} learns item vectors from interactions only, so it cannot place items "
            "that have none; use the neural model (its content path embeds items from their "
            "features) or refit with the new items' interactions"
        )

    # -- persistence ------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Learned arrays and JSON-able extras; subclasses extend."""
        return {}, {}

    def _restore(self, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> None:  # noqa: B027
        """Inverse of :meth:`_state` (models with no learned arrays keep this no-op)."""

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write a bundle directory (crash-safe; other files in it are kept). Returns its path.

        ``force`` writes into a folder that holds other files but no bundle yet."""
        from tastespace.io.bundle import write_bundle

        item_ids, items = self._vocabulary(), self.item_table()
        arrays, extra = self._state()
        if self.item_popularity_ is not None:
            arrays["catalog.popularity"] = self.item_popularity_
        for role in self.index_info_:
            if role != "kind":
                arrays[f"index.{role}"] = self.index(role).to_bytes()
        for name, bag in items.bags.items():
            arrays[f"catalog.bag.{name}.indices"] = bag.indices
            arrays[f"catalog.bag.{name}.offsets"] = bag.offsets
        manifest = {
            "kind": self.kind,
            "config": self.config.to_json(),
            "item_ids": item_ids.to_json(),
            "catalog_bags": {name: list(bag.vocab) for name, bag in items.bags.items()},
            "fingerprint": self.fingerprint_,
            "data": self.data_,
            "split": self.split_,
            "fit_seconds": self.fit_seconds_,
            "index": self.index_info_,
            "extra": extra,
        }
        return write_bundle(path, manifest, arrays, items.frame, force=force)

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a bundle written by :meth:`save` (any model kind when called on the base)."""
        from tastespace.io.bundle import read_bundle
        from tastespace.models.registry import model_class

        contents = read_bundle(path)
        manifest = contents.manifest
        try:
            model_cls = model_class(manifest["kind"])
            if cls is not Recommender and not issubclass(model_cls, cls):
                raise BundleError(f"{path} holds a {manifest['kind']!r} model, not {cls.kind!r}")
            model = model_cls._from_contents(contents, Path(path))
        except BundleError:
            raise
        except (TastespaceError, KeyError, ValueError, TypeError, IndexError, RuntimeError) as err:
            detail = f"missing array or key {err}" if type(err) is KeyError else err
            raise BundleError(f"{path}: bundle contents do not fit together ({detail})") from err
        return model

    @classmethod
    def _from_contents(cls, contents: Any, path: Path) -> Self:
        """Rebuild a fitted model from a verified bundle and check its arrays match its ids."""
        manifest = contents.manifest
        model = cls(cls.Config.from_json(manifest["config"]))
        model.item_ids_ = Vocabulary.from_json(manifest["item_ids"])
        bags = {
            name: Bags(
                tuple(vocab),
                contents.arrays.pop(f"catalog.bag.{name}.indices").astype(np.int64),
                contents.arrays.pop(f"catalog.bag.{name}.offsets").astype(np.int64),
            )
            for name, vocab in manifest["catalog_bags"].items()
        }
        model.items_ = FeatureTable(pd.DataFrame(contents.items), bags)
        model.fingerprint_ = manifest["fingerprint"]
        model.item_popularity_ = contents.arrays.pop("catalog.popularity", None)
        model.data_, model.split_ = manifest.get("data"), manifest.get("split")
        model.fit_seconds_ = manifest["fit_seconds"]
        info = manifest.get("index", {"kind": "exact"})
        stored = {r: contents.arrays.pop(f"index.{r}", None) for r in info if r != "kind"}
        model._restore(contents.arrays, manifest["extra"])
        model._forget_derived()
        if any(v is None for v in stored.values()):
            raise BundleError(f"{path}: manifest lists a {info['kind']} index its arrays lack")
        model.index_info_ = info
        model._stored_indexes = stored
        n = model.n_items
        if len(model.items_) != n:
            raise BundleError(
                f"{path / 'items.parquet'}: {len(model.items_):,} rows for {n:,} item ids"
            )
        shape = np.shape(model.score(sp.csr_matrix(([1.0], [0], [0, 1]), shape=(1, n))))
        if shape != (1, n):
            raise BundleError(
                f"{path / 'arrays.safetensors'}: the arrays score {shape[-1]:,} items, "
                f"manifest.json has {n:,} item ids"
            )
        return model


def _read_only(value: T) -> T:
    """Read-only views of an array or a tuple of arrays (the arrays themselves stay as they
    are); other values as given."""
    if isinstance(value, tuple):
        return tuple(_read_only(v) for v in value)  # type: ignore[return-value]
    if isinstance(value, np.ndarray):
        view = value.view()
        view.flags.writeable = False
        return view  # type: ignore[return-value]
    return value
