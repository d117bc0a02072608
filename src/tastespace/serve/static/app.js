// The explorer: wires the map, search, neighbours, watch list and recommendations together.
// Plain ES modules, no framework, no network beyond this server's own /api.

import { api } from "./api.js";
import { MapView, genreColour } from "./mapview.js";

const $ = (id) => document.getElementById(id);
const NEIGHBOURS = 12;
const RECOMMENDATIONS = 20;
const SUGGESTIONS = 8;

const state = {
  models: [],
  model: null,
  compare: "",
  method: "pca",
  selected: null, // the selected item's record
  watch: [], // [{id, title}] in the order added
};
const latest = { search: 0, select: 0, recommend: 0, map: 0 };

const map = new MapView($("map"), { onHover: showTooltip, onPick: (i) => select(map.data.ids[i]) });

// -- helpers -------------------------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function status(id, text) {
  $(id).textContent = text;
}

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const isWatched = (id) => state.watch.some((w) => String(w.id) === String(id));

// -- models and the map --------------------------------------------------------------------
async function init() {
  const { models, default: first } = await api.models();
  state.models = models;
  state.model = first;
  for (const m of models) $("model").append(el("option", { value: m.name }, `${m.name} (${m.kind})`));
  $("model").value = first;
  refreshCompareOptions();
  $("model").addEventListener("change", () => switchModel($("model").value));
  $("compare-model").addEventListener("change", () => {
    state.compare = $("compare-model").value;
    document.body.classList.toggle("comparing", Boolean(state.compare));
    refreshSelection();
    refreshRecommendations();
  });
  $("method").addEventListener("change", () => {
    state.method = $("method").value;
    loadMap();
  });
  bindSearch();
  $("add-selected").addEventListener("click", () => state.selected && addWatch(state.selected));
  $("clear-watchlist").addEventListener("click", () => {
    state.watch = [];
    renderWatch();
  });
  $("zoom-in").addEventListener("click", () => map.zoom(1.4));
  $("zoom-out").addEventListener("click", () => map.zoom(1 / 1.4));
  $("zoom-reset").addEventListener("click", () => map.fit());
  describeModel();
  await loadMap();
}

function refreshCompareOptions() {
  const select = $("compare-model");
  select.replaceChildren(el("option", { value: "" }, "(none)"));
  for (const m of state.models) {
    if (m.name !== state.model) select.append(el("option", { value: m.name }, m.name));
  }
  if (state.compare === state.model) state.compare = "";
  select.value = state.compare;
  document.body.classList.toggle("comparing", Boolean(state.compare));
  select.disabled = state.models.length < 2;
}

function describeModel() {
  const m = state.models.find((x) => x.name === state.model);
  if (m) status("model-info", `${m.n_items.toLocaleString()} items${m.dim ? ` · ${m.dim}-d` : ""}`);
}

async function switchModel(name) {
  state.model = name;
  refreshCompareOptions();
  describeModel();
  await loadMap();
  refreshSelection();
  refreshRecommendations();
}

async function loadMap() {
  const ticket = ++latest.map;
  status("map-status", `Laying out the catalog (${state.method})…`);
  document.body.dataset.mapReady = "";
  let data;
  try {
    data = await api.map(state.model, state.method);
  } catch (err) {
    if (ticket !== latest.map) return;
    status("map-status", err.message);
    if (state.method !== "pca") {
      state.method = "pca";
      $("method").value = "pca";
    }
    return;
  }
  if (ticket !== latest.map) return;
  map.setData(data);
  renderLegend(data);
  updateHighlights();
  status("map-status", `${data.total.toLocaleString()} items · ${data.method.toUpperCase()} of ${data.model}`);
  document.body.dataset.mapReady = "1";
}

function renderLegend(data) {
  const counts = new Map();
  for (const g of data.genre) counts.set(g, (counts.get(g) || 0) + 1);
  const entries = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  $("legend").replaceChildren(
    ...entries.map(([g, n]) => {
      const name = g < 0 ? "(no genre)" : data.genres[g];
      const button = el(
        "button",
        { type: "button", "aria-pressed": "true", title: `${n.toLocaleString()} items` },
        el("span", { class: "swatch", "aria-hidden": "true" }),
        `${name} `,
        el("span", { class: "muted" }, n.toLocaleString()),
      );
      button.firstChild.style.background = genreColour(g);
      button.addEventListener("click", () => {
        const shown = map.toggleGenre(g);
        button.setAttribute("aria-pressed", String(shown));
      });
      return el("li", {}, button);
    }),
  );
}

function showTooltip(i, x, y) {
  const tip = $("tooltip");
  if (i < 0) {
    tip.hidden = true;
    return;
  }
  const d = map.data;
  const genre = d.genre[i] < 0 ? "" : d.genres[d.genre[i]];
  tip.replaceChildren(el("strong", {}, d.titles[i]), el("br"), el("span", { class: "muted" }, genre));
  tip.style.left = `${x + 14}px`;
  tip.style.top = `${y + 14}px`;
  tip.hidden = false;
}

function mapIndices(items) {
  if (!map.data) return [];
  return items.map((it) => map.indexOf.get(String(it.id))).filter((i) => i !== undefined);
}

function updateHighlights() {
  if (!map.data) return;
  const selected = state.selected ? map.indexOf.get(String(state.selected.id)) ?? -1 : -1;
  map.setHighlights({
    selected,
    neighbours: mapIndices(state.neighbours || []),
    watched: mapIndices(state.watch),
  });
  return selected;
}

// -- search --------------------------------------------------------------------------------
function bindSearch() {
  const input = $("search");
  const list = $("suggestions");
  let active = -1;
  let controller = null;

  const close = () => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const highlight = (k) => {
    const options = list.querySelectorAll("li");
    options.forEach((o, j) => o.setAttribute("aria-selected", String(j === k)));
    active = k;
    if (options[k]) input.setAttribute("aria-activedescendant", options[k].id);
  };
  const choose = (item) => {
    close();
    input.value = item.title;
    select(item.id);
  };

  const run = debounce(async (text) => {
    const ticket = ++latest.search;
    if (controller) controller.abort();
    controller = new AbortController();
    if (!text.trim()) return close();
    let page;
    try {
      page = await api.search(text, state.model, SUGGESTIONS, controller.signal);
    } catch (err) {
      if (err.name !== "AbortError" && ticket === latest.search) close();
      return;
    }
    if (ticket !== latest.search) return;
    list.replaceChildren(
      ...page.items.map((item, k) =>
        el(
          "li",
          {
            id: `suggestion-${k}`,
            role: "option",
            "aria-selected": "false",
            dataset: { id: String(item.id) },
            onmousedown: (e) => {
              e.preventDefault();
              choose(item);
            },
          },
          item.title,
          el("span", { class: "muted" }, ` ${(item.genres || []).slice(0, 3).join(", ")}`),
        ),
      ),
    );
    if (!page.items.length) list.append(el("li", { class: "muted", role: "presentation" }, "No match"));
    list.items = page.items;
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    active = -1;
  }, 150);

  input.addEventListener("input", () => run(input.value));
  input.addEventListener("keydown", (e) => {
    const items = list.items || [];
    if (e.key === "ArrowDown" && items.length) {
      highlight(Math.min(active + 1, items.length - 1));
    } else if (e.key === "ArrowUp" && items.length) {
      highlight(Math.max(active - 1, 0));
    } else if (e.key === "Enter") {
      if (!list.hidden && items.length) choose(items[Math.max(active, 0)]);
    } else if (e.key === "Escape") {
      close();
    } else return;
    e.preventDefault();
  });
  input.addEventListener("blur", () => setTimeout(close, 100));
}

// -- selection and neighbours --------------------------------------------------------------
async function select(id) {
  const ticket = ++latest.select;
  let result;
  try {
    result = await api.similar(id, state.model, NEIGHBOURS);
  } catch (err) {
    if (ticket === latest.select) $("selected").textContent = err.message;
    return;
  }
  if (ticket !== latest.select) return;
  state.selected = result.item;
  state.neighbours = result.items;
  renderSelected();
  $("neighbours-model").textContent = state.model;
  renderItems($("neighbours"), result.items);
  const index = updateHighlights();
  map.centreOn(index);
  await compareNeighbours(ticket);
}

function refreshSelection() {
  if (state.selected) select(state.selected.id);
  else $("compare-column").hidden = !state.compare;
}

async function compareNeighbours(ticket) {
  const column = $("compare-column");
  column.hidden = !state.compare;
  state.compareNeighbours = null;
  if (!state.compare || !state.selected) return;
  $("compare-model-name").textContent = state.compare;
  try {
    const other = await api.similar(state.selected.id, state.compare, NEIGHBOURS);
    if (ticket !== latest.select) return;
    const mine = new Set((state.neighbours || []).map((x) => String(x.id)));
    renderItems($("compare-neighbours"), other.items, { shared: mine });
    state.compareNeighbours = new Set(other.items.map((x) => String(x.id)));
    const both = [...state.compareNeighbours].filter((id) => mine.has(id)).length;
    $("compare-overlap").textContent = `overlap@${NEIGHBOURS}: ${both}/${NEIGHBOURS} shared`;
    markShared($("neighbours"), state.compareNeighbours);
  } catch (err) {
    if (ticket !== latest.select) return;
    $("compare-neighbours").replaceChildren(el("li", { class: "muted" }, err.message));
  }
}

function markShared(list, ids) {
  for (const li of list.querySelectorAll("li[data-id]")) {
    li.classList.toggle("shared", ids.has(li.dataset.id));
  }
}

function renderSelected() {
  const item = state.selected;
  const box = $("selected");
  box.classList.remove("muted");
  box.replaceChildren(
    el("strong", {}, item.title),
    el("div", { class: "muted" }, (item.genres || []).join(" · ") || "no genres"),
  );
  box.dataset.id = String(item.id);
  $("add-selected").disabled = isWatched(item.id);
}

function renderItems(list, items, { shared, removable } = {}) {
  // Bars span the list's score range (scores may be negative, e.g. logits).
  const scores = items.map((x) => x.score).filter((x) => x !== undefined);
  const hi = Math.max(...scores);
  const lo = Math.min(0, Math.min(...scores) - 0.25 * (hi - Math.min(...scores)));
  list.replaceChildren(
    ...items.map((item) => {
      const li = el("li", { dataset: { id: String(item.id) } });
      if (shared && shared.has(String(item.id))) li.classList.add("shared");
      li.append(
        el("button", { type: "button", class: "link", title: item.title, onclick: () => select(item.id) }, item.title),
      );
      if (item.score !== undefined) {
        const bar = el("span", { class: "bar", "aria-hidden": "true" });
        const share = hi > lo ? (item.score - lo) / (hi - lo) : 1;
        bar.style.width = `${(Math.max(0, Math.min(1, share)) * 100).toFixed(1)}%`;
        li.append(el("span", { class: "score", title: "score" }, item.score.toFixed(3)), bar);
      }
      if (removable) {
        li.append(
          el("button", {
            type: "button",
            class: "icon",
            "aria-label": `Remove ${item.title} from the watch list`,
            onclick: () => removeWatch(item.id),
          }, "×"),
        );
      } else if (!isWatched(item.id)) {
        li.append(
          el("button", {
            type: "button",
            class: "icon",
            "aria-label": `Add ${item.title} to the watch list`,
            onclick: () => addWatch(item),
          }, "+"),
        );
      }
      if (item.because && item.because.length) {
        const names = item.because.map((b) => `${b.title} (${Math.round(100 * b.share)}%)`);
        li.append(el("div", { class: "because muted" }, `because you watched ${names.join(", ")}`));
      }
      return li;
    }),
  );
}

// -- watch list and recommendations --------------------------------------------------------
function addWatch(item) {
  if (isWatched(item.id)) return;
  state.watch.push({ id: item.id, title: item.title });
  renderWatch();
}

function removeWatch(id) {
  state.watch = state.watch.filter((w) => String(w.id) !== String(id));
  renderWatch();
}

function renderWatch() {
  renderItems($("watchlist"), state.watch, { removable: true });
  $("watch-count").textContent = state.watch.length ? `(${state.watch.length})` : "";
  $("clear-watchlist").disabled = !state.watch.length;
  if (state.selected) $("add-selected").disabled = isWatched(state.selected.id);
  if (state.neighbours) {
    renderItems($("neighbours"), state.neighbours);
    if (state.compare && state.compareNeighbours) markShared($("neighbours"), state.compareNeighbours);
  }
  updateHighlights();
  refreshRecommendations();
}

async function refreshRecommendations() {
  const ticket = ++latest.recommend;
  const history = state.watch.map((w) => w.id);
  $("compare-recommendations-column").hidden = !state.compare;
  if (!history.length) {
    $("recommendations").replaceChildren();
    $("compare-recommendations").replaceChildren();
    status("recommend-status", "Add items to the watch list to get recommendations.");
    return;
  }
  status("recommend-status", "Ranking the catalog…");
  const runs = [state.model, ...(state.compare ? [state.compare] : [])].map((m) =>
    api.recommend(history, m, RECOMMENDATIONS).then(
      (r) => ({ ok: true, r }),
      (err) => ({ ok: false, err }),
    ),
  );
  const [mine, other] = await Promise.all(runs);
  if (ticket !== latest.recommend) return;
  if (!mine.ok) {
    status("recommend-status", mine.err.message);
    $("recommendations").replaceChildren();
    return;
  }
  $("recommendations-model").textContent = state.model;
  renderItems($("recommendations"), mine.r.items);
  const skipped = mine.r.skipped.length ? ` (${mine.r.skipped.length} not in this catalog)` : "";
  status("recommend-status", `Top ${mine.r.total} for a watch list of ${history.length}${skipped}.`);
  if (other) {
    $("compare-recommendations-model").textContent = state.compare;
    if (other.ok) {
      const a = new Set(mine.r.items.map((x) => String(x.id)));
      renderItems($("compare-recommendations"), other.r.items, { shared: a });
      markShared($("recommendations"), new Set(other.r.items.map((x) => String(x.id))));
    } else {
      $("compare-recommendations").replaceChildren(el("li", { class: "muted" }, other.err.message));
    }
  }
}

init().catch((err) => status("map-status", `Could not start: ${err.message}`));
