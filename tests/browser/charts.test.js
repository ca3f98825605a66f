// Charts and logs in real headless Chromium against the real EXP binary, on experiment
// directories written here (fixtures.js: copies of one real scheduler run): smoothing drawn over
// the raw curve, log axes, a cursor shared by the charts of a view, full screen, PNG and CSV
// downloads (their bytes checked), gaps marked, compare with short legend names; logs paged back
// to the first byte, searched whole, coloured; the dark theme; 1024x700 without truncated
// values; offline dimming once the server stops.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const H = require('./helpers');
const F = require('./fixtures');

let dir;
let baseDir;
let server;
let browser;
let expA;
let expB;
let expSparse;

const STEPS = 3000;
const LOG_LINES = 6000; // about 300 KB: several pages back to the first byte

/** A noisy loss with a NaN stretch and an inf, an accuracy, a learning rate. */
function rows(seed, lr) {
  let x = seed * 7919;
  const rand = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
  const out = [];
  for (let s = 1; s <= STEPS; s++) {
    let loss = (2 / Math.sqrt(s) + lr + 0.3 * (rand() - 0.5)).toFixed(5);
    if (s >= 1000 && s < 1010) loss = 'nan';
    if (s === 2000) loss = 'inf';
    out.push([s, loss, (1 - 1 / Math.sqrt(s)).toFixed(5), (lr * (1 - s / (STEPS + 1))).toFixed(6)]);
  }
  return out;
}

/** A log with colours, a tqdm-style progress bar redrawn with \r, and many plain lines. */
function logText() {
  const lines = ['first line of the log', '\x1b[31mred error\x1b[0m and \x1b[1;38;5;33mbold 256\x1b[0m and \x1b[38;2;10;200;30mtruecolor\x1b[0m',
    'progress   0%\rprogress  50%\rprogress 100%'];
  for (let i = 4; i <= LOG_LINES; i++) lines.push(`line ${i} ${i % 1000 === 0 ? 'NEEDLE' : 'hay'} ${'.'.repeat(30)}`);
  return `${lines.join('\n')}\n`;
}

before(async () => {
  H.checkPrerequisites();
  dir = H.tempDir('ui-charts');
  const { baseDir: b, seed } = F.realSeed(dir);
  baseDir = b;
  const cols = ['step', 'loss', 'acc', 'lr'];
  expA = F.writeExperiment(baseDir, seed, { name: 'ch-a', index: 1, params: { lr: 0.1, seed: 1, opt: 'sgd' }, columns: cols, rows: rows(1, 0.1) });
  expB = F.writeExperiment(baseDir, seed, { name: 'ch-b', index: 2, params: { lr: 0.01, seed: 1, opt: 'sgd' }, columns: cols, rows: rows(2, 0.01) });
  // Second seeds of both learning rates: grouping by lr gives two groups of two.
  F.writeExperiment(baseDir, seed, { name: 'ch-c', index: 4, params: { lr: 0.1, seed: 2, opt: 'sgd' }, columns: cols, rows: rows(3, 0.1) });
  F.writeExperiment(baseDir, seed, { name: 'ch-d', index: 5, params: { lr: 0.01, seed: 2, opt: 'sgd' }, columns: cols, rows: rows(4, 0.01) });
  // An evaluation metric logged every 50 steps beside a per-step loss: empty cells between.
  const sparse = [];
  for (let st = 1; st <= 1000; st++) sparse.push([st, (1 / st).toFixed(5), st % 50 === 0 ? (2 / st).toFixed(5) : '']);
  expSparse = F.writeExperiment(baseDir, seed, { name: 'sp-e', index: 6, params: { lr: 0.1, seed: 3 }, columns: ['step', 'loss', 'val_loss'], rows: sparse });
  fs.writeFileSync(path.join(expA, 'logs', 'run_0001.log'), logText());
  fs.mkdirSync(path.join(expA, 'checkpoints', 'epoch_2'), { recursive: true });
  fs.writeFileSync(path.join(expA, 'checkpoints', 'epoch_2', 'model.pt'), Buffer.alloc(123456, 7));
  // Enough experiments to fill a 1440x900 table in the compact density (their names sort
  // after ch-*, so the compare test's first rows stay ch-a..ch-d).
  for (let i = 0; i < 45; i++) F.writeExperiment(baseDir, seed, { name: `zz-${String(i).padStart(2, '0')}`, index: 10 + i, params: { lr: 0.1, seed: i }, columns: ['step'], rows: [[1]] });
  server = await H.startServer(baseDir);
  browser = await H.openBrowser({ width: 1440, height: 900 });
});

after(async () => {
  await H.teardown({ browser, server, dir });
});

const idOf = (p) => path.basename(p);
// The board, whatever view an earlier test left remembered (the table's compare test).
const boardUrl = () => `${server.url.split('?')[0]}?view=board`;
const block = '#drawer .table-block[data-table="run_0001"]';
const chartSel = (col) => `${block} .chart[data-column="${col}"]`;

/** What a chart draws: per uPlot series, its label and how many points it has (non-null). */
function chartInfo(page, col) {
  return page.$eval(`${chartSel(col)} .chart-body`, (body) => {
    const c = body.expmanChart;
    const u = c.u;
    return {
      labels: u.series.map((s) => s.label),
      counts: u.data.map((d) => d.filter((v) => v != null).length),
      sums: u.data.map((d) => d.reduce((a, v) => (v == null ? a : a + v), 0)),
      yDistr: u.scales.y.distr,
      xDistr: u.scales.x.distr,
      raw: body.dataset.raw,
      gapMarks: Number(body.dataset.gapMarks || 0),
      legend: [...u.root.querySelectorAll('.u-legend .u-series')].filter((r) => r.style.display !== 'none').map((r) => r.textContent),
    };
  });
}

async function openMetrics(page, exp) {
  await page.goto(`${server.url.split('?')[0]}?exp=${encodeURIComponent(idOf(exp))}&tab=metrics`);
  await page.waitForSelector(`${chartSel('loss')} canvas`);
  await page.waitForFunction((sel) => document.querySelector(sel).expmanChart, `${chartSel('loss')} .chart-body`);
}

test('a metric logged every 50 steps is drawn as a line: its empty cells are joined over, not gaps', { timeout: 60000 }, async () => {
  const { page } = browser;
  await page.goto(server.url);
  await page.evaluate(() => localStorage.clear());
  await page.goto(`${server.url.split('?')[0]}?exp=${encodeURIComponent(idOf(expSparse))}&tab=metrics`);
  await page.waitForSelector(`${chartSel('val_loss')} canvas`);
  await page.waitForFunction((sel) => document.querySelector(sel).expmanChart, `${chartSel('val_loss')} .chart-body`);
  const info = await page.$eval(`${chartSel('val_loss')} .chart-body`, (body) => {
    const d = body.expmanChart.u.data[1];
    return {
      values: d.filter((v) => typeof v === 'number').length,
      nulls: d.filter((v) => v === null).length,
      gapMarks: Number(body.dataset.gapMarks || 0),
    };
  });
  // Empty cells were nulls (a break at every step, no line at all) with a red mark across the axis.
  assert.equal(info.values, 20, JSON.stringify(info));
  assert.equal(info.nulls, 0, `no breaks: ${JSON.stringify(info)}`);
  assert.equal(info.gapMarks, 0, `no red marks: ${JSON.stringify(info)}`);
});

test('smoothing: the slider changes the smoothed path, the raw curve stays behind it; gaps are marked', { timeout: 60000 }, async () => {
  const { page } = browser;
  await page.goto(server.url);
  await page.evaluate(() => localStorage.clear());
  await openMetrics(page, expA);
  const plain = await chartInfo(page, 'loss');
  assert.equal(plain.raw, '0');
  assert.ok(plain.gapMarks >= 2, `the NaN stretch and the inf are marked: ${plain.gapMarks}`);
  // The legend shows the last values while the cursor is away.
  assert.match(plain.legend[1], /\d/);

  await page.selectOption('#chart-smooth', 'ema');
  await page.$eval('#chart-ema', (el) => { el.value = '0.9'; el.dispatchEvent(new Event('change')); });
  await page.waitForFunction((sel) => document.querySelector(sel).dataset.raw === '1', `${chartSel('loss')} .chart-body`);
  const s09 = await chartInfo(page, 'loss');
  assert.equal(s09.labels.length, 3, 'x, the raw curve, the smoothed line');
  assert.ok(s09.counts[1] > 0 && s09.counts[2] > 0);
  await page.$eval('#chart-ema', (el) => { el.value = '0.99'; el.dispatchEvent(new Event('change')); });
  await page.waitForFunction(([sel, sum]) => {
    const u = document.querySelector(sel).expmanChart.u;
    return u.data[2].reduce((a, v) => (v == null ? a : a + v), 0) !== sum;
  }, [`${chartSel('loss')} .chart-body`, s09.sums[2]]);
  const s099 = await chartInfo(page, 'loss');
  assert.notEqual(s099.sums[2], s09.sums[2], 'a new weight draws another smoothed path');
  // The raw curve is still the data as written (M4 picks other rows for another smoothing).
  const written = new Map(rows(1, 0.1).map((r) => [r[0], Number(r[1])]));
  const raw = await page.$eval(`${chartSel('loss')} .chart-body`, (b) => {
    const d = b.expmanChart.u.data;
    return Array.from(d[0]).map((x, i) => [x, d[1][i]]).filter(([, v]) => v != null);
  });
  assert.ok(raw.length > 100);
  for (const [x, v] of raw) assert.equal(v, written.get(x), `raw value at step ${x}`);
  // Remembered for the next view.
  const saved = await page.evaluate(() => JSON.parse(localStorage.getItem('expman.charts')));
  assert.equal(saved.smooth, 'ema');
  assert.equal(saved.ema, 0.99);
  await page.selectOption('#chart-smooth', 'none');
  await page.waitForFunction((sel) => document.querySelector(sel).dataset.raw === '0', `${chartSel('loss')} .chart-body`);
});

test('log y and log x toggles change the scales', { timeout: 30000 }, async () => {
  const { page } = browser;
  await openMetrics(page, expA);
  await page.check('#chart-logy');
  await page.waitForFunction((sel) => document.querySelector(sel).expmanChart.u.scales.y.distr === 3, `${chartSel('acc')} .chart-body`);
  await page.check('#chart-logx');
  await page.waitForFunction((sel) => document.querySelector(sel).expmanChart.u.scales.x.distr === 3, `${chartSel('acc')} .chart-body`);
  await page.uncheck('#chart-logy');
  await page.uncheck('#chart-logx');
  await page.waitForFunction((sel) => {
    const u = document.querySelector(sel).expmanChart.u;
    return u.scales.x.distr === 1 && u.scales.y.distr === 1;
  }, `${chartSel('acc')} .chart-body`);
});

test('the cursor is shared by the charts of a view', { timeout: 30000 }, async () => {
  const { page } = browser;
  await openMetrics(page, expA);
  const over = await page.locator(`${chartSel('loss')} .u-over`).boundingBox();
  await page.mouse.move(over.x + over.width * 0.5, over.y + over.height * 0.5);
  await page.waitForFunction((sel) => {
    const u = document.querySelector(sel).expmanChart.u;
    return u.cursor.idx != null && u.cursor.left > 0;
  }, `${chartSel('acc')} .chart-body`);
  const [a, b] = await page.evaluate(([x, y]) => [x, y].map((s) => {
    const u = document.querySelector(s).expmanChart.u;
    return u.data[0][u.cursor.idx];
  }), [`${chartSel('loss')} .chart-body`, `${chartSel('acc')} .chart-body`]);
  assert.equal(a, b, 'both charts point at the same x');
  await page.mouse.move(0, 0);
});

test('zoom: a drag zooms every chart of the block and fetches that range again, every row of it', { timeout: 30000 }, async () => {
  const { page } = browser;
  await openMetrics(page, expA);
  const acc = `${chartSel('acc')} .chart-body`;
  const before = await page.$eval(acc, (b) => b.expmanChart.u.data[0].length);
  assert.ok(before < 3000, `thinned before the zoom: ${before} points`);
  const over = await page.locator(`${chartSel('loss')} .u-over`).boundingBox();
  const y = over.y + over.height / 2;
  await page.mouse.move(over.x + over.width * 0.40, y);
  await page.mouse.down();
  await page.mouse.move(over.x + over.width * 0.45, y, { steps: 5 });
  await page.mouse.up();
  // The other chart follows, with the range's rows fetched again: every step in view is there.
  await page.waitForFunction((sel) => {
    const u = document.querySelector(sel).expmanChart.u;
    const xs = Array.from(u.data[0]).filter((x) => x >= u.scales.x.min && x <= u.scales.x.max);
    return xs.length > 10 && xs.length === Math.floor(u.scales.x.max) - Math.ceil(u.scales.x.min) + 1;
  }, acc);
  const [lo, hi] = await page.$eval(acc, (b) => [b.expmanChart.u.scales.x.min, b.expmanChart.u.scales.x.max]);
  assert.ok(lo > 1000 && hi < 1500 && hi > lo, `zoomed to ${lo}..${hi}`);
  // A double-click goes back to the whole series.
  await page.mouse.dblclick(over.x + over.width / 2, y);
  await page.waitForFunction((sel) => {
    const u = document.querySelector(sel).expmanChart.u;
    return u.scales.x.max >= 3000 && u.scales.x.min <= 1;
  }, acc);
});

test('full screen, PNG and CSV downloads', { timeout: 30000 }, async () => {
  const { page } = browser;
  await openMetrics(page, expA);
  await page.click(`${chartSel('loss')} .chart-btn[data-act="full"]`);
  await page.waitForSelector(`${chartSel('loss')}.chart-full`);
  const w = await page.$eval(`${chartSel('loss')} .chart-body`, (b) => b.expmanChart.u.width);
  assert.ok(w > 1300, `drawn at the window's width: ${w}`);
  await page.keyboard.press('Escape');
  await page.waitForSelector(`${chartSel('loss')}:not(.chart-full)`);

  const [png] = await Promise.all([page.waitForEvent('download'), page.click(`${chartSel('loss')} .chart-btn[data-act="png"]`)]);
  const pngBytes = fs.readFileSync(await png.path());
  assert.deepEqual([...pngBytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.ok(pngBytes.length > 2000, `a real picture: ${pngBytes.length} bytes`);

  const [csv] = await Promise.all([page.waitForEvent('download'), page.click(`${chartSel('acc')} .chart-btn[data-act="csv"]`)]);
  const text = fs.readFileSync(await csv.path(), 'utf8').trim().split('\n');
  const info = await chartInfo(page, 'acc');
  assert.equal(text[0].split(',')[0], 'step');
  assert.equal(text.length - 1, info.counts[0], 'one line per plotted x');
  const lastRow = text[text.length - 1].split(',');
  assert.equal(Number(lastRow[0]), STEPS);
  assert.equal(Number(lastRow[1]), Number((1 - 1 / Math.sqrt(STEPS)).toFixed(5)));
});

test('legend names: the fewest params that tell the runs apart, a seed included when it alone does', { timeout: 30000 }, async () => {
  const { page } = browser;
  await page.goto(boardUrl());
  const names = await page.evaluate(async () => {
    const { shortNames } = await import('/static/charts.js');
    const run = (name, params) => ({ name, params });
    return shortNames([
      run('a', { arch: 'cnn', lr: 0.1, model: 'r18', opt: 'sgd', seed: 1 }),
      run('b', { arch: 'cnn', lr: 0.1, model: 'r18', opt: 'sgd', seed: 2 }),
      run('c', { arch: 'mlp', lr: 0.01, model: 'r50', opt: 'adam', seed: 1 }),
    ]);
  });
  // The first three differing keys by name (arch, lr, model) gave a and b the same label, and
  // the fallback put the whole experiment name before it.
  assert.equal(new Set(names).size, 3, names.join(' | '));
  assert.ok(names.every((n) => n.includes('seed=') && n.split(' ').length <= 3), names.join(' | '));
});

test('compare: another experiment overlaid, legend names are the differing params', { timeout: 30000 }, async () => {
  const { page } = browser;
  await openMetrics(page, expA);
  await page.click('#compare-btn');
  await page.fill('#compare-picker input', 'ch-b');
  await page.click(`#compare-picker .pick[data-pick-exp="${idOf(expB)}"]`);
  await page.waitForFunction((sel) => document.querySelector(sel).expmanChart.spec.lines.length === 2, `${chartSel('loss')} .chart-body`);
  const info = await chartInfo(page, 'loss');
  assert.deepEqual(info.labels.slice(1), ['lr=0.1', 'lr=0.01']);
});

test('compare from the table selection, then group by lr: two mean lines with ±1 std bands, runs faint behind, groups in the side table', { timeout: 60000 }, async () => {
  const { page } = browser;
  await page.goto(`${server.url.split('?')[0]}?view=table&sort=name`);
  await page.waitForSelector('.tv-body .tr[data-i="3"] .td-check input');
  for (let i = 0; i < 4; i++) await page.click(`.tv-body .tr[data-i="${i}"] .td-check input`);
  await page.click('#bulk-compare');
  await page.waitForSelector('#drawer:not([hidden]) .tab.on[data-tab="metrics"]');
  await page.waitForFunction((sel) => {
    const b = document.querySelector(sel);
    return b && b.expmanChart && b.expmanChart.spec.lines.length === 4;
  }, `${chartSel('loss')} .chart-body`);
  // The side table: four runs, lr highlighted as the param that differs (seed too).
  assert.equal(await page.locator(`${block} .compare-table tbody tr`).count(), 4);
  const diffHeads = await page.$$eval(`${block} .compare-table th.diff`, (els) => els.map((e) => e.textContent));
  assert.deepEqual(diffHeads, ['lr', 'seed']);
  // Each loss has an inf at step 2000: its max is inf, as the listing's summary says (the
  // side table took the largest finite value).
  const lossCells = await page.$$eval(`${block} .compare-table tbody tr`, (trs) => trs.map((tr) => [...tr.querySelectorAll('td.num')].map((td) => td.textContent).find((t) => t.includes('·'))));
  assert.ok(lossCells.every((t) => t && t.endsWith('· Infinity')), JSON.stringify(lossCells));
  await page.selectOption('#group-by', 'params.lr');
  await page.waitForFunction((sel) => document.querySelector(sel).expmanChart.spec.lines.some((l) => l.lo), `${chartSel('loss')} .chart-body`);
  const g = await page.$eval(`${chartSel('loss')} .chart-body`, (b) => {
    const c = b.expmanChart;
    return {
      lines: c.spec.lines.map((l) => ({ label: l.label, faint: Boolean(l.faint), band: Boolean(l.lo && l.hi) })),
      bands: c.u.bands.length,
      // At the last step: the group's mean lies inside its band, the band has width.
      last: c.spec.lines.filter((l) => l.lo).map((l) => {
        const i = l.y.length - 1;
        return [l.lo[i], l.y[i], l.hi[i]];
      }),
    };
  });
  assert.equal(g.lines.filter((l) => l.faint).length, 4);
  assert.deepEqual(g.lines.filter((l) => l.band).map((l) => l.label).sort(), ['lr=0.01 (2)', 'lr=0.1 (2)']);
  assert.equal(g.bands, 2);
  for (const [lo, y, hi] of g.last) assert.ok(lo < y && y < hi, `${lo} < ${y} < ${hi}`);
  assert.equal(await page.locator(`${block} .compare-table tr.group-row`).count(), 2);
  await page.selectOption('#group-band', 'minmax');
  await page.waitForFunction((sel) => {
    const l = document.querySelector(sel).expmanChart.spec.lines.find((x) => x.lo);
    return l && l.lo[l.lo.length - 1] !== l.y[l.y.length - 1] - 0 && document.querySelector('#group-band').value === 'minmax';
  }, `${chartSel('loss')} .chart-body`);
});

test('logs: colours, a collapsed progress bar, paging back to the first byte, search of the whole file', { timeout: 60000 }, async () => {
  const { page } = browser;
  await page.goto(`${server.url.split('?')[0]}?exp=${encodeURIComponent(idOf(expA))}&tab=logs`);
  const blk = '#drawer .log-block[data-log="run_0001.log"]';
  await page.waitForSelector(`${blk} pre`);
  await page.waitForFunction((s) => /line 6000/.test(document.querySelector(`${s} pre`).textContent), blk);
  assert.doesNotMatch(await page.textContent(`${blk} pre`), /first line of the log/, 'only the tail at first');
  // Page back until the first byte.
  for (let i = 0; i < 20; i++) {
    if (await page.$eval(blk, (el) => el.dataset.first === '0')) break;
    const before = await page.$eval(blk, (el) => el.dataset.first);
    await page.click(`${blk} button[data-act="older"]`);
    await page.waitForFunction(([s, b]) => document.querySelector(s).dataset.first !== b, [blk, before]);
  }
  const text = await page.textContent(`${blk} pre`);
  assert.ok(text.startsWith('first line of the log\n'), text.slice(0, 80));
  assert.match(text, /\nprogress 100%\n/);
  assert.doesNotMatch(text, /progress {2}50%/);
  assert.doesNotMatch(text, /\x1b/);
  const colours = await page.$$eval(`${blk} pre span.ansi`, (els) => els.slice(0, 3).map((e) => [e.textContent, getComputedStyle(e).color, getComputedStyle(e).fontWeight]));
  assert.deepEqual(colours[0], ['red error', 'rgb(205, 49, 49)', '400']);
  assert.equal(colours[1][0], 'bold 256');
  assert.equal(colours[1][2], '700');
  assert.deepEqual(colours[2].slice(0, 2), ['truecolor', 'rgb(10, 200, 30)']);

  // Search: six NEEDLE lines over the whole file, each a jump.
  await page.click(`${blk} button[data-act="end"]`);
  await page.fill(`${blk} .log-search`, 'NEEDLE');
  await page.press(`${blk} .log-search`, 'Enter');
  await page.waitForSelector(`${blk} .log-match`);
  assert.match(await page.textContent(`${blk} .log-matches-head`), /^6 matching lines/);
  const lines = await page.$$eval(`${blk} .log-match`, (els) => els.map((e) => Number(e.dataset.line)));
  assert.deepEqual(lines, [1000, 2000, 3000, 4000, 5000, 6000]);
  // A coloured line is listed in its colours, not with its escape codes printed raw.
  await page.fill(`${blk} .log-search`, 'red error');
  await page.press(`${blk} .log-search`, 'Enter');
  await page.waitForFunction((b) => document.querySelector(`${b} .log-match[data-line="2"]`), blk);
  const red = await page.$eval(`${blk} .log-match[data-line="2"] .tx`, (el) => ({ text: el.textContent, coloured: !!el.querySelector('span.ansi') }));
  assert.doesNotMatch(red.text, /\x1b|\[31m/, red.text);
  assert.ok(red.text.startsWith('red error') && red.coloured, JSON.stringify(red));
  await page.fill(`${blk} .log-search`, 'NEEDLE');
  await page.press(`${blk} .log-search`, 'Enter');
  await page.waitForFunction((b) => document.querySelectorAll(`${b} .log-match`).length === 6, blk);
  await page.click(`${blk} .log-match[data-line="1000"]`);
  // The page starts at the matching line (under the marker of what comes before it).
  await page.waitForFunction((s) => /^… [^\n]* before this not shown …\nline 1000 NEEDLE/.test(document.querySelector(`${s} pre`).textContent), blk);
  // The download link serves the whole file.
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`${blk} a[data-act="download"]`)]);
  assert.equal(fs.readFileSync(await dl.path(), 'utf8'), logText());
});

test('compact density: at least 40 runs in view on 1440x900', { timeout: 30000 }, async () => {
  const { page } = browser;
  await page.goto(`${server.url.split('?')[0]}?view=table&sort=name`);
  await page.waitForSelector('.tv-body .tr[data-i="10"]');
  const inView = () => page.$$eval('.tv-body .tr:not(.tr-run)', (els) => els.filter((e) => {
    const r = e.getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;
  }).length);
  const before = await inView();
  await page.click('#density-toggle');
  await page.waitForFunction(() => document.body.classList.contains('compact'));
  await page.waitForFunction(() => document.querySelector('.tv-body .tr[data-i="45"]'));
  const after = await inView();
  await H.screenshot(page, 'charts-compact.png');
  assert.ok(after >= 40, `${after} rows in view (was ${before})`);
  await page.click('#density-toggle');
});

test('keyboard: a card opens the drawer on its Overview with focus in it; arrows move between tabs and cards; checkpoints listed and downloaded', { timeout: 30000 }, async () => {
  const { page } = browser;
  await page.goto(boardUrl());
  await page.waitForSelector(H.card('ch-b'));
  // A drawer left on Logs, then another experiment: it starts on its Overview.
  await page.goto(`${server.url.split('?')[0]}?view=board&exp=${encodeURIComponent(idOf(expB))}&tab=logs`);
  await page.waitForSelector('#drawer .tab.on[data-tab="logs"]');
  await page.focus(H.card('ch-a'));
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /ch-a/.test(document.querySelector('#drawer h2').textContent));
  assert.equal(await page.getAttribute('#drawer .tab.on', 'data-tab'), 'overview');
  assert.equal(await page.evaluate(() => document.activeElement.closest('#drawer') != null), true, 'focus is in the drawer');
  await page.keyboard.press('ArrowRight');
  await page.waitForSelector('#drawer .tab.on[data-tab="metrics"]');
  await page.keyboard.press('ArrowLeft');
  await page.waitForSelector('#drawer .tab.on[data-tab="overview"]');
  // Checkpoints: name, size, a link that downloads the bytes.
  const row = '#drawer [data-section="checkpoints"] tbody tr';
  await page.waitForSelector(row);
  assert.match(await page.textContent(row), /epoch_2\/model\.pt.*121 KB/);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`${row} a`)]);
  const bytes = fs.readFileSync(await dl.path());
  assert.equal(bytes.length, 123456);
  assert.equal(bytes[100], 7);
  // Arrow keys between cards: down the column, and back up.
  await page.keyboard.press('Escape');
  await page.focus(H.card('ch-a'));
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.querySelector('.card-name').textContent), 'ch-b');
  await page.keyboard.press('ArrowUp');
  assert.equal(await page.evaluate(() => document.activeElement.querySelector('.card-name').textContent), 'ch-a');
});

test('dark theme follows prefers-color-scheme; the toggle overrides it', { timeout: 30000 }, async () => {
  const { page } = browser;
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto(boardUrl());
  await page.waitForSelector('.card');
  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(await bg(), 'rgb(18, 21, 27)');
  await page.emulateMedia({ colorScheme: 'light' });
  assert.equal(await bg(), 'rgb(245, 246, 248)');
  await page.click('#theme-toggle'); // dark
  assert.equal(await bg(), 'rgb(18, 21, 27)');
  await page.click('#theme-toggle'); // light
  await page.click('#theme-toggle'); // the system's again
  await page.evaluate(() => localStorage.removeItem('expman.theme'));
});

test('1024x700: card values are not truncated', { timeout: 30000 }, async () => {
  const { page } = browser;
  await page.setViewportSize({ width: 1024, height: 700 });
  await page.goto(boardUrl());
  await page.waitForSelector(`${H.card('ch-a')} .card-metrics .v`);
  const cut = await page.$$eval('.card-metrics .v, .card-metrics .k', (els) => els.filter((e) => e.scrollWidth > e.clientWidth + 1 || /…/.test(e.textContent)).map((e) => e.textContent));
  await H.screenshot(page, 'charts-1024.png');
  assert.deepEqual(cut, []);
  // The header fits: the logo is not under the view toggle.
  const [logo, toggle] = await page.evaluate(() => ['.logo', '#view-toggle'].map((s) => document.querySelector(s).getBoundingClientRect().toJSON()));
  assert.ok(logo.right <= toggle.left, `logo ends at ${logo.right}, the toggle starts at ${toggle.left}`);
  await page.setViewportSize({ width: 1440, height: 900 });
});

test('offline: Running cards dim and their clocks stop, the monitor log windows back off while the server is unreachable; the monitor 2x2 layout', { timeout: 90000 }, async () => {
  const { page } = browser;
  // A Running experiment whose process is this test's own (alive): status.json says so.
  const run = F.writeExperiment(baseDir, path.join(baseDir, fs.readdirSync(baseDir).find((n) => n.startsWith('seed_'))), { name: 'ch-running', index: 3, columns: ['step'], rows: [[1]] });
  const st = JSON.parse(fs.readFileSync(path.join(run, 'status.json'), 'utf8'));
  // No recorded start time or supervisor: the server then checks only that the pid is alive.
  Object.assign(st, { status: 'Running', pid: process.pid, pid_start_time: null, supervisor_pid: null, supervisor_start_time: null, finished_at: null, exit_code: null });
  fs.writeFileSync(path.join(run, 'status.json'), JSON.stringify(st));
  await page.goto(boardUrl());
  await page.waitForSelector(H.card('ch-running', 'Running'));
  // Two monitor windows; the 2x2 layout puts them in two columns of a two-row grid.
  await page.click(`${H.card('ch-a')} [data-act="monitor"]`);
  await page.click(`${H.card('ch-b')} [data-act="monitor"]`);
  await page.waitForFunction(() => document.querySelectorAll('#monitor .mwin').length >= 2);
  await page.click('#monitor [data-cols="4"]');
  await page.waitForSelector('#monitor-grid.two-rows');
  assert.equal(await page.$eval('#monitor-grid', (g) => getComputedStyle(g).gridTemplateColumns.split(' ').length), 2);
  // Every attempt at ch-a's log once the server is gone (each fails: nothing listens).
  const tries = [];
  page.on('requestfailed', (r) => {
    if (r.url().includes(`/api/experiments/${encodeURIComponent(idOf(expA))}/logs/`)) tries.push(Date.now());
  });
  await H.stopProcess(server.child, 5000);
  await page.waitForSelector('body.offline', { timeout: 40000 });
  const opacity = await page.$eval(H.card('ch-running', 'Running'), (e) => getComputedStyle(e).opacity);
  assert.equal(opacity, '0.5');
  const t0 = await page.textContent(`${H.card('ch-running', 'Running')}`);
  await page.waitForTimeout(1500); // a clock that still ticked would change within this
  assert.equal(await page.textContent(`${H.card('ch-running', 'Running')}`), t0);
  // The log window backs off: every wait twice the one before (1 s polls: 2 s, 4 s, 8 s...).
  await H.waitUntil('four failed attempts at the log', () => tries.length >= 4, { timeout: 40000 });
  const gaps = tries.slice(1).map((t, i) => t - tries[i]);
  assert.ok(gaps[1] > gaps[0] * 1.5 && gaps[2] > gaps[1] * 1.5, `growing waits: ${gaps.join(', ')} ms`);
  await page.click('#monitor-clear');
});
