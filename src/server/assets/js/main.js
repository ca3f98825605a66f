/* expman UI: native ES modules, no build step, embedded in the EXP binary. This module starts
 * the page: it binds the commands the modules give each other (commands.js), subscribes the
 * drawer, the monitor and the table to the polls, restores the view from the URL (and from
 * what this browser remembers), and wires the view toggle, the keys and the clocks.
 *
 * The modules, leaves first: util, api, notify, commands, state, urlstate; header, actions,
 * logtail, charts; table, parcoords, board, query, poll; the drawer (drawer, drawer-overview,
 * drawer-metrics, drawer-compare, drawer-logs); monitor. */

import { $, isTyping } from './util.js';
import { S, STATUSES, PAGE, markAllDirty } from './state.js';
import { bind } from './commands.js';
import { renderConn } from './header.js';
import { initBoard, renderBoard, scheduleRender, tickClocks } from './board.js';
import { poll, onChange } from './poll.js';
import * as Drawer from './drawer.js';
import * as Monitor from './monitor.js';
import * as Table from './table.js';
import * as Parcoords from './parcoords.js';
import * as Query from './query.js';
import { readUrl, writeUrl, parseSort, restore } from './urlstate.js';

/** Redraws both views after the filter, a brush or the selection changed. */
function renderViews() {
  for (const st of STATUSES) S.limits[st] = PAGE;
  markAllDirty();
  scheduleRender();
  Table.scheduleTable();
}

function setView(view, quiet) {
  S.view = view;
  localStorage.setItem('expman.view', view);
  $('#board').hidden = view !== 'board';
  $('#tview').hidden = view !== 'table';
  for (const b of document.querySelectorAll('#view-toggle [data-view]')) {
    b.classList.toggle('on', b.dataset.view === view);
    b.setAttribute('aria-pressed', String(b.dataset.view === view));
  }
  if (!quiet) Table.closeChooser();
  renderViews();
  if (!quiet) writeUrl(true, Drawer.urlState());
}

function loadJson(key, fallback) {
  try {
    const v = JSON.parse(localStorage.getItem(key));
    return v == null ? fallback : v;
  } catch (e) {
    return fallback;
  }
}

/** What this browser remembered (the URL overrides it where it says something). */
function loadRemembered() {
  S.view = localStorage.getItem('expman.view') === 'table' ? 'table' : 'board';
  S.hidden = new Set(loadJson('expman.hidden', []));
  S.differ = localStorage.getItem('expman.differ') === '1';
  S.pins = loadJson('expman.pins', []);
  S.pc = localStorage.getItem('expman.pc') === '1';
  S.pcLog = localStorage.getItem('expman.pcLog') === '1';
  S.pcAxes = loadJson('expman.pcAxes', null);
  S.pcMetric = localStorage.getItem('expman.pcMetric') || null;
}

/** Applies the URL's state (at start, and on Back/Forward). */
function applyUrl(atStart) {
  return restore(async () => {
    const u = readUrl();
    if (u.view) S.view = u.view;
    else if (!atStart) S.view = 'board';
    S.sort = u.sort ? parseSort(u.sort) : [];
    if (u.hide) S.hidden = new Set(u.hide);
    if (u.differ !== null) S.differ = u.differ;
    else if (!atStart) S.differ = false;
    if (u.pc !== null) S.pc = u.pc;
    S.sel = new Set(u.sel);
    setView(S.view, true);
    Parcoords.setShown(S.pc);
    if (atStart || u.q !== S.query) await Query.setQuery(u.q);
    if (u.exp) {
      Drawer.open(u.exp, u.tab || 'overview', { run: u.run, quiet: true });
      Table.reveal(u.exp);
    } else if (Drawer.openId()) {
      Drawer.close(true);
    }
    renderViews();
  });
}

function onKey(e) {
  if (e.key === 'Escape') {
    if ($('#confirm').open) return;
    if (Query.menuOpen()) return;
    if (Table.chooserOpen()) Table.closeChooser();
    else if (Drawer.pickerOpen()) Drawer.closePicker();
    else if (Drawer.openId()) Drawer.close();
    return;
  }
  if (isTyping(e) || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === '/') {
    e.preventDefault();
    $('#filter').focus();
  } else if (e.key === 'r') {
    poll(true);
  } else if (e.key === 'm') {
    Monitor.toggle();
  } else if (e.key === 't') {
    setView(S.view === 'table' ? 'board' : 'table');
  }
}

function initKeys() {
  document.addEventListener('keydown', onKey);
  document.addEventListener('click', (e) => {
    // composedPath, not closest: a click in the picker may re-render (detach) its target.
    const path = e.composedPath();
    const inside = path.some((n) => n.id === 'compare-picker' || n.id === 'compare-btn');
    if (Drawer.pickerOpen() && !inside) Drawer.closePicker();
    if (Table.chooserOpen() && !path.some((n) => n.id === 'chooser' || n.id === 'tv-columns')) Table.closeChooser();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) poll(false);
  });
  for (const b of document.querySelectorAll('#view-toggle [data-view]')) {
    b.addEventListener('click', () => {
      if (S.view !== b.dataset.view) setView(b.dataset.view);
    });
  }
  $('#pc-toggle').addEventListener('click', () => {
    Parcoords.setShown(!S.pc);
    $('#pc-toggle').classList.toggle('on', S.pc);
    writeUrl(false, Drawer.urlState());
  });
  window.addEventListener('popstate', () => applyUrl(false));
}

async function start() {
  bind({
    openDrawer: (id, tab, opts) => Drawer.open(id, tab, opts),
    reloadDrawer: Drawer.reload,
    followLog: Monitor.add,
    followLatest: Monitor.addLatest,
    refresh: poll,
    openCompare: (list) => Drawer.open(list[0].exp, 'metrics', { compare: list.slice(1) }),
    renderParcoords: Parcoords.renderParcoords,
    renderViews,
    stateChanged: (push) => {
      writeUrl(push, Drawer.urlState());
      Table.markOpen();
    },
  });
  onChange(Drawer.onChanges);
  onChange(Monitor.onChanges);
  onChange(() => {
    Table.keysChanged();
    Table.pruneSelection();
    Table.scheduleTable();
    Query.requery();
  });
  loadRemembered();
  initBoard();
  Table.initTable();
  Parcoords.initParcoords();
  Query.initQuery();
  initKeys();
  Monitor.initMonitor();
  $('#refresh').addEventListener('click', () => poll(true));
  initTheme();
  initDensity();
  setInterval(() => {
    // Offline, a Running card's clock would count time the page cannot vouch for: it stops,
    // and the cards are dimmed (CSS) until the server answers again.
    document.body.classList.toggle('offline', Boolean(S.failures));
    if (!S.failures) tickClocks();
    Drawer.tick();
  }, 1000);
  setInterval(renderConn, 5000);
  renderConn();
  await applyUrl(true);
  $('#pc-toggle').classList.toggle('on', S.pc);
  writeUrl(false, Drawer.urlState());
  await poll(true);
  if (S.lastOk) Monitor.prune();
}

/** The density toggle (remembered): compact rows and cards. */
function initDensity() {
  const KEY = 'expman.compact';
  const btn = $('#density-toggle');
  let on = false;
  try {
    on = localStorage.getItem(KEY) === '1';
  } catch (e) {
    /* no storage: comfortable */
  }
  const apply = () => {
    Table.setDensity(on);
    btn.classList.toggle('on', on);
    btn.setAttribute('aria-pressed', String(on));
  };
  apply();
  btn.addEventListener('click', () => {
    on = !on;
    apply();
    try {
      localStorage.setItem(KEY, on ? '1' : '0');
    } catch (e) {
      /* the choice lasts for this page */
    }
  });
}

/** The theme toggle: follow the system (no attribute), dark, light; remembered. */
function initTheme() {
  const KEY = 'expman.theme';
  const btn = $('#theme-toggle');
  const apply = (t) => {
    if (t === 'dark' || t === 'light') document.documentElement.dataset.theme = t;
    else delete document.documentElement.dataset.theme;
    btn.title = `Theme: ${t || 'follows the system'} (click to change)`;
    btn.setAttribute('aria-label', btn.title);
  };
  let cur = null;
  try {
    cur = localStorage.getItem(KEY);
  } catch (e) {
    /* no storage: the system's theme */
  }
  apply(cur);
  btn.addEventListener('click', () => {
    cur = cur === 'dark' ? 'light' : cur === 'light' ? null : 'dark';
    apply(cur);
    try {
      if (cur) localStorage.setItem(KEY, cur);
      else localStorage.removeItem(KEY);
    } catch (e) {
      /* the choice lasts for this page */
    }
  });
}

window.expman = { state: S, drawer: Drawer, monitor: Monitor, table: Table, render: renderBoard }; // for the console
start();
