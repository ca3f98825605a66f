/* The drawer: one experiment's details beside the board, in three tabs (Overview, Metrics,
 * Logs; each its own module). This module owns which experiment is open, its head (name,
 * status, actions), the tabs, and loading the details; the tabs render them. */

import { $, h, reconcile } from './util.js';
import { api, expPath } from './api.js';
import { S } from './state.js';
import { toast } from './notify.js';
import { ACTION_CLASS, ACTION_LABEL, doAction, wireAction } from './actions.js';
import { followLatest, stateChanged } from './commands.js';
import { OverviewPane } from './drawer-overview.js';
import { MetricsPane } from './drawer-metrics.js';
import { LogsPane } from './drawer-logs.js';

const TABS = ['overview', 'metrics', 'logs'];

const D = {
  id: null,
  detail: null,
  tab: 'overview',
  run: null, // the run the link or the table asked for (its metrics block opens)
  loading: false,
  reloadAgain: false,
  els: null,
  panes: null, // the tabs' renderers, made anew for each experiment opened
  resize: null,
};
const el = $('#drawer');

/** What the tabs see of the drawer. */
const ctx = {
  get id() { return D.id; },
  get detail() { return D.detail; },
  get body() { return D.els.body; },
  get run() { return D.run; },
  summary,
};

function summary() {
  return S.exps.get(D.id) || (D.detail && D.detail.summary) || null;
}

/** The open experiment's id, or null. */
export const openId = () => D.id;

/** What the URL records of the drawer: {id, tab, run}, or null when it is closed. */
export const urlState = () => (D.id ? { id: D.id, tab: D.tab, run: D.run } : null);

/** Opens experiment `id` (at `tab`); `opts.run`: open that run's metrics; `opts.compare`:
 *  [{exp, run}, ...] overlaid on the charts (the table's Compare). */
export function open(id, tab, opts = {}) {
  const before = JSON.stringify(urlState());
  const switched = D.id !== id;
  if (D.id !== id || opts.compare) {
    teardown();
    D.id = id;
    S.selected = id;
    D.detail = null;
    buildShell();
  }
  D.run = opts.run || null;
  if (opts.compare && opts.compare.length) D.panes.metrics.compare.addMany(opts.compare);
  // Another experiment starts on its Overview unless a tab was asked for.
  if (tab) D.tab = tab;
  else if (switched) D.tab = 'overview';
  el.hidden = false;
  for (const c of document.querySelectorAll('.card.selected')) c.classList.remove('selected');
  const entry = S.cards.get(id);
  if (entry) entry.el.classList.add('selected');
  renderHead();
  showTab(D.tab, true);
  reload();
  // Keyboard users land in the drawer (Esc closes it); not when the page opens from a link
  // that someone may be typing into.
  if (switched && !opts.quiet && !(document.activeElement && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName))) {
    const tabBtn = D.els.tabs.querySelector('.tab.on');
    if (tabBtn) tabBtn.focus({ preventScroll: true });
  }
  if (JSON.stringify(urlState()) !== before && !opts.quiet) stateChanged(true);
}

export function close(quiet) {
  const wasOpen = Boolean(D.id);
  teardown();
  D.id = null;
  S.selected = null;
  D.detail = null;
  el.hidden = true;
  el.textContent = '';
  for (const c of document.querySelectorAll('.card.selected')) c.classList.remove('selected');
  if (wasOpen && quiet !== true) stateChanged(true);
}

function teardown() {
  if (D.panes) {
    D.panes.metrics.teardown();
    D.panes.logs.teardown();
  }
  D.panes = null;
  if (D.resize) D.resize.disconnect();
  D.resize = null;
}

function buildShell() {
  el.textContent = '';
  const title = h('h2');
  const pill = h('span', { class: 'pill' });
  const sub = h('div', { class: 'drawer-sub' });
  const actions = h('div', { class: 'drawer-actions' });
  const tabs = h('div', { class: 'tabs', role: 'tablist' },
    TABS.map((t) => h('button', {
      type: 'button', class: 'tab', role: 'tab', dataset: { tab: t },
      onclick: () => showTab(t),
    }, t[0].toUpperCase() + t.slice(1))));
  // Arrow keys move between the tabs (the ARIA tablist pattern).
  tabs.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    const i = TABS.indexOf(D.tab);
    const t = TABS[(i + (e.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length];
    e.preventDefault();
    showTab(t);
    tabs.querySelector(`[data-tab="${t}"]`).focus();
  });
  const panes = Object.fromEntries(TABS.map((t) => [t, h('div', { class: 'pane', dataset: { pane: t } })]));
  const body = h('div', { class: 'drawer-body' }, TABS.map((t) => panes[t]));
  el.append(
    h('div', { class: 'drawer-head' },
      h('div', { class: 'drawer-title' }, pill, title,
        h('button', { type: 'button', class: 'btn btn-ghost drawer-close', title: 'Close (Esc)', 'aria-label': 'Close', onclick: () => close() }, '×')),
      sub, actions, tabs),
    body);
  D.els = { title, pill, sub, actions, tabs, body, panes };
  D.panes = {
    overview: new OverviewPane(ctx, panes.overview),
    metrics: new MetricsPane(ctx, panes.metrics),
    logs: new LogsPane(ctx, panes.logs),
  };
  D.resize = new ResizeObserver(() => D.panes && D.panes.metrics.resize());
  D.resize.observe(body);
}

function renderHead() {
  const s = summary();
  if (!s || !D.els) return;
  const { title, pill, sub, actions } = D.els;
  title.textContent = s.name;
  title.title = s.name;
  pill.className = `pill s-${s.status}`;
  pill.textContent = s.status;
  sub.textContent = [s.id, s.run_id, s.runs ? `${s.runs} run${s.runs === 1 ? '' : 's'}` : null]
    .filter(Boolean).join(' · ');
  const acts = [];
  if (s.run_id) acts.push(h('button', { type: 'button', class: 'btn btn-sm', onclick: () => followLatest(s.id) }, 'Monitor'));
  if (s.status === 'Error' || s.status === 'Finished') acts.push(actBtn(s, 'retry'));
  if (s.status === 'Running') acts.push(actBtn(s, 'terminate'));
  if (s.status === 'Pending') acts.push(actBtn(s, 'cancel'));
  if (s.status !== 'Running') acts.push(actBtn(s, 'delete'));
  reconcile(actions, acts);
}

function actBtn(s, a) {
  const wire = wireAction(a);
  return h('button', {
    type: 'button', class: `btn btn-sm ${ACTION_CLASS[a]}`, dataset: { act: wire },
    disabled: S.busy.has(`${s.id}:${wire}`), onclick: () => doAction(s.id, a),
  }, ACTION_LABEL[a]);
}

function showTab(t, quiet) {
  const changed = D.tab !== t;
  D.tab = t;
  if (!D.els) return;
  for (const b of D.els.tabs.children) b.classList.toggle('on', b.dataset.tab === t);
  for (const [name, pane] of Object.entries(D.els.panes)) pane.hidden = name !== t;
  D.panes.metrics.closePicker();
  D.panes.logs.setActive(t === 'logs');
  if (D.detail) renderPane();
  if (t === 'metrics') requestAnimationFrame(() => D.panes && D.panes.metrics.resize());
  if (changed && !quiet) stateChanged(true);
}

/** Fetches the open experiment's details again and renders the shown tab. */
export async function reload() {
  const id = D.id;
  if (!id) return;
  if (D.loading) {
    D.reloadAgain = true; // a change arrived mid-request: fetch once more afterwards
    return;
  }
  D.loading = true;
  try {
    const detail = await api('GET', expPath(id));
    if (D.id !== id) return;
    D.detail = detail;
    renderHead();
    renderPane();
  } catch (e) {
    if (D.id !== id) return;
    if (e.status === 404) {
      toast(`${id} no longer exists`, 'err');
      close(true);
      return;
    }
    if (!D.detail) D.els.panes[D.tab].replaceChildren(h('p', { class: 'err-note' }, `Cannot load ${id}: ${e.message}`));
  } finally {
    D.loading = false;
    // Asked again mid-request, for this experiment or for another one opened meanwhile (whose
    // own reload() found this request in flight and left it to us).
    if (D.reloadAgain || (D.id && D.id !== id)) {
      D.reloadAgain = false;
      if (D.id) reload();
    }
  }
}

function renderPane() {
  D.panes[D.tab].render();
}

/** A poll changed or removed experiments. */
export function onChanges(changed, removed) {
  if (!D.id) return;
  if (removed.includes(D.id)) {
    close(true);
    return;
  }
  if (changed.has(D.id)) {
    renderHead();
    reload();
  }
  D.panes.metrics.refreshPicker();
}

/** Updates the running clock on the Overview tab (every second). */
export function tick() {
  if (!D.id || D.tab !== 'overview' || !D.els) return;
  D.panes.overview.tick();
}

/** Whether the compare picker is open (Escape and outside clicks close it first). */
export const pickerOpen = () => Boolean(D.panes && D.panes.metrics.pickerOpen);

export function closePicker() {
  if (D.panes) D.panes.metrics.closePicker();
}
