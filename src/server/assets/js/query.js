/* The filter box speaks the query language (`params.lr < 1e-3 and status = finished`): the
 * server parses and evaluates it (GET /api/query, so the page, `EXP ls --where` and Python
 * agree on every match) and answers the matching ids; a bad query comes back as 400 with the
 * offsets of the failing part, which is underlined in place under the message. Bare words are
 * the server's substring matches, so yesterday's filters still work. Field names complete from
 * GET /api/fields (a dropdown, arrow keys, Enter or Tab).
 *
 * A server without /api/query (404) gets today's filter, matched here: words as substrings of
 * name, id, status and tags, `status:` and `tag:` prefixes. */

import { $, h, debounce } from './util.js';
import { api } from './api.js';
import { S, setFilter } from './state.js';
import { renderViews, stateChanged } from './commands.js';

const DEBOUNCE_MS = 150;
const FIELDS_MAX_AGE_MS = 10000;
const SUGGEST_MAX = 12;

const Q = {
  input: null,
  mirror: null,
  msg: null,
  menu: null,
  server: true, // false once /api/query answered 404
  seq: 0, // the latest request (older answers are dropped)
  fields: null,
  fieldsAt: 0,
  fieldsServer: true,
  items: [],
  active: 0,
  token: null, // {start, end} of the word being completed
};

export function initQuery() {
  const input = $('#filter');
  Q.input = input;
  input.placeholder = 'Filter: words, or params.lr < 1e-3 and metrics.acc.max > 0.9   ( / )';
  const wrap = input.parentElement;
  Q.mirror = h('div', { class: 'q-mirror', 'aria-hidden': 'true' });
  Q.msg = h('div', { class: 'q-error', id: 'filter-error', role: 'alert', hidden: true });
  Q.menu = h('div', { class: 'q-menu', id: 'filter-menu', role: 'listbox', hidden: true });
  wrap.append(Q.mirror, Q.msg, Q.menu);
  const run = debounce(() => apply(true), DEBOUNCE_MS);
  input.addEventListener('input', () => {
    clearError();
    suggest();
    run();
  });
  input.addEventListener('keydown', onKey);
  input.addEventListener('scroll', () => { Q.mirror.scrollLeft = input.scrollLeft; });
  input.addEventListener('focus', () => loadFields());
  input.addEventListener('blur', () => setTimeout(closeMenu, 150));
  input.addEventListener('click', suggest);
  Q.menu.addEventListener('mousedown', (e) => {
    const item = e.target.closest('[data-field]');
    if (!item) return;
    e.preventDefault();
    accept(Number(item.dataset.n));
  });
}

/** Sets the box's text (from the URL) and evaluates it. */
export function setQuery(text) {
  Q.input.value = text;
  clearError();
  return apply(false);
}

/** Evaluates the box's text: the server's matches, or the local filter without /api/query. */
async function apply(fromTyping) {
  const text = Q.input.value;
  S.query = text;
  const seq = ++Q.seq;
  if (!text.trim() || !Q.server) {
    setFilter(text); // the words, matched here (none: everything)
    S.queryIds = null;
    done(fromTyping);
    return;
  }
  try {
    const tz = -new Date().getTimezoneOffset();
    const r = await api('GET', '/api/query', { q: text, tz });
    if (seq !== Q.seq) return;
    S.queryIds = new Set(r.ids || []);
    setFilter('');
  } catch (e) {
    if (seq !== Q.seq) return;
    if (e.status === 400) {
      showError(e.message, e.body);
      return; // the last good answer stays on screen
    }
    // An older server (404: filter here from now on, as before) or none reachable: the
    // words, matched here.
    if (e.status === 404) Q.server = false;
    S.queryIds = null;
    setFilter(text);
  }
  done(fromTyping);
}

function done(fromTyping) {
  renderViews();
  stateChanged(false);
  if (fromTyping) Q.input.dispatchEvent(new CustomEvent('expman:filtered'));
}

/** Re-evaluates the query after a poll changed experiments (new ones may match). */
export const requery = debounce(() => {
  if (S.query.trim() && Q.server) apply(false);
}, 400);

function clearError() {
  Q.msg.hidden = true;
  Q.msg.textContent = '';
  Q.mirror.replaceChildren();
  Q.input.classList.remove('bad');
}

/** The server's message, and the failing part of the query underlined in place. */
function showError(message, body) {
  const text = Q.input.value;
  let start = body && Number.isInteger(body.start) ? body.start : text.length;
  let end = body && Number.isInteger(body.end) ? body.end : text.length;
  // The server counts characters (Unicode scalar values); JS strings count UTF-16 units.
  const chars = Array.from(text);
  start = Math.min(start, chars.length);
  end = Math.max(start, Math.min(end, chars.length));
  const before = chars.slice(0, start).join('');
  let bad = chars.slice(start, end).join('');
  if (!bad) bad = ' '; // an error at the end: underline the place where something is missing
  Q.mirror.replaceChildren(document.createTextNode(before),
    h('span', { class: 'q-bad', id: 'filter-bad' }, bad));
  Q.mirror.scrollLeft = Q.input.scrollLeft;
  Q.msg.textContent = message;
  Q.msg.hidden = false;
  Q.input.classList.add('bad');
}

/* ---------- completion ---------- */

async function loadFields() {
  if (Q.fields && Date.now() - Q.fieldsAt < FIELDS_MAX_AGE_MS) return;
  Q.fieldsAt = Date.now();
  if (Q.fieldsServer) {
    try {
      const r = await api('GET', '/api/fields');
      Q.fields = r.fields || [];
      return;
    } catch (e) {
      if (e.status === 404) Q.fieldsServer = false;
    }
  }
  Q.fields = localFields();
}

/** The fields of the experiments loaded, for a server without /api/fields. */
function localFields() {
  const params = new Set();
  const metrics = new Set();
  for (const s of S.exps.values()) {
    if (s.params) for (const k in s.params) params.add(`params.${k}`);
    if (s.metrics) for (const k in s.metrics) for (const st of ['last', 'min', 'max', 'count']) metrics.add(`metrics.${k}.${st}`);
  }
  return ['name', 'id', 'status', 'tag', 'description', 'command', 'host', 'created', 'runs',
    ...[...params].sort(), ...[...metrics].sort()];
}

/** The field-like word that ends at the caret, if any. */
function wordAtCaret() {
  const text = Q.input.value;
  const caret = Q.input.selectionStart ?? text.length;
  const m = /[A-Za-z_][\w.\-]*$/.exec(text.slice(0, caret));
  if (!m) return null;
  // Inside a quoted string nothing completes.
  const quotes = (text.slice(0, m.index).match(/"/g) || []).length;
  if (quotes % 2) return null;
  let end = caret;
  while (end < text.length && /[\w.\-]/.test(text[end])) end++;
  return { start: m.index, end, word: m[0] };
}

async function suggest() {
  const w = wordAtCaret();
  if (!w) {
    closeMenu();
    return;
  }
  await loadFields();
  const wl = w.word.toLowerCase();
  const fields = Q.fields || [];
  const starts = fields.filter((f) => f.toLowerCase().startsWith(wl) && f.toLowerCase() !== wl);
  const inner = fields.filter((f) => !f.toLowerCase().startsWith(wl) && f.toLowerCase().includes(wl));
  Q.items = [...starts, ...inner].slice(0, SUGGEST_MAX);
  Q.token = w;
  Q.active = 0;
  if (!Q.items.length) {
    closeMenu();
    return;
  }
  Q.menu.replaceChildren(...Q.items.map((f, n) => h('div', {
    class: `q-item${n === 0 ? ' on' : ''}`, role: 'option', dataset: { field: f, n },
  }, f)));
  Q.menu.hidden = false;
}

function closeMenu() {
  if (!Q.menu) return;
  Q.menu.hidden = true;
  Q.items = [];
}

export const menuOpen = () => Boolean(Q.menu && !Q.menu.hidden);

function move(d) {
  Q.active = (Q.active + d + Q.items.length) % Q.items.length;
  Q.menu.querySelectorAll('.q-item').forEach((el, n) => el.classList.toggle('on', n === Q.active));
  const on = Q.menu.children[Q.active];
  if (on) on.scrollIntoView({ block: 'nearest' });
}

function accept(n) {
  const f = Q.items[n];
  const w = Q.token;
  if (!f || !w) return;
  const text = Q.input.value;
  const after = text.slice(w.end);
  const insert = after.startsWith(' ') ? f : `${f} `;
  Q.input.value = text.slice(0, w.start) + insert + after;
  const caret = w.start + insert.length;
  Q.input.setSelectionRange(caret, caret);
  closeMenu();
  Q.input.dispatchEvent(new Event('input'));
}

function onKey(e) {
  if (menuOpen()) {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      move(e.key === 'ArrowDown' ? 1 : -1);
      return;
    }
    if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      accept(Q.active);
      return;
    }
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      closeMenu();
      return;
    }
  }
  if (e.key === 'Escape') {
    Q.input.value = '';
    clearError();
    apply(true);
    Q.input.blur();
  }
}
