/* The board: four status columns of experiment cards. It stays fast with 10,000 experiments:
 * a card's DOM is built only when its summary changes and it is on screen, only the columns a
 * poll touched are re-sorted, and each column renders at most `limit` cards (a "show more"
 * button raises it). */

import { $, h, reconcile, fmtDuration, fmtNum } from './util.js';
import { S, STATUSES, PAGE, SORTS, columnOf, elapsedOf, matches, markAllDirty, valueOf } from './state.js';
import { renderConn } from './header.js';
import { ACTION_CLASS, ACTION_LABEL, actionsFor, doAction } from './actions.js';
import { followLatest, openDrawer } from './commands.js';
import { collectKeys, differingParams } from './table.js';

const CARD_PARAMS_MAX = 6;
const STEP_COLS = new Set(['step', 'global_step', 'iteration', 'epoch']);

const cols = {};
let renderQueued = false;

export function initBoard() {
  for (const col of document.querySelectorAll('.column')) {
    const st = col.dataset.status;
    const count = h('span', { class: 'count' }, '0');
    const list = h('div', { class: 'col-list' });
    const more = h('button', { type: 'button', class: 'btn btn-ghost col-more', dataset: { more: st } });
    const empty = h('div', { class: 'col-empty' });
    col.append(h('div', { class: 'col-head' }, h('span', { class: 'dot' }), h('span', null, st), count), list);
    cols[st] = { el: col, list, count, more, empty };
  }
  const board = $('#board');
  board.addEventListener('click', onClick);
  board.addEventListener('keydown', (e) => {
    if (!e.target.classList.contains('card')) return;
    if (e.key === 'Enter') openDrawer(e.target.dataset.id);
    else if (e.key.startsWith('Arrow')) moveFocus(e);
  });
}

/** Arrow keys between cards: up and down within a column, left and right to the card at the
 *  same height in the next column that has cards. */
function moveFocus(e) {
  const card = e.target;
  const col = card.closest('.column');
  const cards = (c) => [...c.querySelectorAll('.card')];
  const mine = cards(col);
  const i = mine.indexOf(card);
  let next = null;
  if (e.key === 'ArrowDown') next = mine[i + 1];
  else if (e.key === 'ArrowUp') next = mine[i - 1];
  else {
    const colsEls = [...document.querySelectorAll('#board .column')];
    const step = e.key === 'ArrowRight' ? 1 : -1;
    for (let j = colsEls.indexOf(col) + step; j >= 0 && j < colsEls.length && !next; j += step) {
      const other = cards(colsEls[j]);
      if (other.length) next = other[Math.min(i, other.length - 1)];
    }
  }
  if (next) {
    e.preventDefault();
    next.focus();
    next.scrollIntoView({ block: 'nearest' });
  }
}

function onClick(e) {
  const more = e.target.closest('[data-more]');
  if (more) {
    S.limits[more.dataset.more] += PAGE;
    S.dirty.add(more.dataset.more);
    renderBoard();
    return;
  }
  const card = e.target.closest('.card');
  if (!card) return;
  const btn = e.target.closest('[data-act]');
  if (btn) {
    e.stopPropagation();
    const id = card.dataset.id;
    if (btn.dataset.act === 'monitor') followLatest(id);
    else doAction(id, btn.dataset.act);
    return;
  }
  openDrawer(card.dataset.id);
}

export function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderBoard();
  });
}

/** Re-sorts and re-renders only the columns marked dirty; a 3 s poll that changed three
 *  running experiments touches the Running column alone. */
export function renderBoard() {
  if (S.view !== 'board') return; // the table is shown: the board renders when it comes back
  const filtering = S.terms.length > 0 || S.queryIds !== null;
  const dirty = S.dirty;
  if (dirty.size) updateCardSig();
  if (dirty.size) regroup(dirty, filtering);
  const live = [];
  for (const st of STATUSES) {
    if (!dirty.has(st)) {
      if (st === 'Running') live.push(...S.live);
      continue;
    }
    const shown = renderColumn(st, filtering);
    if (st === 'Running') live.push(...shown);
  }
  S.live = live;
  dirty.clear();
  renderConn();
}

/** What a card shows besides its summary: the pinned metric summaries and the parameters
 *  that differ within the filter. When that changes every card is built again. */
function updateCardSig() {
  collectKeys();
  const shown = [];
  for (const s of S.exps.values()) if (matches(s)) shown.push(s);
  S.differKeys = differingParams(shown).slice(0, CARD_PARAMS_MAX);
  const sig = JSON.stringify([S.pins, S.differKeys]);
  if (sig !== S.cardSig) {
    S.cardSig = sig;
    S.cards.clear();
    markAllDirty();
  }
}

/** Recomputes the members (filtered) and totals of the `dirty` columns. */
function regroup(dirty, filtering) {
  for (const st of dirty) {
    S.groups[st] = [];
    S.totals[st] = 0;
  }
  for (const s of S.exps.values()) {
    const st = columnOf(s);
    if (!dirty.has(st)) continue;
    S.totals[st]++;
    if (!filtering || matches(s)) S.groups[st].push(s);
  }
}

/** Renders column `st`; returns the card entries on screen. */
function renderColumn(st, filtering) {
  const c = cols[st];
  const all = S.groups[st].sort(SORTS[st]);
  const total = S.totals[st];
  const limit = S.limits[st];
  const els = [];
  const shown = [];
  for (let i = 0; i < all.length && i < limit; i++) {
    const entry = cardFor(all[i]);
    els.push(entry.el);
    shown.push(entry);
  }
  if (!all.length) {
    c.empty.textContent = filtering && total ? 'No match' : 'None';
    els.push(c.empty);
  }
  if (all.length > limit) {
    const hidden = all.length - limit;
    c.more.textContent = `Show ${Math.min(PAGE, hidden)} more (${hidden.toLocaleString('en-US')} hidden)`;
    els.push(c.more);
  }
  reconcile(c.list, els);
  c.count.textContent = filtering
    ? `${all.length.toLocaleString('en-US')} / ${total.toLocaleString('en-US')}`
    : all.length.toLocaleString('en-US');
  return shown;
}

function cardFor(s) {
  const cached = S.cards.get(s.id);
  if (cached && cached.sum === s) return cached;
  const entry = buildCard(s);
  S.cards.set(s.id, entry);
  return entry;
}

/** The few metric values a card shows: step/epoch first, then the usual suspects. */
function pickMetrics(latest) {
  if (!latest) return [];
  const skip = new Set(['timestamp', 'run_id']);
  const entries = Object.entries(latest).filter(
    ([k, v]) => !skip.has(k) && (typeof v === 'number' || v === 'NaN' || v === 'inf' || v === '-inf'));
  const rank = ([k]) => {
    const n = k.toLowerCase();
    if (n === 'step' || n === 'epoch' || n === 'iter' || n === 'iteration') return 0;
    if (/loss|acc|f1|auc|score|reward|err|bleu|iou|map|psnr|ppl|perplex/.test(n)) return 1;
    return 2;
  };
  return entries
    .map((e, i) => [e, rank(e), i])
    .sort((a, b) => a[1] - b[1] || a[2] - b[2])
    .slice(0, 4)
    .map((x) => x[0]);
}

function buildCard(s) {
  const elapsed = h('span', { class: 'elapsed', title: s.started_at ? `started ${s.started_at}` : null },
    fmtDuration(elapsedOf(s)) || (s.status === 'Pending' ? 'queued' : ''));
  const el = h('article',
    { class: `card s-${s.status}${S.selected === s.id ? ' selected' : ''}`, tabindex: '0', dataset: { id: s.id } },
    h('div', { class: 'card-top' },
      h('span', { class: 'card-name', title: s.name }, s.name),
      s.run_id ? h('span', { class: 'card-run' }, s.run_id) : null),
    h('div', { class: 'card-id', title: s.id }, s.id),
    s.tags && s.tags.length
      ? h('div', { class: 'tags' }, s.tags.map((t) => h('span', { class: 'tag', title: t }, t)))
      : null,
    s.description ? h('p', { class: 'card-desc', title: s.description }, s.description) : null,
    cardParams(s),
    cardMetrics(s),
    s.status === 'Error' && s.error ? h('div', { class: 'card-error', title: s.error }, s.error) : null,
    // The Python exit hook records the exception itself as the error: shown once, not twice.
    s.status === 'Error' && s.exception && !(s.error || '').includes(s.exception)
      ? h('div', { class: 'card-exception', title: s.exception }, s.exception) : null,
    s.metrics_error ? h('div', { class: 'card-error card-metrics-error', title: s.metrics_error }, `Metrics unreadable: ${s.metrics_error}`) : null,
    h('div', { class: 'card-foot' },
      elapsed,
      s.gpus && s.gpus.length ? h('span', { class: 'gpus', title: 'GPUs' }, `GPU ${s.gpus.join(',')}`) : null,
      h('span', { class: 'card-actions' },
        s.run_id ? h('button', { type: 'button', class: 'btn btn-xs btn-ghost', dataset: { act: 'monitor' }, title: 'Follow this run\'s log in the monitor' }, 'Monitor') : null,
        actionsFor(s.status).map((a) => h('button', {
          type: 'button', class: `btn btn-xs ${ACTION_CLASS[a]}`, dataset: { act: a },
          disabled: S.busy.has(`${s.id}:${a}`),
        }, ACTION_LABEL[a])))));
  return { el, sum: s, elapsed };
}

/** The metric summaries a card shows: the pinned ones, else its first two metrics' last
 *  values, else (a server without summaries) a few values of its last row. */
function summaryMetrics(s) {
  if (S.pins.length) {
    return S.pins.map((k) => [k.replace(/^metrics\./, ''), valueOf(s, k)]).filter(([, v]) => v !== undefined);
  }
  if (!s.metrics) return null;
  // The run's first two metric columns. The listing sends summaries keyed by name, not in the
  // table's column order, so the step-like column (which nearly every table has first) leads,
  // then the others as sent.
  const cols = Object.keys(s.metrics);
  const order = [...cols.filter((c) => STEP_COLS.has(c.toLowerCase())), ...cols.filter((c) => !STEP_COLS.has(c.toLowerCase()))];
  return order.slice(0, 2).map((c) => [c, s.metrics[c].last]);
}

function cardParams(s) {
  if (!s.params || !S.differKeys.length) return null;
  const items = S.differKeys.filter((k) => k in s.params);
  if (!items.length) return null;
  return h('div', { class: 'card-params' }, items.map((k) =>
    h('span', { class: 'param', title: `${k} = ${s.params[k]}` }, h('span', { class: 'k' }, k), '=', h('span', { class: 'v' }, fmtNum(s.params[k])))));
}

function cardMetrics(s) {
  const metrics = summaryMetrics(s) || pickMetrics(s.latest);
  if (!metrics.length) return null;
  return h('div', { class: 'card-metrics' }, metrics.map(([k, v]) =>
    h('span', { title: `${k} = ${v}` }, h('span', { class: 'k' }, k), h('span', { class: 'v' }, fmtNum(v)))));
}

/** Updates the clocks of the running cards on screen (every second). */
export function tickClocks() {
  for (const entry of S.live) {
    const t = fmtDuration(elapsedOf(entry.sum));
    if (entry.elapsed.textContent !== t) entry.elapsed.textContent = t;
  }
}
