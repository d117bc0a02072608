"""The interactive map: one standalone HTML file that opens offline.

Data (2-D coordinates, titles, genres, years and each item's ``k`` nearest neighbours *in the
learned space*) is inlined as JSON; a small inline script draws it on a ``<canvas>``. No CDN, no
external script, style or font: the page works from a USB stick on a plane.

In the page: hover a point for its title, genres and year; wheel to zoom, drag to pan; type in
the search box to find a title — choosing it highlights the item and its neighbours and lists
them (click one to move on); click legend entries to hide genres.

Neighbours come from the model's own ``similar_items`` (cosine in the learned space), not from
the 2-D layout, so the page shows where a projection tears neighbourhoods apart.
"""

from __future__ import annotations

import html
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from tastespace.index.base import build_index
from tastespace.io.export import atomic_path
from tastespace.models.base import Recommender
from tastespace.viz.catalog import NO_GENRE, MapCatalog
from tastespace.viz.static_map import OTHER, display_labels, genre_colours

log = logging.getLogger(__name__)

NEIGHBOURS = 10
COORD_DIGITS = 4


def learned_neighbours(
    model: Recommender, k: int = NEIGHBOURS, rows: np.ndarray | None = None
) -> np.ndarray:
    """``(n, k)`` nearest neighbours of every item in the model's space (``-1`` pads).

    With ``rows`` (a mapped subset), neighbours are searched among those rows only — cosine of
    the item vectors, as ``similar_items`` does — and returned as positions within ``rows``.
    """
    if rows is None:
        k = max(1, min(k, model.n_items - 1))
        try:
            ids, _ = model.similar_items(np.arange(model.n_items), k=k)
        except NotImplementedError:
            log.info("%s has no similarity; the page will list no neighbours", model.kind)
            return np.full((model.n_items, k), -1, np.int64)
        return np.atleast_2d(ids).astype(np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    k = max(1, min(k, len(rows) - 1))
    try:
        vectors = np.asarray(model.item_vectors()[rows], dtype=np.float32)
    except NotImplementedError:
        return np.full((len(rows), k), -1, np.int64)
    own = sp.identity(len(rows), dtype=np.float32, format="csr")
    ids, _ = build_index("exact", vectors, "cosine").search(vectors, k, own)
    return ids.astype(np.int64)


def map_payload(
    coords: np.ndarray, catalog: MapCatalog, neighbours: np.ndarray | None, title: str = ""
) -> dict[str, object]:
    """The JSON the page reads: parallel arrays, genres as indices into small vocabularies."""
    xy = np.asarray(coords, dtype=np.float64)
    if xy.shape != (len(catalog), 2):
        raise ValueError(f"coords must be ({len(catalog)}, 2), got {xy.shape}")
    labels = display_labels(catalog.primary)
    colours = genre_colours(labels)
    counts = Counter(labels)
    legend = sorted(counts, key=lambda g: (g in (NO_GENRE, OTHER), -counts[g], g))
    legend_index = {g: k for k, g in enumerate(legend)}
    genre_vocab = sorted({g for row in catalog.genres for g in row})
    genre_index = {g: k for k, g in enumerate(genre_vocab)}
    pop = np.asarray(catalog.popularity, dtype=np.float64)
    ranks = np.argsort(np.argsort(pop, kind="stable"), kind="stable") / max(1, len(pop) - 1)
    nn = (
        np.full((len(catalog), 0), -1, np.int64)
        if neighbours is None
        else np.asarray(neighbours, dtype=np.int64)
    )
    return {
        "title": title,
        "legend": legend,
        "colours": [colours[g] for g in legend],
        "c": [legend_index[g] for g in labels],
        "x": np.round(xy[:, 0], COORD_DIGITS).tolist(),
        "y": np.round(xy[:, 1], COORD_DIGITS).tolist(),
        "t": list(catalog.titles),
        "gv": genre_vocab,
        "g": [[genre_index[g] for g in row] for row in catalog.genres],
        "yr": list(catalog.years),
        "s": np.round(ranks, 3).tolist(),
        "k": int(nn.shape[1]),
        "nn": nn.ravel().tolist(),
    }


def render_html(payload: dict[str, object]) -> str:
    """The whole page as one string (data inlined, ``<`` escaped so no title can end the
    script element)."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).replace("<", "\\u003c")
    title = html.escape(str(payload.get("title") or "tastespace map"))
    return (
        _PAGE.replace("__TITLE__", title)
        .replace("__STYLE__", _STYLE)
        .replace("__SCRIPT__", _SCRIPT)
        .replace("__DATA__", data)
    )


def save_html_map(
    coords: np.ndarray,
    catalog: MapCatalog,
    out: str | Path,
    neighbours: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """Write the standalone page atomically; returns its path."""
    page = render_html(map_payload(coords, catalog, neighbours, title))
    with atomic_path(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return Path(out)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>__STYLE__</style>
</head>
<body>
<div id="map"><canvas id="canvas"></canvas><div id="tip"></div>
<div id="help">wheel: zoom · drag: pan · click: neighbours · <button id="reset">reset view</button>
</div></div>
<aside id="side">
<h1 id="heading"></h1>
<input id="search" type="search" placeholder="Search a title…" autocomplete="off">
<ol id="suggest"></ol>
<section id="chosen" hidden><h2 id="chosen-title"></h2><p id="chosen-meta"></p>
<h3>nearest in the learned space</h3><ol id="nbrs"></ol></section>
<h3>primary genre</h3><ul id="legend"></ul>
</aside>
<script id="data" type="application/json">__DATA__</script>
<script>__SCRIPT__</script>
</body>
</html>
"""

_STYLE = """
html,body{margin:0;height:100%;font:14px system-ui,sans-serif;color:#222;background:#fff}
body{display:flex}
#map{position:relative;flex:1;min-width:0}
canvas{display:block;width:100%;height:100%;cursor:grab}
canvas.dragging{cursor:grabbing}
#tip{position:absolute;pointer-events:none;background:rgba(255,255,255,.95);border:1px solid #999;
 border-radius:4px;padding:4px 8px;display:none;max-width:320px;box-shadow:0 1px 4px rgba(0,0,0,.2)}
#tip b{display:block}
#help{position:absolute;left:8px;bottom:6px;color:#666;font-size:12px}
#side{width:320px;overflow-y:auto;border-left:1px solid #ddd;padding:10px 14px;
 box-sizing:border-box}
h1{font-size:16px;margin:4px 0 10px}
h2{font-size:15px;margin:12px 0 2px}
h3{font-size:13px;margin:12px 0 4px;color:#555}
#search{width:100%;box-sizing:border-box;padding:6px;font-size:14px}
ol,ul{margin:0;padding-left:22px}
#suggest li,#nbrs li{cursor:pointer;padding:1px 0}
#suggest li:hover,#nbrs li:hover,#suggest li.active{background:#eef3fb}
#legend{list-style:none;padding:0}
#legend li{cursor:pointer;padding:1px 0;user-select:none}
#legend li.off{opacity:.35}
#legend span{display:inline-block;width:11px;height:11px;border-radius:50%;margin-right:6px}
#chosen-meta{margin:0;color:#555}
"""

_SCRIPT = r"""
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const N = D.t.length, K = D.k;
const canvas = document.getElementById("canvas"), ctx = canvas.getContext("2d");
const tip = document.getElementById("tip"), search = document.getElementById("search");
const suggest = document.getElementById("suggest"), nbrs = document.getElementById("nbrs");
const hidden = new Set();
let selected = -1, hover = -1, view = null, dpr = 1;
document.getElementById("heading").textContent = D.title || "tastespace map";

// -- geometry: data bounds, a uniform grid for hover hit-tests ------------------------------
let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
for (let i = 0; i < N; i++) {
  x0 = Math.min(x0, D.x[i]); x1 = Math.max(x1, D.x[i]);
  y0 = Math.min(y0, D.y[i]); y1 = Math.max(y1, D.y[i]);
}
if (!(x1 > x0)) { x0 -= 1; x1 += 1; }
if (!(y1 > y0)) { y0 -= 1; y1 += 1; }
const G = Math.max(8, Math.round(Math.sqrt(N / 4)));
const grid = new Map();
const cellOf = (x, y) => [Math.min(G - 1, Math.floor((x - x0) / (x1 - x0) * G)),
                          Math.min(G - 1, Math.floor((y - y0) / (y1 - y0) * G))];
for (let i = 0; i < N; i++) {
  const [cx, cy] = cellOf(D.x[i], D.y[i]), key = cx * G + cy;
  if (!grid.has(key)) grid.set(key, []);
  grid.get(key).push(i);
}
// one index list per colour (popular points last, drawn on top): one canvas path per colour
const groups = D.legend.map(() => []);
Array.from({length: N}, (_, i) => i).sort((a, b) => D.s[a] - D.s[b])
  .forEach((i) => groups[D.c[i]].push(i));

// points shrink with the catalog size and grow (gently) as you zoom in
const baseRadius = Math.max(1.2, Math.min(4, 200 / Math.sqrt(N)));
let baseScale = 1;
function resetView() {
  const w = canvas.clientWidth, h = canvas.clientHeight, pad = 24;
  const scale = Math.min((w - 2 * pad) / (x1 - x0), (h - 2 * pad) / (y1 - y0));
  view = {scale: scale, ox: w / 2 - scale * (x0 + x1) / 2, oy: h / 2 + scale * (y0 + y1) / 2};
  baseScale = scale;
}
const sx = (x) => view.ox + view.scale * x;
const sy = (y) => view.oy - view.scale * y;
const dataX = (px) => (px - view.ox) / view.scale;
const dataY = (py) => (view.oy - py) / view.scale;

function resize() {
  dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  if (!view) resetView();
  draw();
}

function neighboursOf(i) {
  const out = [];
  for (let j = 0; j < K; j++) { const n = D.nn[i * K + j]; if (n >= 0) out.push(n); }
  return out;
}

function draw() {
  const w = canvas.clientWidth, h = canvas.clientHeight;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.globalAlpha = selected >= 0 ? 0.25 : 0.75;
  const r0 = Math.min(8, baseRadius * Math.sqrt(view.scale / baseScale));
  groups.forEach((members, c) => {
    if (hidden.has(c)) return;
    ctx.fillStyle = D.colours[c];
    ctx.beginPath();
    for (const i of members) {
      const px = sx(D.x[i]), py = sy(D.y[i]);
      if (px < -5 || py < -5 || px > w + 5 || py > h + 5) continue;
      const r = r0 * (0.8 + 1.4 * D.s[i]);
      ctx.moveTo(px + r, py);
      ctx.arc(px, py, r, 0, 2 * Math.PI);
    }
    ctx.fill();
  });
  ctx.globalAlpha = 1;
  if (selected >= 0) {
    const px = sx(D.x[selected]), py = sy(D.y[selected]);
    ctx.strokeStyle = "rgba(0,0,0,.45)"; ctx.lineWidth = 1;
    for (const n of neighboursOf(selected)) {
      ctx.beginPath(); ctx.moveTo(px, py); ctx.lineTo(sx(D.x[n]), sy(D.y[n])); ctx.stroke();
    }
    for (const n of neighboursOf(selected)) ring(n, 6, "#d62728", 2);
    ring(selected, 9, "#000", 3);
  }
  if (hover >= 0) ring(hover, 7, "#333", 1.5);
}

function ring(i, r, colour, width) {
  ctx.beginPath();
  ctx.arc(sx(D.x[i]), sy(D.y[i]), r, 0, 2 * Math.PI);
  ctx.fillStyle = D.colours[D.c[i]]; ctx.fill();
  ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.stroke();
}

function nearest(px, py, radius) {
  const x = dataX(px), y = dataY(py), rad = radius / view.scale;
  const [ca, cb] = cellOf(x - rad, y - rad), [cc, cd] = cellOf(x + rad, y + rad);
  let best = -1, bestD = rad * rad;
  for (let cx = Math.max(0, ca); cx <= Math.min(G - 1, cc); cx++) {
    for (let cy = Math.max(0, cb); cy <= Math.min(G - 1, cd); cy++) {
      for (const i of grid.get(cx * G + cy) || []) {
        if (hidden.has(D.c[i])) continue;
        const d = (D.x[i] - x) ** 2 + (D.y[i] - y) ** 2;
        if (d <= bestD) { bestD = d; best = i; }
      }
    }
  }
  return best;
}

function describe(i) {
  const genres = D.g[i].map((g) => D.gv[g]).join(", ") || "no genre";
  return D.yr[i] === null ? genres : genres + " · " + D.yr[i];
}

function showTip(i, px, py) {
  if (i < 0) { tip.style.display = "none"; return; }
  tip.replaceChildren();
  const b = document.createElement("b"); b.textContent = D.t[i];
  const s = document.createElement("span"); s.textContent = describe(i);
  tip.append(b, s);
  tip.style.display = "block";
  const w = canvas.clientWidth;
  tip.style.left = Math.min(px + 14, w - tip.offsetWidth - 4) + "px";
  tip.style.top = (py + 14) + "px";
}

function listItem(i, onClick) {
  const li = document.createElement("li");
  li.textContent = D.t[i];
  li.title = describe(i);
  li.addEventListener("click", () => onClick(i));
  return li;
}

function select(i, centre) {
  selected = i;
  const box = document.getElementById("chosen");
  if (i < 0) { box.hidden = true; draw(); return; }
  box.hidden = false;
  document.getElementById("chosen-title").textContent = D.t[i];
  document.getElementById("chosen-meta").textContent = describe(i);
  nbrs.replaceChildren(...neighboursOf(i).map((n) => listItem(n, (m) => select(m, true))));
  if (centre) {
    view.ox = canvas.clientWidth / 2 - view.scale * D.x[i];
    view.oy = canvas.clientHeight / 2 + view.scale * D.y[i];
  }
  draw();
}

// -- search: case-insensitive, prefix matches first ------------------------------------------
const lower = D.t.map((t) => t.toLowerCase());
let matches = [], active = 0;
function updateSuggestions() {
  const q = search.value.trim().toLowerCase();
  matches = [];
  if (q) {
    const starts = [], contains = [];
    for (let i = 0; i < N && starts.length < 12; i++) {
      const at = lower[i].indexOf(q);
      if (at === 0) starts.push(i); else if (at > 0 && contains.length < 12) contains.push(i);
    }
    const key = (i) => -D.s[i];
    matches = starts.sort((a, b) => key(a) - key(b))
      .concat(contains.sort((a, b) => key(a) - key(b))).slice(0, 12);
  }
  active = 0;
  suggest.replaceChildren(...matches.map((i, n) => {
    const li = listItem(i, choose);
    if (n === active) li.classList.add("active");
    return li;
  }));
}
function choose(i) { suggest.replaceChildren(); search.value = D.t[i]; select(i, true); }
search.addEventListener("input", updateSuggestions);
search.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && matches.length) choose(matches[active]);
  else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    if (!matches.length) return;
    active = (active + (e.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
    [...suggest.children].forEach((li, n) => li.classList.toggle("active", n === active));
    e.preventDefault();
  } else if (e.key === "Escape") { search.value = ""; updateSuggestions(); select(-1); }
});

// -- legend: click to hide / show a genre -----------------------------------------------------
const counts = new Array(D.legend.length).fill(0);
for (const c of D.c) counts[c]++;
document.getElementById("legend").replaceChildren(...D.legend.map((g, k) => {
  const li = document.createElement("li"), dot = document.createElement("span");
  dot.style.background = D.colours[k];
  li.append(dot, document.createTextNode(g + " (" + counts[k].toLocaleString() + ")"));
  li.addEventListener("click", () => {
    if (hidden.has(k)) hidden.delete(k); else hidden.add(k);
    li.classList.toggle("off", hidden.has(k));
    draw();
  });
  return li;
}));

// -- zoom, pan, hover, click -------------------------------------------------------------------
let drag = null;
canvas.addEventListener("wheel", (e) => {
  e.preventDefault();
  const f = Math.exp(-e.deltaY * 0.0015), x = dataX(e.offsetX), y = dataY(e.offsetY);
  view.scale *= f;
  view.ox = e.offsetX - view.scale * x;
  view.oy = e.offsetY + view.scale * y;
  draw();
}, {passive: false});
canvas.addEventListener("mousedown", (e) => {
  drag = {x: e.offsetX, y: e.offsetY, ox: view.ox, oy: view.oy, moved: false};
  canvas.classList.add("dragging");
});
window.addEventListener("mouseup", (e) => {
  if (drag && !drag.moved && e.target === canvas) {
    const i = nearest(e.offsetX, e.offsetY, 8);
    select(i, false);
    if (i >= 0) search.value = D.t[i];
  }
  drag = null;
  canvas.classList.remove("dragging");
});
canvas.addEventListener("mousemove", (e) => {
  if (drag) {
    const dx = e.offsetX - drag.x, dy = e.offsetY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
    view.ox = drag.ox + dx; view.oy = drag.oy + dy;
    showTip(-1); draw();
    return;
  }
  const i = nearest(e.offsetX, e.offsetY, 8);
  if (i !== hover) { hover = i; draw(); }
  showTip(i, e.offsetX, e.offsetY);
});
canvas.addEventListener("mouseleave", () => { hover = -1; showTip(-1); draw(); });
document.getElementById("reset").addEventListener("click", () => { resetView(); draw(); });
window.addEventListener("resize", resize);
resize();
"""
