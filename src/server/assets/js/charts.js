/* Charts: uPlot (vendor/uplot.min.js, a classic script that sets window.uPlot) over series
 * from the server, several lines aligned on one x axis. */

import { fmtNum } from './util.js';

/** Line colours: the first is the experiment's own, the others go to overlays. */
export const COLORS = ['#2f6fed', '#e8590c', '#1f9d55', '#ae3ec9', '#d6336c', '#0c8599', '#f59f00',
  '#5c7cfa', '#495057', '#94d82d'];

/** The height every chart is drawn at. */
export const CHART_HEIGHT = 170;

export const toNum = (v) => (typeof v === 'number' && isFinite(v) ? v : null);

/** Axis ticks: short, so they fit a 54 px axis. */
function fmtTick(v) {
  if (v == null || !isFinite(v)) return '';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(1).replace('.0e', 'e').replace('e+', 'e');
  return String(parseFloat(v.toPrecision(4)));
}

/** Aligns several (x, y) lines onto one sorted x axis (uPlot's data layout); a duplicate x
 *  keeps the last value, a line without a point at some x gets null there. */
export function align(lines) {
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

/** Whether the chart library loaded. */
export const chartsAvailable = () => typeof window.uPlot === 'function';

/** Draws `lines` ({label, color, x, y}) against `xLabel` into `body`, which must be in the
 *  document (uPlot measures it). */
export function makeChart(body, xLabel, lines) {
  const data = align(lines);
  const axis = {
    stroke: '#687083',
    font: axisFont,
    grid: { stroke: '#eef0f3', width: 1 },
    ticks: { stroke: '#e2e5ea', width: 1, size: 4 },
  };
  const value = (u, v) => (v == null ? '' : fmtNum(v));
  const opts = {
    width: Math.max(220, body.clientWidth || 300),
    height: CHART_HEIGHT,
    legend: { show: true, live: true },
    cursor: { drag: { x: true, y: false, setScale: true } },
    scales: { x: { time: false } },
    axes: [
      Object.assign({}, axis, { size: 30 }),
      Object.assign({}, axis, { size: 54, values: (u, vals) => vals.map(fmtTick) }),
    ],
    series: [
      { label: xLabel, value },
      ...lines.map((l) => ({
        label: l.label,
        stroke: l.color,
        width: 1.5,
        spanGaps: true,
        points: { size: 4 },
        value,
      })),
    ],
  };
  return new window.uPlot(opts, data, body);
}
