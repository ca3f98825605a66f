/* Parallel coordinates over the experiments the filter shows: one vertical axis per chosen
 * parameter plus one metric summary, one line per experiment, coloured by the metric. Numeric
 * axes are linear, or logarithmic (a toggle) where the values are positive and span more than
 * two decades; text and boolean parameters get categorical axes (one tick per value). Dragging
 * along an axis brushes it: only the experiments inside every brush stay in the table (and
 * stay coloured here); a click on an axis clears its brush, "Clear brushes" clears them all.
 *
 * Drawn on one canvas (10,000 lines are one path per colour band, no DOM per line); the axis
 * titles are elements, carrying their geometry (data-x, data-y0, data-y1) for tests and tools. */

import { h, fmtNum } from './util.js';
import { S, valueOf, numOf, passesBrush } from './state.js';
import { filteredExps, paramKeys, metricCols, differingParams } from './table.js';
import { renderViews, stateChanged } from './commands.js';

const HEIGHT = 230;
const PAD_X = 70;
const PAD_TOP = 34;
const PAD_BOTTOM = 26;
const MAX_DEFAULT_AXES = 6;
const GRAB_PX = 16; // how near an axis a drag starts a brush

const P = {
  els: null,
  axes: [], // [{key, label, x, kind: 'num'|'cat', lo, hi, log, cats}]
  drag: null,
  choosing: false,
};

export function initParcoords() {
  const root = document.getElementById('pc');
  const axesBtn = h('button', { type: 'button', class: 'btn btn-sm', id: 'pc-axes' }, 'Axes…');
  const metric = h('select', { id: 'pc-metric', 'aria-label': 'Metric axis' });
  const log = h('label', { class: 'check', title: 'Logarithmic axes where the values are positive and span more than two decades' },
    h('input', { type: 'checkbox', id: 'pc-log' }), 'log axes');
  const brushes = h('span', { class: 'pc-brushes', id: 'pc-brushes' });
  const clear = h('button', { type: 'button', class: 'btn btn-sm', id: 'pc-clear', hidden: true }, 'Clear brushes');
  const chooser = h('div', { class: 'pc-chooser', id: 'pc-chooser', hidden: true });
  const canvas = h('canvas', { class: 'pc-canvas', id: 'pc-canvas' });
  const labels = h('div', { class: 'pc-labels' });
  const plot = h('div', { class: 'pc-plot' }, canvas, labels);
  root.append(h('div', { class: 'pc-bar' }, h('strong', null, 'Parallel coordinates'), axesBtn,
    h('span', { class: 'muted' }, 'metric'), metric, log, brushes, clear), chooser, plot);
  P.els = { root, axesBtn, metric, log: log.firstChild, brushes, clear, chooser, canvas, labels, plot };
  P.els.log.checked = S.pcLog;
  P.els.log.addEventListener('change', () => {
    S.pcLog = P.els.log.checked;
    localStorage.setItem('expman.pcLog', S.pcLog ? '1' : '');
    renderParcoords();
  });
  metric.addEventListener('change', () => {
    S.pcMetric = metric.value;
    localStorage.setItem('expman.pcMetric', S.pcMetric);
    renderParcoords();
  });
  axesBtn.addEventListener('click', () => {
    P.choosing = !P.choosing;
    renderChooser();
  });
  chooser.addEventListener('change', (e) => {
    const k = e.target.dataset.param;
    if (!k) return;
    const cur = currentParams();
    S.pcAxes = e.target.checked ? [...cur, k] : cur.filter((x) => x !== k);
    localStorage.setItem('expman.pcAxes', JSON.stringify(S.pcAxes));
    renderParcoords();
  });
  clear.addEventListener('click', () => {
    S.brush.clear();
    renderViews();
  });
  brushes.addEventListener('click', (e) => {
    const b = e.target.closest('[data-unbrush]');
    if (!b) return;
    S.brush.delete(b.dataset.unbrush);
    renderViews();
  });
  canvas.addEventListener('pointerdown', onDown);
  canvas.addEventListener('pointermove', onMove);
  canvas.addEventListener('pointerup', onUp);
  new ResizeObserver(() => { if (!root.hidden) renderParcoords(); }).observe(plot);
}

/** Shows or hides the panel (the toolbar's toggle; remembered). */
export function setShown(on) {
  S.pc = on;
  if (!P.els) return;
  P.els.root.hidden = !on;
  localStorage.setItem('expman.pc', on ? '1' : '');
  if (on) renderParcoords();
}

/** The parameter axes: the user's choice, else the parameters that differ (a few). */
function currentParams() {
  const known = new Set(paramKeys());
  if (S.pcAxes) return S.pcAxes.filter((k) => known.has(k));
  const diff = differingParams(filteredExps());
  return (diff.length ? diff : paramKeys()).slice(0, MAX_DEFAULT_AXES);
}

function currentMetric() {
  const cols = metricCols();
  if (S.pcMetric && cols.includes(S.pcMetric.replace(/^metrics\.|\.(last|min|max)$/g, ''))) return S.pcMetric;
  return cols.length ? `metrics.${cols[0]}.last` : null;
}

function renderChooser() {
  const c = P.els.chooser;
  c.hidden = !P.choosing;
  if (!P.choosing) return;
  const cur = new Set(currentParams());
  c.replaceChildren(...paramKeys().map((k) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', dataset: { param: k }, checked: cur.has(k) }), k)));
  if (!paramKeys().length) c.replaceChildren(h('span', { class: 'note' }, 'No parameters recorded yet.'));
}

function renderMetricSelect(metric) {
  const sel = P.els.metric;
  const opts = [];
  for (const c of metricCols()) for (const st of ['last', 'min', 'max']) opts.push(`metrics.${c}.${st}`);
  const sig = opts.join('\n');
  if (sel.dataset.sig !== sig) {
    sel.replaceChildren(...opts.map((o) => h('option', { value: o }, o.slice(8))));
    sel.dataset.sig = sig;
  }
  if (metric) sel.value = metric;
  sel.disabled = !opts.length;
}

/** An axis over `values`: numeric when every present value is a number, else categorical. */
function makeAxis(key, label, values) {
  const present = values.filter((v) => v !== undefined && v !== null);
  const numeric = present.every((v) => typeof v !== 'boolean' && numOf(v) !== null);
  if (!numeric) {
    const cats = [...new Set(present.map(String))].sort((x, y) => x.localeCompare(y, 'en', { numeric: true }));
    return { key, label, kind: 'cat', cats };
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of present) {
    const n = numOf(v);
    if (!Number.isFinite(n)) continue;
    if (n < lo) lo = n;
    if (n > hi) hi = n;
  }
  if (lo === Infinity) {
    lo = 0;
    hi = 1;
  }
  const log = S.pcLog && lo > 0 && hi / lo > 100;
  return { key, label, kind: 'num', lo, hi, log };
}

/** Where value `v` lies on axis `a`, 0 (bottom) to 1 (top); null: missing. */
function pos(a, v) {
  if (v === undefined || v === null) return null;
  if (a.kind === 'cat') {
    const i = a.cats.indexOf(String(v));
    return i < 0 ? null : (i + 0.5) / a.cats.length;
  }
  const n = numOf(v);
  if (n === null || Number.isNaN(n)) return null;
  if (n === Infinity) return 1;
  if (n === -Infinity) return 0;
  if (a.hi === a.lo) return 0.5;
  if (a.log) return (Math.log10(n) - Math.log10(a.lo)) / (Math.log10(a.hi) - Math.log10(a.lo));
  return (n - a.lo) / (a.hi - a.lo);
}

/** The value at position `t` (0..1) of numeric axis `a`. */
function valueAt(a, t) {
  if (a.hi === a.lo) return a.lo;
  if (a.log) return 10 ** (Math.log10(a.lo) + t * (Math.log10(a.hi) - Math.log10(a.lo)));
  return a.lo + t * (a.hi - a.lo);
}

export function renderParcoords() {
  if (!P.els || P.els.root.hidden || S.view !== 'table') return;
  const list = filteredExps();
  const params = currentParams();
  const metric = currentMetric();
  renderMetricSelect(metric);
  renderChooser();
  const keys = params.map((k) => [`params.${k}`, k]);
  if (metric) keys.push([metric, metric.slice(8)]);
  P.axes = keys.map(([key, label]) => makeAxis(key, label, list.map((s) => valueOf(s, key))));
  draw(list);
  renderBrushes();
}

function geometry() {
  const w = P.els.plot.clientWidth || 800;
  const n = P.axes.length;
  const span = Math.max(1, w - 2 * PAD_X);
  P.axes.forEach((a, i) => { a.x = n === 1 ? w / 2 : PAD_X + (i * span) / (n - 1); });
  return { w, y0: PAD_TOP, y1: HEIGHT - PAD_BOTTOM };
}

const yOf = (t, g) => g.y1 - t * (g.y1 - g.y0);

function draw(list) {
  const { canvas, labels } = P.els;
  const g = geometry();
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(g.w * dpr);
  canvas.height = Math.round(HEIGHT * dpr);
  canvas.style.width = `${g.w}px`;
  canvas.style.height = `${HEIGHT}px`;
  const cx = canvas.getContext('2d');
  cx.setTransform(dpr, 0, 0, dpr, 0, 0);
  cx.clearRect(0, 0, g.w, HEIGHT);
  if (!P.axes.length) {
    labels.replaceChildren(h('p', { class: 'note pc-none' }, 'No parameters or metrics to draw yet.'));
    return;
  }
  const metricAxis = P.axes[P.axes.length - 1];
  // Faded lines (outside a brush) first, then the kept ones in 8 colour bands of the metric.
  const faded = [];
  const bands = Array.from({ length: 8 }, () => []);
  for (const s of list) {
    const pts = P.axes.map((a) => pos(a, valueOf(s, a.key)));
    if (!passesBrush(s)) {
      faded.push(pts);
      continue;
    }
    const t = pos(metricAxis, valueOf(s, metricAxis.key));
    bands[t === null ? 0 : Math.min(7, Math.floor(t * 8))].push(pts);
  }
  const path = (group) => {
    cx.beginPath();
    for (const pts of group) {
      let pen = false;
      for (let i = 0; i < pts.length; i++) {
        if (pts[i] === null) {
          pen = false;
          continue;
        }
        const y = yOf(pts[i], g);
        if (pen) cx.lineTo(P.axes[i].x, y);
        else cx.moveTo(P.axes[i].x, y);
        pen = true;
      }
    }
    cx.stroke();
  };
  cx.lineWidth = 1;
  cx.strokeStyle = 'rgba(150,158,172,0.25)';
  path(faded);
  const alpha = list.length > 2000 ? 0.25 : list.length > 300 ? 0.45 : 0.8;
  bands.forEach((group, i) => {
    const hue = 230 - i * 30; // blue (low metric) to red (high)
    cx.strokeStyle = `hsla(${hue}, 70%, 48%, ${alpha})`;
    path(group);
  });
  // Axes, ticks and brushes.
  cx.font = '11px system-ui, sans-serif';
  cx.textBaseline = 'middle';
  const els = [];
  for (const a of P.axes) {
    cx.strokeStyle = '#1d2330';
    cx.lineWidth = 1;
    cx.beginPath();
    cx.moveTo(a.x + 0.5, g.y0);
    cx.lineTo(a.x + 0.5, g.y1);
    cx.stroke();
    cx.fillStyle = '#687083';
    for (const [t, text] of ticks(a)) {
      const y = yOf(t, g);
      cx.fillRect(a.x - 3, y, 6, 1);
      cx.textAlign = a === metricAxis ? 'left' : 'right';
      const tx = a.x + (a === metricAxis ? 6 : -6);
      cx.strokeStyle = 'rgba(255,255,255,0.9)'; // a halo keeps the tick readable over the lines
      cx.lineWidth = 3;
      cx.strokeText(text, tx, y);
      cx.fillStyle = '#3a4255';
      cx.fillText(text, tx, y);
      cx.fillStyle = '#687083';
      cx.lineWidth = 1;
    }
    const b = S.brush.get(a.key);
    if (b) {
      const [t0, t1] = brushSpan(a, b);
      cx.fillStyle = 'rgba(59,91,219,0.22)';
      cx.strokeStyle = '#3b5bdb';
      const ya = yOf(t1, g);
      const yb = yOf(t0, g);
      cx.fillRect(a.x - 8, ya, 16, Math.max(2, yb - ya));
      cx.strokeRect(a.x - 8 + 0.5, ya + 0.5, 15, Math.max(2, yb - ya) - 1);
    }
    els.push(h('div', {
      class: `pc-axis-label${a.key.startsWith('metrics.') ? ' metric' : ''}`, title: a.key,
      style: `left:${a.x}px`, dataset: { key: a.key, x: a.x, y0: g.y0, y1: g.y1, kind: a.log ? 'log' : a.kind },
    }, a.label, a.log ? h('span', { class: 'muted' }, ' log') : null));
  }
  if (P.drag && P.drag.moved) {
    const a = P.drag.axis;
    cx.fillStyle = 'rgba(59,91,219,0.15)';
    const ya = Math.min(P.drag.ya, P.drag.yb);
    cx.fillRect(a.x - 8, ya, 16, Math.abs(P.drag.yb - P.drag.ya));
  }
  labels.replaceChildren(...els);
}

/** An axis's tick positions and texts. */
function ticks(a) {
  if (a.kind === 'cat') {
    const step = Math.ceil(a.cats.length / 12);
    return a.cats.map((c, i) => [(i + 0.5) / a.cats.length, c.length > 14 ? `${c.slice(0, 13)}…` : c]).filter((_, i) => i % step === 0);
  }
  if (a.lo === a.hi) return [[0.5, fmtNum(a.lo)]];
  if (a.log) {
    const out = [];
    for (let e = Math.ceil(Math.log10(a.lo)); e <= Math.floor(Math.log10(a.hi)); e++) out.push([pos(a, 10 ** e), `1e${e}`]);
    return out.length > 8 ? out.filter((_, i) => i % 2 === 0) : out;
  }
  return [0, 0.25, 0.5, 0.75, 1].map((t) => [t, fmtNum(valueAt(a, t))]);
}

/** A brush's extent on its axis, as positions (0..1). */
function brushSpan(a, b) {
  if (b.cats) {
    const ps = [...b.cats].map((c) => pos(a, c)).filter((t) => t !== null);
    if (!ps.length) return [0, 0];
    const half = 0.5 / Math.max(1, a.cats.length);
    return [Math.max(0, Math.min(...ps) - half), Math.min(1, Math.max(...ps) + half)];
  }
  if (a.kind !== 'num') return [0, 0];
  const t0 = pos(a, b.lo);
  const t1 = pos(a, b.hi);
  return [Math.max(0, Math.min(t0, t1)), Math.min(1, Math.max(t0, t1))];
}

function renderBrushes() {
  const chips = [];
  for (const [key, b] of S.brush) {
    const text = b.cats ? `${key.replace(/^params\./, '')} ∈ {${[...b.cats].join(', ')}}`
      : `${fmtNum(b.lo)} ≤ ${key.replace(/^params\.|^metrics\./, '')} ≤ ${fmtNum(b.hi)}`;
    chips.push(h('span', { class: 'chip', dataset: { brush: key } }, text,
      h('button', { type: 'button', title: 'Remove this brush', 'aria-label': `Remove the brush on ${key}`, dataset: { unbrush: key } }, '×')));
  }
  P.els.brushes.replaceChildren(...chips);
  P.els.clear.hidden = S.brush.size === 0;
}

/* ---------- brushing ---------- */

function local(e) {
  const r = P.els.canvas.getBoundingClientRect();
  return [e.clientX - r.left, e.clientY - r.top];
}

function onDown(e) {
  const [x, y] = local(e);
  let best = null;
  for (const a of P.axes) if (Math.abs(a.x - x) <= GRAB_PX && (!best || Math.abs(a.x - x) < Math.abs(best.x - x))) best = a;
  if (!best) return;
  P.els.canvas.setPointerCapture(e.pointerId);
  P.drag = { axis: best, ya: y, yb: y, moved: false };
  e.preventDefault();
}

function onMove(e) {
  if (!P.drag) return;
  const [, y] = local(e);
  P.drag.yb = y;
  if (Math.abs(P.drag.yb - P.drag.ya) > 3) P.drag.moved = true;
  draw(filteredExps());
}

function onUp(e) {
  const d = P.drag;
  P.drag = null;
  if (!d) return;
  const [, y] = local(e);
  d.yb = y;
  const a = d.axis;
  if (Math.abs(d.yb - d.ya) <= 3) {
    S.brush.delete(a.key); // a click on an axis clears its brush
  } else {
    const g = { y0: PAD_TOP, y1: HEIGHT - PAD_BOTTOM };
    const tOf = (yy) => Math.min(1, Math.max(0, (g.y1 - yy) / (g.y1 - g.y0)));
    const t0 = Math.min(tOf(d.ya), tOf(d.yb));
    const t1 = Math.max(tOf(d.ya), tOf(d.yb));
    if (a.kind === 'cat') {
      const cats = new Set(a.cats.filter((c) => {
        const t = pos(a, c);
        return t >= t0 && t <= t1;
      }));
      S.brush.set(a.key, { cats });
    } else {
      S.brush.set(a.key, { lo: valueAt(a, t0), hi: valueAt(a, t1) });
    }
  }
  renderViews();
  stateChanged(false);
}
