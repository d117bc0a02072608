// The catalog map: every item as a few pixels on a <canvas>, coloured by primary genre.
//
// Why it stays smooth with 60k points: points are written straight into one ImageData buffer
// (one pass, no per-point canvas calls), a frame is drawn only when something changed
// (requestAnimationFrame), and hover hit-testing looks only at a few cells of a uniform grid
// built once per layout.

export const BACKGROUND = [17, 20, 24]; // #111418, also the page's --map-bg
const GRID = 128; // hit-testing grid cells per side, over the layout's core [-1, 1] square
const HOVER_PX = 8; // how close (CSS pixels) the pointer must be to pick a point

// 24 distinct hues (Tableau 20 + 4), readable on a dark background.
export const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac", "#1f77b4", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
  "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#17becf", "#bcbd22", "#8c564b", "#e377c2",
];
const NO_GENRE = "#6b7280";

function rgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export function genreColour(g) {
  return g < 0 ? NO_GENRE : PALETTE[g % PALETTE.length];
}

export class MapView {
  constructor(canvas, { onHover, onPick }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.onHover = onHover;
    this.onPick = onPick;
    this.data = null;
    this.hiddenGenres = new Set();
    this.highlights = { selected: -1, neighbours: [], watched: [] };
    this.view = { scale: 1, tx: 0, ty: 0 };
    this.hover = -1;
    this.pending = false;
    this.drawCount = 0;
    this._bindEvents();
    new ResizeObserver(() => this._resize()).observe(canvas);
    this._resize();
  }

  // -- data ------------------------------------------------------------------------------
  setData(data) {
    const n = data.total;
    this.data = data;
    this.x = Float32Array.from(data.x);
    this.y = Float32Array.from(data.y);
    this.genre = Int32Array.from(data.genre);
    this.indexOf = new Map(data.ids.map((id, i) => [String(id), i]));
    // Popular items last, so they sit on top.
    const order = Array.from({ length: n }, (_, i) => i);
    if (data.popularity) order.sort((a, b) => data.popularity[a] - data.popularity[b]);
    this.order = Uint32Array.from(order);
    this._buildGrid();
    this.highlights = { selected: -1, neighbours: [], watched: [] };
    this.hover = -1;
    this.fit();
  }

  _buildGrid() {
    const n = this.data.total;
    const cellOf = new Uint32Array(n);
    const counts = new Uint32Array(GRID * GRID + 1);
    for (let i = 0; i < n; i++) {
      const c = this._cell(this.x[i], this.y[i]);
      cellOf[i] = c;
      counts[c + 1]++;
    }
    for (let c = 0; c < GRID * GRID; c++) counts[c + 1] += counts[c];
    const fill = counts.slice(0, GRID * GRID);
    const members = new Uint32Array(n);
    for (let i = 0; i < n; i++) members[fill[cellOf[i]]++] = i;
    this.gridStart = counts;
    this.gridMembers = members;
  }

  _cell(x, y) {
    const cx = Math.min(GRID - 1, Math.max(0, Math.floor(((x + 1) / 2) * GRID)));
    const cy = Math.min(GRID - 1, Math.max(0, Math.floor(((y + 1) / 2) * GRID)));
    return cy * GRID + cx;
  }

  // -- view ------------------------------------------------------------------------------
  fit() {
    const w = this.canvas.clientWidth || 1;
    const h = this.canvas.clientHeight || 1;
    this.fitScale = (Math.min(w, h) / 2) * 0.92;
    this.view = { scale: this.fitScale, tx: w / 2, ty: h / 2 };
    this.redraw();
  }

  zoom(factor, cx, cy) {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    cx = cx ?? w / 2;
    cy = cy ?? h / 2;
    const v = this.view;
    const scale = Math.min(Math.max(v.scale * factor, 20), 200000);
    const k = scale / v.scale;
    this.view = { scale, tx: cx - (cx - v.tx) * k, ty: cy - (cy - v.ty) * k };
    this.redraw();
  }

  centreOn(i) {
    if (i < 0 || !this.data) return;
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    const v = this.view;
    const [px, py] = this.toScreen(i);
    if (px < 40 || py < 40 || px > w - 40 || py > h - 40) {
      this.view = { ...v, tx: v.tx + w / 2 - px, ty: v.ty + h / 2 - py };
    }
    this.redraw();
  }

  toScreen(i) {
    const v = this.view;
    return [v.tx + this.x[i] * v.scale, v.ty - this.y[i] * v.scale];
  }

  toData(px, py) {
    const v = this.view;
    return [(px - v.tx) / v.scale, (v.ty - py) / v.scale];
  }

  setHighlights(h) {
    this.highlights = { ...this.highlights, ...h };
    this.redraw();
  }

  toggleGenre(g) {
    if (this.hiddenGenres.has(g)) this.hiddenGenres.delete(g);
    else this.hiddenGenres.add(g);
    this.redraw();
    return !this.hiddenGenres.has(g);
  }

  // -- drawing ---------------------------------------------------------------------------
  _resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.canvas.clientWidth * dpr));
    const h = Math.max(1, Math.round(this.canvas.clientHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      const first = this.canvas.width <= 300 && this.view.scale === 1;
      this.canvas.width = w;
      this.canvas.height = h;
      this.image = null;
      if (first && this.data) this.fit();
      else this.redraw();
    }
  }

  redraw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => {
      this.pending = false;
      this.draw();
    });
  }

  draw() {
    const { canvas, ctx } = this;
    const W = canvas.width;
    const H = canvas.height;
    if (!this.image || this.image.width !== W || this.image.height !== H) {
      this.image = ctx.createImageData(W, H);
      this.pixels = new Uint32Array(this.image.data.buffer);
    }
    const px = this.pixels;
    const [br, bg, bb] = BACKGROUND;
    px.fill((255 << 24) | (bb << 16) | (bg << 8) | br); // little-endian ABGR
    if (this.data) this._drawPoints(px, W, H);
    ctx.putImageData(this.image, 0, 0);
    if (this.data) this._drawOverlay();
    this.drawCount++;
    canvas.dataset.drawn = String(this.drawCount);
  }

  _drawPoints(px, W, H) {
    const dpr = window.devicePixelRatio || 1;
    const v = this.view;
    const s = v.scale * dpr;
    const tx = v.tx * dpr;
    const ty = v.ty * dpr;
    // Dots grow with zoom (slowly) and are larger for small catalogs.
    const n = this.data.total;
    const base = n > 20000 ? 1.5 : n > 5000 ? 2 : n > 1000 ? 3 : 4;
    const zoomed = Math.sqrt(v.scale / (this.fitScale || v.scale));
    const size = Math.max(1, Math.min(8, Math.round(base * zoomed * dpr)));
    const dim = this.highlights.selected >= 0;
    const colours = PALETTE.map((hex) => packed(rgb(hex), dim));
    const none = packed(rgb(NO_GENRE), dim);
    const { x, y, genre, order } = this;
    const hidden = this.hiddenGenres;
    for (let k = 0; k < order.length; k++) {
      const i = order[k];
      const g = genre[i];
      if (hidden.size && hidden.has(g)) continue;
      const cx = (tx + x[i] * s) | 0;
      const cy = (ty - y[i] * s) | 0;
      if (cx < 0 || cy < 0 || cx + size > W || cy + size > H) continue;
      const c = g < 0 ? none : colours[g % colours.length];
      for (let dy = 0; dy < size; dy++) {
        const row = (cy + dy) * W + cx;
        for (let dx = 0; dx < size; dx++) px[row + dx] = c;
      }
    }
  }

  _drawOverlay() {
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    ctx.save();
    ctx.scale(dpr, dpr);
    const ring = (i, r, colour, width) => {
      const [sx, sy] = this.toScreen(i);
      ctx.beginPath();
      ctx.arc(sx, sy, r, 0, 2 * Math.PI);
      ctx.strokeStyle = colour;
      ctx.lineWidth = width;
      ctx.stroke();
    };
    const { selected, neighbours, watched } = this.highlights;
    for (const i of watched) {
      const [sx, sy] = this.toScreen(i);
      ctx.fillStyle = "#fde047";
      ctx.beginPath();
      ctx.moveTo(sx, sy - 6);
      ctx.lineTo(sx + 6, sy);
      ctx.lineTo(sx, sy + 6);
      ctx.lineTo(sx - 6, sy);
      ctx.closePath();
      ctx.fill();
    }
    for (const i of neighbours) {
      ctx.fillStyle = genreColour(this.genre[i]);
      const [sx, sy] = this.toScreen(i);
      ctx.fillRect(sx - 2.5, sy - 2.5, 5, 5);
      ring(i, 6, "#f8fafc", 1.5);
    }
    if (selected >= 0) {
      ring(selected, 10, "#ffffff", 2.5);
      this._label(selected, "#ffffff");
    }
    if (this.hover >= 0 && this.hover !== selected) ring(this.hover, 7, "#e2e8f0", 1.5);
    ctx.restore();
  }

  _label(i, colour) {
    const ctx = this.ctx;
    const [sx, sy] = this.toScreen(i);
    const text = this.data.titles[i];
    ctx.font = "600 13px system-ui, sans-serif";
    const w = ctx.measureText(text).width;
    ctx.fillStyle = "rgba(17, 20, 24, 0.8)";
    ctx.fillRect(sx + 12, sy - 22, w + 10, 20);
    ctx.fillStyle = colour;
    ctx.fillText(text, sx + 17, sy - 7);
  }

  // -- interaction -----------------------------------------------------------------------
  pick(px, py) {
    if (!this.data) return -1;
    const [dx, dy] = this.toData(px, py);
    const r = HOVER_PX / this.view.scale;
    const cellSize = 2 / GRID;
    // Points beyond ±1 (layout outliers) live in the edge cells, so clamp both ends.
    const clamp = (v) => Math.min(GRID - 1, Math.max(0, Math.floor((v + 1) / cellSize)));
    const x0 = clamp(dx - r);
    const x1 = clamp(dx + r);
    const y0 = clamp(dy - r);
    const y1 = clamp(dy + r);
    let best = -1;
    let bestD = r * r;
    for (let cy = y0; cy <= y1; cy++) {
      for (let cx = x0; cx <= x1; cx++) {
        const c = cy * GRID + cx;
        for (let m = this.gridStart[c]; m < this.gridStart[c + 1]; m++) {
          const i = this.gridMembers[m];
          if (this.hiddenGenres.size && this.hiddenGenres.has(this.genre[i])) continue;
          const ex = this.x[i] - dx;
          const ey = this.y[i] - dy;
          const d = ex * ex + ey * ey;
          if (d <= bestD) {
            bestD = d;
            best = i;
          }
        }
      }
    }
    return best;
  }

  _bindEvents() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, tx: this.view.tx, ty: this.view.ty, moved: false };
      c.setPointerCapture(e.pointerId);
    });
    c.addEventListener("pointermove", (e) => {
      const rect = c.getBoundingClientRect();
      if (drag) {
        const mx = e.clientX - drag.x;
        const my = e.clientY - drag.y;
        if (Math.abs(mx) + Math.abs(my) > 3) drag.moved = true;
        if (drag.moved) {
          this.view = { ...this.view, tx: drag.tx + mx, ty: drag.ty + my };
          this.redraw();
          return;
        }
      }
      const i = this.pick(e.clientX - rect.left, e.clientY - rect.top);
      if (i !== this.hover) {
        this.hover = i;
        this.redraw();
      }
      this.onHover(i, e.clientX - rect.left, e.clientY - rect.top);
    });
    c.addEventListener("pointerup", (e) => {
      const rect = c.getBoundingClientRect();
      if (drag && !drag.moved) {
        const i = this.pick(e.clientX - rect.left, e.clientY - rect.top);
        if (i >= 0) this.onPick(i);
      }
      drag = null;
    });
    c.addEventListener("pointerleave", () => {
      if (this.hover >= 0) {
        this.hover = -1;
        this.redraw();
      }
      this.onHover(-1, 0, 0);
    });
    c.addEventListener(
      "wheel",
      (e) => {
        e.preventDefault();
        const rect = c.getBoundingClientRect();
        this.zoom(Math.exp(-e.deltaY * 0.0015), e.clientX - rect.left, e.clientY - rect.top);
      },
      { passive: false },
    );
    c.addEventListener("keydown", (e) => {
      const step = 40;
      const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (e.key === "+" || e.key === "=") this.zoom(1.25);
      else if (e.key === "-") this.zoom(0.8);
      else if (e.key === "0") this.fit();
      else if (moves[e.key]) {
        this.view = { ...this.view, tx: this.view.tx + moves[e.key][0], ty: this.view.ty + moves[e.key][1] };
        this.redraw();
      } else return;
      e.preventDefault();
    });
  }
}

function packed([r, g, b], dim) {
  if (dim) {
    const [br, bg, bb] = BACKGROUND;
    r = Math.round(br + (r - br) * 0.35);
    g = Math.round(bg + (g - bg) * 0.35);
    b = Math.round(bb + (b - bb) * 0.35);
  }
  return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
}
