/* The page's state: the experiments as the last polls left them, the filter, and what the board
 * has rendered; plus the pure rules over a summary (its column, its elapsed time, whether the
 * filter matches it, the order within a column). Nothing here touches the page. */

import { parseTime } from './util.js';

export const STATUSES = ['Pending', 'Running', 'Finished', 'Error'];
export const PAGE = 150; // cards per column before "show more"

export const S = {
  version: null,
  exps: new Map(), // id -> summary (plus _-prefixed derived fields)
  terms: [],
  baseDir: '',
  scheduler: null,
  selected: null, // the experiment the drawer shows
  limits: Object.fromEntries(STATUSES.map((s) => [s, PAGE])),
  cards: new Map(), // id -> { el, sum, elapsed }
  live: [], // cache entries of the running cards on screen (their clocks tick)
  groups: Object.fromEntries(STATUSES.map((s) => [s, []])), // filtered + sorted, per column
  totals: Object.fromEntries(STATUSES.map((s) => [s, 0])),
  dirty: new Set(STATUSES), // columns whose members, order or cards changed since the last render
  lastOk: 0,
  failures: 0,
  lastError: '',
  busy: new Set(), // "id:action" in flight
  // The runs table and what it shares with the board (table.js, query.js, parcoords.js):
  view: 'board', // 'board' | 'table'
  query: '', // the filter box's text
  queryIds: null, // Set of ids the server's /api/query matched; null: the local substring filter
  sort: [], // [{key, desc}], primary first
  hidden: new Set(), // column keys the user hid
  differ: false, // only parameters whose values differ within the filter
  sel: new Set(), // selected experiment ids
  pins: [], // pinned metric summaries for the cards: "metrics.<col>.<stat>"
  brush: new Map(), // parallel-coordinates axis key -> {lo, hi} | {cats: Set}
  differKeys: [], // parameter names whose values differ within the filter (cards show them)
  pc: false, // the parallel-coordinates panel is shown
  pcLog: false, // log axes where a positive range spans more than two decades
  pcAxes: null, // the chosen parameter axes (null: the ones that differ)
  pcMetric: null, // the metric summary axis ("metrics.<col>.<stat>")
  cardSig: '', // what else a card shows (pins, differing params): a change rebuilds the cards
};

/** A summary's value for a column key of the table and the query language's field names:
 *  `name`, `status`, `tags`, `id`, `runs`, `created`, `params.<name>`,
 *  `metrics.<column>.<last|min|max|count>`. Missing: undefined. */
export function valueOf(s, key) {
  if (key.startsWith('params.')) return s.params ? s.params[key.slice(7)] : undefined;
  if (key.startsWith('metrics.')) {
    const dot = key.lastIndexOf('.');
    const m = s.metrics && s.metrics[key.slice(8, dot)];
    return m ? m[key.slice(dot + 1)] : undefined;
  }
  switch (key) {
    case 'tags': return s.tags && s.tags.length ? s.tags.join(', ') : undefined;
    case 'created': return s.created_at || undefined;
    case 'elapsed': return elapsedOf(s) ?? undefined;
    default: return s[key] ?? undefined;
  }
}

/** Non-finite numbers arrive as the strings "NaN", "inf", "-inf": numbers for sorting/axes. */
export function numOf(v) {
  if (typeof v === 'number') return v;
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  if (v === 'NaN') return NaN;
  return null;
}

/** Derived fields, computed once per summary. */
export function prep(s) {
  s._recv = Date.now();
  s._start = parseTime(s.started_at);
  s._end = parseTime(s.finished_at);
  s._created = parseTime(s.created_at) || 0;
  s._hay = [s.name, s.id, s.status, ...(s.tags || [])].join('\n').toLowerCase();
  s._key = JSON.stringify(s, (k, v) => (k.startsWith('_') ? undefined : v));
  return s;
}

export const columnOf = (s) => (STATUSES.includes(s.status) ? s.status : 'Error');

export const markAllDirty = () => STATUSES.forEach((st) => S.dirty.add(st));

export function elapsedOf(s) {
  if (s.status === 'Running') {
    if (s._start != null) {
      const e = (Date.now() - s._start) / 1000;
      if (e >= 0) return e;
    }
    if (s.elapsed_s != null) return s.elapsed_s + (Date.now() - s._recv) / 1000;
    return null;
  }
  if (s.elapsed_s != null) return s.elapsed_s;
  if (s._start != null && s._end != null) return (s._end - s._start) / 1000;
  return null;
}

/** Sets the filter from the text of the filter box. */
export function setFilter(text) {
  S.terms = text.toLowerCase().split(/\s+/).filter(Boolean);
}

/** Whether `s` passes the filter box: the server's answer to the query when there is one,
 *  else the words matched as substrings here (a server without /api/query). */
export function matches(s) {
  if (S.queryIds) return S.queryIds.has(s.id);
  for (const t of S.terms) {
    if (t.startsWith('status:')) {
      if (!s.status.toLowerCase().startsWith(t.slice(7))) return false;
    } else if (t.startsWith('tag:')) {
      const q = t.slice(4);
      if (!(s.tags || []).some((g) => g.toLowerCase().includes(q))) return false;
    } else if (!s._hay.includes(t)) {
      return false;
    }
  }
  return true;
}

/** Whether `s` lies inside every parallel-coordinates brush (numeric axes: a range; text
 *  axes: a set of values). */
export function passesBrush(s) {
  for (const [key, b] of S.brush) {
    const v = valueOf(s, key);
    if (b.cats) {
      if (!b.cats.has(String(v))) return false;
    } else {
      const n = numOf(v);
      if (n === null || Number.isNaN(n) || n < b.lo || n > b.hi) return false;
    }
  }
  return true;
}

const cmpId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** The order of the cards in each column. */
export const SORTS = {
  Pending: (a, b) => a._created - b._created || cmpId(a, b),
  Running: (a, b) => (b._start || 0) - (a._start || 0) || cmpId(a, b),
  Finished: (a, b) => (b._end || b._created) - (a._end || a._created) || cmpId(a, b),
  Error: (a, b) => (b._end || b._created) - (a._end || a._created) || cmpId(a, b),
};
