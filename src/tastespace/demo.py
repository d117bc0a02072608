"""``tastespace demo``: the whole path on the synthetic catalog, offline, in seconds.

Generate a catalog with planted genre structure → hold out test users → train the neural model →
show that neighbours share genres, that a fresh watch list gets on-taste recommendations without
retraining, and how the model compares with popularity on the held-out users.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from tastespace.data import load_dataset
from tastespace.data.splits import strong_generalization
from tastespace.evaluate import evaluate_model
from tastespace.models.baselines import Popularity
from tastespace.models.neural import NeuralRecommender
from tastespace.session import Session


def run_demo(console: Console, epochs: int = 12, seed: int = 0, out: Path | None = None) -> None:
    """Print the demo's tables to ``console``; optionally save the bundle to ``out``."""
    ds = load_dataset("synthetic:small")
    console.print(
        f"[bold]synthetic catalog[/]: {ds.n_users:,} users × {ds.n_items:,} movies, "
        f"{ds.n_interactions:,} interactions, {len(ds.items.bags['genres'].vocab)} genres"
    )
    split = strong_generalization(ds, n_heldout=200, seed=seed)
    model = NeuralRecommender(epochs=epochs, seed=seed, patience=epochs)
    with console.status("training the neural two-tower model …"):
        model.fit(split.train, validation=split.validation)
    report = model.train_report_
    console.print(
        f"trained in {model.fit_seconds_:.1f} s "
        f"(best epoch {report.best_epoch}, val Recall@20 {report.best_score:.3f})"
    )

    session = Session(model, name="demo")
    planted = ds.items.frame["planted_genre"].to_numpy()
    popular = np.argsort(-model.item_counts_)[:3]
    for index in popular:
        query, neighbours = session.similar_records(ds.item_ids.raw(int(index)), k=5)
        table = Table(title=f"movies like {query['title']} ({planted[index]})")
        table.add_column("neighbour")
        table.add_column("planted genre")
        table.add_column("cosine")
        for item in neighbours:
            table.add_row(
                item["title"], planted[session.resolver.resolve(item["id"])], f"{item['score']:.3f}"
            )
        console.print(table)

    genre = planted[popular[0]]
    watch = ds.item_ids.raws(np.flatnonzero(planted == genre)[:5])
    result = session.answer([("fresh watch list", watch)], k=5)[0]
    table = Table(title=f"a new viewer who watched 5 {genre} movies (no retraining) gets")
    table.add_column("recommended")
    table.add_column("planted genre")
    for item in result.items:
        table.add_row(item["title"], planted[session.resolver.resolve(item["id"])])
    console.print(table)

    table = Table(title=f"held-out test users ({len(split.test.users)})")
    for column in ("model", "Recall@20", "NDCG@100"):
        table.add_column(column)
    for name, fitted in (("neural", model), ("popularity", Popularity().fit(split.train))):
        metrics = evaluate_model(fitted, split.test)
        table.add_row(name, f"{metrics['recall@20']:.3f}", f"{metrics['ndcg@100']:.3f}")
    console.print(table)
    if out is not None:
        console.print(f"bundle saved → {model.save(out)}")
