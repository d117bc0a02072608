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

from pathlib import Path
from typing import Any

import numpy as np

from tastespace.errors import ConfigError
from tastespace.models.base import Recommender
from tastespace.viz.catalog import MapCatalog
from tastespace.viz.projection import METHODS, cached_project

METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def item_coordinates(
    model: Recommender,
    method: str = "umap",
    seed: int = 0,
    bundle: str | Path | None = None,
    **kw: Any,
) -> np.ndarray:
    """``(n_items, 2)`` layout of the model's item vectors, cached in ``bundle`` when given."""
    if method not in METHODS:
        raise ConfigError(f"unknown --method {method!r}; choose one of {', '.join(METHODS)}")
    try:
        vectors = model.item_vectors()
    except NotImplementedError as err:
        raise ConfigError(f"a {model.kind!r} model has no item vectors to map") from err
    return cached_project(bundle, vectors, method, seed, **kw)


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
) -> list[Path]:
    """The PNG (``out``) and/or the standalone page (``html``) of the item map."""
    from tastespace.viz.html_map import learned_neighbours, save_html_map
    from tastespace.viz.static_map import save_map

    if out is None and html is None:
        raise ConfigError("nothing to write: give --out map.png and/or --html map.html")
    if k < 1:
        raise ConfigError(f"-k must be at least 1 neighbour per item, got {k}")
    coords = item_coordinates(model, method, seed, bundle)
    catalog = MapCatalog.from_model(model)
    name = Path(bundle).name if bundle is not None else model.kind
    title = title or (
        f"{name}: {len(catalog):,} items, {model.kind} vectors, {METHOD_NAMES[method]}"
    )
    written = []
    if out is not None:
        written.append(save_map(coords, catalog, out, title, n_labels))
    if html is not None:
        neighbours = learned_neighbours(model, k)
        written.append(save_html_map(coords, catalog, html, neighbours, title))
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
