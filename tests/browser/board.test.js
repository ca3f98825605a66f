// The page in real headless Chromium against the real EXP binary, on experiments that a real
// scheduler run created and is still running: the four columns, the drawer (chart, logs), the
// monitor (incremental tails, layouts, paging), and Terminate, Rerun and Delete through the
// scheduler's control channel.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const H = require('./helpers');

let dir;
let baseDir;
let scheduler;
let server;
let browser;
let page;

const JOBS = [
  { name: 'prints_lines', priority: 10, tags: ['browser', 'ok'], description: 'prints a few lines',
    command: 'for i in 1 2 3; do echo "line $i of prints_lines"; done' },
  { name: 'fails', priority: 10, tags: ['browser'], description: 'exits with status 3',
    command: 'echo about to fail; exit 3' },
  { name: 'writes_rows', priority: 10, tags: ['browser', 'metrics'], description: 'writes a metrics table',
    command: H.WRITES_ROWS },
  // Two long jobs fill both slots (max_concurrent = 2), so `queued` stays Pending.
  { name: 'sleeper_one', priority: 5, tags: ['long'], command: 'echo sleeper one starts; exec sleep 120' },
  { name: 'sleeper_two', priority: 5, tags: ['long'], command: 'echo sleeper two starts; exec sleep 120' },
  { name: 'queued', priority: 0, tags: ['long'], command: 'echo queued starts; exec sleep 120' },
];

before(async () => {
  H.checkPrerequisites();
  dir = H.tempDir('ui-board');
  baseDir = path.join(dir, 'experiments');
  scheduler = H.runScheduler(dir, { maxConcurrent: 2, jobs: JOBS }, { background: true });
  // Wait for the steady state: three done, two sleeping, one queued.
  await H.waitUntil('the scheduled run to settle', () => {
    if (!fs.existsSync(baseDir)) return false;
    const states = {};
    for (const j of JOBS) {
      let st;
      try {
        st = H.readStatus(H.expDir(baseDir, j.name));
      } catch (e) {
        return false;
      }
      states[j.name] = st && st.status;
    }
    return states.prints_lines === 'Finished' && states.writes_rows === 'Finished' &&
      states.fails === 'Error' && states.sleeper_one === 'Running' &&
      states.sleeper_two === 'Running' && states.queued === 'Pending';
  }, { timeout: 45000 });
  server = await H.startServer(baseDir);
  browser = await H.openBrowser({ width: 1280, height: 800 });
  page = browser.page;
  await page.goto(server.url);
});

after(() => H.teardown({ browser, server, scheduler, baseDir, dir }));

test('the four columns fill from the real run', { timeout: 30000 }, async () => {
  await page.waitForSelector(H.card('prints_lines', 'Finished'));
  await page.waitForSelector(H.card('writes_rows', 'Finished'));
  await page.waitForSelector(H.card('fails', 'Error'));
  await page.waitForSelector(H.card('sleeper_one', 'Running'));
  await page.waitForSelector(H.card('sleeper_two', 'Running'));
  await page.waitForSelector(H.card('queued', 'Pending'));
  const counts = await page.$$eval('.column', (cols) =>
    Object.fromEntries(cols.map((c) => [c.dataset.status, c.querySelectorAll('.card').length])));
  assert.deepEqual(counts, { Pending: 1, Running: 2, Finished: 2, Error: 1 });

  // A card carries what the summary says: run id, tags, description, error, metrics.
  const rows = page.locator(H.card('writes_rows', 'Finished'));
  assert.equal(await rows.locator('.card-run').textContent(), 'run_0001');
  assert.deepEqual(await rows.locator('.tag').allTextContents(), ['browser', 'metrics']);
  assert.equal(await rows.locator('.card-desc').textContent(), 'writes a metrics table');
  // By default the first two metrics' last values (a server without summaries: a few values of
  // the last row, step first).
  const metrics = await rows.locator('.card-metrics').textContent();
  assert.match(metrics, /step\s*8/);
  assert.match(metrics, /loss\s*1\.25|acc\s*0\.8/);
  assert.match(await page.locator(H.card('fails', 'Error')).locator('.card-error').textContent(), /3/);
  // Each column offers its own actions.
  assert.equal(await page.locator(`${H.card('fails', 'Error')} [data-act="retry"]`).count(), 1);
  assert.equal(await page.locator(`${H.card('sleeper_one', 'Running')} [data-act="terminate"]`).count(), 1);
  assert.equal(await page.locator(`${H.card('sleeper_one', 'Running')} [data-act="delete"]`).count(), 0);
  assert.equal(await page.locator(`${H.card('prints_lines', 'Finished')} [data-act="delete"]`).count(), 1);
  // The running clock ticks.
  const elapsed = page.locator(`${H.card('sleeper_one', 'Running')} .elapsed`);
  const t0 = await elapsed.textContent();
  await H.waitUntil('the clock to tick', async () => (await elapsed.textContent()) !== t0, { timeout: 5000 });
  await H.screenshot(page, 'board-1280.png');
});

test('the filter matches name, tag and status', { timeout: 20000 }, async () => {
  const visible = () => page.$$eval('.card .card-name', (els) => els.map((e) => e.textContent).sort().join(','));
  const shows = (filter, names) => H.waitUntil(`"${filter}" to show ${names}`, async () => (await visible()) === names.join(','), { timeout: 5000 });
  await page.fill('#filter', 'sleeper');
  await shows('sleeper', ['sleeper_one', 'sleeper_two']);
  await page.fill('#filter', 'metrics');
  await shows('metrics', ['writes_rows']);
  await page.fill('#filter', 'error');
  await shows('error', ['fails']);
  assert.equal((await page.locator('.column[data-status="Error"] .count').textContent()).trim(), '1 / 1');
  await page.fill('#filter', '');
  await page.waitForFunction(() => document.querySelectorAll('.card').length === 6);
});

test('the drawer shows metadata, a chart of every numeric column, rows and the logs', { timeout: 30000 }, async () => {
  await page.click(`${H.card('writes_rows', 'Finished')} .card-name`);
  await page.waitForSelector('#drawer:not([hidden]) .kv');
  assert.equal(await page.locator('#drawer h2').textContent(), 'writes_rows');
  const overview = await page.locator('#drawer [data-pane="overview"]').textContent();
  assert.match(overview, /config\.json/);
  assert.match(overview, /status\.json/);
  assert.match(overview, /"status": "Finished"/);
  assert.match(overview, /run_0001/);

  await page.click('#drawer .tab[data-tab="metrics"]');
  await page.waitForSelector('#drawer .table-block[data-table="run_0001"] .chart[data-column="loss"] canvas');
  const columns = await page.$$eval('#drawer .table-block[data-table="run_0001"] .chart', (els) => els.map((e) => e.dataset.column).sort());
  assert.deepEqual(columns, ['acc', 'loss']);
  // The canvas is really drawn at the chart's size.
  const size = await page.$eval('#drawer .chart[data-column="loss"] canvas', (c) => [c.width, c.height]);
  assert.ok(size[0] > 200 && size[1] > 100, `canvas size ${size}`);
  const preview = await page.locator('#drawer .table-block[data-table="run_0001"] table.grid').textContent();
  assert.match(preview, /2025-09-26T14:30:08\.000000/);
  assert.equal(await page.locator('#drawer .table-block[data-table="run_0001"] table.grid tbody tr').count(), 8);
  await H.screenshot(page, 'drawer-metrics.png');

  await page.click('#drawer .tab[data-tab="logs"]');
  await page.waitForFunction(() => {
    const pre = document.querySelector('#drawer [data-log="run_0001.log"] pre.log');
    return pre && pre.textContent.includes('wrote 8 rows');
  }, null, { timeout: 10000 });
  assert.equal(await page.locator('#drawer [data-log="experiment.log"]').count(), 1);
  await H.screenshot(page, 'drawer-logs.png');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#drawer', { state: 'hidden' });
});

test('comparing overlays another experiment\'s same-named columns', { timeout: 30000 }, async () => {
  // A second table with the same columns, written the way expman writes them.
  const other = H.expDir(baseDir, 'prints_lines');
  fs.writeFileSync(path.join(other, 'metrics', 'run_0001.csv'),
    'timestamp,run_id,step,loss\n2025-09-26T14:31:00.000000,run_0001,1,3.5\n2025-09-26T14:31:01.000000,run_0001,2,2.5\n');
  await page.click(`${H.card('writes_rows', 'Finished')} .card-name`);
  await page.click('#drawer .tab[data-tab="metrics"]');
  await page.waitForSelector('#drawer .chart[data-column="loss"] canvas');
  await page.click('#compare-btn');
  await page.fill('#compare-picker input', 'prints');
  await page.click(`#compare-picker [data-pick-exp="${path.basename(other)}"]`);
  await page.waitForFunction(() => {
    const legend = document.querySelector('#drawer .chart[data-column="loss"] .u-legend');
    return legend && legend.textContent.includes('prints_lines · run_0001');
  }, null, { timeout: 10000 });
  // `acc` exists only in writes_rows: its chart keeps a single line.
  const accSeries = await page.$$eval('#drawer .chart[data-column="acc"] .u-legend .u-series', (s) => s.length);
  assert.equal(accSeries, 2); // the x column and one line
  await page.keyboard.press('Escape');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#drawer', { state: 'hidden' });
});

test('closing the compare picker while a search is pending is not an error', { timeout: 30000 }, async () => {
  // The search waits for a pause in typing; Escape (or a pick) within that pause closed the
  // picker first, and the pending search then wrote to the closed picker.
  const before = browser.errors.length;
  await page.click(`${H.card('writes_rows', 'Finished')} .card-name`);
  await page.click('#drawer .tab[data-tab="metrics"]');
  await page.waitForSelector('#drawer .chart[data-column="loss"] canvas');
  await page.click('#compare-btn');
  await page.fill('#compare-picker input', 'prints');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#compare-picker', { state: 'detached' });
  // Timers fire in deadline order: once this page timer has run, the search's (100 ms) has.
  await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 300)));
  assert.deepEqual(browser.errors.slice(before), []);
  await page.keyboard.press('Escape');
  await page.waitForSelector('#drawer', { state: 'hidden' });
});

test('the monitor tails logs by offset, shows appended lines, pages and changes layout', { timeout: 45000 }, async () => {
  const sleeper = H.expDir(baseDir, 'sleeper_one');
  const log = path.join(sleeper, 'logs', 'run_0001.log');
  // 2 MB before the monitor opens: only the tail may be fetched.
  const filler = 'filler line that the monitor must not download in full\n'.repeat(40000);
  fs.appendFileSync(log, filler);
  const logRequests = [];
  page.on('request', (r) => {
    if (r.url().includes('/logs/')) logRequests.push(new URL(r.url()));
  });

  await page.click(`${H.card('sleeper_one', 'Running')} [data-act="monitor"]`);
  await page.waitForSelector('#monitor:not([hidden]) .mwin pre.log');
  await page.waitForFunction(() => document.querySelector('#monitor .mwin pre.log').textContent.includes('filler line'));
  const first = logRequests.find((u) => u.pathname.includes(path.basename(sleeper)));
  assert.ok(first, 'the monitor asked for the log');
  assert.equal(first.searchParams.get('offset'), null, 'the first request reads the tail');
  const shown = await page.$eval('#monitor .mwin pre.log', (p) => p.textContent.length);
  assert.ok(shown < 200000, `the window holds the tail only (${shown} chars)`);
  assert.match(await page.locator('#monitor .mwin pre.log').textContent(), /before this not shown/);

  const marker = `appended while open ${Date.now()}`;
  fs.appendFileSync(log, `${marker}\nsecond appended line\n`);
  await page.waitForFunction((m) => document.querySelector('#monitor .mwin pre.log').textContent.includes(m), marker, { timeout: 10000 });
  const follow = logRequests.filter((u) => u.pathname.includes(path.basename(sleeper)) && u.searchParams.get('offset'));
  assert.ok(follow.length > 0, 'later requests follow by offset');
  const offsets = follow.map((u) => Number(u.searchParams.get('offset')));
  assert.ok(offsets.every((o) => o >= filler.length), `offsets ${offsets} start past the filler`);

  // Two more windows, then the layouts and paging.
  await page.click(`${H.card('sleeper_two', 'Running')} [data-act="monitor"]`);
  await page.click(`${H.card('fails', 'Error')} [data-act="monitor"]`);
  await page.waitForFunction(() => document.querySelector('#monitor-count').textContent === '3');
  await page.click('#monitor [data-cols="3"]');
  await page.waitForFunction(() => document.querySelectorAll('#monitor .mwin').length === 3);
  assert.equal(await page.locator('#monitor-page').textContent(), '1 / 1');
  await page.waitForFunction(() => [...document.querySelectorAll('#monitor .mwin pre.log')].every((p) => p.textContent.length > 0));
  assert.match(await page.locator('#monitor .mwin[data-file="run_0001.log"]:has(.title:text-is("fails")) pre.log').textContent(), /about to fail/);
  await H.screenshot(page, 'monitor-3-columns.png');

  await page.click('#monitor [data-cols="1"]');
  await page.waitForFunction(() => document.querySelectorAll('#monitor .mwin').length === 1);
  assert.equal(await page.locator('#monitor-page').textContent(), '1 / 3');
  await page.click('#monitor-next');
  assert.equal(await page.locator('#monitor-page').textContent(), '2 / 3');
  assert.equal(await page.locator('#monitor .mwin .title').textContent(), 'sleeper_two');
  await page.click('#monitor [data-cols="2"]');
  await page.waitForFunction(() => document.querySelectorAll('#monitor .mwin').length === 2);
  // Back on screen after a page change, a window still shows the end of its log.
  const atEnd = await page.$eval('#monitor .mwin:has(.title:text-is("sleeper_one")) pre.log',
    (p) => p.scrollTop + p.clientHeight >= p.scrollHeight - 30);
  assert.ok(atEnd, 'sleeper_one\'s window is scrolled to its end');
  await H.screenshot(page, 'monitor-2-columns.png');
  await page.click('#monitor-hide');
  await page.waitForSelector('#monitor', { state: 'hidden' });
});

test('Terminate stops a running experiment (confirmed), and the queue moves on', { timeout: 45000 }, async () => {
  await page.click(`${H.card('sleeper_two', 'Running')} [data-act="terminate"]`);
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-ok');
  await page.waitForSelector('.toast.ok');
  await page.waitForSelector(H.card('sleeper_two', 'Error'), { timeout: 20000 });
  assert.match(await page.locator(H.card('sleeper_two', 'Error')).locator('.card-error').textContent(), /terminated/);
  // Its slot went to the queued experiment.
  await page.waitForSelector(H.card('queued', 'Running'), { timeout: 20000 });
});

test('Rerun on the errored experiment produces run_0002', { timeout: 45000 }, async () => {
  const failsDir = H.expDir(baseDir, 'fails');
  await page.click(`${H.card('fails', 'Error')} [data-act="retry"]`);
  const toast = await page.waitForSelector('.toast.ok:has-text("run_0002")', { timeout: 20000 });
  assert.match(await toast.textContent(), /run_0002/);
  await H.waitUntil('run_0002 on disk', () => {
    const st = H.readStatus(failsDir);
    return st && st.run_id === 'run_0002' && fs.existsSync(path.join(failsDir, 'logs', 'run_0002.log'));
  }, { timeout: 20000 });
  await page.waitForSelector(`${H.card('fails')} .card-run:text-is("run_0002")`, { timeout: 15000 });
});

test('Delete asks for confirmation, then removes the directory', { timeout: 30000 }, async () => {
  const target = H.expDir(baseDir, 'prints_lines');
  // Cancelling keeps it.
  await page.click(`${H.card('prints_lines', 'Finished')} [data-act="delete"]`);
  await page.waitForSelector('#confirm[open]');
  assert.match(await page.locator('#confirm-text').textContent(), new RegExp(path.basename(target)));
  await page.click('#confirm button[value="cancel"]');
  await page.waitForSelector('#confirm', { state: 'hidden' });
  assert.ok(fs.existsSync(target));

  await page.click(`${H.card('prints_lines', 'Finished')} [data-act="delete"]`);
  await page.waitForSelector('#confirm[open]');
  await page.click('#confirm-ok');
  await page.waitForSelector('.toast.ok:has-text("deleted")', { timeout: 15000 });
  await H.waitUntil('the directory to go', () => !fs.existsSync(target), { timeout: 10000 });
  await page.waitForSelector(H.card('prints_lines'), { state: 'detached', timeout: 10000 });
});

test('a refused action shows the server\'s error as a toast', { timeout: 20000 }, async () => {
  // Deleting a running experiment is refused (409); the page calls the API directly here since
  // running cards offer no Delete button.
  const id = path.basename(H.expDir(baseDir, 'sleeper_one'));
  const res = await page.evaluate(async (i) => {
    const token = document.querySelector('meta[name="expman-token"]').content;
    const r = await fetch(`/api/experiments/${encodeURIComponent(i)}/actions/delete`, { method: 'POST', headers: { 'X-Expman-Token': token } });
    return { status: r.status, body: await r.json() };
  }, id);
  assert.equal(res.status, 409);
  assert.match(res.body.error, /running/);
  // A refusal through the page: the server's message reaches a toast, and nothing changes.
  await page.route('**/actions/retry', (route) => route.fulfill({
    status: 409, contentType: 'application/json',
    body: JSON.stringify({ error: 'refused for the test: already queued' }),
  }));
  await page.click(`${H.card('sleeper_two', 'Error')} [data-act="retry"]`);
  const toast = await page.waitForSelector('.toast.err', { timeout: 10000 });
  assert.match(await toast.textContent(), /refused for the test: already queued/);
  await page.unroute('**/actions/retry');
  assert.equal(H.readStatus(H.expDir(baseDir, 'sleeper_two')).run_id, 'run_0001');
});

test('layout at 1920 px, and no errors in the page', { timeout: 20000 }, async () => {
  await page.setViewportSize({ width: 1920, height: 1080 });
  await page.click(`${H.card('queued')} [data-act="monitor"]`);
  await page.waitForSelector('#monitor:not([hidden]) .mwin');
  await page.waitForTimeout(500);
  await H.screenshot(page, 'board-1920.png');
  const widths = await page.$$eval('.column', (cols) => cols.map((c) => Math.round(c.getBoundingClientRect().width)));
  assert.equal(widths.length, 4);
  assert.ok(widths.every((w) => w > 400), `columns ${widths}`);
  // The only console errors allowed are the failed requests the tests provoked on purpose.
  const unexpected = browser.errors.filter((e) => !/status of 40[49]/.test(e));
  assert.deepEqual(unexpected, []);
});
