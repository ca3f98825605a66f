/* The drawer's Logs tab: every log of the experiment (the current run's first, then
 * experiment.log, then older runs), each tailed live while the tab is shown. */

import { h, reconcile, fmtBytes, runNum } from './util.js';
import { LogTail } from './logtail.js';
import { followLog } from './commands.js';

const POLL_MS = 2000;

export class LogsPane {
  /** `ctx`: the drawer ({id, detail, summary()}); `el`: the pane's element. */
  constructor(ctx, el) {
    this.ctx = ctx;
    this.el = el;
    this.tails = new Map(); // log name -> { tail, el }
    this.active = false;
  }

  render() {
    const logs = this.sortedLogs();
    if (!logs.length) {
      this.el.replaceChildren(h('p', { class: 'note' }, 'No logs yet.'));
      return;
    }
    const names = new Set(logs.map((l) => l.name));
    const els = logs.map((l) => (this.tails.get(l.name) || this.newLog(l.name)).el);
    for (const [name, t] of this.tails) {
      if (!names.has(name)) {
        t.tail.stop();
        this.tails.delete(name);
      }
    }
    reconcile(this.el, els);
  }

  sortedLogs() {
    const logs = (this.ctx.detail.logs || []).slice();
    const cur = this.currentLog();
    const rank = (n) => (n === cur ? 0 : n === 'experiment.log' ? 1 : 2);
    return logs.sort((a, b) => rank(a.name) - rank(b.name) || runNum(b.name) - runNum(a.name) || a.name.localeCompare(b.name));
  }

  currentLog() {
    const s = this.ctx.summary();
    return s && s.run_id ? `${s.run_id}.log` : null;
  }

  newLog(name) {
    const id = this.ctx.id;
    const pre = h('pre', { class: 'log', tabindex: '0' });
    const size = h('span', { class: 'muted' });
    const tail = new LogTail(id, name, pre);
    const latest = name === this.currentLog();
    const el = h('div', { class: 'log-block', dataset: { log: name } },
      h('div', { class: 'log-head' }, h('span', { class: 'name' }, name), size, h('span', { class: 'spacer' }),
        h('button', { type: 'button', class: 'btn btn-xs', title: 'Open in the monitor', onclick: () => followLog(id, name, latest) }, 'Monitor'),
        h('button', { type: 'button', class: 'btn btn-xs btn-ghost', title: 'Scroll to the end and follow', onclick: () => tail.toEnd() }, 'End')),
      pre);
    tail.onUpdate = (x) => { size.textContent = fmtBytes(x.size); };
    const t = { tail, el };
    this.tails.set(name, t);
    if (this.active) tail.start(POLL_MS);
    return t;
  }

  /** Only the shown tab polls its logs. */
  setActive(active) {
    this.active = active;
    for (const t of this.tails.values()) {
      if (active) {
        t.tail.reveal();
        t.tail.start(POLL_MS);
      } else {
        t.tail.stop();
      }
    }
  }

  teardown() {
    for (const t of this.tails.values()) t.tail.stop();
    this.tails.clear();
  }
}
