"""How much genre structure do the 2-D maps show? k-NN genre purity vs shuffled labels.

Trains the neural model (``genre_dim=2``, so its genre plane is learned in 2-D) and item2vec (when
``tastespace.models.item2vec`` exists) on ml-latest-small (ratings ≥ 4), lays the item vectors out
with PCA, t-SNE and UMAP, and prints, per layout, the share of each item's 10 nearest 2-D
neighbours that share its primary genre — next to the same layout with the labels shuffled
(seeded), which is what "no structure" scores for this genre mix. The learned space itself
(cosine k-NN in d dimensions) is the reference a 2-D layout can at best keep.

Two item sets: all items with a genre, and "warm" items (≥ 5 positive ratings). Items with no
positive rating get neural vectors from their features alone (genres, year), which clusters them
by genre by construction; the warm column shows the structure learned from behaviour.

    python bench/map_purity.py                      # table only
    python bench/map_purity.py --docs               # also docs/maps.md + docs/img/*.png
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np

from tastespace.data import load_dataset
from tastespace.viz.catalog import NO_GENRE, MapCatalog
from tastespace.viz.projection import project
from tastespace.viz.purity import purity_report

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "movielens" / "ml-latest-small.zip"
METHODS = ("pca", "tsne", "umap")
WARM_MIN = 5


def train_models(ds, epochs: int, seed: int) -> dict:
    from tastespace.models.neural import NeuralRecommender

    models = {}
    started = time.perf_counter()
    models["neural"] = NeuralRecommender(
        genre_dim=2, epochs=epochs, patience=epochs, seed=seed
    ).fit(ds)
    print(f"neural: {time.perf_counter() - started:.0f} s ({epochs} epochs)")
    if importlib.util.find_spec("tastespace.models.item2vec") is not None:
        try:
            from tastespace.models.item2vec import Item2Vec

            started = time.perf_counter()
            models["item2vec"] = Item2Vec(seed=seed).fit(ds)
            print(f"item2vec: {time.perf_counter() - started:.0f} s")
        except ImportError as err:  # gensim missing
            print(f"item2vec skipped ({err})")
    return models


def run(args: argparse.Namespace) -> None:
    ds = load_dataset(args.data, min_rating=4)
    print(f"{ds.name}: {ds.n_users:,} users × {ds.n_items:,} items, {ds.n_interactions:,} ratings")
    counts = np.asarray((ds.interactions > 0).sum(axis=0)).ravel()
    models = train_models(ds, args.epochs, args.seed)
    rows, layouts = [], {}
    for name, model in models.items():
        catalog = MapCatalog.from_model(model)
        labels = np.asarray(catalog.primary, dtype=object)
        has_genre = labels != NO_GENRE
        subsets = {"all": has_genre, "warm": has_genre & (counts >= WARM_MIN)}
        vectors = model.item_vectors()
        rows.append(
            _row(
                name,
                f"learned {vectors.shape[1]}-D (cosine)",
                vectors,
                labels,
                subsets,
                args,
                0.0,
                metric="cosine",
            )
        )
        for method in METHODS:
            started = time.perf_counter()
            coords = project(vectors, method, seed=args.seed)
            seconds = time.perf_counter() - started
            layouts[name, method] = coords
            rows.append(_row(name, method, coords, labels, subsets, args, seconds))
    table = _table(rows, args.k)
    print()
    print(table)
    if args.docs:
        write_docs(models, layouts, table, ds, args)


def _row(name, layout, coords, labels, subsets, args, seconds, metric="euclidean") -> dict:
    row = {"model": name, "layout": layout, "seconds": seconds}
    for subset, mask in subsets.items():
        report = purity_report(coords[mask], labels[mask], k=args.k, seed=args.seed, metric=metric)
        row[subset] = report
        row[f"n_{subset}"] = int(mask.sum())
    return row


def _table(rows: list[dict], k: int) -> str:
    first = rows[0]
    lines = [
        f"| model | layout | purity@{k} all ({first['n_all']:,}) | shuffled | lift "
        f"| purity@{k} warm ({first['n_warm']:,}) | shuffled | lift | layout s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        a, w = row["all"], row["warm"]
        lines.append(
            f"| {row['model']} | {row['layout']} | {a.purity:.3f} | {a.shuffled:.3f} "
            f"| {a.lift:.2f}× | {w.purity:.3f} | {w.shuffled:.3f} | {w.lift:.2f}× "
            f"| {row['seconds']:.1f} |"
        )
    return "\n".join(lines)


def write_docs(models, layouts, table, ds, args) -> None:
    from tastespace.viz.genre_plane import genre_plane, save_genre_plane
    from tastespace.viz.maps import METHOD_NAMES
    from tastespace.viz.static_map import display_labels, genre_colours, save_map

    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    images = []
    for name, model in models.items():
        catalog = MapCatalog.from_model(model)
        coords = layouts[name, "umap"]
        path = img / f"map-{name}-umap.png"
        title = (
            f"{ds.name}: {len(catalog):,} movies, {name} item vectors, "
            f"{METHOD_NAMES['umap']} (cosine)"
        )
        save_map(coords, catalog, path, title, n_labels=30)
        images.append(path)
    neural = models["neural"]
    plane = genre_plane(neural, "genres")
    colours = genre_colours(display_labels(MapCatalog.from_model(neural).primary))
    path = img / "genre-plane-neural.png"
    save_genre_plane(plane, path, f"{ds.name}, neural (genre_dim=2): {plane.description}", colours)
    images.append(path)
    for path in images:
        size = path.stat().st_size
        print(f"wrote {path.relative_to(ROOT)} ({size / 1e3:.0f} kB)")
        if size > 1_000_000:
            print(f"  warning: {path.name} is over 1 MB")
    doc = ROOT / "docs" / "maps.md"
    note = "; item2vec with its defaults" if "item2vec" in models else ""
    picture = (
        "\n![UMAP map of ml-latest-small, item2vec](img/map-item2vec-umap.png)\n"
        if "item2vec" in models
        else ""
    )
    doc.write_text(
        _DOC.format(
            table=table, epochs=args.epochs, k=args.k, item2vec_note=note, item2vec_image=picture
        )
    )
    print(f"wrote {doc.relative_to(ROOT)}")


_DOC = """# Maps of the learned space

`tastespace map DIR --method umap --out map.png --html map.html` draws a trained bundle's item
vectors in 2-D, coloured by primary genre, with the most popular titles labelled; `--html`
writes a standalone page (no network needed) with hover, zoom, pan and a search box that
highlights a title and its 10 nearest neighbours *in the learned space*. `--feature genre` draws
the genre plane. Projections (PCA, t-SNE via openTSNE, UMAP via umap-learn; cosine metric,
seeded) are cached in `DIR/projections/`.

![UMAP map of ml-latest-small, neural model](img/map-neural-umap.png)

## The genre plane

Trained with `--genre-dim 2`, the neural model's genre embedding table *is* a plane: the
picture below plots the learned vectors themselves, no projection. Genres that share audiences
land close together. For higher `genre_dim` the map shows PCA of the table; for models without
feature tables (item2vec, EASE …) each genre is the mean vector of its movies (then PCA), and the
title says so.

![learned 2-D genre plane](img/genre-plane-neural.png)

## Does the map show genre structure? k-NN genre purity

For every movie, the share of its k = {k} nearest neighbours (Euclidean in 2-D; cosine in the
learned space) that share its primary genre, averaged; "shuffled" is the same layout with the
genre labels permuted (seeded, mean of 5), i.e. what no structure scores for this genre mix;
lift = purity / shuffled. "warm" = movies with ≥ 5 positive ratings: movies nobody rated ≥ 4 get
neural vectors from their features alone (genres, year), which groups them by genre by
construction, so the warm column is the honest one for structure learned from behaviour.

Produced by `python bench/map_purity.py --docs` (ml-latest-small, ratings ≥ 4, neural
`genre_dim=2`, {epochs} epochs{item2vec_note}; seed 0; layout seconds on a 2-core machine).

{table}

Reading it: the learned space is the ceiling a 2-D layout can at best keep. t-SNE keeps most of
its neighbourhoods, UMAP somewhat less, PCA the least — two linear axes cannot hold twenty genres
(for the neural model the first axis is mostly popularity). item2vec vectors of movies nobody
rated ≥ 4 carry no signal, which is why its "all" column is close to the shuffled baseline.
{item2vec_image}
Caveat: a movie's "primary" genre (its colour, and the label purity checks) is the first one
listed, and MovieLens lists 99 % of genre strings alphabetically, so Action / Adventure / Comedy
stand in for Thriller / Romance / Sci-Fi on most multi-genre movies; purity is therefore a lower
bound on how well neighbourhoods agree on *some* genre.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--docs", action="store_true", help="write docs/maps.md and PNGs")
    args = parser.parse_args()
    started = time.perf_counter()
    run(args)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
