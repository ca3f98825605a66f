/* The monitor: several live log windows side by side (1, 2 or 3 columns, paged), each tailing
 * one log by byte offset; a window on an experiment's current run moves on to the next run's
 * log. Only the windows on screen poll. The layout and the windows are kept in localStorage. */

import { $, h, reconcile, fmtBytes } from './util.js';
import { S } from './state.js';
import { toast } from './notify.js';
import { LogTail } from './logtail.js';
import { openDrawer } from './commands.js';

const STORE = 'expman.monitor.v1';
const POLL_MS = 1000;
const M = { wins: [], cols: 2, page: 0, open: false, tall: false };
const panel = $('#monitor');
const grid = $('#monitor-grid');

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE) || 'null');
    if (!saved) return;
    M.cols = [1, 2, 3, 4].includes(saved.cols) ? saved.cols : 2; // 4: the 2×2 grid
    M.page = saved.page | 0;
    M.open = !!saved.open;
    M.tall = !!saved.tall;
    for (const w of saved.wins || []) {
      if (w && typeof w.id === 'string' && typeof w.file === 'string') M.wins.push(makeWin(w.id, w.file, !!w.latest));
    }
  } catch (e) {
    /* a corrupt entry is ignored */
  }
}

function save() {
  try {
    localStorage.setItem(STORE, JSON.stringify({
      cols: M.cols, page: M.page, open: M.open, tall: M.tall,
      wins: M.wins.map((w) => ({ id: w.id, file: w.file, latest: w.latest })),
    }));
  } catch (e) {
    /* storage full or disabled: the monitor still works for this page */
  }
}

function makeWin(id, file, latest) {
  const pre = h('pre', { class: 'log', tabindex: '0' });
  const dot = h('span', { class: 'dot' });
  const title = h('span', { class: 'title' });
  const fileEl = h('span', { class: 'file' });
  const size = h('span', { class: 'muted', style: 'font-size:11px' });
  const w = { id, file, latest, pre, dot, title, fileEl, size, el: null, tail: null, removed: false };
  w.el = h('div', { class: 'mwin', dataset: { id, file } },
    h('div', { class: 'mwin-head' }, dot, title, fileEl, size, h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'btn btn-xs btn-ghost', title: 'Open the experiment', onclick: () => openDrawer(w.id) }, 'Details'),
      h('button', { type: 'button', class: 'btn btn-xs btn-ghost', title: 'Scroll to the end and follow', onclick: () => w.tail.toEnd() }, 'End'),
      h('button', { type: 'button', class: 'btn btn-xs btn-ghost', title: 'Close this window', 'aria-label': 'Close window', onclick: () => remove(w) }, '×')),
    pre);
  w.tail = new LogTail(id, file, pre);
  w.tail.onUpdate = (t) => { size.textContent = fmtBytes(t.size); };
  labelWin(w);
  return w;
}

function labelWin(w) {
  const s = S.exps.get(w.id);
  w.title.textContent = s ? s.name : w.id;
  w.title.title = w.id;
  w.fileEl.textContent = w.file;
  w.dot.className = `dot${s ? ` s-${s.status}` : ''}`;
  w.dot.title = s ? s.status : '';
}

/** A window on the experiment's current run log that moves on to the next run's log. */
export function addLatest(id) {
  const s = S.exps.get(id);
  if (!s || !s.run_id) {
    toast('This experiment has no run log yet', 'err');
    return;
  }
  add(id, `${s.run_id}.log`, true);
}

/** A window on log `file` of `id` (the existing one if there is one), shown. */
export function add(id, file, latest) {
  let i = M.wins.findIndex((w) => w.id === id && w.file === file);
  if (i < 0) {
    M.wins.push(makeWin(id, file, latest));
    i = M.wins.length - 1;
  }
  M.page = Math.floor(i / M.cols);
  M.open = true;
  render();
  const w = M.wins[i];
  w.el.animate([{ boxShadow: '0 0 0 2px #3b5bdb' }, { boxShadow: '0 0 0 0 transparent' }], { duration: 900 });
}

function remove(w) {
  w.tail.stop();
  M.wins = M.wins.filter((x) => x !== w);
  render();
}

function render() {
  const n = M.wins.length;
  const pages = Math.max(1, Math.ceil(n / M.cols));
  M.page = Math.min(Math.max(0, M.page), pages - 1);
  panel.hidden = !M.open;
  panel.classList.toggle('tall', M.tall);
  // M.cols is windows per page: 1 to 3 side by side (1×N), or 4 as two rows of two.
  grid.style.setProperty('--cols', String(M.cols === 4 ? 2 : M.cols));
  grid.classList.toggle('two-rows', M.cols === 4);
  const first = M.page * M.cols;
  const visible = M.wins.slice(first, first + M.cols);
  reconcile(grid, visible.map((w) => w.el));
  for (const w of visible) w.tail.reveal();
  grid.hidden = !n;
  $('#monitor-empty').hidden = n > 0;
  pollVisible(visible);
  renderBar(n, pages);
  save();
}

/** Only the windows on screen poll; the others catch up (or jump to the tail) when shown. */
function pollVisible(visible) {
  for (const w of M.wins) {
    if (M.open && visible.includes(w) && !w.removed) {
      if (!w.polling) {
        w.polling = true;
        w.tail.start(POLL_MS);
      }
    } else if (w.polling) {
      w.polling = false;
      w.tail.stop();
    }
  }
}

/** The pager, the column buttons, the count on the top bar's Monitor button. */
function renderBar(n, pages) {
  $('#monitor-page').textContent = `${n ? M.page + 1 : 0} / ${n ? pages : 0}`;
  $('#monitor-prev').disabled = M.page <= 0;
  $('#monitor-next').disabled = M.page >= pages - 1;
  for (const b of panel.querySelectorAll('[data-cols]')) b.classList.toggle('on', Number(b.dataset.cols) === M.cols);
  $('#monitor-summary').textContent = n ? `${n} window${n === 1 ? '' : 's'}` : '';
  const badge = $('#monitor-count');
  badge.textContent = String(n);
  badge.classList.toggle('live', n > 0);
  $('#monitor-toggle').classList.toggle('on', M.open);
}

/** A poll changed or removed experiments: deleted ones' windows stop, windows on a current run
 *  move on to a new run's log. */
export function onChanges(changed, removed) {
  let dirty = false;
  for (const w of M.wins) {
    if (removed.includes(w.id)) {
      dirty = markRemoved(w) || dirty;
      continue;
    }
    if (!changed.has(w.id)) continue;
    const s = S.exps.get(w.id);
    if (w.latest && s && s.run_id && `${s.run_id}.log` !== w.file) {
      w.file = `${s.run_id}.log`;
      w.el.dataset.file = w.file;
      w.tail.switchTo(w.file);
      dirty = true;
    }
    labelWin(w);
  }
  if (dirty) render();
}

/** Stops a window whose experiment was deleted; true the first time. */
function markRemoved(w) {
  w.dot.className = 'dot';
  if (w.removed) return false;
  w.removed = true;
  w.tail.stop();
  w.polling = false;
  w.tail.mark('(the experiment was deleted)');
  return true;
}

/** After the first listing: windows restored from storage whose experiment is gone close. */
export function prune() {
  const before = M.wins.length;
  M.wins = M.wins.filter((w) => {
    if (S.exps.has(w.id)) {
      labelWin(w);
      return true;
    }
    w.tail.stop();
    return false;
  });
  if (before !== M.wins.length || M.open) render();
}

export function toggle() {
  M.open = !M.open;
  render();
}

export function initMonitor() {
  load();
  $('#monitor-toggle').addEventListener('click', toggle);
  $('#monitor-hide').addEventListener('click', () => { M.open = false; render(); });
  $('#monitor-clear').addEventListener('click', () => {
    for (const w of M.wins) w.tail.stop();
    M.wins = [];
    render();
  });
  $('#monitor-max').addEventListener('click', () => { M.tall = !M.tall; render(); });
  $('#monitor-prev').addEventListener('click', () => { M.page--; render(); });
  $('#monitor-next').addEventListener('click', () => { M.page++; render(); });
  for (const b of panel.querySelectorAll('[data-cols]')) {
    b.addEventListener('click', () => {
      const first = M.page * M.cols;
      M.cols = Number(b.dataset.cols);
      M.page = Math.floor(first / M.cols);
      render();
    });
  }
  render();
}
