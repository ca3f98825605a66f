/* Comparing in the drawer's Metrics tab: the overlays (other runs of this experiment, or runs
 * of other experiments, drawn over each chart), their chips, and the "compare with" picker. */

import { h, debounce, RUN_RE, runNum, runIdOf } from './util.js';
import { api, expPath } from './api.js';
import { S } from './state.js';
import { toast } from './notify.js';
import { COLORS } from './charts.js';

const PICKER_MAX = 50; // other experiments listed at once

export class Compare {
  /** `ctx`: the drawer ({id, detail, summary(), body}); `onChange`: the overlays changed. */
  constructor(ctx, onChange) {
    this.ctx = ctx;
    this.onChange = onChange;
    this.overlays = []; // [{exp, run, color, label}]
    this.picker = null;
    this.bar = h('div', { class: 'compare-bar' });
  }

  has(exp, run) {
    return this.overlays.some((o) => o.exp === exp && o.run === run);
  }

  add(exp, run) {
    if (this.has(exp, run)) return;
    const used = new Set(this.overlays.map((o) => o.color));
    const color = COLORS.slice(1).find((c) => !used.has(c)) || COLORS[(this.overlays.length + 1) % COLORS.length];
    const s = S.exps.get(exp);
    const label = exp === this.ctx.id ? run : `${s ? s.name : exp} · ${run}`;
    this.overlays.push({ exp, run, color, label });
    this.changed();
  }

  /** Overlays a set of runs of other experiments at once (the table's Compare): one redraw. */
  addMany(list) {
    const cur = this.ctx.summary();
    for (const { exp, run } of list) {
      if (!run || this.has(exp, run) || (exp === this.ctx.id && cur && run === cur.run_id)) continue;
      const used = new Set(this.overlays.map((o) => o.color));
      const color = COLORS.slice(1).find((c) => !used.has(c)) || COLORS[(this.overlays.length + 1) % COLORS.length];
      const s = S.exps.get(exp);
      this.overlays.push({ exp, run, color, label: exp === this.ctx.id ? run : `${s ? s.name : exp} · ${run}` });
    }
    this.changed();
  }

  remove(o) {
    this.overlays = this.overlays.filter((x) => x !== o);
    this.changed();
  }

  changed() {
    this.renderBar();
    this.onChange();
    if (this.picker) this.renderPicker();
  }

  /** Which table of an overlay is drawn over a chart of this experiment's `table`: over a run
   *  table, the overlay's run; over a named table, the same-named table (null: none). */
  tableFor(o, table) {
    if (RUN_RE.test(table)) return o.exp === this.ctx.id && o.run === table ? null : o.run;
    return o.exp === this.ctx.id ? null : table;
  }

  /** A line's legend label: the table alone, or with its experiment's name once other
   *  experiments are overlaid. */
  lineLabel(exp, table) {
    const others = this.overlays.some((o) => o.exp !== this.ctx.id);
    if (!others) return table;
    const s = S.exps.get(exp);
    return `${s ? s.name : exp} · ${table}`;
  }

  renderBar() {
    const base = this.ctx.summary();
    const chips = [h('span', { class: 'muted' }, 'Overlay:'),
      h('span', { class: 'chip', title: base ? base.id : '' }, h('span', { class: 'swatch', style: `background:${COLORS[0]}` }), 'this experiment')];
    for (const o of this.overlays) {
      chips.push(h('span', { class: 'chip', dataset: { overlay: `${o.exp}/${o.run}` } },
        h('span', { class: 'swatch', style: `background:${o.color}` }), o.label,
        h('button', { type: 'button', title: 'Remove', 'aria-label': `Remove ${o.label}`, onclick: () => this.remove(o) }, '×')));
    }
    chips.push(h('button', { type: 'button', class: 'btn btn-sm', id: 'compare-btn', onclick: (e) => this.togglePicker(e.currentTarget) }, '+ Compare with…'));
    this.bar.replaceChildren(...chips);
  }

  togglePicker(anchor) {
    if (this.picker) {
      this.closePicker();
      return;
    }
    const input = h('input', { type: 'search', placeholder: 'Search experiments…', 'aria-label': 'Search experiments' });
    const list = h('div', { class: 'picker-list' });
    const box = h('div', { class: 'picker', id: 'compare-picker' }, input, list);
    const r = anchor.getBoundingClientRect();
    const host = this.ctx.body;
    const hr = host.getBoundingClientRect();
    box.style.left = `${Math.max(8, r.left - hr.left)}px`;
    box.style.top = `${r.bottom - hr.top + host.scrollTop + 4}px`;
    host.style.position = 'relative';
    host.append(box);
    this.picker = { box, input, list, expanded: new Map() };
    input.addEventListener('input', debounce(() => this.renderPicker(), 100));
    this.renderPicker();
    input.focus();
  }

  closePicker() {
    if (this.picker) this.picker.box.remove();
    this.picker = null;
  }

  renderPicker() {
    const P = this.picker;
    if (!P) return;
    const q = P.input.value.trim().toLowerCase();
    P.list.replaceChildren(...this.ownRunItems(q), ...this.otherItems(q));
  }

  /** The picker's first part: the other runs of this experiment. */
  ownRunItems(q) {
    const id = this.ctx.id;
    const cur = this.ctx.summary();
    const ownRuns = (this.ctx.detail.runs || []).map(runIdOf).filter((r) => r !== (cur && cur.run_id)).sort((a, b) => runNum(b) - runNum(a));
    if (!ownRuns.length || (q && !'this experiment'.includes(q) && !ownRuns.some((r) => r.includes(q)))) return [];
    return [h('h4', null, 'Runs of this experiment'),
      h('div', { class: 'pick-runs' }, ownRuns.map((r) => h('button', {
        type: 'button', class: `btn btn-xs${this.has(id, r) ? ' on' : ''}`, dataset: { pickRun: r },
        onclick: () => (this.has(id, r) ? this.remove(this.overlays.find((o) => o.exp === id && o.run === r)) : this.add(id, r)),
      }, r)))];
  }

  /** The picker's second part: other experiments matching `q`, newest first. */
  otherItems(q) {
    const others = [];
    for (const s of S.exps.values()) {
      if (s.id === this.ctx.id || !s.run_id) continue;
      if (q && !s._hay.includes(q)) continue;
      others.push(s);
    }
    others.sort((a, b) => (b._start || b._created) - (a._start || a._created));
    const items = [h('h4', null, `Other experiments${others.length > PICKER_MAX ? ` (${PICKER_MAX} of ${others.length})` : ''}`)];
    if (!others.length) items.push(h('p', { class: 'note', style: 'margin:4px 8px' }, 'No other experiment matches.'));
    for (const s of others.slice(0, PICKER_MAX)) {
      items.push(h('button', {
        type: 'button', class: 'pick', dataset: { pickExp: s.id }, title: `Overlay ${s.name} ${s.run_id}`,
        onclick: () => (this.has(s.id, s.run_id) ? null : this.add(s.id, s.run_id)),
      }, h('span', { class: `pill s-${s.status}` }, s.status[0]), h('span', { class: 'name' }, s.name),
      h('span', { class: 'meta' }, s.run_id)));
      if (s.runs > 1) items.push(this.runsOfOther(s));
    }
    return items;
  }

  /** The runs of another experiment with several: listed once asked for. */
  runsOfOther(s) {
    const runs = this.picker.expanded.get(s.id);
    if (runs) {
      return h('div', { class: 'pick-runs' }, runs.map((r) => h('button', {
        type: 'button', class: `btn btn-xs${this.has(s.id, r) ? ' on' : ''}`, onclick: () => this.add(s.id, r),
      }, r)));
    }
    return h('div', { class: 'pick-runs' }, h('button', {
      type: 'button', class: 'btn btn-xs btn-ghost', onclick: () => this.expandRuns(s.id),
    }, `all ${s.runs} runs…`));
  }

  async expandRuns(exp) {
    try {
      const d = await api('GET', expPath(exp));
      if (!this.picker) return;
      this.picker.expanded.set(exp, (d.runs || []).map(runIdOf).sort((a, b) => runNum(b) - runNum(a)));
      this.renderPicker();
    } catch (e) {
      toast(`Cannot list the runs of ${exp}: ${e.message}`, 'err');
    }
  }
}
