/* The view in the URL, so a link reproduces it and Back/Forward walk through it:
 *   view=table  q=<query>  sort=-metrics.acc.max,params.lr  hide=<col>,<col>  differ=1  pc=1
 *   sel=<id>,<id>  exp=<id>  tab=metrics  run=run_0002
 * Navigations (the view, the sort, opening or closing an experiment, its tab) push a history
 * entry; refinements (typing the query, columns, the selection) replace the current one. The
 * token a remote server's URL carries stays in it. */

import { S } from './state.js';

const SEL_MAX = 500; // selected ids written into the URL (beyond this the URL stays short)
let restoring = false;
let lastWritten = '';

/** The state the URL describes; absent parameters are null (the remembered choice stays). */
export function readUrl() {
  const p = new URLSearchParams(location.search);
  const list = (name) => (p.has(name) ? (p.get(name) || '').split(',').filter(Boolean) : null);
  return {
    view: p.get('view') === 'table' ? 'table' : p.has('view') ? 'board' : null,
    q: p.get('q') || '',
    sort: list('sort'),
    hide: list('hide'),
    differ: p.has('differ') ? p.get('differ') === '1' : null,
    pc: p.has('pc') ? p.get('pc') === '1' : null,
    sel: list('sel') || [],
    exp: p.get('exp') || null,
    tab: p.get('tab') || null,
    run: p.get('run') || null,
  };
}

/** `sort=` items: `-key` descending, `key` ascending. */
export const parseSort = (items) => items.map((k) => (k.startsWith('-') ? { key: k.slice(1), desc: true } : { key: k, desc: false }));

/** Writes the state (`drawer`: {id, tab, run} or null) into the URL; `push`: a new entry. */
export function writeUrl(push, drawer) {
  if (restoring) return;
  const p = new URLSearchParams();
  const token = new URLSearchParams(location.search).get('token');
  if (token) p.set('token', token);
  if (S.view === 'table') p.set('view', 'table');
  if (S.query) p.set('q', S.query);
  if (S.sort.length) p.set('sort', S.sort.map((k) => `${k.desc ? '-' : ''}${k.key}`).join(','));
  if (S.view === 'table') {
    p.set('hide', [...S.hidden].join(','));
    if (S.differ) p.set('differ', '1');
    if (S.pc) p.set('pc', '1');
  }
  if (S.sel.size && S.sel.size <= SEL_MAX) p.set('sel', [...S.sel].join(','));
  if (drawer && drawer.id) {
    p.set('exp', drawer.id);
    if (drawer.tab && drawer.tab !== 'overview') p.set('tab', drawer.tab);
    if (drawer.run) p.set('run', drawer.run);
  }
  const qs = p.toString().replace(/%2C/g, ',');
  const url = `${location.pathname}${qs ? `?${qs}` : ''}${location.hash}`;
  if (url === lastWritten && url === `${location.pathname}${location.search}${location.hash}`) return;
  lastWritten = url;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

/** Runs `fn` (which applies a URL's state) without writing the URL back. */
export async function restore(fn) {
  restoring = true;
  try {
    await fn();
  } finally {
    restoring = false;
  }
}
