/* expman UI: vanilla JS, no build step, served from the EXP binary.
 *
 * Pieces, top to bottom: helpers; the API client (token handling); toasts and the confirm
 * dialog; the board (four status columns fed by incremental polling); actions; log tailing by
 * byte offset (shared by the drawer and the monitor); charts (uPlot); the drawer; the monitor.
 *
 * Every piece of data from the server goes into the page as text (textContent), never as HTML.
 * The board stays fast with 10,000 experiments: polls transfer only what changed, a card's DOM
 * is built only when its summary changes and it is on screen, and each column renders at most
 * `limit` cards (a "show more" button raises it).
 */
(function () {
  'use strict';

  const STATUSES = ['Pending', 'Running', 'Finished', 'Error'];
  const POLL_MS = 3000;
  const PAGE = 150; // cards per column before "show more"
  const TAIL_BYTES = 65536; // what a log shows when first opened
  const CHUNK_BYTES = 262144; // most bytes asked for by one follow request
  const JUMP_BYTES = 4 << 20; // a log further behind than this skips ahead to its tail
  const LOG_KEEP_CHARS = 400000; // text kept in one log view
  const RUN_RE = /^run_\d+$/;
  const COLORS = ['#2f6fed', '#e8590c', '#1f9d55', '#ae3ec9', '#d6336c', '#0c8599', '#f59f00',
    '#5c7cfa', '#495057', '#94d82d'];

  // ---------------------------------------------------------------- helpers

  const $ = (sel, root) => (root || document).querySelector(sel);

  /** Builds an element: h('div', {class: 'x', onclick: f}, child, 'text', [more]). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat(Infinity)) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  /** Makes `container`'s children exactly `els`, in order, moving only what is out of place. */
  function reconcile(container, els) {
    let cur = container.firstChild;
    for (const el of els) {
      if (cur === el) {
        cur = cur.nextSibling;
        continue;
      }
      container.insertBefore(el, cur);
    }
    while (cur) {
      const next = cur.nextSibling;
      container.removeChild(cur);
      cur = next;
    }
  }

  const pad2 = (n) => String(n).padStart(2, '0');

  function fmtDuration(s) {
    if (s == null || !isFinite(s)) return '';
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400);
    const hh = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    if (d) return `${d}d ${hh}h ${pad2(m)}m`;
    if (hh) return `${hh}h ${pad2(m)}m ${pad2(sec)}s`;
    if (m) return `${m}m ${pad2(sec)}s`;
    return `${sec}s`;
  }

  function fmtNum(v) {
    if (v == null) return '—';
    if (typeof v === 'boolean') return String(v);
    if (typeof v !== 'number') return String(v);
    if (!isFinite(v)) return String(v);
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
    return String(parseFloat(v.toPrecision(5)));
  }

  /** Axis ticks: short, so they fit a 54 px axis. */
  function fmtTick(v) {
    if (v == null || !isFinite(v)) return '';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(1).replace('.0e', 'e').replace('e+', 'e');
    return String(parseFloat(v.toPrecision(4)));
  }

  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    const now = new Date();
    const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    if (d.toDateString() === now.toDateString()) return time;
    return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${time}`;
  }

  function fmtBytes(n) {
    if (n == null) return '';
    if (n < 1024) return `${n} B`;
    const units = ['KB', 'MB', 'GB', 'TB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
  }

  const parseTime = (iso) => {
    const t = iso ? Date.parse(iso) : NaN;
    return isNaN(t) ? null : t;
  };

  function debounce(fn, ms) {
    let t = null;
    return (...args) => {
      clearTimeout(t);
      t = setTimeout(() => fn(...args), ms);
    };
  }

  const isTyping = (e) => {
    const t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  };

  // ---------------------------------------------------------------- API client

  /* The page's token: the server writes it into <meta name="expman-token">; a remote server's
     printed URL also carries it as ?token=, which GETs repeat (see API.md "Access"). */
  const TOKEN = (() => {
    const meta = document.querySelector('meta[name="expman-token"]');
    let t = meta ? meta.getAttribute('content') || '' : '';
    if (t.includes('{{')) t = '';
    const fromUrl = new URLSearchParams(location.search).get('token') || '';
    return { header: t || fromUrl, url: fromUrl };
  })();

  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  function apiUrl(path, params) {
    const q = new URLSearchParams();
    if (params) {
      for (const [k, v] of Object.entries(params)) if (v != null) q.set(k, String(v));
    }
    if (TOKEN.url) q.set('token', TOKEN.url);
    const s = q.toString();
    return s ? `${path}?${s}` : path;
  }

  async function api(method, path, params) {
    const headers = { Accept: 'application/json' };
    if (TOKEN.header) headers['X-Expman-Token'] = TOKEN.header;
    let res;
    try {
      res = await fetch(apiUrl(path, params), { method, headers, cache: 'no-store' });
    } catch (e) {
      throw new ApiError('cannot reach the expman server', 0);
    }
    let body = null;
    try {
      body = await res.json();
    } catch (e) {
      body = null;
    }
    if (!res.ok) {
      const msg = body && body.error ? body.error : `${res.status} ${res.statusText}`;
      throw new ApiError(msg, res.status);
    }
    return body;
  }

  const expPath = (id, ...rest) =>
    '/api/experiments/' + [id, ...rest].map(encodeURIComponent).join('/');

  // ---------------------------------------------------------------- toasts, confirm

  function toast(message, kind, ms) {
    const box = $('#toasts');
    const t = h('div', { class: `toast ${kind || ''}`, role: kind === 'err' ? 'alert' : 'status' }, message);
    t.addEventListener('click', () => t.remove());
    box.append(t);
    while (box.children.length > 5) box.firstChild.remove();
    setTimeout(() => t.remove(), ms || (kind === 'err' ? 9000 : 5000));
  }

  function confirmDialog(title, text, okLabel) {
    const dlg = $('#confirm');
    if (typeof dlg.showModal !== 'function') {
      return Promise.resolve(window.confirm(`${title}\n\n${text}`));
    }
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    $('#confirm-ok').textContent = okLabel || 'OK';
    dlg.returnValue = 'cancel';
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      dlg.showModal();
      $('#confirm-ok').focus();
    });
  }

  // ---------------------------------------------------------------- state

  const S = {
    version: null,
    exps: new Map(), // id -> summary (plus _-prefixed derived fields)
    terms: [],
    baseDir: '',
    scheduler: null,
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
  };

  /** Derived fields, computed once per summary. */
  function prep(s) {
    s._recv = Date.now();
    s._start = parseTime(s.started_at);
    s._end = parseTime(s.finished_at);
    s._created = parseTime(s.created_at) || 0;
    s._hay = [s.name, s.id, s.status, ...(s.tags || [])].join('\n').toLowerCase();
    s._key = JSON.stringify(s, (k, v) => (k.startsWith('_') ? undefined : v));
    return s;
  }

  const columnOf = (s) => (STATUSES.includes(s.status) ? s.status : 'Error');

  function elapsedOf(s) {
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

  function matches(s) {
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

  const SORTS = {
    Pending: (a, b) => a._created - b._created || cmpId(a, b),
    Running: (a, b) => (b._start || 0) - (a._start || 0) || cmpId(a, b),
    Finished: (a, b) => (b._end || b._created) - (a._end || a._created) || cmpId(a, b),
    Error: (a, b) => (b._end || b._created) - (a._end || a._created) || cmpId(a, b),
  };
  const cmpId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

  // ---------------------------------------------------------------- polling

  let pollTimer = null;
  let polling = false;
  let pollAgain = null; // null | 'inc' | 'full'

  async function poll(full) {
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

  function applyListing(r) {
    const changed = new Set();
    const removed = [];
    const list = Array.isArray(r.experiments) ? r.experiments : [];
    if (r.full) {
      const seen = new Set();
      for (const s of list) {
        prep(s);
        seen.add(s.id);
        const old = S.exps.get(s.id);
        if (!old || old._key !== s._key) {
          if (old) S.dirty.add(columnOf(old));
          S.dirty.add(columnOf(s));
          S.exps.set(s.id, s);
          changed.add(s.id);
        }
      }
      for (const id of S.exps.keys()) if (!seen.has(id)) removed.push(id);
    } else {
      for (const s of list) {
        prep(s);
        const old = S.exps.get(s.id);
        if (old) S.dirty.add(columnOf(old));
        S.dirty.add(columnOf(s));
        S.exps.set(s.id, s);
        changed.add(s.id);
      }
      for (const id of r.removed || []) if (S.exps.has(id)) removed.push(id);
    }
    for (const id of removed) {
      S.dirty.add(columnOf(S.exps.get(id)));
      S.exps.delete(id);
      S.cards.delete(id);
    }
    if (typeof r.version === 'number') S.version = r.version;
    if (r.base_dir != null && r.base_dir !== S.baseDir) {
      S.baseDir = r.base_dir;
      const el = $('#base-dir');
      el.textContent = `\u200e${r.base_dir}\u200e`; // LRM: the rtl ellipsis trick keeps the path's end
      el.title = r.base_dir;
      document.title = `expman · ${r.base_dir.split('/').filter(Boolean).pop() || r.base_dir}`;
    }
    if (typeof r.scheduler_running === 'boolean' && r.scheduler_running !== S.scheduler) {
      S.scheduler = r.scheduler_running;
      const el = $('#sched');
      el.hidden = false;
      el.classList.toggle('on', S.scheduler);
      el.textContent = S.scheduler ? 'scheduler running' : 'no scheduler';
    }
    if (S.dirty.size) scheduleRender();
    if (changed.size || removed.length) {
      Drawer.onChanges(changed, removed);
      Monitor.onChanges(changed, removed);
    }
  }

  function renderConn() {
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

  // ---------------------------------------------------------------- board

  const cols = {};
  let renderQueued = false;

  function initBoard() {
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
    board.addEventListener('click', (e) => {
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
        if (btn.dataset.act === 'monitor') Monitor.addLatest(id);
        else doAction(id, btn.dataset.act);
        return;
      }
      Drawer.open(card.dataset.id);
    });
    board.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && e.target.classList.contains('card')) Drawer.open(e.target.dataset.id);
    });
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      renderBoard();
    });
  }

  /** Re-sorts and re-renders only the columns marked dirty; a 3 s poll that changed three
   *  running experiments touches the Running column alone. */
  function renderBoard() {
    const filtering = S.terms.length > 0;
    const dirty = S.dirty;
    if (dirty.size) {
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
    const live = [];
    for (const st of STATUSES) {
      if (!dirty.has(st)) {
        if (st === 'Running') live.push(...S.live);
        continue;
      }
      const c = cols[st];
      const all = S.groups[st].sort(SORTS[st]);
      const total = S.totals[st];
      const limit = S.limits[st];
      const els = [];
      for (let i = 0; i < all.length && i < limit; i++) {
        const entry = cardFor(all[i]);
        els.push(entry.el);
        if (st === 'Running') live.push(entry);
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
    }
    S.live = live;
    dirty.clear();
    renderConn();
  }

  const markAllDirty = () => STATUSES.forEach((st) => S.dirty.add(st));

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

  function actionsFor(status) {
    switch (status) {
      case 'Error': return ['retry', 'delete'];
      case 'Running': return ['terminate'];
      default: return ['delete'];
    }
  }
  const ACTION_LABEL = { retry: 'Rerun', terminate: 'Terminate', delete: 'Delete', cancel: 'Cancel' };
  const ACTION_CLASS = { retry: 'act-primary', terminate: 'act-danger', delete: 'act-danger', cancel: 'act-danger' };

  function buildCard(s) {
    const metrics = pickMetrics(s.latest);
    const elapsed = h('span', { class: 'elapsed', title: s.started_at ? `started ${s.started_at}` : null },
      fmtDuration(elapsedOf(s)) || (s.status === 'Pending' ? 'queued' : ''));
    const el = h('article',
      { class: `card s-${s.status}${Drawer.id === s.id ? ' selected' : ''}`, tabindex: '0', dataset: { id: s.id } },
      h('div', { class: 'card-top' },
        h('span', { class: 'card-name', title: s.name }, s.name),
        s.run_id ? h('span', { class: 'card-run' }, s.run_id) : null),
      h('div', { class: 'card-id', title: s.id }, s.id),
      s.tags && s.tags.length
        ? h('div', { class: 'tags' }, s.tags.map((t) => h('span', { class: 'tag', title: t }, t)))
        : null,
      s.description ? h('p', { class: 'card-desc', title: s.description }, s.description) : null,
      metrics.length
        ? h('div', { class: 'card-metrics' }, metrics.map(([k, v]) =>
          h('span', { title: `${k} = ${v}` }, h('span', { class: 'k' }, k), h('span', { class: 'v' }, fmtNum(v)))))
        : null,
      s.status === 'Error' && s.error ? h('div', { class: 'card-error', title: s.error }, s.error) : null,
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

  function tickClocks() {
    for (const entry of S.live) {
      const t = fmtDuration(elapsedOf(entry.sum));
      if (entry.elapsed.textContent !== t) entry.elapsed.textContent = t;
    }
    Drawer.tick();
  }

  // ---------------------------------------------------------------- actions

  async function doAction(id, action) {
    const s = S.exps.get(id);
    const name = s ? s.name : id;
    const wire = action === 'cancel' ? 'terminate' : action;
    if (action === 'delete') {
      const ok = await confirmDialog(`Delete ${name}?`,
        `This removes the directory ${id} with all its runs, metrics, logs and checkpoints. It cannot be undone.`,
        'Delete');
      if (!ok) return;
    } else if (action === 'terminate' || action === 'cancel') {
      const ok = await confirmDialog(action === 'cancel' ? `Cancel ${name}?` : `Terminate ${name}?`,
        action === 'cancel'
          ? 'The pending run will not start; it is marked Error "cancelled".'
          : 'Its process group gets SIGTERM, then SIGKILL; the run is marked Error "terminated".',
        action === 'cancel' ? 'Cancel run' : 'Terminate');
      if (!ok) return;
    }
    const key = `${id}:${wire}`;
    if (S.busy.has(key)) return;
    S.busy.add(key);
    setBusyButtons(id, wire, true);
    try {
      const r = await api('POST', expPath(id, 'actions', wire));
      toast(r && r.message ? r.message : `${ACTION_LABEL[action]}: done`, 'ok');
    } catch (e) {
      toast(`${ACTION_LABEL[action]} ${name}: ${e.message}`, 'err');
    } finally {
      S.busy.delete(key);
      setBusyButtons(id, wire, false);
      poll(false);
      if (Drawer.id === id) Drawer.reload();
    }
  }

  function setBusyButtons(id, action, busy) {
    const sel = `[data-act="${action}"]`;
    const entry = S.cards.get(id);
    if (entry) for (const b of entry.el.querySelectorAll(sel)) b.disabled = busy;
    if (Drawer.id === id) for (const b of $('#drawer').querySelectorAll(sel)) b.disabled = busy;
  }

  // ---------------------------------------------------------------- log tailing

  // eslint-disable-next-line no-control-regex
  const ANSI_RE = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07/g;

  /** Tails one log file into a <pre> by byte offset: the first request reads only the tail,
   *  later ones ask from the last `end`; nothing is ever fetched twice. */
  class LogTail {
    constructor(id, file, pre) {
      this.id = id;
      this.file = file;
      this.pre = pre;
      this.end = null;
      this.size = null;
      this.chars = 0;
      this.gen = 0;
      this.timer = null;
      this.interval = 2000;
      this.lastErr = '';
      this.gone = false;
      this.onUpdate = null;
      // Whether the view sticks to the end. Kept here because a <pre> that leaves the document
      // (a monitor page change, a hidden tab) forgets its scroll position.
      this.follow = true;
      this.savedTop = 0;
      pre.addEventListener('scroll', () => {
        if (!pre.isConnected || pre.clientHeight === 0) return;
        this.follow = this.atBottom();
        this.savedTop = pre.scrollTop;
      });
    }
    /** Puts the scroll position back after the view was re-attached or shown again. */
    reveal() {
      if (this.follow) this.pre.scrollTop = this.pre.scrollHeight;
      else this.pre.scrollTop = this.savedTop;
    }
    toEnd() {
      this.follow = true;
      this.reveal();
    }
    start(interval) {
      this.stop();
      this.interval = interval || this.interval;
      const gen = ++this.gen;
      const loop = async () => {
        if (gen !== this.gen) return;
        const more = await this.fetchOnce(gen);
        if (gen !== this.gen || this.gone) return;
        this.timer = setTimeout(loop, more ? 0 : this.interval);
      };
      loop();
    }
    stop() {
      this.gen++;
      clearTimeout(this.timer);
      this.timer = null;
    }
    /** Switches to another file of the same experiment (a new run), starting at its tail. */
    switchTo(file) {
      this.file = file;
      this.end = null;
      this.gone = false;
      this.mark(`──── ${file} ────`);
    }
    async fetchOnce(gen) {
      const path = expPath(this.id, 'logs', this.file);
      let r;
      try {
        r = this.end == null
          ? await api('GET', path, { max: TAIL_BYTES })
          : await api('GET', path, { offset: this.end, max: CHUNK_BYTES });
      } catch (e) {
        if (gen !== this.gen) return false;
        if (e.status === 404) {
          if (this.end == null && this.chars === 0) {
            this.mark('(no log yet)');
            return false;
          }
          this.gone = true;
          this.mark('(the log file no longer exists)');
        } else if (e.message !== this.lastErr) {
          this.mark(`(cannot read the log: ${e.message})`);
        }
        this.lastErr = e.message;
        return false;
      }
      if (gen !== this.gen) return false;
      this.lastErr = '';
      if (this.end == null) {
        if (this.chars === 0 && this.pre.querySelector('.mark')) this.clear();
        if (r.start > 0) this.mark(`… ${fmtBytes(r.start)} before this not shown …`);
      } else if (r.start < this.end) {
        this.clear();
        this.mark('… the log shrank or was replaced; showing its end …');
      }
      if (r.text) this.write(r.text);
      this.end = r.end;
      this.size = r.size;
      if (this.onUpdate) this.onUpdate(this);
      if (r.size - r.end > JUMP_BYTES) {
        this.mark(`… skipped ${fmtBytes(r.size - r.end)} …`);
        this.end = null;
        return true;
      }
      return r.end < r.size && r.end > r.start;
    }
    atBottom() {
      const p = this.pre;
      return p.scrollHeight - p.scrollTop - p.clientHeight < 24;
    }
    write(text) {
      const follow = this.follow;
      // Progress bars redraw a line with a bare \r: keep what follows it. Colours are dropped.
      const clean = text.replace(ANSI_RE, '').replace(/[^\n]*\r(?!\n)/g, '');
      if (!clean) return;
      this.pre.append(document.createTextNode(clean));
      this.chars += clean.length;
      if (this.chars > LOG_KEEP_CHARS || this.pre.childNodes.length > 400) {
        const all = this.pre.textContent;
        const keep = all.slice(-Math.floor(LOG_KEEP_CHARS * 0.75));
        this.pre.textContent = keep;
        this.chars = keep.length;
      }
      if (follow) this.pre.scrollTop = this.pre.scrollHeight;
    }
    mark(text) {
      const follow = this.follow;
      const needsBreak = this.pre.textContent && !this.pre.textContent.endsWith('\n');
      this.pre.append(h('span', { class: 'mark' }, `${needsBreak ? '\n' : ''}${text}\n`));
      if (follow) this.pre.scrollTop = this.pre.scrollHeight;
    }
    clear() {
      this.pre.textContent = '';
      this.chars = 0;
    }
  }

  // ---------------------------------------------------------------- charts

  const toNum = (v) => (typeof v === 'number' && isFinite(v) ? v : null);

  /** Aligns several (x, y) lines onto one sorted x axis (uPlot's data layout); a duplicate x
   *  keeps the last value, a line without a point at some x gets null there. */
  function align(lines) {
    const xs = new Set();
    const maps = lines.map((l) => {
      const m = new Map();
      const n = Math.min(l.x.length, l.y.length);
      for (let i = 0; i < n; i++) {
        const x = toNum(l.x[i]);
        if (x == null) continue;
        m.set(x, toNum(l.y[i]));
        xs.add(x);
      }
      return m;
    });
    const X = Array.from(xs).sort((a, b) => a - b);
    return [X, ...maps.map((m) => X.map((x) => (m.has(x) ? m.get(x) : null)))];
  }

  const axisFont = '11px system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif';

  function makeChart(body, xLabel, lines) {
    const data = align(lines);
    const axis = {
      stroke: '#687083',
      font: axisFont,
      grid: { stroke: '#eef0f3', width: 1 },
      ticks: { stroke: '#e2e5ea', width: 1, size: 4 },
    };
    const opts = {
      width: Math.max(220, body.clientWidth || 300),
      height: 170,
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false, setScale: true } },
      scales: { x: { time: false } },
      axes: [
        Object.assign({}, axis, { size: 30 }),
        Object.assign({}, axis, { size: 54, values: (u, vals) => vals.map(fmtTick) }),
      ],
      series: [
        { label: xLabel, value: (u, v) => (v == null ? '' : fmtNum(v)) },
        ...lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          width: 1.5,
          spanGaps: true,
          points: { size: 4 },
          value: (u, v) => (v == null ? '' : fmtNum(v)),
        })),
      ],
    };
    return new window.uPlot(opts, data, body);
  }

  // ---------------------------------------------------------------- drawer

  const Drawer = (() => {
    const D = {
      id: null,
      detail: null,
      tab: 'overview',
      overlays: [], // [{exp, run, label}] series from other runs/experiments drawn over each chart
      blocks: new Map(), // table name -> block state
      tails: new Map(), // log name -> { tail, el }
      seriesCache: new Map(), // "exp/table" -> { at, promise }
      loading: false,
      els: null,
      picker: null,
      resize: null,
    };
    const el = $('#drawer');

    function summary() {
      return S.exps.get(D.id) || (D.detail && D.detail.summary) || null;
    }

    function open(id, tab) {
      if (D.id !== id) {
        teardown();
        D.id = id;
        D.detail = null;
        D.overlays = [];
        D.seriesCache.clear();
        buildShell();
      }
      if (tab) D.tab = tab;
      el.hidden = false;
      for (const c of document.querySelectorAll('.card.selected')) c.classList.remove('selected');
      const entry = S.cards.get(id);
      if (entry) entry.el.classList.add('selected');
      renderHead();
      showTab(D.tab);
      reload();
    }

    function close() {
      teardown();
      D.id = null;
      D.detail = null;
      el.hidden = true;
      el.textContent = '';
      for (const c of document.querySelectorAll('.card.selected')) c.classList.remove('selected');
    }

    function teardown() {
      closePicker();
      for (const b of D.blocks.values()) destroyCharts(b);
      D.blocks.clear();
      for (const t of D.tails.values()) t.tail.stop();
      D.tails.clear();
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
        ['overview', 'metrics', 'logs'].map((t) => h('button', {
          type: 'button', class: 'tab', role: 'tab', dataset: { tab: t },
          onclick: () => showTab(t),
        }, t[0].toUpperCase() + t.slice(1))));
      const body = h('div', { class: 'drawer-body' });
      const panes = {
        overview: h('div', { class: 'pane', dataset: { pane: 'overview' } }),
        metrics: h('div', { class: 'pane', dataset: { pane: 'metrics' } }),
        logs: h('div', { class: 'pane', dataset: { pane: 'logs' } }),
      };
      body.append(panes.overview, panes.metrics, panes.logs);
      el.append(
        h('div', { class: 'drawer-head' },
          h('div', { class: 'drawer-title' }, pill, title,
            h('button', { type: 'button', class: 'btn btn-ghost drawer-close', title: 'Close (Esc)', 'aria-label': 'Close', onclick: close }, '×')),
          sub, actions, tabs),
        body);
      D.els = { title, pill, sub, actions, tabs, body, panes };
      D.resize = new ResizeObserver(() => resizeCharts());
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
      if (s.run_id) acts.push(h('button', { type: 'button', class: 'btn btn-sm', onclick: () => Monitor.addLatest(s.id) }, 'Monitor'));
      if (s.status === 'Error' || s.status === 'Finished') acts.push(actBtn(s, 'retry'));
      if (s.status === 'Running') acts.push(actBtn(s, 'terminate'));
      if (s.status === 'Pending') acts.push(actBtn(s, 'cancel'));
      if (s.status !== 'Running') acts.push(actBtn(s, 'delete'));
      reconcile(actions, acts);
    }

    function actBtn(s, a) {
      const wire = a === 'cancel' ? 'terminate' : a;
      return h('button', {
        type: 'button', class: `btn btn-sm ${ACTION_CLASS[a]}`, dataset: { act: wire },
        disabled: S.busy.has(`${s.id}:${wire}`), onclick: () => doAction(s.id, a),
      }, ACTION_LABEL[a]);
    }

    function showTab(t) {
      D.tab = t;
      if (!D.els) return;
      for (const b of D.els.tabs.children) b.classList.toggle('on', b.dataset.tab === t);
      for (const [name, pane] of Object.entries(D.els.panes)) pane.hidden = name !== t;
      closePicker();
      // Only the visible tab polls.
      for (const t2 of D.tails.values()) {
        if (t === 'logs') {
          t2.tail.reveal();
          t2.tail.start(2000);
        } else {
          t2.tail.stop();
        }
      }
      if (D.detail) renderPane();
      if (t === 'metrics') requestAnimationFrame(resizeCharts);
    }

    async function reload() {
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
          close();
          return;
        }
        const pane = D.els.panes[D.tab];
        if (!D.detail) pane.replaceChildren(h('p', { class: 'err-note' }, `Cannot load ${id}: ${e.message}`));
      } finally {
        D.loading = false;
        if (D.reloadAgain) {
          D.reloadAgain = false;
          if (D.id === id) reload();
        }
      }
    }

    function renderPane() {
      if (D.tab === 'overview') renderOverview();
      else if (D.tab === 'metrics') renderMetrics();
      else renderLogs();
    }

    // -- overview

    function renderOverview() {
      const d = D.detail;
      const s = summary();
      const cfg = d.config || {};
      const st = d.status || {};
      const kv = [];
      const row = (k, v, cls) => {
        if (v == null || v === '' || (Array.isArray(v) && !v.length)) return;
        kv.push(h('dt', null, k), h('dd', { class: cls || null }, v));
      };
      row('Status', h('span', null, h('span', { class: `pill s-${s.status}` }, s.status), s.error ? `  ${s.error}` : ''));
      row('Directory', `${S.baseDir ? S.baseDir.replace(/\/$/, '') + '/' : ''}${s.id}`, 'mono');
      row('Command', cfg.command, 'mono');
      row('Current run', s.run_id, 'mono');
      row('Tags', (s.tags || []).length ? h('span', { class: 'tags' }, s.tags.map((t) => h('span', { class: 'tag' }, t))) : null);
      row('Description', s.description);
      row('GPUs', (s.gpus || []).join(', '));
      row('Created', s.created_at ? `${fmtTime(s.created_at)}` : null);
      row('Started', s.started_at ? fmtTime(s.started_at) : null);
      row('Finished', s.finished_at ? fmtTime(s.finished_at) : null);
      const elapsedEl = h('span', { class: 'js-elapsed' }, fmtDuration(elapsedOf(s)));
      row(s.status === 'Running' ? 'Elapsed' : 'Duration', elapsedOf(s) != null ? elapsedEl : null);
      row('Exit code', st.exit_code != null ? String(st.exit_code) : null, 'mono');
      row('PID', s.pid != null && s.status === 'Running' ? String(s.pid) : null, 'mono');
      row('Host', st.host || cfg.host || null, 'mono');
      row('Node', s.node, 'mono');
      row('Slurm job', s.slurm_job_id, 'mono');

      // Runs: the history in status.json plus the current run.
      const runs = [];
      for (const r of st.history || []) runs.push(r);
      if (st.run_id) {
        runs.push({ run_id: st.run_id, status: s.status, started_at: st.started_at, finished_at: st.finished_at, exit_code: st.exit_code, error: st.error, current: true });
      }
      const known = new Set(runs.map((r) => r.run_id));
      for (const r of d.runs || []) if (!known.has(r)) runs.push({ run_id: r });
      runs.sort((a, b) => runNum(b.run_id) - runNum(a.run_id));
      const logNames = new Set((d.logs || []).map((l) => l.name));
      const runTable = h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
        h('thead', null, h('tr', null, ['Run', 'Status', 'Started', 'Ended', 'Duration', 'Exit', 'Error', ''].map((c) => h('th', null, c)))),
        h('tbody', null, runs.map((r) => {
          const dur = r.started_at && r.finished_at ? (parseTime(r.finished_at) - parseTime(r.started_at)) / 1000 : null;
          const log = `${r.run_id}.log`;
          return h('tr', { class: r.current ? 'current' : null },
            h('td', { class: 'mono' }, r.run_id || ''),
            h('td', null, r.status ? h('span', { class: `pill s-${r.status}` }, r.status) : ''),
            h('td', null, fmtTime(r.started_at)),
            h('td', null, fmtTime(r.finished_at)),
            h('td', { class: 'num' }, fmtDuration(dur)),
            h('td', { class: 'num' }, r.exit_code != null ? String(r.exit_code) : ''),
            h('td', { title: r.error || '' }, r.error || ''),
            h('td', null, logNames.has(log)
              ? h('button', { type: 'button', class: 'btn btn-xs btn-ghost', onclick: () => Monitor.add(D.id, log, false) }, 'Monitor')
              : ''));
        }))));

      const pane = D.els.panes.overview;
      const wasOpen = (name) => {
        const old = pane.querySelector(`details[data-name="${name}"]`);
        return old ? old.open : true;
      };
      pane.replaceChildren(
        h('div', { class: 'section' }, h('dl', { class: 'kv' }, kv)),
        h('div', { class: 'section' }, h('h3', null, `Runs (${runs.length})`), runTable),
        h('div', { class: 'section' },
          h('details', { open: wasOpen('config'), dataset: { name: 'config' } }, h('summary', null, 'config.json'), jsonView(d.config)),
          h('details', { open: wasOpen('status'), dataset: { name: 'status' } }, h('summary', null, 'status.json'), jsonView(d.status))));
    }

    function tick() {
      if (!D.id || D.tab !== 'overview' || !D.els) return;
      const s = summary();
      if (!s || s.status !== 'Running') return;
      const e = D.els.panes.overview.querySelector('.js-elapsed');
      if (e) e.textContent = fmtDuration(elapsedOf(s));
    }

    // -- metrics

    function sortedTables() {
      const s = summary();
      const cur = s && s.run_id;
      const tables = (D.detail.tables || []).slice();
      const rank = (t) => (t.name === cur ? 0 : RUN_RE.test(t.name) ? 2 : 1);
      return tables.sort((a, b) => rank(a) - rank(b) ||
        (RUN_RE.test(a.name) ? runNum(b.name) - runNum(a.name) : a.name.localeCompare(b.name)));
    }

    function renderMetrics() {
      const pane = D.els.panes.metrics;
      const tables = sortedTables();
      if (!tables.length) {
        destroyAllBlocks();
        pane.replaceChildren(h('p', { class: 'note' }, 'No metrics tables yet. Rows saved with save_row() appear here.'));
        return;
      }
      if (!pane.querySelector('.compare-bar')) pane.replaceChildren(h('div', { class: 'compare-bar' }));
      renderCompareBar();
      const s = summary();
      const els = [pane.querySelector('.compare-bar')];
      const names = new Set();
      for (const t of tables) {
        names.add(t.name);
        let b = D.blocks.get(t.name);
        if (!b) {
          b = newBlock(t, t.name === (s && s.run_id) || !RUN_RE.test(t.name));
          D.blocks.set(t.name, b);
        }
        b.sizeLabel.textContent = fmtBytes(t.size);
        b.size = t.size;
        if (b.block.open && (b.loadedSize !== t.size || b.stale)) loadBlock(b, t.size);
        els.push(b.block);
      }
      for (const [name, b] of D.blocks) {
        if (!names.has(name)) {
          destroyCharts(b);
          D.blocks.delete(name);
        }
      }
      reconcile(pane, els);
    }

    function destroyAllBlocks() {
      for (const b of D.blocks.values()) destroyCharts(b);
      D.blocks.clear();
    }

    function newBlock(t, open) {
      const sizeLabel = h('span', { class: 'muted' });
      const chartsEl = h('div', { class: 'charts' });
      const previewEl = h('div');
      const note = h('div', { class: 'note' }, 'Loading…');
      const block = h('details', { class: 'table-block', dataset: { table: t.name }, open: open || null },
        h('summary', null, h('span', { class: 'mono' }, `${t.name}.csv`), sizeLabel),
        h('div', { class: 'inner' }, note, chartsEl, previewEl));
      const b = { name: t.name, block, sizeLabel, chartsEl, previewEl, note, charts: new Map(), loadedSize: null, stale: false, size: t.size, loading: false };
      block.addEventListener('toggle', () => {
        if (!block.open) return;
        if (b.loadedSize !== b.size || b.stale) loadBlock(b, b.size);
        else requestAnimationFrame(resizeCharts);
      });
      return b;
    }

    async function loadBlock(b, size) {
      b.size = size;
      if (b.loading) {
        b.pending = true;
        return;
      }
      b.loading = true;
      b.stale = false;
      const id = D.id;
      try {
        const force = b.loadedSize !== size;
        const [base, tail] = await Promise.all([
          fetchSeries(id, b.name, force),
          api('GET', expPath(id, 'tables', b.name), { tail: 20 }),
        ]);
        const overlays = await Promise.all(D.overlays.map(async (o) => {
          const table = overlayTable(o, b.name);
          if (!table) return null;
          try {
            return { o, table, series: await fetchSeries(o.exp, table, false) };
          } catch (e) {
            return null; // that experiment has no such table: nothing to overlay
          }
        }));
        if (D.id !== id || !D.blocks.has(b.name)) return;
        b.loadedSize = size;
        renderCharts(b, base, overlays.filter(Boolean));
        renderPreview(b, tail);
        b.note.hidden = true;
      } catch (e) {
        if (D.id !== id) return;
        b.note.hidden = false;
        b.note.className = 'err-note';
        b.note.textContent = `Cannot load ${b.name}: ${e.message}`;
      } finally {
        b.loading = false;
        if (b.pending) {
          b.pending = false;
          if (D.id === id) loadBlock(b, b.size);
        }
      }
    }

    function fetchSeries(exp, table, force) {
      const key = `${exp}/${table}`;
      const hit = D.seriesCache.get(key);
      if (hit && !force && Date.now() - hit.at < 10000) return hit.promise;
      const promise = api('GET', expPath(exp, 'tables', table, 'series'), { max_points: 2000 });
      D.seriesCache.set(key, { at: Date.now(), promise });
      promise.catch(() => D.seriesCache.delete(key));
      return promise;
    }

    /** Which table of an overlay source is drawn over a chart of this experiment's `table`:
     *  over a run table, the source's run; over a named table, the same-named table. */
    function overlayTable(o, table) {
      if (RUN_RE.test(table)) return o.exp === D.id && o.run === table ? null : o.run;
      return o.exp === D.id ? null : table;
    }

    function lineLabel(exp, table) {
      const others = D.overlays.some((o) => o.exp !== D.id);
      if (!others) return table;
      const s = S.exps.get(exp);
      return `${s ? s.name : exp} · ${table}`;
    }

    function renderCharts(b, base, overlays) {
      const numeric = Object.keys(base.series || {}).filter((c) =>
        c !== base.x && (base.series[c] || []).some((v) => toNum(v) != null));
      if (!numeric.length) {
        destroyCharts(b);
        b.chartsEl.replaceChildren(h('p', { class: 'note' }, 'No numeric columns to chart.'));
        return;
      }
      if (typeof window.uPlot !== 'function') {
        b.chartsEl.replaceChildren(h('p', { class: 'err-note' }, 'The chart library (uplot.min.js) did not load.'));
        return;
      }
      const keep = new Set();
      const els = [];
      for (const col of numeric) {
        const lines = [{ label: lineLabel(D.id, b.name), color: COLORS[0], x: base.x_values || [], y: base.series[col] }];
        for (const { o, table, series } of overlays) {
          if (series.series && series.series[col]) {
            lines.push({ label: o.exp === D.id ? table : lineLabel(o.exp, table), color: o.color, x: series.x_values || [], y: series.series[col] });
          }
        }
        const sig = lines.map((l) => `${l.label}|${l.color}`).join('\n') + `\n${base.x}`;
        let c = b.charts.get(col);
        if (c && c.sig === sig) {
          c.u.setData(align(lines));
        } else {
          if (c) c.u.destroy();
          const body = h('div', { class: 'chart-body' });
          const wrap = h('div', { class: 'chart', dataset: { column: col } }, h('div', { class: 'chart-title', title: `${col} against ${base.x}` }, col), body);
          c = { wrap, body, sig, u: null, lines };
          b.charts.set(col, c);
          // uPlot measures its container: mount first, then draw.
          if (!c.wrap.isConnected) b.chartsEl.append(c.wrap);
          c.u = makeChart(body, base.x || 'row', lines);
        }
        keep.add(col);
        els.push(c.wrap);
      }
      for (const [col, c] of b.charts) {
        if (!keep.has(col)) {
          c.u.destroy();
          b.charts.delete(col);
        }
      }
      reconcile(b.chartsEl, els);
      resizeCharts();
    }

    function resizeCharts() {
      for (const b of D.blocks.values()) {
        for (const c of b.charts.values()) {
          const w = Math.floor(c.body.clientWidth);
          if (w > 0 && c.u && Math.abs(c.u.width - w) > 1) c.u.setSize({ width: w, height: 170 });
        }
      }
    }

    function destroyCharts(b) {
      for (const c of b.charts.values()) if (c.u) c.u.destroy();
      b.charts.clear();
    }

    function renderPreview(b, tail) {
      const cols = tail.columns || [];
      const types = tail.types || [];
      const rows = tail.rows || [];
      if (!cols.length) {
        b.previewEl.replaceChildren(h('p', { class: 'note' }, 'The table is empty.'));
        return;
      }
      const numeric = types.map((t) => t === 'int' || t === 'float');
      const wrap = b.previewEl.querySelector('.table-wrap');
      const stuck = !wrap || wrap.scrollTop + wrap.clientHeight >= wrap.scrollHeight - 4;
      b.previewEl.replaceChildren(
        h('div', { class: 'section-head' }, h('h3', null, `Last ${rows.length} row${rows.length === 1 ? '' : 's'}`)),
        h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
          h('thead', null, h('tr', null, cols.map((c) => h('th', null, c)))),
          h('tbody', null, rows.map((r) => h('tr', null, cols.map((_, i) => {
            const v = r[i];
            return h('td', { class: numeric[i] || typeof v === 'number' ? 'num' : null, title: v == null ? '' : String(v) },
              v == null ? '' : typeof v === 'number' ? fmtNum(v) : String(v));
          })))))));
      // The newest row is the last: show it (unless the reader scrolled up to look at others).
      const fresh = b.previewEl.querySelector('.table-wrap');
      if (stuck) fresh.scrollTop = fresh.scrollHeight;
    }

    function renderCompareBar() {
      const bar = D.els.panes.metrics.querySelector('.compare-bar');
      const base = summary();
      const chips = [h('span', { class: 'muted' }, 'Overlay:'),
        h('span', { class: 'chip', title: base ? base.id : '' }, h('span', { class: 'swatch', style: `background:${COLORS[0]}` }), 'this experiment')];
      for (const o of D.overlays) {
        chips.push(h('span', { class: 'chip', dataset: { overlay: `${o.exp}/${o.run}` } },
          h('span', { class: 'swatch', style: `background:${o.color}` }), o.label,
          h('button', { type: 'button', title: 'Remove', 'aria-label': `Remove ${o.label}`, onclick: () => removeOverlay(o) }, '×')));
      }
      chips.push(h('button', { type: 'button', class: 'btn btn-sm', id: 'compare-btn', onclick: (e) => togglePicker(e.currentTarget) }, '+ Compare with…'));
      bar.replaceChildren(...chips);
    }

    function addOverlay(exp, run) {
      if (D.overlays.some((o) => o.exp === exp && o.run === run)) return;
      const used = new Set(D.overlays.map((o) => o.color));
      const color = COLORS.slice(1).find((c) => !used.has(c)) || COLORS[(D.overlays.length + 1) % COLORS.length];
      const s = S.exps.get(exp);
      const label = exp === D.id ? run : `${s ? s.name : exp} · ${run}`;
      D.overlays.push({ exp, run, color, label });
      refreshAllBlocks();
    }

    function removeOverlay(o) {
      D.overlays = D.overlays.filter((x) => x !== o);
      refreshAllBlocks();
    }

    function refreshAllBlocks() {
      renderCompareBar();
      for (const b of D.blocks.values()) {
        b.stale = true;
        if (b.block.open) loadBlock(b, b.size);
      }
      if (D.picker) renderPicker();
    }

    // The "compare with" picker: other runs of this experiment, then other experiments.
    function togglePicker(anchor) {
      if (D.picker) {
        closePicker();
        return;
      }
      const input = h('input', { type: 'search', placeholder: 'Search experiments…', 'aria-label': 'Search experiments' });
      const list = h('div', { class: 'picker-list' });
      const box = h('div', { class: 'picker', id: 'compare-picker' }, input, list);
      const r = anchor.getBoundingClientRect();
      const host = D.els.body;
      const hr = host.getBoundingClientRect();
      box.style.left = `${Math.max(8, r.left - hr.left)}px`;
      box.style.top = `${r.bottom - hr.top + host.scrollTop + 4}px`;
      host.style.position = 'relative';
      host.append(box);
      D.picker = { box, input, list, expanded: new Map() };
      input.addEventListener('input', debounce(renderPicker, 100));
      renderPicker();
      input.focus();
    }

    function closePicker() {
      if (D.picker) D.picker.box.remove();
      D.picker = null;
    }

    function renderPicker() {
      const P = D.picker;
      if (!P) return;
      const q = P.input.value.trim().toLowerCase();
      const has = (exp, run) => D.overlays.some((o) => o.exp === exp && o.run === run);
      const items = [];
      const cur = summary();
      const ownRuns = (D.detail.runs || []).filter((r) => r !== (cur && cur.run_id)).sort((a, b) => runNum(b) - runNum(a));
      if (ownRuns.length && (!q || 'this experiment'.includes(q) || ownRuns.some((r) => r.includes(q)))) {
        items.push(h('h4', null, 'Runs of this experiment'));
        items.push(h('div', { class: 'pick-runs' }, ownRuns.map((r) => h('button', {
          type: 'button', class: `btn btn-xs${has(D.id, r) ? ' on' : ''}`, dataset: { pickRun: r },
          onclick: () => (has(D.id, r) ? removeOverlay(D.overlays.find((o) => o.exp === D.id && o.run === r)) : addOverlay(D.id, r)),
        }, r))));
      }
      const others = [];
      for (const s of S.exps.values()) {
        if (s.id === D.id || !s.run_id) continue;
        if (q && !s._hay.includes(q)) continue;
        others.push(s);
      }
      others.sort((a, b) => (b._start || b._created) - (a._start || a._created));
      items.push(h('h4', null, `Other experiments${others.length > 50 ? ` (50 of ${others.length})` : ''}`));
      if (!others.length) items.push(h('p', { class: 'note', style: 'margin:4px 8px' }, 'No other experiment matches.'));
      for (const s of others.slice(0, 50)) {
        items.push(h('button', {
          type: 'button', class: 'pick', dataset: { pickExp: s.id }, title: `Overlay ${s.name} ${s.run_id}`,
          onclick: () => (has(s.id, s.run_id) ? null : addOverlay(s.id, s.run_id)),
        }, h('span', { class: `pill s-${s.status}` }, s.status[0]), h('span', { class: 'name' }, s.name),
        h('span', { class: 'meta' }, s.run_id)));
        if (s.runs > 1) {
          const runs = P.expanded.get(s.id);
          if (runs) {
            items.push(h('div', { class: 'pick-runs' }, runs.map((r) => h('button', {
              type: 'button', class: `btn btn-xs${has(s.id, r) ? ' on' : ''}`, onclick: () => addOverlay(s.id, r),
            }, r))));
          } else {
            items.push(h('div', { class: 'pick-runs' }, h('button', {
              type: 'button', class: 'btn btn-xs btn-ghost', onclick: () => expandRuns(s.id),
            }, `all ${s.runs} runs…`)));
          }
        }
      }
      P.list.replaceChildren(...items);
    }

    async function expandRuns(exp) {
      try {
        const d = await api('GET', expPath(exp));
        if (!D.picker) return;
        D.picker.expanded.set(exp, (d.runs || []).slice().sort((a, b) => runNum(b) - runNum(a)));
        renderPicker();
      } catch (e) {
        toast(`Cannot list the runs of ${exp}: ${e.message}`, 'err');
      }
    }

    // -- logs

    function renderLogs() {
      const pane = D.els.panes.logs;
      const logs = (D.detail.logs || []).slice();
      const s = summary();
      const cur = s && s.run_id ? `${s.run_id}.log` : null;
      const rank = (n) => (n === cur ? 0 : n === 'experiment.log' ? 1 : 2);
      logs.sort((a, b) => rank(a.name) - rank(b.name) || runNum(b.name) - runNum(a.name) || a.name.localeCompare(b.name));
      if (!logs.length) {
        pane.replaceChildren(h('p', { class: 'note' }, 'No logs yet.'));
        return;
      }
      const els = [];
      const names = new Set();
      for (const l of logs) {
        names.add(l.name);
        let t = D.tails.get(l.name);
        if (!t) {
          const pre = h('pre', { class: 'log', tabindex: '0' });
          const size = h('span', { class: 'muted' });
          const block = h('div', { class: 'log-block', dataset: { log: l.name } },
            h('div', { class: 'log-head' }, h('span', { class: 'name' }, l.name), size, h('span', { class: 'spacer' }),
              h('button', { type: 'button', class: 'btn btn-xs', title: 'Open in the monitor', onclick: () => Monitor.add(D.id, l.name, l.name === cur) }, 'Monitor'),
              h('button', { type: 'button', class: 'btn btn-xs btn-ghost', title: 'Scroll to the end and follow', onclick: () => tail.toEnd() }, 'End')),
            pre);
          const tail = new LogTail(D.id, l.name, pre);
          tail.onUpdate = (x) => { size.textContent = fmtBytes(x.size); };
          t = { tail, el: block };
          D.tails.set(l.name, t);
          if (D.tab === 'logs') tail.start(2000);
        }
        els.push(t.el);
      }
      for (const [name, t] of D.tails) {
        if (!names.has(name)) {
          t.tail.stop();
          D.tails.delete(name);
        }
      }
      reconcile(pane, els);
    }

    // -- changes from the poll

    function onChanges(changed, removed) {
      if (!D.id) return;
      if (removed.includes(D.id)) {
        close();
        return;
      }
      if (changed.has(D.id)) {
        renderHead();
        reload();
      }
      if (D.picker) renderPicker();
    }

    return {
      open, close, reload, onChanges, tick,
      get id() { return D.id; },
      get picker() { return D.picker; },
      closePicker,
    };
  })();

  function runNum(name) {
    const m = /run_(\d+)/.exec(name || '');
    return m ? Number(m[1]) : -1;
  }

  function jsonView(value) {
    const pre = h('pre', { class: 'json' });
    const text = value === undefined ? 'null' : JSON.stringify(value, null, 2);
    const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;
    let last = 0;
    for (const m of text.matchAll(re)) {
      if (m.index > last) pre.append(text.slice(last, m.index));
      if (m[1]) {
        pre.append(h('span', { class: m[2] ? 'k' : 's' }, m[1]));
        if (m[2]) pre.append(m[2]);
      } else if (m[3]) {
        pre.append(h('span', { class: 'b' }, m[3]));
      } else {
        pre.append(h('span', { class: 'n' }, m[4]));
      }
      last = m.index + m[0].length;
    }
    if (last < text.length) pre.append(text.slice(last));
    return pre;
  }

  // ---------------------------------------------------------------- monitor

  const Monitor = (() => {
    const STORE = 'expman.monitor.v1';
    const M = { wins: [], cols: 2, page: 0, open: false, tall: false };
    const panel = $('#monitor');
    const grid = $('#monitor-grid');

    function load() {
      try {
        const saved = JSON.parse(localStorage.getItem(STORE) || 'null');
        if (!saved) return;
        M.cols = [1, 2, 3].includes(saved.cols) ? saved.cols : 2;
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
          h('button', { type: 'button', class: 'btn btn-xs btn-ghost', title: 'Open the experiment', onclick: () => Drawer.open(w.id) }, 'Details'),
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
    function addLatest(id) {
      const s = S.exps.get(id);
      if (!s || !s.run_id) {
        toast('This experiment has no run log yet', 'err');
        return;
      }
      add(id, `${s.run_id}.log`, true);
    }

    function add(id, file, latest) {
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
      grid.style.setProperty('--cols', String(M.cols));
      const first = M.page * M.cols;
      const visible = M.wins.slice(first, first + M.cols);
      reconcile(grid, visible.map((w) => w.el));
      for (const w of visible) w.tail.reveal();
      grid.hidden = !n;
      $('#monitor-empty').hidden = n > 0;
      for (const w of M.wins) {
        // Only the windows on screen poll; the others catch up (or jump to the tail) when shown.
        if (M.open && visible.includes(w) && !w.removed) {
          if (!w.polling) {
            w.polling = true;
            w.tail.start(1000);
          }
        } else if (w.polling) {
          w.polling = false;
          w.tail.stop();
        }
      }
      $('#monitor-page').textContent = `${n ? M.page + 1 : 0} / ${n ? pages : 0}`;
      $('#monitor-prev').disabled = M.page <= 0;
      $('#monitor-next').disabled = M.page >= pages - 1;
      for (const b of panel.querySelectorAll('[data-cols]')) b.classList.toggle('on', Number(b.dataset.cols) === M.cols);
      $('#monitor-summary').textContent = n ? `${n} window${n === 1 ? '' : 's'}` : '';
      const badge = $('#monitor-count');
      badge.textContent = String(n);
      badge.classList.toggle('live', n > 0);
      $('#monitor-toggle').classList.toggle('on', M.open);
      save();
    }

    function onChanges(changed, removed) {
      let dirty = false;
      for (const w of M.wins) {
        if (removed.includes(w.id)) {
          if (!w.removed) {
            w.removed = true;
            w.tail.stop();
            w.polling = false;
            w.tail.mark('(the experiment was deleted)');
            dirty = true;
          }
          w.dot.className = 'dot';
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

    /** After the first listing: windows restored from storage whose experiment is gone close. */
    function prune() {
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

    function init() {
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

    function toggle() {
      M.open = !M.open;
      render();
    }

    return { init, add, addLatest, onChanges, prune, toggle };
  })();

  // ---------------------------------------------------------------- start

  function initFilter() {
    const input = $('#filter');
    const params = new URLSearchParams(location.search);
    input.value = params.get('q') || '';
    const apply = () => {
      S.terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
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
    S.terms = input.value.toLowerCase().split(/\s+/).filter(Boolean);
  }

  function initKeys() {
    document.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') {
        if ($('#confirm').open) return;
        if (Drawer.picker) Drawer.closePicker();
        else if (Drawer.id) Drawer.close();
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
    });
    document.addEventListener('click', (e) => {
      // composedPath, not closest: a click in the picker may re-render (detach) its target.
      const inside = e.composedPath().some((n) => n.id === 'compare-picker' || n.id === 'compare-btn');
      if (Drawer.picker && !inside) Drawer.closePicker();
    });
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) poll(false);
    });
  }

  async function start() {
    initBoard();
    initFilter();
    initKeys();
    Monitor.init();
    $('#refresh').addEventListener('click', () => poll(true));
    setInterval(tickClocks, 1000);
    setInterval(renderConn, 5000);
    renderConn();
    await poll(true);
    if (S.lastOk) Monitor.prune();
  }

  window.expman = { state: S, drawer: Drawer, monitor: Monitor, render: renderBoard }; // for the console
  start();
})();
