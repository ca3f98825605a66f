/* Polling the listing: every 3 s (backing off while the server is unreachable, and slower in a
 * hidden tab), asking only for what changed since the last version, and applying it to the
 * state. Modules that follow experiments (the drawer, the monitor) subscribe with onChange. */

import { api } from './api.js';
import { S, prep, columnOf } from './state.js';
import { renderConn, showBaseDir, showScheduler } from './header.js';
import { scheduleRender } from './board.js';

const POLL_MS = 3000;

let pollTimer = null;
let polling = false;
let pollAgain = null; // null | 'inc' | 'full'
const listeners = [];

/** Calls `fn(changed, removed)` after each poll that changed or removed experiments. */
export function onChange(fn) {
  listeners.push(fn);
}

/** Polls now (`full`: the whole listing) and schedules the next poll. */
export async function poll(full) {
  if (polling) {
    pollAgain = full || pollAgain === 'full' ? 'full' : 'inc';
    return;
  }
  polling = true;
  clearTimeout(pollTimer);
  try {
    const params = !full && S.version != null ? { since: S.version } : null;
    const r = await api('GET', '/api/experiments', params);
    applyListing(r);
    S.failures = 0;
    S.lastOk = Date.now();
    S.lastError = '';
  } catch (e) {
    S.failures++;
    S.lastError = e.message;
  } finally {
    polling = false;
    renderConn();
    let delay = S.failures ? Math.min(15000, POLL_MS * 2 ** (S.failures - 1)) : POLL_MS;
    if (document.hidden) delay = Math.max(delay, 15000);
    const again = pollAgain;
    pollAgain = null;
    if (again) poll(again === 'full');
    else pollTimer = setTimeout(() => poll(false), delay);
  }
}

/** Stores one summary; marks the columns it leaves and joins as dirty. */
function put(s) {
  const old = S.exps.get(s.id);
  if (old) S.dirty.add(columnOf(old));
  S.dirty.add(columnOf(s));
  S.exps.set(s.id, s);
}

/** A full listing: what changed (by content) and what is no longer there. */
function applyFull(list, changed, removed) {
  const seen = new Set();
  for (const s of list) {
    prep(s);
    seen.add(s.id);
    const old = S.exps.get(s.id);
    if (!old || old._key !== s._key) {
      put(s);
      changed.add(s.id);
    }
  }
  for (const id of S.exps.keys()) if (!seen.has(id)) removed.push(id);
}

/** An incremental listing: every summary in it changed; `gone` were removed. */
function applySince(list, gone, changed, removed) {
  for (const s of list) {
    prep(s);
    put(s);
    changed.add(s.id);
  }
  for (const id of gone || []) if (S.exps.has(id)) removed.push(id);
}

function applyListing(r) {
  const changed = new Set();
  const removed = [];
  const list = Array.isArray(r.experiments) ? r.experiments : [];
  if (r.full) applyFull(list, changed, removed);
  else applySince(list, r.removed, changed, removed);
  for (const id of removed) {
    S.dirty.add(columnOf(S.exps.get(id)));
    S.exps.delete(id);
    S.cards.delete(id);
  }
  if (typeof r.version === 'number') S.version = r.version;
  showBaseDir(r.base_dir);
  showScheduler(r.scheduler_running);
  if (S.dirty.size) scheduleRender();
  if (changed.size || removed.length) {
    for (const fn of listeners) fn(changed, removed);
  }
}
