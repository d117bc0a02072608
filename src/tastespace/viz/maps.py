"""Maps of a fitted model in one call each: what the CLI and the benchmarks use.

>>> from tastespace.data import load_dataset
>>> from tastespace.models.baselines import EASE
>>> import tempfile, pathlib
>>> model = EASE().fit(load_dataset("synthetic:tiny"))
>>> out = pathlib.Path(tempfile.mkdtemp())
>>> [p.name for p in write_item_map(model, out / "map.png", out / "map.html", method="pca")]
['map.png', 'map.html']
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tastespace.errors import ConfigError
from tastespace.evaluate.eta import format_seconds
from tastespace.models.base import Recommender
from tastespace.viz.catalog import MapCatalog, item_popularity
from tastespace.viz.projection import METHODS, cached_project

METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
MIN_TOP = 10


def top_items(model: Recommender, top: int | None) -> np.ndarray | None:
    """Dense indices of the ``top`` most popular items (catalog order), or ``None`` for all.

    Big catalogs carry a long tail of items with few or no training interactions; their vectors
    come from features or priors alone and crowd a map with tight islands. ``--top`` maps the
    part of the catalog the model learned from behaviour.
    """
    if top is None or top >= model.n_items:
        return None
    if top < MIN_TOP:
        raise ConfigError(f"top must be at least {MIN_TOP} items, got {top}", options=("top",))
    popularity = item_popularity(model)
    return np.sort(np.argsort(-popularity, kind="stable")[:top])


def item_coordinates(
    model: Recommender,
    method: str = "umap",
    seed: int = 0,
    bundle: str | Path | None = None,
    rows: np.ndarray | None = None,
    **kw: Any,
) -> np.ndarray:
    """``(n, 2)`` layout of the model's item vectors (only ``rows`` when given), cached in
    ``bundle`` when given."""
    if method not in METHODS:
        raise ConfigError(
            f"unknown method {method!r}; choose one of {', '.join(METHODS)}", options=("method",)
        )
    try:
        vectors = model.item_vectors()
    except NotImplementedError as err:
        raise ConfigError(f"a {model.kind!r} model has no item vectors to map") from err
    variant = ""
    if rows is not None:
        vectors, variant = vectors[rows], f"top{len(rows)}"
    return cached_project(bundle, vectors, method, seed, variant=variant, **kw)


def write_item_map(
    model: Recommender,
    out: str | Path | None = None,
    html: str | Path | None = None,
    method: str = "umap",
    seed: int = 0,
    bundle: str | Path | None = None,
    n_labels: int = 30,
    k: int = 10,
    title: str | None = None,
    top: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """The PNG (``out``) and/or the standalone page (``html``) of the item map; ``top`` keeps
    only the most popular items (see :func:`top_items`). ``progress`` hears each stage with
    the time taken so far: a UMAP layout of a large catalog runs for minutes."""
    started = time.perf_counter()

    def stage(text: str) -> None:
        if progress is not None:
            progress(f"[{format_seconds(time.perf_counter() - started)}] {text}")

    from tastespace.viz.html_map import learned_neighbours, save_html_map
    from tastespace.viz.static_map import save_map

    if out is None and html is None:
        raise ConfigError(
            "nothing to write: give a PNG path (out) and/or an HTML path (html)",
            options=("out", "html"),
        )
    if k < 1:
        raise ConfigError(f"k must be at least 1 neighbour per item, got {k}", options=("k",))
    rows = top_items(model, top)
    count = model.n_items if rows is None else len(rows)
    cached = " (cached in the bundle)" if bundle is not None else ""
    stage(f"laying out {count:,} items with {METHOD_NAMES[method]}{cached}")
    coords = item_coordinates(model, method, seed, bundle, rows)
    catalog = MapCatalog.from_model(model)
    if rows is not None:
        catalog = catalog.take(rows)
    name = Path(bundle).name if bundle is not None else model.kind
    shown = f"{len(catalog):,}" + ("" if rows is None else f" most popular of {model.n_items:,}")
    title = title or f"{name}: {shown} items, {model.kind} vectors, {METHOD_NAMES[method]}"
    written = []
    if out is not None:
        stage("drawing the PNG")
        written.append(save_map(coords, catalog, out, title, n_labels))
    if html is not None:
        stage(f"finding {k} neighbours per item for the page")
        neighbours = learned_neighbours(model, k, rows)
        written.append(save_html_map(coords, catalog, html, neighbours, title))
    stage("done")
    return written


def write_genre_plane(
    model: Recommender,
    out: str | Path,
    feature: str = "genres",
    seed: int = 0,
    title: str | None = None,
) -> Path:
    """The genre plane PNG (see :mod:`tastespace.viz.genre_plane`)."""
    from tastespace.viz.genre_plane import genre_plane, save_genre_plane
    from tastespace.viz.static_map import display_labels, genre_colours

    plane = genre_plane(model, feature, seed)
    # genres keep the colours they have on the item map
    colours = genre_colours(display_labels(MapCatalog.from_model(model).primary))
    title = title or f"{model.kind}: {plane.description}"
    return save_genre_plane(plane, out, title, colours if plane.feature == "genres" else None)
