/* The drawer's Metrics tab: one block per metrics table (the current run's first, and any other
 * table such as system.csv), each with a chart per numeric column (uPlot, with the overlays of
 * `Compare` drawn over it) and its last rows. A block loads when opened and reloads when its
 * table grows. One toolbar sets every chart: smoothing (server-side, on the full data), log
 * axes, the x axis, which columns are charted (search, pins); the charts of a block share their
 * cursor and zoom, and a zoom fetches its range again at full resolution. */

import { h, reconcile, fmtBytes, fmtNum, debounce, RUN_RE, runNum } from './util.js';
import { api, expPath } from './api.js';
import { COLORS, Chart, ChartGroup, aggregate, chartsAvailable, loadSettings, saveSettings, seriesParams, saveBlob, shortNames, skipEmpty, toNum } from './charts.js';
import { S } from './state.js';
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
    this.settings = loadSettings();
    this.toolbar = this.makeToolbar();
    this.filter = '';
  }

  /** The toolbar over every block: smoothing, axes, x, column search. */
  makeToolbar() {
    const st = this.settings;
    const changed = (refetch) => {
      saveSettings(st);
      sync();
      if (refetch) this.refreshAll();
      else this.redrawAll();
    };
    const smooth = h('select', { id: 'chart-smooth', 'aria-label': 'Smoothing', onchange: () => { st.smooth = smooth.value; changed(true); } },
      h('option', { value: 'none' }, 'No smoothing'), h('option', { value: 'ema' }, 'EMA'), h('option', { value: 'median' }, 'Running median'));
    const weightLabel = h('span', { class: 'mono', id: 'chart-ema-value' });
    const weight = h('input', { type: 'range', id: 'chart-ema', min: '0', max: '0.999', step: '0.001', 'aria-label': 'EMA weight',
      oninput: () => { weightLabel.textContent = Number(weight.value).toFixed(3); },
      onchange: () => { st.ema = Number(weight.value); changed(true); } });
    const win = h('input', { type: 'number', id: 'chart-median', min: '1', step: '2', style: 'width:64px', 'aria-label': 'Running median window (rows)',
      onchange: () => { st.median = Math.max(1, Number(win.value) | 1); changed(true); } });
    const logY = h('input', { type: 'checkbox', id: 'chart-logy', onchange: () => { st.logY = logY.checked; changed(true); } });
    const logX = h('input', { type: 'checkbox', id: 'chart-logx', onchange: () => { st.logX = logX.checked; changed(false); } });
    this.xSelect = h('select', { id: 'chart-x', 'aria-label': 'x axis', onchange: () => { st.x = this.xSelect.value; changed(true); } });
    const search = h('input', { type: 'search', id: 'chart-search', placeholder: 'Columns…', 'aria-label': 'Search columns',
      oninput: debounce(() => { this.filter = search.value.trim().toLowerCase(); this.redrawAll(); }, 120) });
    const sync = () => {
      smooth.value = st.smooth;
      weight.value = String(st.ema);
      weightLabel.textContent = Number(st.ema).toFixed(3);
      win.value = String(st.median);
      weight.parentNode && (weight.parentNode.hidden = st.smooth !== 'ema');
      win.parentNode && (win.parentNode.hidden = st.smooth !== 'median');
      logY.checked = st.logY;
      logX.checked = st.logX;
      this.fillX();
    };
    const bar = h('div', { class: 'chart-toolbar' }, smooth,
      h('label', { class: 'inline' }, 'weight ', weight, weightLabel),
      h('label', { class: 'inline' }, 'window ', win),
      h('label', { class: 'inline' }, logY, ' log y'),
      h('label', { class: 'inline' }, logX, ' log x'),
      h('label', { class: 'inline' }, 'x ', this.xSelect), search);
    sync();
    return bar;
  }

  /** The x choices: the kinds the server knows, then the numeric columns seen so far. */
  fillX() {
    const cols = new Set(['step', 'row', 'wall', 'relative']);
    for (const b of this.blocks ? this.blocks.values() : []) for (const c of b.numeric || []) cols.add(c);
    cols.add(this.settings.x);
    const have = [...this.xSelect.options].map((o) => o.value).join();
    if (have !== [...cols].join()) this.xSelect.replaceChildren(...[...cols].map((c) => h('option', { value: c }, c)));
    this.xSelect.value = this.settings.x;
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
    const els = [this.compare.bar, this.toolbar];
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
    const sideEl = h('div', { class: 'compare-side' });
    const previewEl = h('div');
    const note = h('div', { class: 'note' }, 'Loading…');
    const block = h('details', { class: 'table-block', dataset: { table: t.name }, open: open || null },
      h('summary', null, h('span', { class: 'mono' }, `${t.name}.csv`), sizeLabel),
      h('div', { class: 'inner' }, note, sideEl, chartsEl, previewEl));
    const b = { name: t.name, block, sizeLabel, chartsEl, sideEl, previewEl, note, charts: new Map(), loadedSize: null, stale: false, size: t.size, loading: false };
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
      this.fetchSeries(id, b.name, force, b.range),
      api('GET', expPath(id, 'tables', b.name), { tail: PREVIEW_ROWS }),
    ]);
    const overlays = await Promise.all(this.compare.overlays.map(async (o) => {
      const table = this.compare.tableFor(o, b.name);
      if (!table) return null;
      try {
        return { o, table, series: await this.fetchSeries(o.exp, table, false, b.range) };
      } catch (e) {
        return null; // that experiment has no such table: nothing to overlay
      }
    }));
    return [base, tail, overlays.filter(Boolean)];
  }

  fetchSeries(exp, table, force, range) {
    // About one bucket per pixel of the widest chart (M4 keeps four rows a bucket).
    const params = seriesParams(this.settings, range, Math.min(2000, Math.max(300, Math.round(this.el.clientWidth || 1000))));
    const key = `${exp}/${table}?${new URLSearchParams(params)}`;
    const hit = this.seriesCache.get(key);
    if (hit && !force && Date.now() - hit.at < SERIES_MAX_AGE_MS) return hit.promise;
    const promise = api('GET', expPath(exp, 'tables', table, 'series'), params);
    this.seriesCache.set(key, { at: Date.now(), promise });
    promise.catch(() => this.seriesCache.delete(key));
    return promise;
  }

  renderCharts(b, base, overlays) {
    const xName = base.x || 'row';
    b.numeric = Object.keys(base.series || {}).filter((c) => c !== xName &&
      ((base.series[c] || []).some((v) => toNum(v) != null) || ((base.gaps || {})[c] || []).length));
    this.fillX();
    if (!b.numeric.length) {
      destroyCharts(b);
      b.chartsEl.replaceChildren(h('p', { class: 'note' }, 'No numeric columns to chart.'));
      return;
    }
    if (!chartsAvailable()) {
      b.chartsEl.replaceChildren(h('p', { class: 'err-note' }, 'The chart library (uplot.min.js) did not load.'));
      return;
    }
    b.data = { base, overlays };
    const pins = this.settings.pins || [];
    const shown = b.numeric.filter((c) => !this.filter || c.toLowerCase().includes(this.filter))
      .sort((x, y) => (pins.includes(y) ? 1 : 0) - (pins.includes(x) ? 1 : 0));
    if (!b.group) b.group = new ChartGroup((range) => this.zoomTo(b, range));
    const els = shown.map((col) => this.chartFor(b, col, xName, this.linesOf(b, col, base, overlays)).wrap);
    for (const [col, c] of b.charts) {
      if (!shown.includes(col)) {
        c.chart.destroy();
        b.charts.delete(col);
      }
    }
    if (!shown.length) els.push(h('p', { class: 'note' }, `No column matches “${this.filter}”.`));
    reconcile(b.chartsEl, els);
    this.renderSide(b, base, overlays, b.numeric);
    this.resize();
  }

  /** The compare side table: per run (or per group), the params (those that differ between the
   *  runs highlighted) and each column's final, min and max (exact: M4 keeps every bucket's
   *  extremes and the last row); per group, the mean ± std of the runs' values. */
  renderSide(b, base, overlays, cols) {
    if (!overlays.length) {
      b.sideEl.replaceChildren();
      return;
    }
    const id = this.ctx.id;
    const runs = [{ exp: id, label: this.compare.lineLabel(id, b.name), color: COLORS[0], s: base },
      ...overlays.map(({ o, table, series }) => ({ exp: o.exp, label: o.exp === id ? table : this.compare.lineLabel(o.exp, table), color: o.color, s: series }))];
    // The listing's rule (metrics summaries): NaN and ±inf are values, so a loss that ended
    // at inf ends at inf here too; the series holds them as gaps ({kind, from, to}).
    const stats = (s, c) => {
      const ys = (s.series || {})[c] || [];
      const xs = s.x_values || [];
      const odd = ((s.gaps || {})[c] || []).filter((g) => g.kind === 'nan' || g.kind === 'inf' || g.kind === '-inf');
      const v = ys.filter((x) => toNum(x) != null);
      if (!v.length && !odd.length) return null;
      let min = v.length ? Math.min(...v) : NaN;
      let max = v.length ? Math.max(...v) : NaN;
      if (odd.some((g) => g.kind === 'inf')) max = Infinity;
      if (odd.some((g) => g.kind === '-inf')) min = -Infinity;
      let lastX = -Infinity;
      for (let i = ys.length - 1; i >= 0; i--) if (toNum(ys[i]) != null) { lastX = xs[i]; break; }
      const tail = odd.filter((g) => g.to > lastX).sort((a, b) => b.to - a.to)[0];
      const final = tail ? { nan: NaN, inf: Infinity, '-inf': -Infinity }[tail.kind] : v[v.length - 1];
      return { final, min, max };
    };
    const params = runs.map((r) => ((S.exps.get(r.exp) || {}).params) || {});
    const keys = [...new Set(params.flatMap((p) => Object.keys(p)))].sort();
    const differs = new Set(keys.filter((k) => params.some((p) => JSON.stringify(p[k]) !== JSON.stringify(params[0][k]))));
    const shownKeys = [...keys.filter((k) => differs.has(k)), ...keys.filter((k) => !differs.has(k))].slice(0, 12);
    const fmtP = (v) => (v === undefined ? '' : typeof v === 'number' ? fmtNum(v) : typeof v === 'string' ? v : JSON.stringify(v));
    const statCols = cols.slice(0, 6);
    const head = h('tr', null, h('th', null, this.compare.group.by ? 'Run / group' : 'Run'),
      shownKeys.map((k) => h('th', { class: differs.has(k) ? 'diff' : null }, k)),
      statCols.map((c) => h('th', { class: 'num' }, `${c} final · min · max`)));
    const body = runs.map((r, i) => h('tr', { dataset: { exp: r.exp } },
      h('td', null, h('span', { class: 'swatch', style: `background:${r.color}` }), r.label),
      shownKeys.map((k) => h('td', { class: differs.has(k) ? 'diff' : null }, fmtP(params[i][k]))),
      statCols.map((c) => {
        const st = stats(r.s, c);
        return h('td', { class: 'num' }, st ? `${fmtNum(st.final)} · ${fmtNum(st.min)} · ${fmtNum(st.max)}` : '');
      })));
    if (this.compare.group.by) {
      const groups = new Map();
      runs.forEach((r) => {
        const g = this.compare.groupOf(r.exp);
        if (!groups.has(g)) groups.set(g, []);
        groups.get(g).push(r);
      });
      for (const [g, members] of groups) {
        body.push(h('tr', { class: 'group-row', dataset: { group: g } }, h('td', null, `${g} (${members.length} runs)`),
          shownKeys.map(() => h('td')),
          statCols.map((c) => {
            const finals = members.map((r) => stats(r.s, c)).filter(Boolean).map((st) => st.final);
            if (!finals.length) return h('td');
            const mean = finals.reduce((a, v) => a + v, 0) / finals.length;
            const sd = Math.sqrt(finals.reduce((a, v) => a + (v - mean) ** 2, 0) / finals.length);
            return h('td', { class: 'num' }, `${fmtNum(mean)} ± ${fmtNum(sd)} (min ${fmtNum(Math.min(...finals))}, max ${fmtNum(Math.max(...finals))})`);
          })));
      }
    }
    b.sideEl.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'grid compare-table' }, h('thead', null, head), h('tbody', null, body))));
  }

  /** A zoom in one of the block's charts: the range is fetched again (full resolution when it
   *  holds fewer rows than buckets); back out, the whole series. */
  zoomTo(b, range) {
    b.range = range;
    b.zoomed = Boolean(range);
    this.loadBlock(b, b.size);
  }

  /** Column `col`'s chart in block `b`: updated in place when its lines are the same ones,
   *  rebuilt when they changed (an overlay added, smoothing switched, an axis changed). */
  chartFor(b, col, xLabel, lines) {
    const st = this.settings;
    const spec = { xLabel, yLabel: col, lines, logX: st.logX, logY: st.logY, time: xLabel === 'wall', group: b.group, height: st.height };
    let c = b.charts.get(col);
    if (c) {
      c.chart.update(spec, b.zoomed);
      c.wrap.classList.toggle('pinned', (st.pins || []).includes(col));
      return c;
    }
    const body = h('div', { class: 'chart-body' });
    const pin = h('button', { type: 'button', class: 'chart-btn pin', title: 'Pin: chart this column first', 'aria-label': `Pin ${col}`,
      onclick: () => {
        const pins = new Set(st.pins || []);
        if (pins.has(col)) pins.delete(col);
        else pins.add(col);
        st.pins = [...pins];
        saveSettings(st);
        this.redrawAll();
      } }, '★');
    const wrap = h('div', { class: 'chart', dataset: { column: col } },
      h('div', { class: 'chart-head' },
        h('span', { class: 'chart-title', title: `${col} against ${xLabel}` }, col), h('span', { class: 'spacer' }), pin,
        h('button', { type: 'button', class: 'chart-btn', dataset: { act: 'png' }, title: 'Download as PNG', onclick: () => c.chart.pngBlob().then((blob) => saveBlob(blob, `${this.ctx.id}-${b.name}-${col}.png`)) }, 'PNG'),
        h('button', { type: 'button', class: 'chart-btn', dataset: { act: 'csv' }, title: 'Download the plotted data as CSV', onclick: () => saveBlob(new Blob([c.chart.csv()], { type: 'text/csv' }), `${this.ctx.id}-${b.name}-${col}.csv`) }, 'CSV'),
        h('button', { type: 'button', class: 'chart-btn', dataset: { act: 'full' }, title: 'Full screen (Esc to leave)', onclick: () => this.toggleFull(c) }, 'Full')),
      body);
    wrap.classList.toggle('pinned', (st.pins || []).includes(col));
    c = { wrap, body, chart: null };
    b.charts.set(col, c);
    // uPlot measures its container: mount first, then draw.
    if (!wrap.isConnected) b.chartsEl.append(wrap);
    c.chart = new Chart(body, spec);
    // Resizable: a grip under the chart; dragging it sets this chart's height.
    const grip = h('div', { class: 'chart-grip', title: 'Drag to resize' });
    grip.addEventListener('pointerdown', (e) => {
      e.preventDefault();
      grip.setPointerCapture(e.pointerId);
      const y0 = e.clientY;
      const h0 = c.chart.height;
      const move = (ev) => c.chart.setSize(body.clientWidth, Math.max(80, Math.min(1200, h0 + ev.clientY - y0)));
      const up = () => {
        grip.removeEventListener('pointermove', move);
        grip.removeEventListener('pointerup', up);
      };
      grip.addEventListener('pointermove', move);
      grip.addEventListener('pointerup', up);
    });
    wrap.append(grip);
    return c;
  }

  toggleFull(c) {
    c.chart.toggleFull(c.wrap);
    if (c.chart.full) {
      const esc = (e) => {
        if (e.key !== 'Escape') return;
        e.stopPropagation();
        document.removeEventListener('keydown', esc, true);
        if (c.chart.full) c.chart.toggleFull(c.wrap);
      };
      document.addEventListener('keydown', esc, true);
    }
  }

  /** The lines of column `col`'s chart: this table's, then each overlay that has the column;
   *  with smoothing, each line is the smoothed curve over its raw one. Legend names are the
   *  params that differ between the plotted runs when other experiments are overlaid. */
  linesOf(b, col, base, overlays) {
    const id = this.ctx.id;
    const srcs = [{ exp: id, label: this.compare.lineLabel(id, b.name), color: COLORS[0], s: base }];
    for (const { o, table, series } of overlays) {
      if (series.series && series.series[col]) srcs.push({ exp: o.exp, label: o.exp === id ? table : this.compare.lineLabel(o.exp, table), color: o.color, s: series });
    }
    if (srcs.some((x) => x.exp !== id)) {
      const names = shortNames(srcs.map((x) => {
        const sum = S.exps.get(x.exp);
        return { name: x.label, params: sum && sum.params };
      }));
      srcs.forEach((x, i) => { x.label = names[i]; });
    }
    const lines = srcs.map(({ exp, label, color, s }) => {
      const x = s.x_values || [];
      const gaps = (s.gaps || {})[col] || [];
      const raw = skipEmpty(x, s.series[col] || [], gaps);
      const sm = s.smoothed && s.smoothed[col] && skipEmpty(x, s.smoothed[col], gaps).y;
      return { exp, label, color, x, y: sm || raw.y, raw: sm ? raw.y : null, gaps: raw.gaps };
    });
    return this.compare.group.by && lines.length > 1 ? this.grouped(lines) : lines;
  }

  /** One line per group (mean or median, with its band), the runs faint behind it. */
  grouped(lines) {
    const G = this.compare.group;
    const groups = new Map();
    for (const l of lines) {
      const g = this.compare.groupOf(l.exp);
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g).push(l);
    }
    const out = [];
    let i = 0;
    for (const [g, members] of groups) {
      const color = COLORS[i++ % COLORS.length];
      for (const m of members) out.push({ label: m.label, color, x: m.x, y: m.y, faint: true });
      const a = aggregate(members, G.agg, G.band);
      out.push({ label: `${g} (${members.length})`, color, x: a.x, y: a.y, lo: a.lo, hi: a.hi, group: g, n: members.length });
    }
    return out;
  }

  /** Draws every loaded block again from what it has (a column filter or a pin changed). */
  redrawAll() {
    for (const b of this.blocks.values()) if (b.data) this.renderCharts(b, b.data.base, b.data.overlays);
  }

  refreshAll() {
    for (const b of this.blocks.values()) {
      b.stale = true;
      b.range = null;
      b.zoomed = false;
      if (b.block.open) this.loadBlock(b, b.size);
    }
  }

  /** Fits every chart to its block's width (the drawer was resized or a block opened). */
  resize() {
    for (const b of this.blocks.values()) {
      for (const c of b.charts.values()) {
        const w = Math.floor(c.body.clientWidth);
        if (w > 0 && c.chart && c.chart.u && !c.chart.full && Math.abs(c.chart.u.width - w) > 1) c.chart.setSize(w);
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

function destroyCharts(b) {
  for (const c of b.charts.values()) {
    c.chart.destroy();
  }
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
