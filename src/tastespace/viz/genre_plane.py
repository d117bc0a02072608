"""The genre plane: where a model puts each genre, drawn as labelled points.

Three cases, and the figure's title says which one it shows:

* the neural model learned the feature in 2-D (``genre_dim=2``): the learned vectors themselves,
  no projection — the plane *is* the model's parameter table;
* it learned more dimensions: PCA of the learned table;
* the model has no feature tables (EASE, item2vec, …): each genre's vector is the mean of the
  vectors of the items carrying it (multi-genre items count for each), then PCA.

>>> from tastespace.data import load_dataset
>>> from tastespace.models.baselines import EASE
>>> plane = genre_plane(EASE().fit(load_dataset("synthetic:tiny")))
>>> plane.source, plane.coords.shape[1]
('mean', 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from tastespace.errors import DataError
from tastespace.models.base import Recommender
from tastespace.viz.catalog import resolve_bag_feature

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: at most this many values are labelled (a tag table can hold thousands; the most used win)
MAX_LABELS = 60
FIGURE_INCHES = (12.0, 9.0)
FIGURE_DPI = 150


@dataclass(frozen=True)
class GenrePlane:
    """Values of one categorical feature placed in 2-D, plus how they got there."""

    feature: str
    labels: list[str]
    coords: np.ndarray  # (g, 2) float32
    counts: np.ndarray  # items carrying each value
    source: Literal["learned", "mean"]
    projected: bool  # False only when the learned table is 2-D and shown as is
    dim: int  # dimension of the vectors before any projection

    @property
    def description(self) -> str:
        one = self.feature.removesuffix("s")
        if self.source == "learned" and not self.projected:
            return f"learned 2-D {one} embeddings (raw, no projection)"
        if self.source == "learned":
            return f"PCA of the learned {self.dim}-D {one} table"
        return (
            f"{one} vectors = mean of their items' vectors ({self.dim}-D, PCA); "
            "the model learns no feature table"
        )


def genre_vectors(
    model: Recommender, feature: str = "genres"
) -> tuple[list[str], np.ndarray, Literal["learned", "mean"]]:
    """``(labels, (g, d) vectors, source)`` for a categorical item feature.

    Uses the model's learned table when it has one (``feature_embeddings``), else item-vector
    means per value. Values no item carries are left out of the means (no vector to average).
    """
    name = resolve_bag_feature(model, feature)
    table = _learned_table(model, name)
    if table is not None:
        labels = list(table)
        return labels, np.stack([table[v] for v in labels]).astype(np.float32), "learned"
    bag = model.item_table().bags[name]
    try:
        vectors = np.asarray(model.item_vectors(), dtype=np.float64)
    except NotImplementedError as err:
        raise DataError(f"a {model.kind!r} model has no item vectors to average") from err
    membership = bag.to_csr().astype(np.float64)
    membership.data[:] = 1.0
    counts = np.asarray(membership.sum(axis=0)).ravel()
    used = np.flatnonzero(counts > 0)
    sums = np.asarray(membership.T @ vectors)[used]
    means = sums / counts[used, None]
    return [bag.vocab[j] for j in used], means.astype(np.float32), "mean"


def _learned_table(model: Recommender, name: str) -> dict[str, np.ndarray] | None:
    lookup = getattr(model, "feature_embeddings", None)
    if lookup is None:
        return None
    try:
        table = lookup(name)
    except KeyError:
        return None  # the model saw the catalog without this feature (e.g. features off)
    return table or None


def genre_plane(model: Recommender, feature: str = "genres", seed: int = 0) -> GenrePlane:
    """Place ``feature``'s values in 2-D (see the module docstring for the three cases)."""
    from tastespace.viz.projection import project

    name = resolve_bag_feature(model, feature)
    labels, vectors, source = genre_vectors(model, name)
    if len(labels) == 0:
        raise DataError(f"no item carries a {name!r} value; nothing to plot")
    dim = vectors.shape[1]
    if source == "learned" and dim == 2:
        coords, projected = vectors.copy(), False
    elif len(labels) < 4 or dim < 2:
        coords, projected = _small_pca(vectors), True
    else:
        # a genre table is not a cloud of items: keep the plain Euclidean geometry
        coords, projected = project(vectors, "pca", seed, metric="euclidean"), True
    bag = model.item_table().bags[name]
    per_value = np.bincount(bag.indices, minlength=len(bag.vocab))
    position = {v: k for k, v in enumerate(bag.vocab)}
    counts = np.array([per_value[position[v]] if v in position else 0 for v in labels])
    return GenrePlane(name, labels, coords.astype(np.float32), counts, source, projected, dim)


def _small_pca(vectors: np.ndarray) -> np.ndarray:
    """PCA by SVD for tables too small (or too thin) for :func:`project`."""
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    out = centred @ vt[:2].T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


def draw_genre_plane(
    plane: GenrePlane, title: str = "", colours: dict[str, str] | None = None
) -> Figure:
    """Labelled scatter of the plane; marker area ∝ how many items carry the value; ``colours``
    (value → colour, e.g. the item map's genre colours) default to one blue."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from tastespace.viz.static_map import place_labels

    fig = Figure(figsize=FIGURE_INCHES, dpi=FIGURE_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xy = plane.coords.astype(np.float64)
    share = plane.counts / max(1, plane.counts.max())
    fill = [(colours or {}).get(label, "#4c72b0") for label in plane.labels]
    ax.scatter(
        xy[:, 0],
        xy[:, 1],
        s=30 + 400 * share,
        c=fill,
        alpha=0.75,
        edgecolors="#333333",
        linewidths=0.8,
    )
    ax.axhline(0, color="#bbbbbb", linewidth=0.6, zorder=0)
    ax.axvline(0, color="#bbbbbb", linewidth=0.6, zorder=0)
    if plane.projected:
        ax.set_xlabel("component 1")
        ax.set_ylabel("component 2")
    else:
        ax.set_xlabel(f"{plane.feature} dimension 1")
        ax.set_ylabel(f"{plane.feature} dimension 2")
        ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title or plane.description, fontsize=14)
    ax.margins(0.12)
    fig.tight_layout()
    ax.apply_aspect()  # fix the final limits before measuring label boxes
    place_labels(
        ax,
        xy,
        plane.labels,
        plane.counts,
        MAX_LABELS,
        fontsize=11,
        keep_all=True,
        offset=9,
        boxed=False,
    )
    return fig


def save_genre_plane(
    plane: GenrePlane, out: str | Path, title: str = "", colours: dict[str, str] | None = None
) -> Path:
    """Draw and write the PNG atomically."""
    from tastespace.viz.static_map import save_figure

    return save_figure(draw_genre_plane(plane, title, colours), out)
