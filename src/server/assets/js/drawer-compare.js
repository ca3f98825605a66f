/* Comparing in the drawer's Metrics tab: the overlays (other runs of this experiment, or runs
 * of other experiments, drawn over each chart), their chips, and the "compare with" picker. */

import { h, debounce, RUN_RE, runNum, runIdOf } from './util.js';
import { api, expPath } from './api.js';
import { S } from './state.js';
import { toast } from './notify.js';
import { COLORS } from './charts.js';

const PICKER_PAGE = 100; // other experiments listed per "more" (the search reaches them all)

export class Compare {
  /** `ctx`: the drawer ({id, detail, summary(), body}); `onChange`: the overlays changed. */
  constructor(ctx, onChange) {
    this.ctx = ctx;
    this.onChange = onChange;
    this.overlays = []; // [{exp, run, color, label}]
    // Grouping: '' (none), 'tag', or 'params.<name>'; the line at the mean or median, the band
    // ±1 std or min–max.
    this.group = { by: '', agg: 'mean', band: 'std' };
    this.picker = null;
    this.bar = h('div', { class: 'compare-bar' });
  }

  /** A run's colour: from a hash of its experiment and run, so the same run keeps its colour
   *  whatever else is compared or in which order (the next free colour on a clash). The first
   *  colour stays this experiment's. */
  colorFor(exp, run) {
    const key = `${exp}/${run}`;
    let hash = 2166136261;
    for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 16777619) >>> 0;
    const used = new Set(this.overlays.map((o) => o.color));
    const n = COLORS.length - 1;
    for (let k = 0; k < n; k++) {
      const c = COLORS[1 + ((hash + k) % n)];
      if (!used.has(c)) return c;
    }
    return COLORS[1 + (hash % n)];
  }

  has(exp, run) {
    return this.overlays.some((o) => o.exp === exp && o.run === run);
  }

  add(exp, run) {
    if (this.has(exp, run)) return;
    const color = this.colorFor(exp, run);
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
      const color = this.colorFor(exp, run);
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
    if (this.overlays.length) chips.push(...this.groupControls());
    this.bar.replaceChildren(...chips);
  }

  /** Group by a parameter or the tags: a select of the params of the plotted runs. */
  groupControls() {
    const keys = new Set();
    for (const exp of [this.ctx.id, ...this.overlays.map((o) => o.exp)]) {
      const s = S.exps.get(exp);
      for (const k of Object.keys((s && s.params) || {})) keys.add(k);
    }
    const G = this.group;
    const by = h('select', { id: 'group-by', 'aria-label': 'Group by', onchange: () => { G.by = by.value; this.changed(); } },
      h('option', { value: '' }, 'No grouping'), h('option', { value: 'tag' }, 'group by tags'),
      [...keys].sort().map((k) => h('option', { value: `params.${k}` }, `group by ${k}`)));
    by.value = G.by;
    const agg = h('select', { id: 'group-agg', 'aria-label': 'Group line', hidden: !G.by, onchange: () => { G.agg = agg.value; this.changed(); } },
      h('option', { value: 'mean' }, 'mean'), h('option', { value: 'median' }, 'median'));
    agg.value = G.agg;
    const band = h('select', { id: 'group-band', 'aria-label': 'Group band', hidden: !G.by, onchange: () => { G.band = band.value; this.changed(); } },
      h('option', { value: 'std' }, '± 1 std'), h('option', { value: 'minmax' }, 'min–max'));
    band.value = G.band;
    return [h('span', { class: 'muted', style: 'margin-left:8px' }, ''), by, agg, band];
  }

  /** The group of experiment `exp` (its value of the grouping key). */
  groupOf(exp) {
    const s = S.exps.get(exp);
    if (this.group.by === 'tag') return ((s && s.tags) || []).slice().sort().join(', ') || '(no tags)';
    const k = this.group.by.slice(7);
    const v = s && s.params ? s.params[k] : undefined;
    return `${k}=${v === undefined ? '∅' : typeof v === 'string' ? v : JSON.stringify(v)}`;
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
    const picker = { box, input, list, expanded: new Map(), limit: PICKER_PAGE };
    this.picker = picker;
    input.addEventListener('input', debounce(() => {
      // Escape or a pick may have closed this picker before the pause in typing ended.
      if (this.picker !== picker) return;
      picker.limit = PICKER_PAGE;
      this.renderPicker();
    }, 100));
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
    const limit = this.picker.limit;
    const items = [h('h4', null, `Other experiments${others.length > limit ? ` (${limit} of ${others.length})` : ''}`)];
    if (!others.length) items.push(h('p', { class: 'note', style: 'margin:4px 8px' }, 'No other experiment matches.'));
    for (const s of others.slice(0, limit)) {
      items.push(h('button', {
        type: 'button', class: 'pick', dataset: { pickExp: s.id }, title: `Overlay ${s.name} ${s.run_id}`,
        onclick: () => (this.has(s.id, s.run_id) ? null : this.add(s.id, s.run_id)),
      }, h('span', { class: `pill s-${s.status}` }, s.status[0]), h('span', { class: 'name' }, s.name),
      h('span', { class: 'meta' }, s.run_id)));
      if (s.runs > 1) items.push(this.runsOfOther(s));
    }
    if (others.length > limit) {
      items.push(h('button', { type: 'button', class: 'btn btn-xs btn-ghost', id: 'picker-more', onclick: () => {
        this.picker.limit += PICKER_PAGE * 5;
        this.renderPicker();
      } }, `Show more (${(others.length - limit).toLocaleString('en-US')} not listed)`));
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
