// The runs table (issue 13) on a real EXP server over a small sweep written as expman writes
// experiments: sorting (primary + secondary), the column chooser, the "differ" toggle, the
// query filter with its inline error and completion, selection -> compare, bulk rerun and
// delete (real actions, checked on disk), parallel-coordinates brushing, and the URL (reload,
// Back, Forward).
//
// Parts that need the server's issue-13 API (params and summaries in the listing, /api/query,
// /api/fields) are skipped, saying so, against a server without it.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const H = require('./helpers');
const F = require('./fixtures');

let dir;
let baseDir;
let points;
let server;
let browser;
let api; // the server has params, summaries, /api/query and /api/fields

before(async () => {
  H.checkPrerequisites();
  dir = H.tempDir('ui-table');
  const s = F.realSeed(dir);
  baseDir = s.baseDir;
  points = F.smallSweep(baseDir, s.seed);
  fs.rmSync(s.seed, { recursive: true, force: true });
  server = await H.startServer(baseDir);
  api = await F.hasQueryApi(server.url);
  browser = await H.openBrowser({ width: 1500, height: 900 });
});

after(async () => {
  await H.teardown({ browser, server, baseDir, dir });
});

/** The page at `query` (e.g. '?view=table'), once the table shows `rows` rows. */
async function openTable(page, query = '?view=table', rows = points.length) {
  await page.goto(`${server.url.replace(/\/$/, '')}/${query}`);
  await page.waitForFunction((n) => document.querySelectorAll('.tv-body .tr:not(.tr-run):not([hidden])').length === n, rows);
}

/** The names in the table's rows, top to bottom (all of them are in view here). */
const rowNames = (page) => page.$$eval('.tv-body .tr:not(.tr-run):not([hidden])', (trs) => trs
  .sort((a, b) => a.dataset.i - b.dataset.i).map((tr) => tr.querySelector('.name-text').textContent));

const header = (page, key) => `.tv-head .th-col[data-key="${key}"]`;

test('sorting: a click sorts, a second reverses, shift-click adds a secondary key, missing values last', async () => {
  const { page } = browser;
  await page.evaluate(() => localStorage.clear()).catch(() => {});
  await openTable(page);
  await page.click(header(page, 'status'));
  let names = await rowNames(page);
  const errored = points.filter((p) => p.status === 'Error').map((p) => p.name);
  assert.deepEqual(names.slice(0, 2).sort(), errored.sort(), 'Error sorts before Finished');
  await page.click(header(page, 'name'), { modifiers: ['Shift'] });
  names = await rowNames(page);
  assert.deepEqual(names.slice(0, 2), errored.slice().sort(), 'within a status, by name');
  await page.click(header(page, 'name'), { modifiers: ['Shift'] });
  names = await rowNames(page);
  assert.deepEqual(names.slice(0, 2), errored.slice().sort().reverse(), 'shift-click again reverses the secondary key');
  assert.match(await page.textContent(`${header(page, 'name')} .sort-mark`), /▼2/);
  assert.match(new URL(page.url()).searchParams.get('sort'), /^status,-name$/);
  if (!api) return;
  // Primary: lr ascending; secondary: acc (last) descending.
  await page.click(header(page, 'params.lr'));
  await page.click(header(page, 'metrics.acc.last'), { modifiers: ['Shift'] });
  await page.click(header(page, 'metrics.acc.last'), { modifiers: ['Shift'] });
  names = await rowNames(page);
  const want = points.slice().sort((a, b) => a.params.lr - b.params.lr || b.acc - a.acc).map((p) => p.name);
  assert.deepEqual(names, want);
});

test('a metric header keeps its statistic in view however long the metric name', async () => {
  const { page } = browser;
  await openTable(page);
  if (!api) return;
  const seen = await page.$eval(header(page, 'metrics.acc.max'), (th) => {
    // The name as long as real ones get (validation_top1_accuracy): it used to push the
    // statistic out, so .last, .min and .max all read "validation_to…".
    th.querySelector('.th-name').textContent = 'validation_top1_accuracy';
    const box = th.getBoundingClientRect();
    const stat = th.querySelector('.th-stat');
    const name = th.querySelector('.th-name');
    return { stat: stat.textContent, inside: stat.getBoundingClientRect().right <= box.right + 0.5, cut: name.scrollWidth > name.clientWidth };
  });
  assert.deepEqual(seen, { stat: '.max', inside: true, cut: true });
});

test('column chooser: search, hide, show, remembered across a reload and in the URL', async () => {
  const { page } = browser;
  await openTable(page);
  await page.click('#tv-columns');
  await page.fill('#chooser-search', 'tag');
  await page.uncheck('#chooser input[data-key="tags"]');
  await page.waitForSelector(header(page, 'tags'), { state: 'detached' });
  assert.equal(new URL(page.url()).searchParams.get('hide'), 'tags');
  await page.keyboard.press('Escape');
  await page.goto(`${server.url.replace(/\/$/, '')}/?view=table`); // no hide= : remembered
  await page.waitForSelector('.tv-body .tr');
  assert.equal(await page.$(header(page, 'tags')), null, 'still hidden after a reload');
  await page.click('#tv-columns');
  await page.fill('#chooser-search', 'tag');
  await page.click('#chooser-show');
  await page.waitForSelector(header(page, 'tags'));
  await page.keyboard.press('Escape');
  if (!api) return;
  await page.click('#tv-columns');
  await page.fill('#chooser-search', 'metrics.loss');
  await page.click('#chooser-hide');
  await page.waitForSelector(header(page, 'metrics.loss.max'), { state: 'detached' });
  assert.ok(await page.$(header(page, 'metrics.acc.max')));
  await page.click('#chooser-show');
  await page.waitForSelector(header(page, 'metrics.loss.max'));
  await page.keyboard.press('Escape');
});

test('"only parameters that differ" hides the constant ones within the filter', async (t) => {
  if (!api) return t.skip('the server has no params in its listing yet (issue 13 SERVER-API)');
  const { page } = browser;
  await openTable(page);
  assert.ok(await page.$(header(page, 'params.seed')), 'a constant parameter is shown at first');
  await page.check('#tv-differ');
  await page.waitForSelector(header(page, 'params.seed'), { state: 'detached' });
  for (const k of ['params.lr', 'params.depth', 'params.opt']) assert.ok(await page.$(header(page, k)), k);
  // Within a filter where depth is constant, depth goes too.
  await page.fill('#filter', 'params.depth = 18');
  await page.waitForFunction(() => document.querySelectorAll('.tv-body .tr:not([hidden])').length === 4);
  await page.waitForSelector(header(page, 'params.depth'), { state: 'detached' });
  await page.fill('#filter', '');
  await page.uncheck('#tv-differ');
  await page.waitForSelector(header(page, 'params.seed'));
});

test('query filter: the server\'s matches, bare words, an inline error, field completion', async (t) => {
  const { page } = browser;
  await openTable(page);
  await page.fill('#filter', 'sw-0');
  await page.waitForFunction(() => document.querySelectorAll('.tv-body .tr:not([hidden])').length === 8);
  await page.fill('#filter', '');
  await page.waitForFunction((n) => document.querySelectorAll('.tv-body .tr:not([hidden])').length === n, points.length);
  if (!api) return t.skip('the server has no /api/query yet (issue 13 SERVER-API): bare words checked only');
  const queries = [];
  page.on('request', (r) => { if (r.url().includes('/api/query')) queries.push(r.url()); });
  await page.fill('#filter', 'params.lr < 0.005 and metrics.acc.max >= 0.7');
  const want = points.filter((p) => p.params.lr < 0.005 && p.acc >= 0.7).length;
  await page.waitForFunction((n) => document.querySelectorAll('.tv-body .tr:not([hidden])').length === n, want);
  assert.ok(queries.some((u) => /[?&]tz=-?\d+/.test(u)), 'the query carries the time zone');
  // A bad query: the message, and the failing part underlined where it is.
  const bad = 'params.lr < 0.005 and';
  await page.fill('#filter', bad);
  await page.waitForSelector('#filter-error:not([hidden])');
  assert.ok((await page.textContent('#filter-error')).length > 0);
  const under = await page.textContent('#filter-bad');
  const before = await page.$eval('.q-mirror', (m) => m.firstChild.textContent);
  assert.ok(before.length >= 'params.lr < 0.005'.length, `the underline starts at the failure (${JSON.stringify(before)} | ${JSON.stringify(under)})`);
  await page.waitForFunction((n) => document.querySelectorAll('.tv-body .tr:not([hidden])').length === n, want); // last good answer stays
  // The console reports that 400 (it was asked for): not a failure of the page.
  for (let i = browser.errors.length - 1; i >= 0; i--) if (/status of 400/.test(browser.errors[i])) browser.errors.splice(i, 1);
  // Completion: a dropdown of fields, arrow keys, Enter.
  await page.fill('#filter', 'metrics.ac');
  await page.waitForSelector('#filter-menu:not([hidden]) .q-item');
  const items = await page.$$eval('#filter-menu .q-item', (els) => els.map((e) => e.textContent));
  assert.ok(items.includes('metrics.acc.max'), items.join(' '));
  const idx = items.indexOf('metrics.acc.max');
  for (let i = 0; i < idx; i++) await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Enter');
  assert.equal(await page.inputValue('#filter'), 'metrics.acc.max ');
  await page.keyboard.type('> 0.7');
  await page.waitForFunction((n) => document.querySelectorAll('.tv-body .tr:not([hidden])').length === n, points.filter((p) => p.acc > 0.7).length);
  await page.fill('#filter', '');
});

test('selection: checkboxes, a shift-click range, select all; Compare opens the chart view with those runs', async () => {
  const { page } = browser;
  await openTable(page, '?view=table&sort=name');
  const boxes = '.tv-body .tr:not(.tr-run):not([hidden]) .td-check input';
  const rowBox = (i) => `.tv-body .tr[data-i="${i}"] .td-check input`;
  await page.click(rowBox(0));
  await page.click(rowBox(3), { modifiers: ['Shift'] });
  await page.waitForSelector('#bulk-compare');
  assert.equal(await page.textContent('.bulk-count'), '4 selected');
  assert.equal(await page.$$eval(`${boxes}:checked`, (e) => e.length), 4);
  assert.equal(new URL(page.url()).searchParams.get('sel').split(',').length, 4);
  await page.click('#tv-select-all');
  assert.equal(await page.textContent('.bulk-count'), `${points.length} selected`);
  await page.click('#tv-select-all');
  await page.waitForSelector('#bulk', { state: 'hidden' });
  await page.click(rowBox(0));
  await page.click(rowBox(1));
  await page.click(rowBox(2));
  await page.click('#bulk-compare');
  await page.waitForSelector('#drawer:not([hidden]) .tab.on[data-tab="metrics"]');
  await page.waitForFunction(() => document.querySelectorAll('#drawer .compare-bar .chip[data-overlay]').length === 2);
  const overlays = await page.$$eval('#drawer .compare-bar .chip[data-overlay]', (els) => els.map((e) => e.dataset.overlay));
  const names = points.map((p) => p.name).sort();
  for (const o of overlays) assert.match(o, /\/run_0001$/);
  assert.ok(overlays.some((o) => o.startsWith(names[1])) && overlays.some((o) => o.startsWith(names[2])), overlays.join(' '));
  // Each chart draws three lines: this experiment's and the two overlays.
  await page.waitForFunction(() => {
    const c = document.querySelector('#drawer .chart[data-column="acc"]');
    return c && c.querySelectorAll('.u-legend .u-series').length >= 4; // x + 3 lines
  }, null, { timeout: 15000 });
  await page.keyboard.press('Escape');
  await page.click('#bulk-clear');
});

test('bulk actions: rerun the selected errored ones, delete the selected (one confirmation naming how many)', async () => {
  const { page } = browser;
  await openTable(page, '?view=table&sort=status,name');
  const errored = points.filter((p) => p.status === 'Error');
  await page.click('#tv-select-all');
  assert.equal(await page.textContent('#bulk-retry'), `Rerun errored (${errored.length})`);
  await page.click('#bulk-retry');
  for (const p of errored) {
    await H.waitUntil(`${p.name} rerun as run_0002`, () => {
      const st = H.readStatus(p.dir);
      return st && st.run_id === 'run_0002' && st.status === 'Finished';
    });
  }
  await page.waitForSelector('.toast.ok:has-text("Rerun: 2 of 2 done")');
  await page.click('#bulk-clear');
  // Delete two: one dialog, naming two.
  const doomed = points.filter((p) => p.status !== 'Error').slice(-2);
  for (const p of doomed) await page.click(`.tv-body .tr[data-id="${path.basename(p.dir)}"] .td-check input`);
  await page.click('#bulk-delete');
  await page.waitForSelector('#confirm[open]');
  assert.equal(await page.textContent('#confirm-title'), 'Delete 2 experiments?');
  await page.click('#confirm-ok');
  for (const p of doomed) await H.waitUntil(`${p.dir} removed`, () => !fs.existsSync(p.dir));
  await page.waitForFunction((n) => document.querySelectorAll('.tv-body .tr:not([hidden])').length === n, points.length - 2);
  assert.equal(await page.$('#bulk:not([hidden])'), null, 'the deleted ones left the selection');
  for (const p of doomed) points.splice(points.indexOf(p), 1);
});

test('a row expands into its runs (each with its params and summaries); board cards show pinned summaries and the params that differ', async (t) => {
  if (!api) return t.skip('the server has no params or summaries yet (issue 13 SERVER-API)');
  const { page } = browser;
  await openTable(page, '?view=table&sort=name');
  const rerun = points.find((p) => p.status === 'Error'); // rerun above: two runs now
  const id = path.basename(rerun.dir);
  await page.click(`.tv-body .tr[data-id="${id}"]:not(.tr-run) [data-expand]`);
  await page.waitForFunction((id) => document.querySelectorAll(`.tv-body .tr-run[data-id="${id}"]:not([hidden])`).length === 2, id);
  const runs = await page.$$eval(`.tv-body .tr-run[data-id="${id}"]`, (els) => els.sort((a, b) => a.dataset.i - b.dataset.i).map((e) => e.dataset.run));
  assert.deepEqual(runs, ['run_0002', 'run_0001']);
  const lrCell = await page.$eval(`.tv-body .tr-run[data-run="run_0001"][data-id="${id}"]`, (tr) => tr.textContent);
  assert.ok(lrCell.includes(String(rerun.params.lr)) || lrCell.includes(rerun.params.lr.toExponential(3)), lrCell);
  // A run row opens the drawer on that run's metrics.
  await page.click(`.tv-body .tr-run[data-run="run_0001"][data-id="${id}"] .name-text`);
  await page.waitForSelector('#drawer .tab.on[data-tab="metrics"]');
  assert.equal(new URL(page.url()).searchParams.get('run'), 'run_0001');
  await page.waitForSelector('#drawer details.table-block[data-table="run_0001"][open]');
  await page.keyboard.press('Escape');
  await page.click(`.tv-body .tr[data-id="${id}"]:not(.tr-run) [data-expand]`);
  await page.waitForFunction(() => !document.querySelector('.tv-body .tr-run:not([hidden])'));
  // Pin acc.max from the table's header: the cards show it; they show lr, depth and opt (which
  // differ) and not seed (the same everywhere).
  await page.click(`${header(page, 'metrics.acc.max')} [data-pin]`);
  await page.click('#view-toggle [data-view="board"]');
  const best = points.slice().sort((a, b) => b.acc - a.acc)[0];
  const card = `.card[data-id="${path.basename(best.dir)}"]`;
  await page.waitForSelector(`${card} .card-metrics`);
  assert.match(await page.textContent(`${card} .card-metrics`), new RegExp(`acc\\.max\\s*${best.acc}`));
  const params = await page.$$eval(`${card} .card-params .param .k`, (els) => els.map((e) => e.textContent));
  assert.deepEqual(params.sort(), ['depth', 'lr', 'opt']);
  await H.screenshot(page, 'board-pinned.png');
  await page.click('#view-toggle [data-view="table"]');
  await page.click(`${header(page, 'metrics.acc.max')} [data-pin]`); // unpin
});

test('parallel coordinates: brushing an axis filters the table; the brush shows and clears', async (t) => {
  if (!api) return t.skip('the server has no params or summaries yet (issue 13 SERVER-API)');
  const { page } = browser;
  await openTable(page, '?view=table&pc=1');
  const lrAxis = '.pc-axis-label[data-key="params.lr"]';
  await page.waitForSelector(lrAxis);
  await page.check('#pc-log');
  await page.waitForSelector(`${lrAxis}[data-kind="log"]`); // 1e-4 .. 0.1: three decades
  const g = await page.$eval(lrAxis, (el) => ({ ...el.dataset }));
  const box = await (await page.$('#pc-canvas')).boundingBox();
  const x = box.x + Number(g.x);
  const y0 = box.y + Number(g.y0);
  const y1 = box.y + Number(g.y1);
  // The upper third of a log axis from 1e-4 to 1e-1: lr >= 0.01 (two of the four values).
  await page.mouse.move(x, y0 - 2);
  await page.mouse.down();
  await page.mouse.move(x, y0 + (y1 - y0) * 0.4, { steps: 5 });
  await page.mouse.up();
  const want = points.filter((p) => p.params.lr >= 0.01).length;
  await page.waitForFunction((n) => document.querySelectorAll('.tv-body .tr:not([hidden])').length === n, want);
  await page.waitForSelector('#pc-brushes .chip[data-brush="params.lr"]');
  // A categorical axis: opt.
  const optAxis = await page.$eval('.pc-axis-label[data-key="params.opt"]', (el) => ({ ...el.dataset }));
  assert.equal(optAxis.kind, 'cat');
  await H.screenshot(page, 'table-parcoords.png');
  await page.click('#pc-clear');
  await page.waitForFunction((n) => document.querySelectorAll('.tv-body .tr:not([hidden])').length === n, points.length);
  assert.equal(await page.$('#pc-brushes .chip'), null);
  await page.uncheck('#pc-log');
});

test('URL state: a link reproduces the view; reload, Back and Forward', async () => {
  const { page } = browser;
  await openTable(page, '?view=table&sort=-name');
  const first = (await rowNames(page))[0];
  assert.equal(first, points.map((p) => p.name).sort().reverse()[0]);
  await page.fill('#filter', 'sw-0');
  await page.waitForFunction(() => /q=sw-0/.test(location.search));
  await page.click(`.tv-body .tr[data-i="0"] .name-text`);
  await page.waitForSelector('#drawer:not([hidden])');
  await page.click('#drawer .tab[data-tab="metrics"]');
  await page.waitForFunction(() => /tab=metrics/.test(location.search));
  const url = page.url();
  const u = new URL(url);
  assert.equal(u.searchParams.get('view'), 'table');
  assert.equal(u.searchParams.get('sort'), '-name');
  assert.equal(u.searchParams.get('q'), 'sw-0');
  assert.ok(u.searchParams.get('exp').startsWith(first));
  // A fresh page from the link.
  await page.goto('about:blank');
  await page.goto(url);
  await page.waitForSelector('#drawer:not([hidden]) .tab.on[data-tab="metrics"]');
  assert.equal(await page.inputValue('#filter'), 'sw-0');
  assert.ok(await page.isVisible('#tview'));
  assert.match(await page.textContent(`${header(page, 'name')} .sort-mark`), /▼/);
  assert.equal((await rowNames(page))[0], first);
  // Back: the tab, then the drawer closes; Forward: it opens again.
  await page.goBack();
  await page.waitForFunction(() => !/tab=metrics/.test(location.search));
  await page.goto(url);
  await page.waitForSelector('#drawer:not([hidden]) .tab.on[data-tab="metrics"]');
  await page.click('#drawer .tab[data-tab="logs"]');
  await page.waitForSelector('#drawer .tab.on[data-tab="logs"]');
  await page.goBack();
  await page.waitForSelector('#drawer .tab.on[data-tab="metrics"]');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#drawer', { state: 'hidden' });
  await page.goBack();
  await page.waitForSelector('#drawer:not([hidden]) .tab.on[data-tab="metrics"]');
  await page.goForward();
  await page.waitForSelector('#drawer', { state: 'hidden' });
  // The board from the toggle, and Back to the table.
  await page.click('#view-toggle [data-view="board"]');
  await page.waitForSelector('#board:not([hidden]) .card');
  await page.goBack();
  await page.waitForSelector('#tview:not([hidden]) .tv-body .tr');
  // A server without /api/query answers the page's query and field look-ups 404 (the page then
  // filters by itself): the console reports those; nothing else may fail.
  const errors = api ? browser.errors : browser.errors.filter((e) => !/status of 404/.test(e));
  assert.deepEqual(errors, []);
});
