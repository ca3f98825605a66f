// The browser figure: 20 runs x 1,000,000 rows overlaid in one chart, fetched (the
// series endpoint, M4 buckets) and drawn (the page's own Chart class, uPlot) in real Chromium
// against the real EXP binary. Printed and written down in tests/browser/README.md, not asserted:
// the machine is shared and its load changes the wall time; the server's CPU time is printed
// beside it. EXP_BIN can name a release build for the figure.
//
// The size (1 GB of tables, about a minute of parsing in a debug build) is opt-in, with
// CHARTS_PERF_FULL=1; by default, as part of the whole browser suite, 20 runs x 100,000 rows
// check that the measurement runs and print its smaller figures.
'use strict';

const { test, before, after } = require('node:test');
const fs = require('node:fs');
const path = require('node:path');
const os = require('node:os');
const H = require('./helpers');
const F = require('./fixtures');

const RUNS = Number(process.env.PERF_RUNS || 20);
const ROWS = Number(process.env.PERF_ROWS || (process.env.CHARTS_PERF_FULL === '1' ? 1000000 : 100000));

let dir;
let server;
let browser;
const ids = [];

/** The server's CPU time so far (user + system), in ms, from /proc. */
function cpuMs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // clock ticks of 1/100 s (USER_HZ)
}

before(async () => {
  H.checkPrerequisites();
  dir = H.tempDir('ui-charts-perf'); // about 1 GB: on disk, not in memory
  const { baseDir, seed } = F.realSeed(dir);
  // One million rows as expman writes them, made once and written to every run (each copy is
  // its own file, parsed on its own). One timestamp for all: the chart's x is the step.
  const lines = ['timestamp,run_id,step,loss'];
  let x = 12345;
  for (let s = 0; s < ROWS; s++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    lines.push(`2025-09-26T14:30:00.000000,run_0001,${s},${(1 / Math.sqrt(s + 1) + (x / 2147483648) * 0.1).toFixed(5)}`);
  }
  const text = `${lines.join('\n')}\n`;
  for (let i = 0; i < RUNS; i++) {
    const d = F.writeExperiment(baseDir, seed, { name: `perf-${String(i).padStart(2, '0')}`, index: i + 1, params: { seed: i }, columns: ['step', 'loss'], rows: [[0, 1]] });
    fs.writeFileSync(path.join(d, 'metrics', 'run_0001.csv'), text);
    ids.push(path.basename(d));
  }
  server = await H.startServer(baseDir);
  browser = await H.openBrowser({ width: 1440, height: 900 });
  await browser.page.goto(server.url);
  await browser.page.waitForSelector('.card');
});

after(async () => {
  await H.teardown({ browser, server, dir });
});

test(`${RUNS} runs x ${ROWS} rows overlaid in one chart: fetched and drawn`, { timeout: 600000 }, async () => {
  const { page } = browser;
  const measure = (smooth) => page.evaluate(async ([list, sm]) => {
    const { Chart, COLORS } = await import('/static/charts.js');
    const host = document.createElement('div');
    host.style.cssText = 'position:fixed;left:0;top:0;width:1200px;background:#fff;z-index:9999';
    document.body.append(host);
    const t0 = performance.now();
    const all = await Promise.all(list.map(async (id) => {
      const q = new URLSearchParams({ columns: 'loss', max_points: '1000' });
      if (sm) q.set('smooth', sm);
      const r = await fetch(`/api/experiments/${encodeURIComponent(id)}/tables/run_0001/series?${q}`);
      const body = await r.json();
      if (!r.ok) throw new Error(`${id}: ${r.status} ${JSON.stringify(body)}`);
      return body;
    }));
    const t1 = performance.now();
    const lines = all.map((s, i) => ({
      label: list[i], color: COLORS[i % COLORS.length], x: s.x_values,
      y: s.smoothed ? s.smoothed.loss : s.series.loss, raw: s.smoothed ? s.series.loss : null,
    }));
    const c = new Chart(host, { xLabel: 'step', yLabel: 'loss', lines });
    const tBuilt = performance.now();
    await new Promise((r) => requestAnimationFrame(() => r()));
    const t2 = performance.now();
    const points = all.reduce((a, s) => a + s.x_values.length, 0);
    c.destroy();
    host.remove();
    return { fetchMs: t1 - t0, drawMs: t2 - t1, buildMs: tBuilt - t1, totalMs: t2 - t0, points, rows: all.reduce((a, s) => a + s.rows, 0) };
  }, [ids, smooth]);
  // The renderer's main-thread CPU time (Chromium's ThreadTime): on a loaded shared machine the
  // wall time says as much about the neighbours as about the page.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  const threadMs = async () => {
    const { metrics } = await cdp.send('Performance.getMetrics');
    return metrics.find((m) => m.name === 'ThreadTime').value * 1000;
  };
  const rounds = [];
  for (const [name, sm] of [['cold', null], ['warm', null], ['warm', null], ['warm', null], ['warm ema:0.9', 'ema:0.9'], ['warm ema:0.9', 'ema:0.9']]) {
    const c0 = cpuMs(server.child.pid);
    const p0 = await threadMs();
    const r = await measure(sm);
    r.pageCpuMs = (await threadMs()) - p0;
    r.serverCpuMs = cpuMs(server.child.pid) - c0;
    r.name = name;
    rounds.push(r);
    console.log(`${name}: ${r.rows} rows, ${r.points} points: fetched ${r.fetchMs.toFixed(0)} ms + drawn ${r.drawMs.toFixed(0)} ms (chart built ${r.buildMs.toFixed(0)} ms) = ${r.totalMs.toFixed(0)} ms ; CPU: page main thread ${r.pageCpuMs.toFixed(0)} ms, server ${r.serverCpuMs.toFixed(0)} ms`);
  }
  console.log(`load average: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} on ${os.cpus().length} cores; EXP_BIN=${H.EXP_BIN}`);
});
