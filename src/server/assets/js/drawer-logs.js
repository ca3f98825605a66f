/* The drawer's Logs tab: every log of the experiment (the current run's first, then
 * experiment.log, then older runs), each tailed live while the tab is shown, with paging back
 * to the first byte, a jump to the start or the end, a search of the whole file on the server
 * (matches listed by line, each a jump), a download link and a wrap toggle. */

import { h, reconcile, fmtBytes, runNum } from './util.js';
import { api, apiUrl, expPath } from './api.js';
import { toast } from './notify.js';
import { LogTail } from './logtail.js';
import { followLog } from './commands.js';
import { collapseCR, plainState, renderAnsi } from './ansi.js';

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
    const olderBtn = h('button', { type: 'button', class: 'btn btn-xs', dataset: { act: 'older' }, title: 'Show the page before the first line shown',
      onclick: () => tail.older().catch((e) => toast(`Cannot page back: ${e.message}`, 'err')) }, '↑ Older');
    const newerBtn = h('button', { type: 'button', class: 'btn btn-xs', dataset: { act: 'newer' }, hidden: true, title: 'Show the next page',
      onclick: () => tail.newer().then(update).catch((e) => toast(`Cannot page on: ${e.message}`, 'err')) }, '↓ Newer');
    const matches = h('div', { class: 'log-matches', hidden: true });
    const search = h('input', { type: 'search', class: 'log-search', placeholder: 'Search the whole log…', 'aria-label': `Search ${name}`,
      onkeydown: (e) => {
        if (e.key === 'Enter') this.search(t, search.value, matches);
      } });
    const wrapBtn = h('button', { type: 'button', class: 'btn btn-xs btn-ghost', dataset: { act: 'wrap' }, title: 'Wrap long lines',
      onclick: () => {
        pre.classList.toggle('wrap');
        wrapBtn.classList.toggle('on', pre.classList.contains('wrap'));
      } }, 'Wrap');
    const el = h('div', { class: 'log-block', dataset: { log: name } },
      h('div', { class: 'log-head' }, h('span', { class: 'name' }, name), size, h('span', { class: 'spacer' }), search,
        h('button', { type: 'button', class: 'btn btn-xs', dataset: { act: 'start' }, title: 'Show the first page of the file',
          onclick: () => tail.jumpTo(0).then(update).catch((e) => toast(`Cannot read ${name}: ${e.message}`, 'err')) }, 'Start'),
        olderBtn, newerBtn,
        h('button', { type: 'button', class: 'btn btn-xs btn-ghost', dataset: { act: 'end' }, title: 'Go to the end and follow it live',
          onclick: () => {
            if (tail.browsing) tail.live(POLL_MS);
            else tail.toEnd();
            update();
          } }, 'End'),
        wrapBtn,
        h('a', { class: 'btn btn-xs btn-ghost', dataset: { act: 'download' }, href: apiUrl(expPath(id, 'logs', name), { download: 1 }), download: name, title: 'Download the whole file' }, 'Download'),
        h('button', { type: 'button', class: 'btn btn-xs', title: 'Open in the monitor', onclick: () => followLog(id, name, latest) }, 'Monitor')),
      matches, pre);
    const update = () => {
      size.textContent = tail.size == null ? '' : `${fmtBytes(tail.size)}${tail.first > 0 ? ` · from byte ${tail.first.toLocaleString('en-US')}` : ''}`;
      olderBtn.disabled = !(tail.first > 0);
      newerBtn.hidden = !tail.browsing;
      newerBtn.disabled = !(tail.end < tail.size);
      el.dataset.first = String(tail.first);
    };
    tail.onUpdate = update;
    const t = { tail, el, name };
    this.tails.set(name, t);
    if (this.active) tail.start(POLL_MS);
    return t;
  }

  /** Searches the whole file on the server; lists the matching lines, each a jump to it.
   *  `from`: the next page of matches (lines starting at or after that byte), appended. */
  async search(t, q, box, from) {
    if (!q) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    if (from == null) box.replaceChildren(h('p', { class: 'note' }, 'Searching…'));
    let r;
    try {
      r = await api('GET', expPath(this.ctx.id, 'logs', t.name), { search: q, max: 200, from: from || null });
    } catch (e) {
      box.replaceChildren(h('p', { class: 'err-note' }, `Search failed: ${e.message}`));
      return;
    }
    if (from != null) {
      const more = box.querySelector('.log-more');
      if (more) more.remove();
      box.append(...this.matchItems(t, r));
      return;
    }
    const head = h('div', { class: 'log-matches-head' },
      `${r.count.toLocaleString('en-US')} matching line${r.count === 1 ? '' : 's'}${r.truncated ? ` (first ${r.matches.length} listed)` : ''}`,
      h('button', { type: 'button', class: 'btn btn-xs btn-ghost', onclick: () => { box.hidden = true; } }, 'Close'));
    box.replaceChildren(head, ...this.matchItems(t, r));
  }

  /** The listed matches of answer `r`, and a button for the next ones when there are more. */
  matchItems(t, r) {
    const items = r.matches.map((m) => h('button', {
      type: 'button', class: 'log-match', dataset: { line: m.line, offset: m.offset },
      onclick: () => t.tail.jumpTo(m.offset).then(() => t.tail.onUpdate(t.tail)).catch((e) => toast(`Cannot read ${t.name}: ${e.message}`, 'err')),
    // In the log's colours, as the log shows the line (its escape codes were printed raw).
    }, h('span', { class: 'ln' }, String(m.line)), h('span', { class: 'tx' }, renderAnsi(collapseCR(m.text), plainState()))));
    if (r.truncated && r.matches.length) {
      const next = r.matches[r.matches.length - 1].offset + 1;
      items.push(h('button', { type: 'button', class: 'btn btn-xs btn-ghost log-more', onclick: (e) => this.search(t, r.search, e.currentTarget.parentNode, next) }, 'More matches…'));
    }
    return items;
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
