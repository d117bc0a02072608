"""2-D projections of item vectors: PCA, t-SNE (openTSNE) and UMAP, seeded and cached.

Every method is deterministic for a given seed, so a map drawn twice is the same map. t-SNE and
UMAP use the cosine metric on item vectors because similarity in tastespace is cosine
(``similar_items``); PCA sees unit-normalised rows for the same reason (otherwise the first axis
is mostly popularity, which sets a vector's length in dot-product models).

Projections of a bundle are cached inside it, ``DIR/projections/<method>-<seed>.npy`` (plus a
hash of any extra options), with a JSON sidecar holding a digest of the vectors they came from —
a stale file is recomputed, never shown. Re-saving a bundle replaces only the bundle's own files,
so the folder stays and its files from the old vectors fail that digest check; loading a bundle
ignores the folder.

>>> import numpy as np
>>> vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
>>> project(vectors, "pca").shape
(50, 2)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tastespace.errors import ConfigError, DataError

log = logging.getLogger(__name__)

METHODS = ("pca", "tsne", "umap")
METRICS = ("cosine", "euclidean")
CACHE_DIR = "projections"
MIN_POINTS = 4


def project(
    vectors: np.ndarray, method: str = "pca", seed: int = 0, metric: str = "cosine", **kw: Any
) -> np.ndarray:
    """Lay ``(n, d)`` vectors out in 2-D: ``(n, 2)`` float32, deterministic per ``seed``.

    ``kw`` goes to the engine (``perplexity`` for t-SNE, ``n_neighbors`` / ``min_dist`` for
    UMAP); neighbourhood sizes are clipped to what ``n`` points allow.
    """
    if method not in METHODS:
        raise ConfigError(f"unknown projection method {method!r}; choose one of {METHODS}")
    if metric not in METRICS:
        raise ConfigError(f"unknown metric {metric!r}; choose one of {METRICS}")
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"vectors must be a 2-D (n, d) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError("vectors contain NaN or infinite values; retrain or check the bundle")
    n = x.shape[0]
    if n < MIN_POINTS:
        raise DataError(f"need at least {MIN_POINTS} vectors to draw a map, got {n}")
    if method == "pca":
        out = _pca(_unit(x) if metric == "cosine" else x, seed, **kw)
    elif method == "tsne":
        out = _tsne(x, seed, metric, **kw)
    else:
        out = _umap(x, seed, metric, **kw)
    return np.ascontiguousarray(out, dtype=np.float32)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _pca(x: np.ndarray, seed: int, **kw: Any) -> np.ndarray:
    """PCA to 2-D; a 1-D input (e.g. popularity) gets a zero second axis."""
    from sklearn.decomposition import PCA

    components = min(2, x.shape[1], x.shape[0])
    out = PCA(n_components=components, random_state=seed, **kw).fit_transform(x)
    if components < 2:
        out = np.pad(out, ((0, 0), (0, 2 - components)))
    return _orient(out)


def _orient(coords: np.ndarray) -> np.ndarray:
    """Fix PCA's sign ambiguity (the largest |value| of each axis is positive) so re-runs with
    other BLAS builds draw the same picture."""
    out = coords.copy()
    for axis in range(out.shape[1]):
        column = out[:, axis]
        if len(column) and column[np.argmax(np.abs(column))] < 0:
            out[:, axis] = -column
    return out


def _tsne(x: np.ndarray, seed: int, metric: str, **kw: Any) -> np.ndarray:
    """openTSNE with one thread: its multi-threaded gradient is slower on small shared machines
    and one thread keeps the result bit-for-bit reproducible."""
    from openTSNE import TSNE

    n = x.shape[0]
    perplexity = float(kw.pop("perplexity", 30.0))
    perplexity = max(1.0, min(perplexity, (n - 1) / 3.0))
    options: dict[str, Any] = {"n_jobs": 1, "initialization": "pca", "verbose": False}
    options.update(kw)
    tsne = TSNE(n_components=2, perplexity=perplexity, metric=metric, random_state=seed, **options)
    return np.asarray(tsne.fit(x))


def _umap(x: np.ndarray, seed: int, metric: str, **kw: Any) -> np.ndarray:
    """umap-learn, imported here because it pulls in numba (seconds to import and compile)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba / "n_jobs overridden by random_state" notices
        import umap

        n = x.shape[0]
        n_neighbors = int(kw.pop("n_neighbors", 15))
        n_neighbors = max(2, min(n_neighbors, n - 1))
        options: dict[str, Any] = {"min_dist": 0.1}
        options.update(kw)
        # spectral init needs more points than neighbours; fall back to a seeded random start.
        init = options.pop("init", "spectral" if n > n_neighbors + 2 else "random")
        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=n_neighbors,
            metric=metric,
            random_state=seed,
            init=init,
            **options,
        )
        return np.asarray(reducer.fit_transform(x))


# -- cache --------------------------------------------------------------------------------------
def cache_path(
    bundle: str | Path, method: str, seed: int = 0, *, variant: str = "", **kw: Any
) -> Path:
    """Where the projection of ``bundle`` with these options is cached (``variant`` names a
    subset of the items, e.g. ``top2000``, so it does not evict the full catalog's layout)."""
    name = f"{method}-{seed}" + (f"-{variant}" if variant else "")
    if kw:
        name += "-" + _digest(json.dumps(kw, sort_keys=True, default=str).encode())[:10]
    return Path(bundle) / CACHE_DIR / f"{name}.npy"


def cached_project(
    bundle: str | Path | None,
    vectors: np.ndarray,
    method: str = "pca",
    seed: int = 0,
    *,
    variant: str = "",
    **kw: Any,
) -> np.ndarray:
    """:func:`project`, reusing ``bundle``'s cached result when it came from the same vectors.

    ``bundle=None`` (a model never saved) computes without caching. A cache that cannot be
    written (read-only bundle) is only logged: the map still gets drawn.
    """
    if bundle is None:
        return project(vectors, method, seed, **kw)
    if method not in METHODS:
        raise ConfigError(f"unknown projection method {method!r}; choose one of {METHODS}")
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    digest = _digest(x.tobytes() + str(x.shape).encode())
    path = cache_path(bundle, method, seed, variant=variant, **kw)
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        try:
            if json.loads(meta.read_text()).get("vectors") == digest:
                coords = np.load(path, allow_pickle=False)
                if coords.shape == (len(x), 2):
                    log.info("using cached %s projection %s", method, path)
                    return coords.astype(np.float32, copy=False)
        except (OSError, ValueError):
            log.info("ignoring unreadable projection cache %s", path)
    coords = project(x, method, seed, **kw)
    try:
        info = {"method": method, "seed": seed, "options": kw, "vectors": digest}
        _write_cache(path, meta, coords, info)
    except OSError as err:
        log.warning("could not cache the projection in %s (%s)", path.parent, err)
    return coords


def _write_cache(path: Path, meta: Path, coords: np.ndarray, info: dict[str, Any]) -> None:
    """Atomic: write temp files in the same folder, then rename. The old sidecar goes first so a
    crash half-way leaves an array without a sidecar (recomputed), never a mismatched pair."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta.unlink(missing_ok=True)
    for target, write in (
        (path, lambda handle: np.save(handle, coords, allow_pickle=False)),
        (meta, lambda handle: handle.write(json.dumps(info, default=str).encode())),
    ):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()[:16]
