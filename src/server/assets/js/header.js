/* The top bar's read-outs: the served directory, whether a scheduler holds it, and the
 * connection (live, updated n s ago, or offline with the reason). */

import { $ } from './util.js';
import { S } from './state.js';

export function showBaseDir(dir) {
  if (dir == null || dir === S.baseDir) return;
  S.baseDir = dir;
  const el = $('#base-dir');
  el.textContent = `\u200e${dir}\u200e`; // LRM: the rtl ellipsis trick keeps the path's end
  el.title = dir;
  document.title = `expman · ${dir.split('/').filter(Boolean).pop() || dir}`;
}

export function showScheduler(running) {
  if (typeof running !== 'boolean' || running === S.scheduler) return;
  S.scheduler = running;
  const el = $('#sched');
  el.hidden = false;
  el.classList.toggle('on', S.scheduler);
  el.textContent = S.scheduler ? 'scheduler running' : 'no scheduler';
}

export function renderConn() {
  const el = $('#conn');
  const n = S.exps.size;
  const count = `${n.toLocaleString('en-US')} experiment${n === 1 ? '' : 's'}`;
  if (S.failures) {
    el.className = 'conn bad';
    el.textContent = `offline: ${S.lastError} · retrying`;
    el.title = S.lastError;
  } else if (S.lastOk) {
    const ago = Math.round((Date.now() - S.lastOk) / 1000);
    el.className = 'conn';
    el.textContent = ago <= 4 ? `${count} · live` : `${count} · updated ${ago}s ago`;
    el.title = '';
  } else {
    el.textContent = 'loading…';
  }
}
