"""2-D catalog layouts for the explorer, computed once per (model, method) and kept as bytes.

The layout comes from :func:`tastespace.viz.projection.cached_project` when the viz stage can
run (so ``tastespace map`` and the server share the projection cached inside the bundle); PCA of
the unit-length rows in NumPy is the fallback that always works, so the explorer runs with the
``serve`` extra alone. The JSON is built and gzipped once: a 60k-item map
is a few MB of text, and the explorer asks for it on every page load and model switch.
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from tastespace.errors import ConfigError
from tastespace.session import Session

logger = logging.getLogger(__name__)

METHODS = ("pca", "tsne", "umap")
MAP_SEED = 0
CORE_PERCENT = (2.0, 98.0)


def pca_2d(vectors: np.ndarray, seed: int = MAP_SEED) -> np.ndarray:
    """``(n, 2)`` first two principal components, signs fixed so the layout is reproducible.

    Uses the ``d × d`` covariance when ``d`` is small and a seeded randomised range finder
    (Halko et al. 2011) otherwise, so a 40k-column EASE profile matrix costs a few matmuls.
    """
    x = np.asarray(vectors, dtype=np.float64)
    n, d = x.shape
    out = np.zeros((n, 2))
    if n == 0 or d == 0:
        return out.astype(np.float32)
    x = x - x.mean(axis=0)
    if d <= 512:
        values, vecs = np.linalg.eigh(x.T @ x)
        axes = vecs[:, ::-1][:, : min(2, d)]
    else:
        rng = np.random.default_rng(seed)
        basis = x.T @ (x @ rng.standard_normal((d, 12)))
        for _ in range(3):
            basis, _ = np.linalg.qr(basis)
            basis = x.T @ (x @ basis)
        basis, _ = np.linalg.qr(basis)
        _, _, vt = np.linalg.svd(x @ basis, full_matrices=False)
        axes = basis @ vt[:2].T
    coords = x @ axes
    signs = np.sign(coords[np.abs(coords).argmax(axis=0), np.arange(coords.shape[1])])
    out[:, : coords.shape[1]] = coords * np.where(signs == 0, 1.0, signs)
    return out.astype(np.float32)


def project_2d(
    vectors: np.ndarray, method: str, bundle: Path | None = None, seed: int = MAP_SEED
) -> np.ndarray:
    """Lay ``vectors`` out in 2-D with the viz stage (cached inside ``bundle``), or PCA."""
    if method not in METHODS:
        raise ConfigError(f"map method must be one of {', '.join(METHODS)}, got {method!r}")
    try:
        from tastespace.viz.projection import cached_project
    except ImportError:
        cached_project = None
    if cached_project is not None:
        try:
            return np.asarray(cached_project(bundle, vectors, method, seed), dtype=np.float32)
        except ImportError as err:
            missing = err.name or "an optional package"
            if method != "pca":
                raise ConfigError(
                    f"map method {method!r} needs {missing} (pip install 'tastespace[viz]'); "
                    "use method=pca"
                ) from err
            logger.info("viz PCA unavailable (%s); using NumPy PCA", missing)
    elif method != "pca":
        raise ConfigError(
            f"map method {method!r} needs the viz stage (pip install 'tastespace[viz]'); "
            "use method=pca"
        )
    return pca_2d(_unit_rows(vectors), seed)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Cosine geometry, as similar_items sees it (and the viz stage's PCA)."""
    x = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _scaled(coords: np.ndarray) -> np.ndarray:
    """Centre and scale so the central 96 % of items fill [-1, 1] (4 decimals then suffice).

    Why not min/max: UMAP and t-SNE leave a few tiny islands far out, and fitting those would
    shrink the catalog's bulk to a dot. Outliers keep their true positions beyond ±1 (zoom out).
    """
    if len(coords) == 0:
        return coords
    coords = np.asarray(coords, dtype=np.float64)
    low, high = np.percentile(coords, [CORE_PERCENT[0], CORE_PERCENT[1]], axis=0)
    coords = coords - (low + high) / 2
    extent = float(np.max(high - low)) / 2
    return np.round(coords / extent if extent > 0 else coords, 4)


def build_map(session: Session, method: str = "pca", bundle: Path | None = None) -> dict[str, Any]:
    """The catalog's layout as columns: ids, titles, x, y, primary genre, popularity."""
    model = session.model
    try:
        vectors = model.item_vectors()
    except NotImplementedError:
        raise ConfigError(f"model {session.name!r} has no item vectors to map") from None
    coords = _scaled(project_2d(vectors, method, bundle))
    n = model.n_items
    genre = np.full(n, -1, dtype=np.int64)
    vocab: list[str] = []
    if session.genres is not None:
        vocab = list(session.genres.vocab)
        offsets = session.genres.offsets
        has = np.diff(offsets) > 0
        genre[has] = session.genres.indices[offsets[:-1][has]]
    frame = model.item_table().frame
    popularity = (
        np.round(frame["log_popularity"].to_numpy(dtype=np.float64), 3).tolist()
        if "log_popularity" in frame
        else None
    )
    return {
        "model": session.name,
        "method": method,
        "total": n,
        "ids": model.catalog().raw_ids(),
        "titles": session.titles,
        "x": coords[:, 0].tolist(),
        "y": coords[:, 1].tolist(),
        "genre": genre.tolist(),
        "genres": vocab,
        "popularity": popularity,
    }


class MapCache:
    """Layouts as ready-to-send JSON bytes (plain and gzipped), one per (model, method)."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._entries: dict[tuple[str, str], tuple[bytes, bytes]] = {}

    def forget(self, name: str) -> None:
        """Drop model ``name``'s layouts (its catalog changed); the next request lays out anew."""
        with self._guard:
            for key in [k for k in self._entries if k[0] == name]:
                del self._entries[key]

    def get(self, session: Session, method: str, bundle: Path | None = None) -> tuple[bytes, bytes]:
        """``(json, gzipped json)``; computed on first request, once even under concurrency."""
        key = (session.name, method)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._entries:
                logger.info("laying out %s with %s", session.name, method)
                layout = build_map(session, method, bundle)
                body = json.dumps(layout, separators=(",", ":")).encode()
                self._entries[key] = (body, gzip.compress(body, compresslevel=6))
            return self._entries[key]
