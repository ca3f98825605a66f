/* The runs table: one row per experiment (its latest run), expandable to its runs; columns for
 * status, name, tags, every parameter and the metric summaries (last/min/max per column), in
 * groups. Sortable by any column (shift-click adds a secondary key; missing values sort last in
 * either direction), a column chooser, "only parameters that differ", multi-select with
 * shift-ranges and bulk actions.
 *
 * It stays smooth with 10,000 rows because only the rows in view (plus a few) are in the DOM:
 * the body is one tall box, each row is absolutely placed at index * ROW_H, and a scroll swaps
 * rows in and out at its edges. Sideways the same: a row holds the cells of the columns in view
 * (after a spacer), not all of a wide sweep's 90. Sorting decorates once (one value per row and key) rather than
 * reading the summaries inside the comparator. */

import { $, h, debounce, fmtNum, runNum, runIdOf } from './util.js';
import { S, valueOf, numOf, matches, passesBrush } from './state.js';
import { api, expPath } from './api.js';
import { toast } from './notify.js';
import { doBulk } from './actions.js';
import { openDrawer, openCompare, renderParcoords, stateChanged } from './commands.js';

export let ROW_H = 28; // 19 in the compact density (setDensity)

/** Compact density: shorter rows (at least 40 runs in view on a 1440x900 screen) and tighter
 *  cards; the CSS follows body.compact. */
export function setDensity(compact) {
  ROW_H = compact ? 19 : 28;
  document.body.classList.toggle('compact', compact);
  renderTable();
}
const OVERSCAN = 6;
const COL_OVERSCAN_PX = 400; // columns this far beyond either edge are drawn too
const STATS = ['last', 'min', 'max'];
const FIXED = [
  { key: 'name', label: 'Name', w: 280, group: '' },
  { key: 'status', label: 'Status', w: 100, group: '' },
  { key: 'tags', label: 'Tags', w: 140, group: '' },
];
const COLLATOR = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

const T = {
  els: null,
  all: [], // the query-filtered experiments (before brushing)
  list: [], // filtered, brushed and sorted
  rows: [], // what is displayed: {s} or {s, run}
  cols: [], // visible columns
  paramKeys: [],
  metricCols: [],
  totalW: 0,
  pool: [], // row slots (see renderRange)
  poolSig: '', // the columns and size the slots were made for
  range: [0, -1],
  colRange: [1, 0], // the columns in view (after the sticky name column), with COL_OVERSCAN_PX
  expanded: new Set(),
  runs: new Map(), // id -> {key, list | null (loading), error}
  anchor: null, // the last row whose checkbox was clicked (shift-click ranges start there)
  chooser: null,
  queued: false,
  stale: true, // something changed while the board was shown
  keysStale: true,
  colsSig: '',
  timings: [], // ms of each full render (the browser tests report them)
};

/** The durations of the full renders so far (filter, sort, columns, rows in view), in ms. */
export const renderTimings = () => T.timings.slice();

/** The query-filtered experiments (parallel coordinates draws these). */
export const filteredExps = () => T.all;
/** The parameter names and metric columns of every experiment served. */
export const paramKeys = () => T.paramKeys;
export const metricCols = () => T.metricCols;

export function initTable() {
  const count = h('span', { class: 'muted', id: 'tv-count' });
  const colsBtn = h('button', { type: 'button', class: 'btn btn-sm', id: 'tv-columns' }, 'Columns…');
  const differ = h('label', { class: 'check' }, h('input', { type: 'checkbox', id: 'tv-differ' }), 'Only parameters that differ');
  const pcBtn = h('button', { type: 'button', class: 'btn btn-sm', id: 'pc-toggle' }, 'Parallel coordinates');
  const bulk = h('span', { class: 'bulk', id: 'bulk', hidden: true });
  const head = h('div', { class: 'tv-head', role: 'rowgroup' });
  const body = h('div', { class: 'tv-body', role: 'rowgroup' });
  const empty = h('p', { class: 'tv-empty', hidden: true });
  const scroll = h('div', { class: 'tv-scroll', id: 'tv-scroll', role: 'table', 'aria-label': 'Experiments' }, head, body, empty);
  const root = $('#tview');
  root.append(h('div', { class: 'tv-bar' }, count, colsBtn, differ, pcBtn, h('span', { class: 'spacer' }), bulk), h('div', { class: 'pc-wrap', id: 'pc', hidden: true }), scroll);
  T.els = { root, count, colsBtn, differ: differ.firstChild, pcBtn, bulk, head, body, scroll, empty };
  scroll.addEventListener('scroll', () => renderRange(false), { passive: true });
  new ResizeObserver(() => renderRange(false)).observe(scroll);
  head.addEventListener('click', onHeadClick);
  body.addEventListener('click', onBodyClick);
  body.addEventListener('mouseover', onHover);
  colsBtn.addEventListener('click', toggleChooser);
  T.els.differ.addEventListener('change', () => {
    S.differ = T.els.differ.checked;
    localStorage.setItem('expman.differ', S.differ ? '1' : '');
    renderTable();
    stateChanged(false);
  });
}

/** Re-renders on the next frame (polls, filter changes); several calls make one render. */
export function scheduleTable() {
  if (T.queued || !T.els) return;
  T.queued = true;
  requestAnimationFrame(() => {
    T.queued = false;
    renderTable();
  });
}

/** Filters, sorts, lays out the columns and redraws the rows in view. */
export function renderTable() {
  if (!T.els) return;
  if (S.view !== 'table') {
    T.stale = true; // 10,000 rows are not sorted for a hidden table; setView renders it
    return;
  }
  const t0 = performance.now();
  T.stale = false;
  T.els.differ.checked = S.differ;
  collectKeys();
  T.all = [];
  for (const s of S.exps.values()) if (matches(s)) T.all.push(s);
  T.list = T.all.filter(passesBrush);
  sortList(T.list);
  layoutColumns();
  buildRows();
  const n = T.list.length;
  const total = S.exps.size;
  T.els.count.textContent = n === total ? `${total.toLocaleString('en-US')} experiments`
    : `${n.toLocaleString('en-US')} of ${total.toLocaleString('en-US')} experiments`;
  T.els.empty.hidden = n > 0;
  T.els.empty.textContent = total ? 'No experiment matches the filter.' : 'No experiments yet.';
  renderRange(true);
  renderBulk();
  if (T.chooser) renderChooser();
  T.timings.push(performance.now() - t0);
  if (T.timings.length > 50) T.timings.shift();
  renderParcoords();
}

/** The experiments changed (a poll): the parameter and metric names are collected again. */
export function keysChanged() {
  T.keysStale = true;
}

/** Every parameter name and metric column seen, sorted (the columns' order); collected again
 *  only after a poll changed something. */
export function collectKeys() {
  if (!T.keysStale) return;
  T.keysStale = false;
  const params = new Set();
  const metrics = new Set();
  for (const s of S.exps.values()) {
    if (s.params) for (const k of Object.keys(s.params)) params.add(k);
    if (s.metrics) for (const k of Object.keys(s.metrics)) metrics.add(k);
  }
  T.paramKeys = [...params].sort(COLLATOR.compare);
  T.metricCols = [...metrics].sort(COLLATOR.compare);
}

/** Every column there is, shown or not. */
export function allColumns() {
  const cols = FIXED.slice();
  for (const k of T.paramKeys) cols.push({ key: `params.${k}`, label: k, w: 110, group: 'params' });
  for (const c of T.metricCols) {
    for (const st of STATS) cols.push({ key: `metrics.${c}.${st}`, label: `${c}.${st}`, w: 112, group: 'metrics', metric: c });
  }
  return cols;
}

/** Whether parameter `key`'s value is the same in every filtered experiment. */
function constant(key) {
  const list = T.all;
  if (list.length < 2) return false;
  const first = valueOf(list[0], key);
  for (let i = 1; i < list.length; i++) if (valueOf(list[i], key) !== first) return false;
  return true;
}

/** The parameter names whose values differ within the filter (the cards show these). */
export function differingParams(list) {
  const out = [];
  for (const k of T.paramKeys) {
    const key = `params.${k}`;
    if (list.length < 2) break;
    const first = valueOf(list[0], key);
    for (let i = 1; i < list.length; i++) {
      if (valueOf(list[i], key) !== first) {
        out.push(k);
        break;
      }
    }
  }
  return out;
}

/** A column's value getter, made once per layout (a scroll fills thousands of cells). */
function getter(key) {
  if (key.startsWith('params.')) {
    const name = key.slice(7);
    return (s) => (s.params ? s.params[name] : undefined);
  }
  if (key.startsWith('metrics.')) {
    const dot = key.lastIndexOf('.');
    const col = key.slice(8, dot);
    const stat = key.slice(dot + 1);
    return (s) => {
      const m = s.metrics && s.metrics[col];
      return m ? m[stat] : undefined;
    };
  }
  return (s) => valueOf(s, key);
}

/** A header's label. A metric's statistic (`.last`, `.min`, `.max`) is never cut off: a long
 *  metric name is (accuracy.last, .min and .max all read "accuracy…"). */
function headLabel(c) {
  const dot = c.group === 'metrics' ? c.label.lastIndexOf('.') : -1;
  if (dot <= 0) return h('span', { class: 'th-label' }, c.label);
  return h('span', { class: 'th-label th-split' },
    h('span', { class: 'th-name' }, c.label.slice(0, dot)),
    h('span', { class: 'th-stat' }, c.label.slice(dot)));
}

function layoutColumns() {
  T.cols = allColumns().filter((c) => c.key === 'name' || !S.hidden.has(c.key))
    .filter((c) => !(S.differ && c.group === 'params' && constant(c.key)));
  let x = 28; // the checkbox
  for (const c of T.cols) {
    c.x = x;
    c.get = getter(c.key);
    x += c.w;
  }
  T.totalW = x;
  T.colsSig = T.cols.map((c) => c.key).join('\n');
  renderHead();
}

/* ---------- sorting ---------- */

/** Sorts `list` by S.sort. Each key is decorated once into flat arrays (a rank: 0 number,
 *  1 text, 2 missing; the number; the text), and an index array is sorted over them: no
 *  allocation per row, no summary read inside the comparator. */
function sortList(list) {
  const keys = S.sort;
  if (!keys.length) {
    list.sort((a, b) => b._created - a._created || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return;
  }
  const n = list.length;
  const cols = keys.map((k) => {
    const get = getter(k.key);
    const rank = new Uint8Array(n);
    const num = new Float64Array(n);
    const text = new Array(n);
    for (let i = 0; i < n; i++) {
      const v = get(list[i]);
      if (v === undefined || v === null || v === '') {
        rank[i] = 2;
        continue;
      }
      const x = typeof v === 'boolean' ? (v ? 1 : 0) : numOf(v);
      if (x !== null) {
        if (Number.isNaN(x)) rank[i] = 2;
        else num[i] = x;
      } else {
        rank[i] = 1;
        text[i] = String(v);
      }
    }
    return { rank, num, text, desc: k.desc };
  });
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => {
    for (const c of cols) {
      const ra = c.rank[a];
      const rb = c.rank[b];
      if (ra !== rb) return ra - rb; // missing last, whatever the direction
      if (ra === 2) continue;
      let d = ra === 0 ? c.num[a] - c.num[b] : COLLATOR.compare(c.text[a], c.text[b]);
      if (d !== d) d = 0; // inf - inf
      if (c.desc) d = -d;
      if (d) return d;
    }
    const x = list[a].id;
    const y = list[b].id;
    return x < y ? -1 : x > y ? 1 : 0;
  });
  const sorted = idx.map((i) => list[i]);
  for (let i = 0; i < n; i++) list[i] = sorted[i];
}

/** Click: sort by this column (again: reverse); shift-click: add or reverse a further key. */
export function sortBy(key, add) {
  const i = S.sort.findIndex((k) => k.key === key);
  if (add) {
    if (i >= 0) S.sort[i] = { key, desc: !S.sort[i].desc };
    else S.sort.push({ key, desc: false });
  } else if (i === 0 && S.sort.length === 1) {
    S.sort = [{ key, desc: !S.sort[0].desc }];
  } else {
    S.sort = [{ key, desc: false }];
  }
  renderTable();
  stateChanged(true);
}

/* ---------- header ---------- */

function renderHead() {
  const groups = [];
  for (const c of T.cols) {
    const last = groups[groups.length - 1];
    if (last && last.group === c.group) last.w += c.w;
    else groups.push({ group: c.group, w: c.w });
  }
  const allSel = T.list.length > 0 && T.list.every((s) => S.sel.has(s.id));
  const groupRow = h('div', { class: 'tr tr-group', style: `width:${T.totalW}px` },
    h('div', { class: 'th th-check sticky' }),
    groups.map((g) => h('div', { class: `th th-group${g.group ? ` g-${g.group}` : ''}`, style: `width:${g.w}px` }, g.group)));
  const labelRow = h('div', { class: 'tr tr-labels', style: `width:${T.totalW}px` },
    h('div', { class: 'th th-check sticky' }, h('input', {
      type: 'checkbox', id: 'tv-select-all', title: 'Select every experiment the filter shows', 'aria-label': 'Select all',
      checked: allSel,
    })),
    T.cols.map((c) => {
      const si = S.sort.findIndex((k) => k.key === c.key);
      const mark = si < 0 ? null : h('span', { class: 'sort-mark' }, `${S.sort[si].desc ? '▼' : '▲'}${S.sort.length > 1 ? si + 1 : ''}`);
      const pinned = S.pins.includes(c.key);
      return h('div', {
        class: `th th-col${c.key === 'name' ? ' sticky sticky-name' : ''}${c.group ? ` g-${c.group}` : ''}`,
        style: `width:${c.w}px`, dataset: { key: c.key }, title: `${c.key}: click to sort, shift-click to add a sort key`,
        'aria-sort': si < 0 ? null : S.sort[si].desc ? 'descending' : 'ascending',
      }, headLabel(c), mark,
      c.group === 'metrics' ? h('button', {
        type: 'button', class: `pin${pinned ? ' on' : ''}`, dataset: { pin: c.key },
        title: pinned ? 'Unpin from the cards' : 'Pin to the board\'s cards',
      }, pinned ? '★' : '☆') : null);
    }));
  T.els.head.replaceChildren(groupRow, labelRow);
}

function onHeadClick(e) {
  const all = e.target.closest('#tv-select-all');
  if (all) {
    selectAll(all.checked);
    return;
  }
  const pin = e.target.closest('[data-pin]');
  if (pin) {
    togglePin(pin.dataset.pin);
    return;
  }
  const th = e.target.closest('.th-col');
  if (th) sortBy(th.dataset.key, e.shiftKey);
}

function togglePin(key) {
  const i = S.pins.indexOf(key);
  if (i >= 0) S.pins.splice(i, 1);
  else S.pins.push(key);
  localStorage.setItem('expman.pins', JSON.stringify(S.pins));
  renderHead();
  stateChanged(false);
}

/* ---------- rows ---------- */

function buildRows() {
  const rows = [];
  for (const s of T.list) {
    rows.push({ s });
    if (!T.expanded.has(s.id)) continue;
    const r = T.runs.get(s.id);
    if (!r || r.key !== s._key) loadRuns(s);
    const entry = T.runs.get(s.id);
    if (entry.list) for (const run of entry.list) rows.push({ s, run });
    else rows.push({ s, run: { id: entry.error ? `cannot list runs: ${entry.error}` : 'loading…', placeholder: true } });
  }
  T.rows = rows;
  const b = T.els.body;
  b.style.height = `${rows.length * ROW_H}px`;
  b.style.width = `${T.totalW}px`;
}

/** A run of the details endpoint: a name ("run_0001") or an object carrying its params and
 *  metrics summaries ({id|run_id, params, metrics, status...}). */
function normRun(r) {
  if (typeof r === 'string') return { id: r };
  return { ...r, id: runIdOf(r) || '?' };
}

async function loadRuns(s) {
  const key = s._key;
  const prev = T.runs.get(s.id);
  T.runs.set(s.id, { key, list: prev && prev.list, error: null });
  try {
    const d = await api('GET', expPath(s.id));
    const list = (d.runs || []).map(normRun).sort((a, b) => runNum(b.id) - runNum(a.id));
    T.runs.set(s.id, { key, list, error: null });
  } catch (e) {
    T.runs.set(s.id, { key, list: null, error: e.message });
  }
  scheduleTable();
}

/** Puts the rows in view (plus OVERSCAN either side) into the DOM; `all`: refill them all (the
 *  data, the columns or the selection changed).
 *
 *  The row elements are a pool, one slot per displayable row: row i lives in slot i % size, so
 *  a row that stays in view keeps its element untouched and a scroll only refills the slots
 *  of the rows that came into view (their texts and position), creating no elements. */
function renderRange(all) {
  if (!T.els || S.view !== 'table') return;
  const sc = T.els.scroll;
  const headH = T.els.head.offsetHeight;
  const top = Math.max(0, sc.scrollTop - headH);
  const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
  const last = Math.min(T.rows.length - 1, Math.ceil((top + sc.clientHeight) / ROW_H) + OVERSCAN);
  const [cFirst, cLast] = columnsInView(sc);
  const size = Math.ceil(sc.clientHeight / ROW_H) + 2 * OVERSCAN + 2;
  const sig = `${cFirst}:${cLast}:${T.colsSig}:${size}`;
  if (sig !== T.poolSig) {
    T.colRange = [cFirst, cLast];
    T.poolSig = sig;
    for (const slot of T.pool) slot.el.remove();
    T.pool = [];
    all = true;
  }
  if (!all && first === T.range[0] && last === T.range[1]) return;
  T.range = [first, last];
  const frag = document.createDocumentFragment();
  const used = new Set();
  for (let i = first; i <= last; i++) {
    const k = i % size;
    used.add(k);
    let slot = T.pool[k];
    if (!slot) {
      slot = makeSlot();
      T.pool[k] = slot;
      frag.append(slot.el);
    }
    if (all || slot.i !== i) fillSlot(slot, T.rows[i], i);
    if (slot.el.hidden) slot.el.hidden = false;
  }
  for (let k = 0; k < T.pool.length; k++) {
    const slot = T.pool[k];
    if (slot && !used.has(k) && !slot.el.hidden) {
      slot.el.hidden = true;
      slot.i = -1;
      delete slot.el.dataset.i; // a hidden slot is no row
      delete slot.el.dataset.id;
    }
  }
  if (frag.firstChild) T.els.body.append(frag);
}

/** The first and last column (indices into T.cols, after the name column) within the
 *  viewport's width plus COL_OVERSCAN_PX either side. */
function columnsInView(sc) {
  const lo = sc.scrollLeft - COL_OVERSCAN_PX;
  const hi = sc.scrollLeft + sc.clientWidth + COL_OVERSCAN_PX;
  let a = 1;
  while (a < T.cols.length && T.cols[a].x + T.cols[a].w < lo) a++;
  let b = a;
  while (b + 1 < T.cols.length && T.cols[b + 1].x < hi) b++;
  return [a, Math.min(b, T.cols.length - 1)];
}

const div = (cls, w) => {
  const d = document.createElement('div');
  d.className = cls;
  if (w != null) d.style.width = `${w}px`;
  return d;
};

/** A row element for the current columns: the checkbox, the name, a spacer standing for the
 *  columns scrolled off to the left, then the columns in view. */
function makeSlot() {
  const el = div('tr');
  el.style.width = `${T.totalW}px`;
  const check = div('td td-check sticky');
  const box = document.createElement('input');
  box.type = 'checkbox';
  check.append(box);
  el.append(check);
  const name = div('td td-name sticky sticky-name', T.cols[0].w);
  const expand = h('button', { type: 'button', class: 'expand', 'aria-label': 'Runs' });
  const nameText = h('span', { class: 'name-text' });
  const nameRun = h('span', { class: 'name-run' });
  name.append(expand, nameText, nameRun);
  el.append(name);
  const [cFirst, cLast] = T.colRange;
  if (cFirst > 1) el.append(div('td-spacer', T.cols[cFirst].x - T.cols[1].x));
  const cells = [];
  for (let ci = cFirst; ci <= cLast && ci < T.cols.length; ci++) {
    const c = T.cols[ci];
    const td = div('td', c.w);
    let pill = null;
    if (c.key === 'status') {
      pill = document.createElement('span');
      td.append(pill);
    }
    el.append(td);
    cells.push({ c, td, pill });
  }
  return { el, box, expand, nameText, nameRun, cells, i: -1 };
}

function fillSlot(slot, row, i) {
  const { s, run } = row;
  const el = slot.el;
  slot.i = i;
  el.className = `tr${run ? ' tr-run' : ''}${!run && S.sel.has(s.id) ? ' sel' : ''}${S.selected === s.id && !run ? ' open' : ''}`;
  el.style.transform = `translateY(${i * ROW_H}px)`;
  el.dataset.i = i;
  el.dataset.id = s.id;
  if (run) el.dataset.run = run.id;
  else delete el.dataset.run;
  slot.box.hidden = Boolean(run);
  slot.box.checked = !run && S.sel.has(s.id);
  slot.box.setAttribute('aria-label', `Select ${s.name}`);
  if (run) {
    slot.expand.hidden = true;
    slot.nameText.textContent = run.id;
    slot.nameText.title = run.id;
    slot.nameRun.textContent = '';
  } else {
    const open = T.expanded.has(s.id);
    slot.expand.hidden = false;
    slot.expand.className = `expand${open ? ' on' : ''}`;
    slot.expand.textContent = open ? '▾' : '▸';
    slot.expand.title = open ? 'Hide the runs' : 'Show every run';
    slot.expand.dataset.expand = s.id;
    slot.nameText.textContent = s.name;
    slot.nameText.title = `${s.name}\n${s.id}`;
    slot.nameRun.textContent = s.run_id || '';
  }
  for (const { c, td, pill } of slot.cells) {
    if (pill) {
      const st = run ? run.status : s.status;
      pill.className = st ? `pill s-${st}` : '';
      pill.textContent = st || '';
      continue;
    }
    const v = run ? (c.key === 'tags' ? undefined : c.get(run)) : c.get(s);
    const num = typeof v === 'number' || numOf(v) !== null;
    const text = v === undefined || v === null ? '' : num ? fmtNum(v) : String(v);
    const cls = num ? 'td num' : 'td';
    if (td.className !== cls) td.className = cls;
    td.textContent = text;
  }
}

/** A cell's tooltip (column = full value), made when the pointer reaches it rather than for
 *  every cell a scroll fills. */
function onHover(e) {
  const td = e.target.closest('.td');
  if (!td || !td.textContent || td.classList.contains('td-name')) return;
  const tr = td.parentElement;
  const row = T.rows[Number(tr.dataset.i)];
  const slot = T.pool.find((sl) => sl.el === tr);
  const cell = slot && slot.cells.find((x) => x.td === td);
  if (!row || !cell || cell.pill) return;
  const v = row.run ? cell.c.get(row.run) : cell.c.get(row.s);
  td.title = `${cell.c.key} = ${v}`;
}

function onBodyClick(e) {
  const tr = e.target.closest('.tr');
  if (!tr) return;
  const i = Number(tr.dataset.i);
  const row = T.rows[i];
  if (!row) return;
  if (e.target.matches('input[type=checkbox]')) {
    toggleSel(i, e.target.checked, e.shiftKey);
    return;
  }
  if (e.target.closest('.td-check')) return;
  const ex = e.target.closest('[data-expand]');
  if (ex) {
    const id = ex.dataset.expand;
    if (T.expanded.has(id)) T.expanded.delete(id);
    else T.expanded.add(id);
    renderTable();
    return;
  }
  if (row.run) {
    if (!row.run.placeholder) openDrawer(row.s.id, 'metrics', { run: row.run.id });
  } else {
    openDrawer(row.s.id);
  }
}

/* ---------- selection ---------- */

function toggleSel(i, on, shift) {
  const row = T.rows[i];
  if (shift && T.anchor != null) {
    const ai = T.list.findIndex((s) => s.id === T.anchor);
    const bi = T.list.indexOf(row.s);
    if (ai >= 0 && bi >= 0) {
      const [a, b] = ai < bi ? [ai, bi] : [bi, ai];
      for (let k = a; k <= b; k++) {
        if (on) S.sel.add(T.list[k].id);
        else S.sel.delete(T.list[k].id);
      }
    }
  } else if (on) S.sel.add(row.s.id);
  else S.sel.delete(row.s.id);
  T.anchor = row.s.id;
  selectionChanged();
}

function selectAll(on) {
  if (on) for (const s of T.list) S.sel.add(s.id);
  else for (const s of T.list) S.sel.delete(s.id);
  selectionChanged();
}

function selectionChanged() {
  renderHead();
  renderRange(true);
  renderBulk();
  stateChanged(false);
}

/** The selected experiments that still exist. */
export function selected() {
  const out = [];
  for (const id of S.sel) {
    const s = S.exps.get(id);
    if (s) out.push(s);
  }
  return out;
}

function renderBulk() {
  const sel = selected();
  const b = T.els.bulk;
  b.hidden = sel.length === 0;
  if (!sel.length) {
    b.replaceChildren();
    return;
  }
  const errored = sel.filter((s) => s.status === 'Error');
  const running = sel.filter((s) => s.status === 'Running');
  const deletable = sel.filter((s) => s.status !== 'Running');
  const withRuns = sel.filter((s) => s.run_id);
  b.replaceChildren(
    h('span', { class: 'bulk-count' }, `${sel.length} selected`),
    h('button', { type: 'button', class: 'btn btn-sm', id: 'bulk-compare', disabled: withRuns.length < 1, title: 'Chart the selected experiments\' latest runs together', onclick: () => compareSelected() }, `Compare (${withRuns.length})`),
    h('button', { type: 'button', class: 'btn btn-sm act-primary', id: 'bulk-retry', disabled: !errored.length, onclick: () => doBulk(errored.map((s) => s.id), 'retry') }, `Rerun errored (${errored.length})`),
    h('button', { type: 'button', class: 'btn btn-sm act-danger', id: 'bulk-terminate', disabled: !running.length, onclick: () => doBulk(running.map((s) => s.id), 'terminate') }, `Terminate running (${running.length})`),
    h('button', { type: 'button', class: 'btn btn-sm act-danger', id: 'bulk-delete', disabled: !deletable.length, title: 'Running experiments are not deleted: terminate them first', onclick: () => doBulk(deletable.map((s) => s.id), 'delete') }, `Delete (${deletable.length})`),
    h('button', { type: 'button', class: 'btn btn-sm btn-ghost', id: 'bulk-clear', onclick: () => { S.sel.clear(); selectionChanged(); } }, 'Clear'));
}

function compareSelected() {
  const list = selected().filter((s) => s.run_id);
  if (!list.length) {
    toast('None of the selected experiments has a run yet', 'err');
    return;
  }
  openCompare(list.map((s) => ({ exp: s.id, run: s.run_id })));
}

/** Drops selected ids that no longer exist (a poll removed them). */
export function pruneSelection() {
  let changed = false;
  for (const id of S.sel) {
    if (!S.exps.has(id)) {
      S.sel.delete(id);
      changed = true;
    }
  }
  if (changed) stateChanged(false);
}

/* ---------- column chooser ---------- */

function toggleChooser() {
  if (T.chooser) {
    closeChooser();
    return;
  }
  const input = h('input', { type: 'search', placeholder: 'Search columns…', 'aria-label': 'Search columns', id: 'chooser-search' });
  const list = h('div', { class: 'chooser-list' });
  const showAll = h('button', { type: 'button', class: 'btn btn-xs', id: 'chooser-show' }, 'Show matching');
  const hideAll = h('button', { type: 'button', class: 'btn btn-xs', id: 'chooser-hide' }, 'Hide matching');
  const box = h('div', { class: 'popover chooser', id: 'chooser' }, input, h('div', { class: 'chooser-acts' }, showAll, hideAll), list);
  const r = T.els.colsBtn.getBoundingClientRect();
  box.style.left = `${r.left}px`;
  box.style.top = `${r.bottom + 4}px`;
  document.body.append(box);
  T.chooser = { box, input, list };
  input.addEventListener('input', debounce(renderChooser, 60));
  list.addEventListener('change', (e) => {
    const key = e.target.dataset.key;
    if (!key) return;
    setHidden([key], !e.target.checked);
  });
  showAll.addEventListener('click', () => setHidden(matchingCols().map((c) => c.key), false));
  hideAll.addEventListener('click', () => setHidden(matchingCols().map((c) => c.key), true));
  renderChooser();
  input.focus();
}

export function closeChooser() {
  if (T.chooser) T.chooser.box.remove();
  T.chooser = null;
}

export const chooserOpen = () => Boolean(T.chooser);

function matchingCols() {
  const q = T.chooser ? T.chooser.input.value.trim().toLowerCase() : '';
  return allColumns().filter((c) => c.key !== 'name' && (!q || c.key.toLowerCase().includes(q)));
}

function renderChooser() {
  const C = T.chooser;
  if (!C) return;
  const items = [];
  let group = null;
  for (const c of matchingCols()) {
    if (c.group !== group) {
      group = c.group;
      items.push(h('h4', null, group || 'experiment'));
    }
    items.push(h('label', { class: 'check' }, h('input', { type: 'checkbox', dataset: { key: c.key }, checked: !S.hidden.has(c.key) }), c.key));
  }
  if (!items.length) items.push(h('p', { class: 'note' }, 'No column matches.'));
  C.list.replaceChildren(...items);
}

function setHidden(keys, hide) {
  for (const k of keys) {
    if (hide) S.hidden.add(k);
    else S.hidden.delete(k);
  }
  localStorage.setItem('expman.hidden', JSON.stringify([...S.hidden]));
  renderTable();
  stateChanged(false);
}

/** Scrolls the table so that experiment `id` is in view (a URL or the drawer opened it). */
export function reveal(id) {
  const i = T.rows.findIndex((r) => !r.run && r.s.id === id);
  if (i < 0 || !T.els) return;
  const sc = T.els.scroll;
  const y = i * ROW_H;
  const headH = T.els.head.offsetHeight;
  if (y < sc.scrollTop || y + ROW_H > sc.scrollTop + sc.clientHeight - headH) sc.scrollTop = Math.max(0, y - sc.clientHeight / 2);
}

/** Marks the row of the experiment open in the drawer. */
export function markOpen() {
  if (T.els && S.view === 'table') renderRange(true);
}
