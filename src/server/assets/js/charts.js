/* Charts: uPlot (vendor/uplot.min.js, a classic script that sets window.uPlot) over series
 * from the server, several lines aligned on one x axis. The server buckets (M4) and smooths on
 * the full data; this module only draws what it is given: a smoothed line over its raw curve
 * (faint), gaps as breaks with a red tick under them, log axes, a legend that shows the last
 * values when the cursor is away, cursor and zoom shared by every chart of one view, a
 * full-screen mode, and PNG / CSV downloads of exactly what is drawn. */

import { fmtNum } from './util.js';

/** Line colours: the first is the experiment's own, the others go to overlays. */
export const COLORS = ['#2f6fed', '#e8590c', '#1f9d55', '#ae3ec9', '#d6336c', '#0c8599', '#f59f00',
  '#5c7cfa', '#495057', '#94d82d'];

/** The height a chart is drawn at until the reader resizes it. */
export const CHART_HEIGHT = 170;

export const toNum = (v) => (typeof v === 'number' && isFinite(v) ? v : null);

/* ---------- settings, remembered in localStorage ---------- */

const SETTINGS_KEY = 'expman.charts';
const DEFAULTS = { smooth: 'none', ema: 0.6, median: 21, logY: false, logX: false, x: 'step', height: CHART_HEIGHT, pins: [] };

/** The chart settings of every view (one set: a reader who smooths one table wants it for the
 *  next). */
export function loadSettings() {
  try {
    return Object.assign({}, DEFAULTS, JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}'));
  } catch (e) {
    return Object.assign({}, DEFAULTS);
  }
}

export function saveSettings(s) {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify(s));
  } catch (e) {
    /* private mode or full: settings last for this page only */
  }
}

/** The series endpoint's parameters for settings `s` (and an x range, when zoomed). */
export function seriesParams(s, range, maxPoints) {
  const p = { max_points: maxPoints || 1000, x: s.x || 'step' };
  if (s.smooth === 'ema') p.smooth = `ema:${Math.min(0.999, Math.max(0, Number(s.ema) || 0))}`;
  else if (s.smooth === 'median') p.smooth = `median:${(Math.max(1, Math.floor(Number(s.median) || 1)) | 1)}`;
  if (s.logY) p.log_y = 1;
  if (range) {
    p.from = range[0];
    p.to = range[1];
  }
  return p;
}

/* ---------- formatting ---------- */

/** Axis ticks: short, so they fit a 54 px axis. */
function fmtTick(v) {
  if (v == null || !isFinite(v)) return '';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(1).replace('.0e', 'e').replace('e+', 'e');
  return String(parseFloat(v.toPrecision(4)));
}

const css = (name, fallback) => getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;

/** `#rrggbb` at opacity `a`. */
const faint = (hex, a) => {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
};

/* ---------- data ---------- */

/** A line's values with its empty cells as `undefined`, and its gaps without them. A metric
 *  logged every N steps (evaluation) sits between empty cells of the table: those are "not
 *  logged here", so the line joins over them (as uPlot does over `undefined`); only NaN and
 *  ±inf break it and get a red mark. `gaps` are the server's runs of {kind, from, to} in x. */
export function skipEmpty(x, y, gaps) {
  const empty = (gaps || []).filter((g) => g.kind === 'null');
  if (!empty.length || !y) return { y, gaps: gaps || [] };
  const out = y.slice();
  let k = 0;
  for (let i = 0; i < x.length && k < empty.length; i++) {
    while (k < empty.length && x[i] > empty[k].to) k++;
    if (k < empty.length && out[i] == null && x[i] >= empty[k].from) out[i] = undefined;
  }
  return { y: out, gaps: gaps.filter((g) => g.kind !== 'null') };
}

/** Aligns several lines onto one sorted x axis (uPlot's layout). Each line is {x, ys: [arrays]}.
 *  A point where a line has no row is `undefined` (uPlot joins over it: another run's x is not
 *  a gap in this one), a row whose value is null stays null (a real gap: the line breaks). */
export function alignMany(lines) {
  const xs = new Set();
  for (const l of lines) for (const x of l.x) if (toNum(x) != null) xs.add(x);
  const X = Float64Array.from(xs).sort();
  const out = [X];
  if (lines.length === 1 && lines[0].x.length === X.length) {
    // One line in x order (what the server returns): no lookups.
    for (const y of lines[0].ys) out.push(Array.from(y, (v) => (v === undefined ? undefined : v === null ? null : toNum(v))));
    return out;
  }
  const pos = new Map();
  for (let i = 0; i < X.length; i++) pos.set(X[i], i);
  for (const l of lines) {
    for (const y of l.ys) {
      const col = new Array(X.length).fill(undefined);
      const n = Math.min(l.x.length, y.length);
      for (let i = 0; i < n; i++) {
        const p = pos.get(l.x[i]);
        if (p != null) col[p] = y[i] === undefined ? undefined : y[i] === null ? null : toNum(y[i]);
      }
      out.push(col);
    }
  }
  return out;
}

/** The older single-y form: lines of {x, y}. */
export const align = (lines) => alignMany(lines.map((l) => ({ x: l.x, ys: [l.y] })));

/* ---------- the chart ---------- */

const axisFont = '11px system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif';

/** Whether the chart library loaded. */
export const chartsAvailable = () => typeof window.uPlot === 'function';

/** A group of charts whose cursor and zoom move together (one per view). `onZoom(range|null)`
 *  is called once per zoom, whichever chart it started in. */
export class ChartGroup {
  constructor(onZoom) {
    this.key = `g${Math.random().toString(36).slice(2)}`;
    this.charts = new Set();
    this.onZoom = onZoom;
    this.zooming = false;
  }

  /** A zoom in one chart (a drag, or a double-click back out): the others follow. */
  zoomed(from, range) {
    if (this.zooming) return;
    this.zooming = true;
    try {
      for (const c of this.charts) {
        if (c === from || !c.u) continue;
        if (range) c.u.setScale('x', { min: range[0], max: range[1] });
        else c.resetX();
      }
    } finally {
      this.zooming = false;
    }
    if (this.onZoom) this.onZoom(range);
  }
}

/** One chart. `spec`: {title, xLabel, yLabel, lines: [{label, color, x, y, raw?, gaps?}],
 *  logY, logX, height, group}. With `raw`, the line's unsmoothed values are drawn faint behind. */
export class Chart {
  constructor(body, spec) {
    this.body = body;
    this.group = spec.group || null;
    this.height = spec.height || CHART_HEIGHT;
    this.full = false;
    this.build(spec);
    if (this.group) this.group.charts.add(this);
    // For the console and the browser tests: the chart behind a .chart-body.
    body.expmanChart = this;
  }

  build(spec) {
    this.spec = spec;
    const lines = spec.lines;
    // Series order, bottom to top: raw curves, bands (lo, hi), then the lines (a `faint` line is
    // an individual run behind its group's line). Only the lines proper have legend entries.
    const series = [{ label: spec.xLabel, value: this.legendValue(0) }];
    const bands = [];
    const hidden = [];
    this.layout(spec).forEach((c) => {
      const l = lines[c.line];
      if (c.role === 'raw') {
        hidden.push(series.length);
        series.push({ label: `${l.label} (raw)`, stroke: faint(l.color, 0.25), width: 1, spanGaps: false, points: { show: false } });
      } else if (c.role === 'lo' || c.role === 'hi') {
        if (c.role === 'hi') bands.push({ series: [series.length, series.length - 1], fill: faint(l.color, 0.15) });
        hidden.push(series.length);
        series.push({ label: `${l.label} (${c.role})`, stroke: 'transparent', width: 0, spanGaps: false, points: { show: false } });
      } else if (l.faint) {
        hidden.push(series.length);
        series.push({ label: l.label, stroke: faint(l.color, 0.3), width: 1, spanGaps: false, points: { show: false } });
      } else {
        series.push({ label: l.label, stroke: l.color, width: 1.5, spanGaps: false, points: { size: 4 }, value: this.legendValue(series.length) });
      }
    });
    this.buildData(spec);
    const hasRaw = lines.some((l) => l.raw);
    const axis = {
      stroke: css('--muted', '#687083'),
      font: axisFont,
      labelFont: axisFont,
      grid: { stroke: css('--grid', '#eef0f3'), width: 1 },
      ticks: { stroke: css('--line', '#e2e5ea'), width: 1, size: 4 },
    };
    const self = this;
    const opts = {
      width: Math.max(220, this.body.clientWidth || 300),
      height: this.height,
      legend: { show: true, live: true },
      cursor: {
        drag: { x: true, y: false, setScale: true },
        sync: this.group ? { key: this.group.key, setSeries: false } : undefined,
      },
      scales: {
        // x = wall: Unix seconds, shown as dates and times (uPlot's time axis is in seconds).
        x: { time: Boolean(spec.time) && !spec.logX, distr: spec.logX ? 3 : 1 },
        y: { distr: spec.logY ? 3 : 1 },
      },
      axes: [
        Object.assign({}, axis, { size: 30, label: spec.xLabel, labelSize: 16 }),
        Object.assign({}, axis, { size: 54, label: spec.yLabel, labelSize: 16, values: (u, vals) => vals.map(fmtTick) }),
      ],
      series,
      bands,
      hooks: {
        setScale: [(u, key) => {
          if (key !== 'x' || !self.group || self.building) return;
          const xs = u.data[0];
          const min = u.scales.x.min;
          const max = u.scales.x.max;
          const full = xs.length && min <= xs[0] && max >= xs[xs.length - 1];
          self.group.zoomed(self, full ? null : [min, max]);
        }],
        draw: [(u) => self.drawGapMarks(u)],
      },
    };
    this.building = true;
    if (this.u) this.u.destroy();
    this.u = new window.uPlot(opts, this.data, this.body);
    this.building = false;
    // Raw curves, bands and faint runs stay out of the legend: one entry per line is what a
    // reader looks up.
    const rows = this.u.root.querySelectorAll('.u-legend .u-series');
    for (const i of hidden) if (rows[i]) rows[i].style.display = 'none';
    this.body.dataset.lines = String(lines.length);
    this.body.dataset.raw = hasRaw ? '1' : '0';
  }

  /** The legend's value: at the cursor, or the line's last value when the cursor is away. */
  legendValue(si) {
    return (u, v, _si, idx) => {
      const x = idx == null ? this.last[si] : v;
      if (x == null) return idx == null ? '' : 'gap';
      if (si === 0 && this.spec.time) return new Date(x * 1000).toISOString().replace('T', ' ').slice(0, 19);
      return fmtNum(x);
    };
  }

  /** A small red tick under every gap (NaN, ±inf), in its line's colour above it: gaps are
   *  shown, never drawn as zeros. (Empty cells are not gaps: see `skipEmpty`.) */
  drawGapMarks(u) {
    const ctx = u.ctx;
    const bottom = u.bbox.top + u.bbox.height;
    let n = 0;
    ctx.save();
    ctx.fillStyle = '#d63939';
    for (const l of this.spec.lines) {
      for (const g of l.gaps || []) {
        const a = u.valToPos(g.from, 'x', true);
        const b = u.valToPos(g.to, 'x', true);
        if (!isFinite(a) || b < u.bbox.left || a > u.bbox.left + u.bbox.width) continue;
        ctx.fillRect(Math.max(u.bbox.left, a) - 1, bottom - 5 * devicePixelRatio, Math.max(2, b - a + 2), 5 * devicePixelRatio);
        n++;
      }
    }
    ctx.restore();
    this.body.dataset.gapMarks = String(n);
  }

  /** New data for the same lines (a poll, a zoom's refetch): the x scale stays where it is. */
  update(spec, keepRange) {
    const same = spec.lines.length === this.spec.lines.length &&
      spec.lines.every((l, i) => {
        const o = this.spec.lines[i];
        return l.label === o.label && l.color === o.color && Boolean(l.raw) === Boolean(o.raw) && Boolean(l.lo) === Boolean(o.lo) && Boolean(l.faint) === Boolean(o.faint);
      }) &&
      spec.logX === this.spec.logX && Boolean(spec.time) === Boolean(this.spec.time) && spec.logY === this.spec.logY && spec.xLabel === this.spec.xLabel && spec.yLabel === this.spec.yLabel;
    if (!same) {
      this.build(spec);
      return;
    }
    const range = keepRange ? [this.u.scales.x.min, this.u.scales.x.max] : null;
    const u = this.u;
    this.spec = spec;
    this.building = true;
    this.buildData(spec);
    u.setData(this.data, !range);
    if (range) u.setScale('x', { min: range[0], max: range[1] });
    this.building = false;
  }

  /** The columns drawn, in series order: {line, role: 'raw'|'lo'|'hi'|'y'}. */
  layout(spec) {
    const cols = [];
    spec.lines.forEach((l, i) => { if (l.raw) cols.push({ line: i, role: 'raw' }); });
    spec.lines.forEach((l, i) => { if (l.lo && l.hi) cols.push({ line: i, role: 'lo' }, { line: i, role: 'hi' }); });
    spec.lines.forEach((l, i) => { if (l.faint) cols.push({ line: i, role: 'y' }); });
    spec.lines.forEach((l, i) => { if (!l.faint) cols.push({ line: i, role: 'y' }); });
    return cols;
  }

  buildData(spec) {
    const lines = spec.lines;
    const cols = this.layout(spec);
    // One aligned table over every line's x; then the columns in series order.
    const perLine = lines.map((l) => ({ x: l.x, ys: [] }));
    const where = cols.map((c) => {
      const l = lines[c.line];
      perLine[c.line].ys.push(c.role === 'y' ? l.y : l[c.role]);
      return [c.line, perLine[c.line].ys.length - 1];
    });
    const aligned = alignMany(perLine);
    const start = [];
    let k = 1;
    perLine.forEach((p, i) => { start[i] = k; k += p.ys.length; });
    const ordered = [aligned[0], ...where.map(([li, j]) => aligned[start[li] + j])];
    this.data = ordered;
    this.last = ordered.map((col) => {
      for (let i = col.length - 1; i >= 0; i--) if (col[i] != null) return col[i];
      return null;
    });
  }

  resetX() {
    const xs = this.u.data[0];
    if (xs.length) this.u.setScale('x', { min: xs[0], max: xs[xs.length - 1] });
  }

  setSize(width, height) {
    if (height) this.height = height;
    this.u.setSize({ width: Math.max(220, width), height: this.height });
  }

  /** Full screen: the chart's box covers the window (CSS), drawn at the window's size. */
  toggleFull(wrap) {
    this.full = !this.full;
    wrap.classList.toggle('chart-full', this.full);
    if (this.full) {
      this.savedHeight = this.height;
      this.u.setSize({ width: window.innerWidth - 40, height: window.innerHeight - 110 });
    } else {
      this.u.setSize({ width: Math.max(220, this.body.clientWidth), height: this.savedHeight || this.height });
    }
  }

  /** The chart as a PNG (the canvas over the page's background, so it is not transparent). */
  pngBlob() {
    const src = this.u.ctx.canvas;
    const c = document.createElement('canvas');
    c.width = src.width;
    c.height = src.height;
    const ctx = c.getContext('2d');
    ctx.fillStyle = css('--panel', '#ffffff');
    ctx.fillRect(0, 0, c.width, c.height);
    ctx.drawImage(src, 0, 0);
    return new Promise((resolve) => c.toBlob(resolve, 'image/png'));
  }

  /** The plotted data as CSV: x, then each line (and its raw curve when smoothed); gaps empty. */
  csv() {
    const series = this.u.series;
    const cols = this.u.data;
    const head = series.map((s) => csvCell(s.label || ''));
    const rows = [head.join(',')];
    const n = cols[0].length;
    for (let i = 0; i < n; i++) {
      const r = [];
      for (let c = 0; c < cols.length; c++) {
        const v = cols[c][i];
        r.push(v == null ? '' : String(v));
      }
      rows.push(r.join(','));
    }
    return `${rows.join('\n')}\n`;
  }

  destroy() {
    if (this.group) this.group.charts.delete(this);
    if (this.u) this.u.destroy();
    this.u = null;
  }
}

const csvCell = (s) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** Saves `blob` as `name` through a link click (the browser's download). */
export function saveBlob(blob, name) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

/** Short names for runs: the params whose values differ between them ("lr=0.1 seed=2"), else
 *  their given names. `runs`: [{name, params}]. */
export function shortNames(runs) {
  if (runs.length < 2) return runs.map((r) => r.name);
  const keys = new Set();
  for (const r of runs) for (const k of Object.keys(r.params || {})) keys.add(k);
  const differ = [...keys].sort().filter((k) => {
    const v0 = JSON.stringify((runs[0].params || {})[k]);
    return runs.some((r) => JSON.stringify((r.params || {})[k]) !== v0);
  });
  if (!differ.length) return runs.map((r) => r.name);
  const value = (r, k) => JSON.stringify((r.params || {})[k]);
  const label = (keys) => runs.map((r) => keys.map((k) => `${k}=${fmtParam((r.params || {})[k])}`).join(' '));
  const unique = (names) => new Set(names).size === names.length;
  // The keys that tell the runs apart, fewest first: the one with the most distinct values,
  // then whichever splits the runs that still share a label most (a `seed` that alone
  // separates two otherwise equal runs is taken, where the first three keys by name left it
  // out and the labels came out equal).
  const chosen = [];
  const rest = [...differ];
  while (rest.length && chosen.length < 4) {
    const score = (k) => new Set(runs.map((r) => [...chosen, k].map((q) => value(r, q)).join('\u0000'))).size;
    rest.sort((a, b) => score(b) - score(a) || (a < b ? -1 : 1));
    chosen.push(rest.shift());
    if (unique(label(chosen))) break;
  }
  const names = label(chosen);
  return unique(names) ? names : runs.map((r, i) => `${r.name} ${names[i]}`);
}

const fmtParam = (v) => (typeof v === 'number' ? fmtNum(v) : v == null ? '∅' : typeof v === 'string' ? v : JSON.stringify(v));

/** The older entry point: a plain chart of `lines` ({label, color, x, y}). */
export function makeChart(body, xLabel, lines) {
  return new Chart(body, { xLabel, lines }).u;
}

/** Several runs' lines as one: on the union of their x, each run's value linearly interpolated
 *  between its own points (never extrapolated past its first or last), then per x the mean (or
 *  median) and a band of ±1 standard deviation (or min–max) over the runs that have a value.
 *  `members`: [{x, y}], x ascending. */
export function aggregate(members, agg, band) {
  const xs = new Set();
  for (const m of members) for (const x of m.x) if (toNum(x) != null) xs.add(x);
  const X = Float64Array.from(xs).sort();
  const vals = members.map((m) => {
    const out = new Float64Array(X.length).fill(NaN);
    const px = [];
    const py = [];
    for (let i = 0; i < m.x.length; i++) {
      const v = toNum(m.y[i]);
      if (v != null && toNum(m.x[i]) != null) {
        px.push(m.x[i]);
        py.push(v);
      }
    }
    let j = 0;
    for (let i = 0; i < X.length && px.length; i++) {
      const x = X[i];
      if (x < px[0] || x > px[px.length - 1]) continue;
      while (j < px.length - 1 && px[j + 1] < x) j++;
      if (px[j] === x || j === px.length - 1) out[i] = px[j] === x ? py[j] : NaN;
      else out[i] = py[j] + ((py[j + 1] - py[j]) * (x - px[j])) / (px[j + 1] - px[j]);
      if (px[j + 1] === x) out[i] = py[j + 1];
    }
    return out;
  });
  const y = [];
  const lo = [];
  const hi = [];
  const n = [];
  const col = [];
  for (let i = 0; i < X.length; i++) {
    col.length = 0;
    for (const v of vals) if (!Number.isNaN(v[i])) col.push(v[i]);
    n.push(col.length);
    if (!col.length) {
      y.push(null);
      lo.push(null);
      hi.push(null);
      continue;
    }
    const mean = col.reduce((a, v) => a + v, 0) / col.length;
    let center = mean;
    if (agg === 'median') {
      col.sort((a, b) => a - b);
      const m = col.length >> 1;
      center = col.length % 2 ? col[m] : (col[m - 1] + col[m]) / 2;
    }
    y.push(center);
    if (band === 'minmax') {
      lo.push(Math.min(...col));
      hi.push(Math.max(...col));
    } else {
      const sd = Math.sqrt(col.reduce((a, v) => a + (v - mean) ** 2, 0) / col.length);
      lo.push(center - sd);
      hi.push(center + sd);
    }
  }
  return { x: Array.from(X), y, lo, hi, n };
}
