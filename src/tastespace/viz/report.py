"""``tastespace report``: one self-contained HTML page on what an embedding space is worth.

The numbers come from :mod:`tastespace.evaluate.insight`; this module adds genre purity
(against shuffled labels), the neighbours of the most popular items by title, four pictures
and the page itself. Pictures are embedded (base64) so the file opens anywhere offline, and
also written as PNGs beside it for slides.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tastespace.evaluate.insight import BUCKETS, item_counts, space_report
from tastespace.viz.catalog import MapCatalog
from tastespace.viz.purity import purity_report

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from tastespace.data.splits import HoldoutSplit, StrongSplit
    from tastespace.models.base import Recommender

POPULAR_SHOWN = 5


@dataclass
class SpaceReport:
    numbers: dict[str, Any]
    figures: dict[str, Figure]


def build_report(
    model: Recommender, split: StrongSplit | HoldoutSplit, k: int = 10, seed: int = 0
) -> SpaceReport:
    """Numbers and figures for ``model`` on ``split`` (train for popularity, test for metrics)."""
    train = split.train.interactions
    numbers, hubs = space_report(model, train, split.test.fold_in, split.test.targets, k=k)
    catalog = MapCatalog.from_model(model)
    counts = item_counts(train)
    numbers["genre_purity"] = _genre_purity(model, catalog, k, seed)
    numbers["popular_neighbours"] = _popular_neighbours(model, catalog, counts, k)
    numbers["top_hub_titles"] = [catalog.titles[i] for i in numbers["neighbours"]["top_hubs"]]
    return SpaceReport(numbers, _figures(model, numbers, counts, hubs.occurrence))


def _genre_purity(model: Recommender, catalog: MapCatalog, k: int, seed: int) -> dict | None:
    labels = np.asarray(catalog.primary, dtype=object)
    if len(set(labels)) < 2:
        return None
    try:
        vectors = model.item_vectors()
    except NotImplementedError:
        return None
    result = purity_report(vectors, labels, k=k, seed=seed, metric="cosine")
    return {"purity": result.purity, "shuffled": result.shuffled, "lift": result.lift}


def _popular_neighbours(
    model: Recommender, catalog: MapCatalog, counts: np.ndarray, k: int
) -> list[dict[str, Any]]:
    popular = np.argsort(-counts, kind="stable")[:POPULAR_SHOWN]
    ids, _ = model.similar_items(popular, k=min(k, 5))
    return [
        {"title": catalog.titles[i], "neighbours": [catalog.titles[j] for j in row if j >= 0]}
        for i, row in zip(popular, ids, strict=True)
    ]


def _figures(
    model: Recommender, numbers: dict[str, Any], counts: np.ndarray, occurrence: np.ndarray
) -> dict:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def figure() -> tuple[Figure, Any]:
        fig = Figure(figsize=(5.2, 3.6), dpi=110)
        FigureCanvasAgg(fig)
        return fig, fig.add_subplot()

    out = {}
    fig, ax = figure()
    ax.hist(occurrence, bins=40, color="#4c72b0")
    ax.set_yscale("log")
    ax.set(
        xlabel=f"times among others' {numbers['k']} nearest",
        ylabel="items",
        title=f"hubness (skew {numbers['neighbours']['k_occurrence_skew']:.2f})",
    )
    out["hubness"] = fig
    try:
        norms = np.linalg.norm(model.item_vectors(), axis=1)
        fig, ax = figure()
        ax.scatter(np.log1p(counts), norms, s=6, alpha=0.5, color="#55a868")
        rho = numbers["norm_popularity_spearman"]
        ax.set(
            xlabel="log(1 + training interactions)",
            ylabel="vector norm",
            title=f"norm vs popularity (Spearman {rho:.2f})",
        )
        out["norm-vs-popularity"] = fig
    except NotImplementedError:
        pass
    fig, ax = figure()
    buckets = numbers["by_item_popularity"]
    names = [b for b in BUCKETS if b in buckets]
    ax.bar(names, [buckets[b]["hit@20"] for b in names], color="#c44e52")
    ax.set(ylabel="share of held-out targets in top 20", title="found by item popularity")
    out["by-item-popularity"] = fig
    fig, ax = figure()
    exposure = np.sort(occurrence.astype(np.float64))
    if exposure.sum() > 0:
        ax.plot(
            np.linspace(0, 1, len(exposure)),
            np.cumsum(exposure) / exposure.sum(),
            color="#8172b2",
            label="neighbour exposure",
        )
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", label="equal exposure")
    ax.set(
        xlabel="share of items (least shown first)",
        ylabel="share of appearances",
        title="Lorenz curve of neighbour exposure",
    )
    ax.legend(fontsize=8)
    out["exposure-lorenz"] = fig
    for fig in out.values():
        fig.tight_layout()
    return out


def write_report(report: SpaceReport, out: Path, title: str) -> list[Path]:
    """The HTML page (pictures embedded) and one PNG per picture in ``OUT_files/``."""
    folder = out.with_name(out.stem + "_files")
    folder.mkdir(parents=True, exist_ok=True)
    images, written = {}, []
    for name, fig in report.figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        (folder / f"{name}.png").write_bytes(buffer.getvalue())
        written.append(folder / f"{name}.png")
        images[name] = base64.b64encode(buffer.getvalue()).decode("ascii")
    out.write_text(_page(report.numbers, images, title), encoding="utf-8")
    return [out, *written]


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td></tr>" for a, b in rows)
    return f"<table>{body}</table>"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _page(n: dict[str, Any], images: dict[str, str], title: str) -> str:
    pictures = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{data}">'
        f"<figcaption>{name}</figcaption></figure>"
        for name, data in images.items()
    )
    body = "".join(
        f"<section><h2>{html.escape(h)}</h2>{content}</section>" for h, content in _sections(n)
    )
    embedded = json.dumps(n, default=float).replace("</", "<\\/")  # safe inside <script>
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title><style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:.5em 0}}
th,td{{padding:.25em .8em;border-bottom:1px solid #ddd;text-align:left}}
th{{font-weight:500;color:#555}}figure{{display:inline-block;margin:.5em}}img{{max-width:520px}}
</style></head><body><h1>{html.escape(title)}</h1>
<p>{n["kind"]} model, {n["items"]:,} items, {n["users"]:,} held-out users, k = {n["k"]}.</p>
{body}<section><h2>Pictures</h2>{pictures}</section>
<script type="application/json" id="numbers">{embedded}</script>
</body></html>"""


def _sections(n: dict[str, Any]) -> list[tuple[str, str]]:
    """(heading, HTML) of each section of the page, in order."""
    return [
        ("Genre purity of neighbourhoods", _purity_section(n["genre_purity"])),
        ("Popularity bias", _popularity_section(n)),
        ("Hubness", _hubness_section(n)),
        (
            "Held-out users by activity",
            _table(
                [
                    (
                        f"{name} ({v['users']} users, {v['history']:.0f} items given)",
                        f"recall@20 {v['recall@20']:.3f}",
                    )
                    for name, v in n["by_user_activity"].items()
                ]
            ),
        ),
        (
            "Held-out targets by item popularity",
            _table(
                [
                    (
                        f"{name} ({v['items']} items, {v['targets']} targets)",
                        f"found in top 20: {_pct(v['hit@20'])}",
                    )
                    for name, v in n["by_item_popularity"].items()
                ]
            ),
        ),
        (
            "Neighbours of the most popular items",
            _table([(p["title"], "; ".join(p["neighbours"])) for p in n["popular_neighbours"]]),
        ),
    ]


def _purity_section(purity: dict[str, float] | None) -> str:
    if not purity:
        return "<p>No genres in this catalog.</p>"
    return _table(
        [
            ("k-NN purity (cosine)", _pct(purity["purity"])),
            ("with shuffled genres", _pct(purity["shuffled"])),
            ("lift", f"{purity['lift']:.2f}×"),
        ]
    )


def _popularity_section(n: dict[str, Any]) -> str:
    rec, nb = n["recommendations"], n["neighbours"]
    spearman = n["norm_popularity_spearman"]
    return _table(
        [
            (
                "recommendations from the top 1 % items "
                f"({_pct(rec['head_share_of_catalog'])} of the catalog)",
                _pct(rec["head_share"]),
            ),
            ("neighbours from the top 1 % items", _pct(nb["head_share"])),
            ("Gini of recommendation exposure", f"{rec['gini']:.3f}"),
            ("Gini of neighbour exposure", f"{nb['gini']:.3f}"),
            (f"catalog coverage of top-{n['k']} recommendations", _pct(rec["coverage"])),
            (
                "vector norm vs popularity (Spearman)",
                "—" if spearman is None else f"{spearman:.3f}",
            ),
        ]
    )


def _hubness_section(n: dict[str, Any]) -> str:
    nb = n["neighbours"]
    hubs = zip(n["top_hub_titles"][:5], nb["top_hub_occurrence"][:5], strict=False)
    return _table(
        [
            ("k-occurrence skew", f"{nb['k_occurrence_skew']:.2f}"),
            ("items that are nobody's neighbour", _pct(nb["nobodys_neighbour"])),
            ("most frequent neighbours", "; ".join(f"{t} ({int(c)})" for t, c in hubs)),
        ]
    )
