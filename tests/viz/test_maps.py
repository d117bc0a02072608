"""Static PNG, standalone HTML and the genre plane, drawn from real (tiny) models."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest

from tastespace.errors import ConfigError
from tastespace.viz.catalog import MapCatalog, resolve_bag_feature
from tastespace.viz.genre_plane import draw_genre_plane, genre_plane
from tastespace.viz.html_map import learned_neighbours, map_payload, render_html
from tastespace.viz.maps import write_item_map
from tastespace.viz.projection import project
from tastespace.viz.static_map import draw_map

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


def embedded_payload(page: str) -> dict:
    match = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    assert match, "no inline data block"
    return json.loads(match.group(1))


def test_png_and_html_written(neural2d, tmp_path):
    png, page = write_item_map(
        neural2d, tmp_path / "map.png", tmp_path / "map.html", method="pca", n_labels=15
    )
    assert png_size(png) == (2400, 1350)  # 16:9 at 150 dpi
    assert png.stat().st_size < 1_000_000

    text = page.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text), "the page must not reference the network"
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)
    payload = embedded_payload(text)
    catalog = MapCatalog.from_model(neural2d)
    assert payload["t"] == catalog.titles
    assert payload["k"] == 10
    expected, _ = neural2d.similar_items(np.arange(neural2d.n_items), k=10)
    np.testing.assert_array_equal(np.reshape(payload["nn"], (-1, 10)), expected)
    first = 0
    assert [payload["gv"][g] for g in payload["g"][first]] == catalog.genres[first]
    assert payload["yr"][first] == catalog.years[first]


def test_labels_do_not_overlap(neural2d):
    catalog = MapCatalog.from_model(neural2d)
    fig = draw_map(project(neural2d.item_vectors(), "pca"), catalog, "t", n_labels=25)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert 5 <= len(boxes) <= 25
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            assert not boxes[a].overlaps(boxes[b]), (ax.texts[a].get_text(), ax.texts[b].get_text())
    labelled = {t.get_text() for t in ax.texts}
    most_popular = catalog.titles[int(np.argmax(catalog.popularity))]
    assert most_popular in labelled


def test_titles_cannot_break_out_of_the_data_block(neural2d):
    catalog = MapCatalog.from_model(neural2d)
    titles = list(catalog.titles)
    titles[0] = "</script><script>alert(1)</script>"
    evil = MapCatalog(
        catalog.ids, titles, catalog.genres, catalog.primary, catalog.years, catalog.popularity
    )
    page = render_html(map_payload(np.zeros((len(titles), 2)), evil, None, "<b>x</b>"))
    assert "alert(1)</script>" not in page
    assert embedded_payload(page)["t"][0] == titles[0]
    assert "<title>&lt;b&gt;x&lt;/b&gt;</title>" in page


def test_learned_2d_genre_plane_plots_the_raw_vectors(neural2d):
    plane = genre_plane(neural2d, "genre")
    table = neural2d.feature_embeddings("genres")
    assert plane.source == "learned" and not plane.projected
    assert set(plane.labels) == set(table)
    for label, point in zip(plane.labels, plane.coords, strict=True):
        np.testing.assert_array_equal(point, table[label])
    fig = draw_genre_plane(plane)
    plotted = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(plotted, np.stack([table[v] for v in plane.labels]))
    assert {t.get_text() for t in fig.axes[0].texts} == set(plane.labels)
    assert "no projection" in fig.axes[0].get_title()


def test_higher_dimensional_genre_table_is_projected(tiny):
    from tastespace.models.neural import NeuralRecommender

    model = NeuralRecommender(epochs=1, dim=8, hidden=16, genre_dim=5).fit(tiny)
    plane = genre_plane(model, "genres")
    assert plane.source == "learned" and plane.projected and plane.dim == 5
    assert plane.coords.shape == (len(tiny.items.bags["genres"].vocab), 2)
    assert "PCA" in plane.description


def test_models_without_feature_tables_use_genre_means(tiny):
    from tastespace.models.baselines import EASE

    model = EASE().fit(tiny)
    plane = genre_plane(model, "genres")
    assert plane.source == "mean" and "mean" in plane.description
    from tastespace.viz.genre_plane import genre_vectors

    labels, means, _ = genre_vectors(model, "genres")
    bag = tiny.items.bags["genres"]
    members = [i for i in range(tiny.n_items) if labels[0] in bag.row(i)]
    np.testing.assert_allclose(means[0], model.item_vectors()[members].mean(axis=0), atol=1e-5)


def test_feature_names_resolve_or_fail_clearly(neural2d):
    assert resolve_bag_feature(neural2d, "genre") == "genres"
    with pytest.raises(ConfigError, match="unknown feature 'colour'.*genres"):
        resolve_bag_feature(neural2d, "colour")


def test_neighbours_come_from_the_learned_space(neural2d):
    nn = learned_neighbours(neural2d, k=4)
    assert nn.shape == (neural2d.n_items, 4)
    assert not np.any(nn == np.arange(neural2d.n_items)[:, None])


def test_top_maps_the_most_popular_items_with_neighbours_among_them(neural2d, tmp_path):
    from tastespace.viz.maps import top_items

    rows = top_items(neural2d, 40)
    counts = neural2d.item_counts_
    assert len(rows) == 40 and np.all(np.diff(rows) > 0)
    assert counts[rows].min() >= np.sort(counts)[-40]
    (page,) = write_item_map(neural2d, html=tmp_path / "top.html", method="pca", top=40, k=5)
    payload = embedded_payload(page.read_text(encoding="utf-8"))
    catalog = MapCatalog.from_model(neural2d)
    assert payload["t"] == [catalog.titles[i] for i in rows]
    nn = np.reshape(payload["nn"], (40, 5))
    unit = neural2d.item_vectors()[rows]
    unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    np.testing.assert_array_equal(nn[:, 0], sims.argmax(axis=1))
    with pytest.raises(ConfigError, match="top must be at least") as err:
        top_items(neural2d, 3)
    assert err.value.options == ("top",) and "--" not in str(err.value)
    assert top_items(neural2d, 10_000) is None
