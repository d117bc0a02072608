"""Loading bundles for the server: names, one :class:`ServedSession` each, warm caches.

A served session is a :class:`~tastespace.session.Session` that remembers each item's
record once built. Every response lists ~20 records and building one touches a pandas index, a
bag and the year column (≈ 25 µs), which made records a quarter of a request's CPU time
(``bench/serve_load.py``); a hit is a dict copy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tastespace.errors import ConfigError
from tastespace.index.base import resolve_kind
from tastespace.models.base import Recommender
from tastespace.models.histories import ItemIndices
from tastespace.session import Session

logger = logging.getLogger(__name__)


class ServedSession(Session):
    """A Session whose item records are built once per item, on first use."""

    def __init__(self, model: Recommender, name: str = "model") -> None:
        super().__init__(model, name)
        self._records: list[dict[str, Any] | None] = [None] * model.n_items

    def record(self, index: int, score: float | None = None) -> dict[str, Any]:
        base = self._records[index]
        if base is None:
            base = self._records[index] = super().record(index)
        out = dict(base)
        if score is not None:
            out["score"] = round(float(score), 6)
        return out

    @property
    def dim(self) -> int | None:
        """Item vector dimension, or None for models without item vectors."""
        try:
            return int(self.model.item_vectors().shape[1])
        except NotImplementedError:
            return None


def bundle_names(bundles: Mapping[str, str | Path] | Sequence[str | Path]) -> dict[str, Path]:
    """``{name: path}``: the given names, or folder names made unique (``neural``,
    ``neural-2``)."""
    if isinstance(bundles, Mapping):
        named = {str(name): Path(path) for name, path in bundles.items()}
    else:
        named = {}
        for path in map(Path, bundles):
            base = path.resolve().name or "model"
            name, n = base, 2
            while name in named:
                name, n = f"{base}-{n}", n + 1
            named[name] = path
    if not named:
        raise ConfigError("give at least one bundle directory to serve")
    return named


def load_sessions(paths: Mapping[str, Path], index: str = "auto") -> dict[str, ServedSession]:
    """Open each bundle once and fill its lazy caches before requests arrive on many threads.

    ``index`` other than ``auto`` (the bundle's own) is built now if the bundle has another."""
    resolve_kind(index, 0)
    sessions = {}
    for name, path in paths.items():
        session = ServedSession(Recommender.load(path), name=name)
        model = session.model
        if index != "auto" and index != model.index_info_["kind"]:
            model.build_index(index)
        if model.n_items:
            model.similar_items(0, k=1)  # unit item vectors
            model.recommend(ItemIndices([[0]]), k=1)  # item vectors / towers
        sessions[name] = session
        logger.info("loaded %s (%s, %d items) from %s", name, model.kind, model.n_items, path)
    return sessions
