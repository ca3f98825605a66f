/* The drawer's Metrics tab: one block per metrics table (the current run's first), each with a
 * chart per numeric column (uPlot, with the overlays of `Compare` drawn over it) and its last
 * rows. A block loads when opened and reloads when its table grows. */

import { h, reconcile, fmtBytes, fmtNum, RUN_RE, runNum } from './util.js';
import { api, expPath } from './api.js';
import { COLORS, CHART_HEIGHT, align, chartsAvailable, makeChart, toNum } from './charts.js';
import { Compare } from './drawer-compare.js';

const SERIES_MAX_AGE_MS = 10000; // an overlay's series is fetched again after this
const PREVIEW_ROWS = 20;

export class MetricsPane {
  /** `ctx`: the drawer ({id, detail, summary(), body}); `el`: the pane's element. */
  constructor(ctx, el) {
    this.ctx = ctx;
    this.el = el;
    this.blocks = new Map(); // table name -> block state
    this.seriesCache = new Map(); // "exp/table" -> { at, promise }
    this.closed = false;
    this.compare = new Compare(ctx, () => this.refreshAll());
  }

  render() {
    const tables = this.sortedTables();
    if (!tables.length) {
      this.destroyBlocks();
      this.el.replaceChildren(h('p', { class: 'note' }, 'No metrics tables yet. Rows saved with save_row() appear here.'));
      return;
    }
    this.compare.renderBar();
    const s = this.ctx.summary();
    const els = [this.compare.bar];
    const names = new Set();
    for (const t of tables) {
      names.add(t.name);
      let b = this.blocks.get(t.name);
      if (!b) {
        b = this.newBlock(t, t.name === (s && s.run_id) || t.name === this.ctx.run || !RUN_RE.test(t.name));
        this.blocks.set(t.name, b);
      }
      b.sizeLabel.textContent = fmtBytes(t.size);
      b.size = t.size;
      if (b.block.open && (b.loadedSize !== t.size || b.stale)) this.loadBlock(b, t.size);
      els.push(b.block);
    }
    for (const [name, b] of this.blocks) {
      if (!names.has(name)) {
        destroyCharts(b);
        this.blocks.delete(name);
      }
    }
    reconcile(this.el, els);
  }

  /** The current run's table first, then named tables by name, then older runs, newest first. */
  sortedTables() {
    const s = this.ctx.summary();
    const cur = s && s.run_id;
    const tables = (this.ctx.detail.tables || []).slice();
    const rank = (t) => (t.name === cur ? 0 : RUN_RE.test(t.name) ? 2 : 1);
    return tables.sort((a, b) => rank(a) - rank(b) ||
      (RUN_RE.test(a.name) ? runNum(b.name) - runNum(a.name) : a.name.localeCompare(b.name)));
  }

  newBlock(t, open) {
    const sizeLabel = h('span', { class: 'muted' });
    const chartsEl = h('div', { class: 'charts' });
    const previewEl = h('div');
    const note = h('div', { class: 'note' }, 'Loading…');
    const block = h('details', { class: 'table-block', dataset: { table: t.name }, open: open || null },
      h('summary', null, h('span', { class: 'mono' }, `${t.name}.csv`), sizeLabel),
      h('div', { class: 'inner' }, note, chartsEl, previewEl));
    const b = { name: t.name, block, sizeLabel, chartsEl, previewEl, note, charts: new Map(), loadedSize: null, stale: false, size: t.size, loading: false };
    block.addEventListener('toggle', () => {
      if (!block.open) return;
      if (b.loadedSize !== b.size || b.stale) this.loadBlock(b, b.size);
      else requestAnimationFrame(() => this.resize());
    });
    return b;
  }

  async loadBlock(b, size) {
    b.size = size;
    if (b.loading) {
      b.pending = true;
      return;
    }
    b.loading = true;
    b.stale = false;
    try {
      const [base, tail, overlays] = await this.fetchBlock(b, size);
      if (this.closed || !this.blocks.has(b.name)) return;
      b.loadedSize = size;
      this.renderCharts(b, base, overlays);
      renderPreview(b, tail);
      b.note.hidden = true;
    } catch (e) {
      if (this.closed) return;
      b.note.hidden = false;
      b.note.className = 'err-note';
      b.note.textContent = `Cannot load ${b.name}: ${e.message}`;
    } finally {
      b.loading = false;
      if (b.pending) {
        b.pending = false;
        if (!this.closed) this.loadBlock(b, b.size);
      }
    }
  }

  /** The block's series, its last rows, and the series of every overlay that has its table. */
  async fetchBlock(b, size) {
    const id = this.ctx.id;
    const force = b.loadedSize !== size;
    const [base, tail] = await Promise.all([
      this.fetchSeries(id, b.name, force),
      api('GET', expPath(id, 'tables', b.name), { tail: PREVIEW_ROWS }),
    ]);
    const overlays = await Promise.all(this.compare.overlays.map(async (o) => {
      const table = this.compare.tableFor(o, b.name);
      if (!table) return null;
      try {
        return { o, table, series: await this.fetchSeries(o.exp, table, false) };
      } catch (e) {
        return null; // that experiment has no such table: nothing to overlay
      }
    }));
    return [base, tail, overlays.filter(Boolean)];
  }

  fetchSeries(exp, table, force) {
    const key = `${exp}/${table}`;
    const hit = this.seriesCache.get(key);
    if (hit && !force && Date.now() - hit.at < SERIES_MAX_AGE_MS) return hit.promise;
    const promise = api('GET', expPath(exp, 'tables', table, 'series'), { max_points: 2000 });
    this.seriesCache.set(key, { at: Date.now(), promise });
    promise.catch(() => this.seriesCache.delete(key));
    return promise;
  }

  renderCharts(b, base, overlays) {
    const numeric = Object.keys(base.series || {}).filter((c) =>
      c !== base.x && (base.series[c] || []).some((v) => toNum(v) != null));
    if (!numeric.length) {
      destroyCharts(b);
      b.chartsEl.replaceChildren(h('p', { class: 'note' }, 'No numeric columns to chart.'));
      return;
    }
    if (!chartsAvailable()) {
      b.chartsEl.replaceChildren(h('p', { class: 'err-note' }, 'The chart library (uplot.min.js) did not load.'));
      return;
    }
    const els = numeric.map((col) => chartFor(b, col, base.x || 'row', this.linesOf(b, col, base, overlays)).wrap);
    for (const [col, c] of b.charts) {
      if (!numeric.includes(col)) {
        c.u.destroy();
        b.charts.delete(col);
      }
    }
    reconcile(b.chartsEl, els);
    this.resize();
  }

  /** The lines of column `col`'s chart: this table's, then each overlay that has the column. */
  linesOf(b, col, base, overlays) {
    const id = this.ctx.id;
    const lines = [{ label: this.compare.lineLabel(id, b.name), color: COLORS[0], x: base.x_values || [], y: base.series[col] }];
    for (const { o, table, series } of overlays) {
      if (series.series && series.series[col]) {
        lines.push({ label: o.exp === id ? table : this.compare.lineLabel(o.exp, table), color: o.color, x: series.x_values || [], y: series.series[col] });
      }
    }
    return lines;
  }

  refreshAll() {
    for (const b of this.blocks.values()) {
      b.stale = true;
      if (b.block.open) this.loadBlock(b, b.size);
    }
  }

  /** Fits every chart to its block's width (the drawer was resized or a block opened). */
  resize() {
    for (const b of this.blocks.values()) {
      for (const c of b.charts.values()) {
        const w = Math.floor(c.body.clientWidth);
        if (w > 0 && c.u && Math.abs(c.u.width - w) > 1) c.u.setSize({ width: w, height: CHART_HEIGHT });
      }
    }
  }

  destroyBlocks() {
    for (const b of this.blocks.values()) destroyCharts(b);
    this.blocks.clear();
  }

  /** Whether the compare picker is open. */
  get pickerOpen() {
    return Boolean(this.compare.picker);
  }

  closePicker() {
    this.compare.closePicker();
  }

  /** Lists the experiments in the open picker again (a poll changed them). */
  refreshPicker() {
    this.compare.renderPicker();
  }

  /** The drawer moves on to another experiment or closes. */
  teardown() {
    this.closed = true;
    this.compare.closePicker();
    this.destroyBlocks();
  }
}

/** Column `col`'s chart in block `b`: redrawn in place when its lines are the same ones,
 *  rebuilt when they changed (an overlay added or removed). */
function chartFor(b, col, xLabel, lines) {
  const sig = lines.map((l) => `${l.label}|${l.color}`).join('\n') + `\n${xLabel}`;
  let c = b.charts.get(col);
  if (c && c.sig === sig) {
    c.u.setData(align(lines));
    return c;
  }
  if (c) c.u.destroy();
  const body = h('div', { class: 'chart-body' });
  const wrap = h('div', { class: 'chart', dataset: { column: col } }, h('div', { class: 'chart-title', title: `${col} against ${xLabel}` }, col), body);
  c = { wrap, body, sig, u: null, lines };
  b.charts.set(col, c);
  // uPlot measures its container: mount first, then draw.
  if (!c.wrap.isConnected) b.chartsEl.append(c.wrap);
  c.u = makeChart(body, xLabel, lines);
  return c;
}

function destroyCharts(b) {
  for (const c of b.charts.values()) if (c.u) c.u.destroy();
  b.charts.clear();
}

/** The table's last rows, scrolled to the newest unless the reader scrolled up. */
function renderPreview(b, tail) {
  const cols = tail.columns || [];
  const types = tail.types || [];
  const rows = tail.rows || [];
  if (!cols.length) {
    b.previewEl.replaceChildren(h('p', { class: 'note' }, 'The table is empty.'));
    return;
  }
  const numeric = types.map((t) => t === 'int' || t === 'float');
  const wrap = b.previewEl.querySelector('.table-wrap');
  const stuck = !wrap || wrap.scrollTop + wrap.clientHeight >= wrap.scrollHeight - 4;
  b.previewEl.replaceChildren(
    h('div', { class: 'section-head' }, h('h3', null, `Last ${rows.length} row${rows.length === 1 ? '' : 's'}`)),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
      h('thead', null, h('tr', null, cols.map((c) => h('th', null, c)))),
      h('tbody', null, rows.map((r) => h('tr', null, cols.map((_, i) => {
        const v = r[i];
        return h('td', { class: numeric[i] || typeof v === 'number' ? 'num' : null, title: v == null ? '' : String(v) },
          v == null ? '' : typeof v === 'number' ? fmtNum(v) : String(v));
      })))))));
  const fresh = b.previewEl.querySelector('.table-wrap');
  if (stuck) fresh.scrollTop = fresh.scrollHeight;
}
