/* expman UI: native ES modules, no build step, embedded in the EXP binary. This module starts
 * the page: it binds the commands the modules give each other (commands.js), subscribes the
 * drawer and the monitor to the polls, and wires the filter, the keys and the clocks.
 *
 * The modules, leaves first: util, api, notify, commands, state; header, actions, logtail,
 * charts; board, poll; the drawer (drawer, drawer-overview, drawer-metrics, drawer-compare,
 * drawer-logs); monitor. */

import { $, debounce, isTyping } from './util.js';
import { S, STATUSES, PAGE, markAllDirty, setFilter } from './state.js';
import { bind } from './commands.js';
import { renderConn } from './header.js';
import { initBoard, renderBoard, scheduleRender, tickClocks } from './board.js';
import { poll, onChange } from './poll.js';
import * as Drawer from './drawer.js';
import * as Monitor from './monitor.js';

function initFilter() {
  const input = $('#filter');
  const params = new URLSearchParams(location.search);
  input.value = params.get('q') || '';
  const apply = () => {
    setFilter(input.value);
    for (const st of STATUSES) S.limits[st] = PAGE;
    markAllDirty();
    scheduleRender();
    const p = new URLSearchParams(location.search);
    if (input.value) p.set('q', input.value);
    else p.delete('q');
    const qs = p.toString();
    history.replaceState(null, '', `${location.pathname}${qs ? `?${qs}` : ''}${location.hash}`);
  };
  input.addEventListener('input', debounce(apply, 120));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      input.value = '';
      apply();
      input.blur();
    }
  });
  setFilter(input.value);
}

function onKey(e) {
  if (e.key === 'Escape') {
    if ($('#confirm').open) return;
    if (Drawer.pickerOpen()) Drawer.closePicker();
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
  }
}

function initKeys() {
  document.addEventListener('keydown', onKey);
  document.addEventListener('click', (e) => {
    // composedPath, not closest: a click in the picker may re-render (detach) its target.
    const inside = e.composedPath().some((n) => n.id === 'compare-picker' || n.id === 'compare-btn');
    if (Drawer.pickerOpen() && !inside) Drawer.closePicker();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) poll(false);
  });
}

async function start() {
  bind({
    openDrawer: Drawer.open,
    reloadDrawer: Drawer.reload,
    followLog: Monitor.add,
    followLatest: Monitor.addLatest,
    refresh: poll,
  });
  onChange(Drawer.onChanges);
  onChange(Monitor.onChanges);
  initBoard();
  initFilter();
  initKeys();
  Monitor.initMonitor();
  $('#refresh').addEventListener('click', () => poll(true));
  setInterval(() => {
    tickClocks();
    Drawer.tick();
  }, 1000);
  setInterval(renderConn, 5000);
  renderConn();
  await poll(true);
  if (S.lastOk) Monitor.prune();
}

window.expman = { state: S, drawer: Drawer, monitor: Monitor, render: renderBoard }; // for the console
start();
