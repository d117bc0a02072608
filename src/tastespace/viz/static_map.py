"""The static map: a slide-sized PNG of the catalog in 2-D, coloured by primary genre.

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global backend switch, no
display needed). The most popular titles are labelled greedily: each label tries four spots
around its point and is kept only where its box overlaps no label already placed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tastespace.io.export import atomic_path
from tastespace.viz.catalog import NO_GENRE, MapCatalog

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: 16:9 at 150 dpi → 2400 × 1350 pixels: sharp on a projector, well under 1 MB as a PNG.
SLIDE_INCHES = (16.0, 9.0)
SLIDE_DPI = 150
MAX_COLOURS = 20
OTHER = "other"
LABEL_CHARS = 38
# label directions tried in turn: upper right, upper left, lower right, lower left
_SPOTS = (
    (1, 1, "left", "bottom"),
    (-1, 1, "right", "bottom"),
    (1, -1, "left", "top"),
    (-1, -1, "right", "top"),
)


def genre_colours(labels: list[str]) -> dict[str, str]:
    """Label → hex colour; the most frequent labels get the distinct ``tab20`` colours, the rest
    share grey as ``other``; items without a genre are light grey."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    counts = Counter(label for label in labels if label != NO_GENRE)
    palette = colormaps["tab20"].colors
    # tab20 pairs dark/light shades; take the darks first so the first ten are most distinct
    order = [*range(0, 20, 2), *range(1, 20, 2)]
    colours = {}
    for rank, (label, _) in enumerate(counts.most_common()):
        if rank < MAX_COLOURS - 1 or len(counts) <= MAX_COLOURS:
            colours[label] = to_hex(palette[order[rank % 20]])
        else:
            colours[label] = "#7f7f7f"
    colours[NO_GENRE] = "#d0d0d0"
    return colours


def display_labels(primary: list[str]) -> list[str]:
    """Primary genres with the rare tail merged into ``other`` (at most 20 legend entries)."""
    counts = Counter(label for label in primary if label != NO_GENRE)
    if len(counts) <= MAX_COLOURS:
        return list(primary)
    keep = {label for label, _ in counts.most_common(MAX_COLOURS - 1)}
    return [p if p in keep or p == NO_GENRE else OTHER for p in primary]


def draw_map(
    coords: np.ndarray, catalog: MapCatalog, title: str = "", n_labels: int = 30
) -> Figure:
    """A 16:9 figure of ``coords`` (``(n, 2)``) coloured by ``catalog.primary``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xy = np.asarray(coords, dtype=np.float64)
    labels = display_labels(catalog.primary)
    colours = genre_colours(labels)
    fig = Figure(figsize=SLIDE_INCHES, dpi=SLIDE_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.02, 0.04, 0.80, 0.89))
    order = np.argsort(catalog.popularity, kind="stable")  # popular points drawn last, on top
    point_colours = np.array([colours[labels[i]] for i in order])
    # marker area by popularity rank, shrinking for big catalogs so 60k points stay readable
    shrink = float(np.clip(np.sqrt(3000 / max(len(xy), 1)), 0.35, 1.0))
    size = shrink * (4.0 + 26.0 * _rank01(catalog.popularity)[order])
    ax.scatter(xy[order, 0], xy[order, 1], s=size, c=point_colours, alpha=0.7, linewidths=0)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    _pad_limits(ax, xy)
    if title:
        fig.suptitle(title, fontsize=16, x=0.42, y=0.975)

    _genre_legend(fig, labels, colours)
    chosen = place_labels(ax, xy, catalog.titles, catalog.popularity, n_labels)
    if chosen:  # ring the labelled points so each label visibly belongs to one
        ax.scatter(
            xy[chosen, 0],
            xy[chosen, 1],
            s=14,
            facecolors="none",
            edgecolors="#222222",
            linewidths=0.7,
        )
    return fig


def _genre_legend(fig: Figure, labels: list[str], colours: dict[str, str]) -> None:
    """One legend entry per primary genre with its item count, most frequent first; "other"
    and "no genre" last."""
    from matplotlib.lines import Line2D

    counts = Counter(labels)
    entries = [label for label, _ in counts.most_common() if label not in (NO_GENRE, OTHER)]
    entries += [label for label in (OTHER, NO_GENRE) if label in counts]
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=8,
            color=colours[label],
            label=f"{label} ({counts[label]:,})",
        )
        for label in entries
    ]
    fig.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(0.83, 0.5),
        frameon=False,
        fontsize=10,
        title="primary genre",
        title_fontsize=11,
    )


def save_map(
    coords: np.ndarray, catalog: MapCatalog, out: str | Path, title: str = "", n_labels: int = 30
) -> Path:
    """Draw and write the PNG atomically; returns its path."""
    fig = draw_map(coords, catalog, title, n_labels)
    return save_figure(fig, out)


def save_figure(fig: Figure, out: str | Path, colours: int = 256) -> Path:
    """Write ``fig`` as PNG at its own pixel size (no tight bbox: a slide map stays 16:9).

    Thousands of translucent points give a truecolour PNG of 1–2 MB that compresses badly; a
    256-colour octree palette (Pillow, which matplotlib already needs) keeps it ~300 kB and, unlike
    median cut, keeps the rare genres' colours exact. ``colours=0`` writes truecolour.
    """
    from PIL import Image

    fig.canvas.draw()
    image = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")
    if colours:
        image = image.quantize(colors=colours, method=Image.Quantize.FASTOCTREE, dither=0)
    with atomic_path(out) as tmp:
        image.save(tmp, format="PNG", optimize=True, dpi=(fig.dpi, fig.dpi))
    return Path(out)


def place_labels(
    ax: Axes,
    xy: np.ndarray,
    titles: list[str],
    popularity: np.ndarray,
    n_labels: int,
    fontsize: float = 8,
    keep_all: bool = False,
    offset: float = 4.0,
    boxed: bool = True,
) -> list[int]:
    """Label up to ``n_labels`` most popular points without overlapping boxes.

    Greedy: candidates in popularity order, each tries four spots; a text whose box overlaps an
    accepted one, covers a labelled point or leaves the axes is removed. With ``keep_all`` (a
    handful of genre labels, every one wanted) a label that fits nowhere keeps its first spot.
    ``offset`` (points) moves labels clear of big markers; ``boxed`` puts a translucent white box
    behind each label (readable over dense points, but it hides sparse big markers).
    Returns the labelled point indices.
    """
    if n_labels <= 0 or len(xy) == 0:
        return []
    labeller = _Labeller(ax, xy, fontsize, offset, boxed)
    pool = len(xy) if keep_all else max(8 * n_labels, 50)
    for index in np.argsort(-np.asarray(popularity), kind="stable")[:pool]:
        if len(labeller.chosen) >= n_labels:
            break
        if not keep_all and labeller.under_a_label(int(index)):
            continue
        labeller.place(int(index), _short(titles[index]), keep_all)
    return labeller.chosen


class _Labeller:
    """The labels accepted so far on one axes, in screen coordinates."""

    def __init__(self, ax: Axes, xy: np.ndarray, fontsize: float, offset: float, boxed: bool):
        self.ax, self.xy, self.fontsize, self.offset = ax, xy, fontsize, offset
        self.renderer = ax.figure.canvas.get_renderer()
        self.frame = ax.get_window_extent(self.renderer)
        self.screen = ax.transData.transform(xy)
        self.box_style = (
            {"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.75}
            if boxed
            else None
        )
        self.placed: list[tuple[float, float, float, float]] = []
        self.chosen: list[int] = []

    def under_a_label(self, index: int) -> bool:
        px, py = self.screen[index]
        return any(b[0] < px < b[2] and b[1] < py < b[3] for b in self.placed)

    def place(self, index: int, text: str, keep_all: bool) -> None:
        """Try each spot in turn; keep the first that fits (with ``keep_all``, the first spot
        when none does)."""
        for attempt, spot in enumerate(_SPOTS):
            artist = self._annotate(index, text, spot, self.box_style)
            box = artist.get_window_extent(self.renderer).expanded(1.05, 1.15)
            bounds = (box.x0, box.y0, box.x1, box.y1)
            fits = self._fits(bounds)
            if fits or (keep_all and attempt == len(_SPOTS) - 1):
                if not fits:  # nowhere free: fall back to the first spot
                    artist.remove()
                    self._annotate(index, text, _SPOTS[0], None)
                self.placed.append(bounds)
                self.chosen.append(index)
                return
            artist.remove()

    def _annotate(self, index: int, text: str, spot: tuple, bbox: dict | None) -> Any:
        sx, sy, ha, va = spot
        return self.ax.annotate(
            text,
            self.xy[index],
            xytext=(sx * self.offset, sy * 0.75 * self.offset),
            textcoords="offset points",
            ha=ha,
            va=va,
            fontsize=self.fontsize,
            color="#222222",
            bbox=bbox,
        )

    def _fits(self, bounds: tuple[float, float, float, float]) -> bool:
        """Inside the axes, over no labelled point (its own is outside the box) and no label."""
        x0, y0, x1, y1 = bounds
        frame = self.frame
        inside = x0 >= frame.x0 and x1 <= frame.x1 and y0 >= frame.y0 and y1 <= frame.y1
        points = self.screen[self.chosen]
        hides_point = bool(
            np.any(
                (points[:, 0] > x0)
                & (points[:, 0] < x1)
                & (points[:, 1] > y0)
                & (points[:, 1] < y1)
            )
        )
        return inside and not hides_point and not any(_overlap(bounds, b) for b in self.placed)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _short(title: str) -> str:
    return title if len(title) <= LABEL_CHARS else title[: LABEL_CHARS - 1] + "…"


def _rank01(values: np.ndarray) -> np.ndarray:
    """Ranks scaled to 0..1 (robust to counts spanning orders of magnitude)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return np.zeros(len(values))
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return ranks / (len(values) - 1)


def _pad_limits(ax: object, xy: np.ndarray) -> None:
    """Clip the view to the 0.5–99.5 % range so a few far outliers don't squash the map."""
    if len(xy) == 0:
        return
    lo = np.percentile(xy, 0.5, axis=0)
    hi = np.percentile(xy, 99.5, axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    ax.set_xlim(lo[0] - 0.04 * span[0], hi[0] + 0.04 * span[0])
    ax.set_ylim(lo[1] - 0.04 * span[1], hi[1] + 0.04 * span[1])
