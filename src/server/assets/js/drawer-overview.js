/* The drawer's Overview tab: the experiment's facts (with, for a failed run, the last exception
 * line of its log), its runs (the history in status.json plus the current run, each with its
 * log), and its metadata: config.json and status.json as they are. */

import { h, fmtBytes, fmtDuration, fmtTime, parseTime, runNum, runIdOf } from './util.js';
import { apiUrl, expPath } from './api.js';
import { S, elapsedOf } from './state.js';
import { followLog } from './commands.js';

export class OverviewPane {
  /** `ctx`: the drawer ({id, detail, summary()}); `el`: the pane's element. */
  constructor(ctx, el) {
    this.ctx = ctx;
    this.el = el;
  }

  render() {
    const d = this.ctx.detail;
    const s = this.ctx.summary();
    const runs = runsOf(d, s);
    const wasOpen = (name) => {
      const old = this.el.querySelector(`details[data-name="${name}"]`);
      return old ? old.open : true;
    };
    this.el.replaceChildren(
      h('div', { class: 'section' }, h('dl', { class: 'kv' }, facts(s, d.config || {}, d.status || {}))),
      h('div', { class: 'section' }, h('h3', null, `Runs (${runs.length})`), this.runTable(runs, d)),
      checkpoints(this.ctx.id, d.checkpoints),
      // The seed kept this in one metadata.json; expman splits what was asked (config.json)
      // from what happened (status.json). The heading keeps the seed's name for it.
      h('div', { class: 'section', dataset: { section: 'metadata' } },
        h('div', { class: 'section-head' }, h('h3', null, 'Metadata'),
          h('span', { class: 'note' }, 'config.json: what was asked · status.json: what happened')),
        h('details', { open: wasOpen('config'), dataset: { name: 'config' } }, h('summary', null, 'config.json'), jsonView(d.config)),
        h('details', { open: wasOpen('status'), dataset: { name: 'status' } }, h('summary', null, 'status.json'), jsonView(d.status))));
  }

  runTable(runs, d) {
    const logNames = new Set((d.logs || []).map((l) => l.name));
    const id = this.ctx.id;
    return h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
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
            ? h('button', { type: 'button', class: 'btn btn-xs btn-ghost', onclick: () => followLog(id, log, false) }, 'Monitor')
            : ''));
      }))));
  }

  /** Updates the running clock (every second). */
  tick() {
    const s = this.ctx.summary();
    if (!s || s.status !== 'Running') return;
    const e = this.el.querySelector('.js-elapsed');
    if (e) e.textContent = fmtDuration(elapsedOf(s));
  }
}

/** The key/value list at the top: status, where, what, when. */
function facts(s, cfg, st) {
  const kv = [];
  const row = (k, v, cls) => {
    if (v == null || v === '' || (Array.isArray(v) && !v.length)) return;
    kv.push(h('dt', null, k), h('dd', { class: cls || null }, v));
  };
  row('Status', h('span', null, h('span', { class: `pill s-${s.status}` }, s.status), s.error ? `  ${s.error}` : ''));
  row('Exception', s.status === 'Error' ? s.exception : null, 'mono exception');
  row('Metrics', s.metrics_error ? `unreadable: ${s.metrics_error}` : null, 'mono exception');
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
  return kv;
}

/** The runs, newest first: the history in status.json, the current run, and any other run the
 *  directory holds (a table or log without a history entry). */
function runsOf(d, s) {
  const st = d.status || {};
  const runs = [];
  for (const r of st.history || []) runs.push(r);
  if (st.run_id) {
    runs.push({ run_id: st.run_id, status: s.status, started_at: st.started_at, finished_at: st.finished_at, exit_code: st.exit_code, error: st.error, current: true });
  }
  const known = new Set(runs.map((r) => r.run_id));
  for (const r of (d.runs || []).map(runIdOf)) if (!known.has(r)) runs.push({ run_id: r });
  runs.sort((a, b) => runNum(b.run_id) - runNum(a.run_id));
  return runs;
}

/** JSON, indented, with keys, strings, numbers and literals marked for colour. */
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

/** The files under checkpoints/ with their sizes, each a download (the server streams it). */
function checkpoints(id, list) {
  if (!list || !list.length) return '';
  return h('div', { class: 'section', dataset: { section: 'checkpoints' } },
    h('h3', null, `Checkpoints (${list.length})`),
    h('div', { class: 'table-wrap' }, h('table', { class: 'grid' },
      h('thead', null, h('tr', null, ['File', 'Size', 'Modified'].map((c) => h('th', null, c)))),
      h('tbody', null, list.map((c) => h('tr', null,
        h('td', { class: 'mono' }, h('a', { href: apiUrl(expPath(id, 'checkpoints', ...c.name.split('/'))), download: c.name.split('/').pop() }, c.name)),
        h('td', { class: 'num', title: `${c.size} bytes` }, fmtBytes(c.size)),
        h('td', null, c.mtime ? fmtTime(new Date(c.mtime * 1000).toISOString()) : '')))))));
}
