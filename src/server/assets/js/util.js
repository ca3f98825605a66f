/* Helpers every module uses: the element builder, list reconciliation, and formatting of
 * numbers, sizes, times and durations. No state, no requests.
 *
 * Every piece of data from the server goes into the page as text (textContent, or a string
 * child of h()), never as HTML. */

export const $ = (sel, root) => (root || document).querySelector(sel);

/** Builds an element: h('div', {class: 'x', onclick: f}, child, 'text', [more]). */
export function h(tag, attrs, ...children) {
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
export function reconcile(container, els) {
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

export function fmtDuration(s) {
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

export function fmtNum(v) {
  if (v == null) return '—';
  if (typeof v === 'boolean') return String(v);
  if (typeof v !== 'number') return String(v);
  if (!isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(3);
  return String(parseFloat(v.toPrecision(5)));
}

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const now = new Date();
  const time = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  if (d.toDateString() === now.toDateString()) return time;
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${time}`;
}

export function fmtBytes(n) {
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

export const parseTime = (iso) => {
  const t = iso ? Date.parse(iso) : NaN;
  return isNaN(t) ? null : t;
};

export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

/** Whether a key event goes to a text field (page shortcuts then stay quiet). */
export const isTyping = (e) => {
  const t = e.target;
  return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
};

/** A run table's name: run_0001, run_0002, ... */
export const RUN_RE = /^run_\d+$/;

/** The number of a run id or a run's file name (`run_0007.log` is 7); -1 for other names. */
export function runNum(name) {
  const m = /run_(\d+)/.exec(name || '');
  return m ? Number(m[1]) : -1;
}

/** A run of the details endpoint's `runs`: its id, whether the server sends names
 *  ("run_0001") or objects carrying params and summaries ({run_id, params, metrics}). */
export const runIdOf = (r) => (typeof r === 'string' ? r : (r && (r.run_id || r.id || r.name)) || '');
