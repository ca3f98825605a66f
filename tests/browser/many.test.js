// Thousands of experiments: the page renders a bounded number of cards per column, "show more"
// extends it, the filter searches all of them, and a change to one experiment reaches its card
// through an incremental poll. (Speed goals live in the benchmarks; this checks the behaviour
// that keeps the page fast, and reports the timings it saw.)
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const H = require('./helpers');

const COPIES = 3000;
const PER_COLUMN = 150; // app.js PAGE

let dir;
let baseDir;
let seed;
let server;
let browser;

before(async () => {
  H.checkPrerequisites();
  dir = H.tempDir('ui-many', { memory: true });
  baseDir = path.join(dir, 'experiments');
  const r = H.runScheduler(dir, { jobs: [{ name: 'sweep', tags: ['many'], command: H.WRITES_ROWS }] });
  assert.equal(r.status, 0, `EXP run: ${r.stdout}\n${r.stderr}`);
  seed = H.expDir(baseDir, 'sweep');
  // Copies of a real experiment directory, named as expman names clashes (`_2`, `_3`, ...).
  for (let i = 2; i <= COPIES + 1; i++) fs.cpSync(seed, `${seed}_${i}`, { recursive: true });
  server = await H.startServer(baseDir);
  browser = await H.openBrowser({ width: 1920, height: 1080 });
});

after(async () => {
  if (browser) await browser.close();
  await H.stopProcess(server && server.child, 5000);
  if (dir && !process.env.KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
});

test(`${COPIES + 1} experiments: capped columns, show more, filter, incremental updates`, { timeout: 90000 }, async (t) => {
  const { page } = browser;
  const finished = '.column[data-status="Finished"]';
  const t0 = Date.now();
  await page.goto(server.url);
  await page.waitForSelector(`${finished} .card`, { timeout: 60000 });
  t.diagnostic(`first cards after ${Date.now() - t0} ms`);
  assert.equal(await page.locator(`${finished} .card`).count(), PER_COLUMN);
  assert.equal(await page.locator(`${finished} .count`).textContent(), (COPIES + 1).toLocaleString('en-US'));
  assert.match(await page.locator(`${finished} [data-more]`).textContent(), /Show 150 more/);

  await page.click(`${finished} [data-more]`);
  await page.waitForFunction((sel) => document.querySelectorAll(`${sel} .card`).length === 300, finished);

  const t1 = Date.now();
  await page.fill('#filter', `${path.basename(seed)}_2999`);
  await page.waitForFunction(() => document.querySelectorAll('.card').length === 1);
  t.diagnostic(`filter over ${COPIES + 1} experiments answered in ${Date.now() - t1} ms (120 ms of it debounce)`);
  await page.fill('#filter', '');
  await page.waitForFunction(() => document.querySelectorAll('.card').length === 150);

  // One experiment changes (a rerun) and another goes (a delete): incremental polls
  // (since=<version>) carry just those.
  const polls = [];
  page.on('response', async (r) => {
    if (/\/api\/experiments\?/.test(r.url()) && r.url().includes('since=')) polls.push(await r.json());
  });
  const rerun = path.basename(`${seed}_1234`);
  await page.fill('#filter', rerun);
  await page.click(`.card[data-id="${rerun}"] .card-name`);
  await page.click('#drawer [data-act="retry"]');
  await page.waitForSelector('.toast.ok:has-text("run_0002")', { timeout: 20000 });
  await page.waitForSelector(`.card[data-id="${rerun}"] .card-run:text-is("run_0002")`, { timeout: 20000 });
  await page.keyboard.press('Escape');
  const carrying = polls.find((p) => p.experiments.some((e) => e.id === rerun));
  assert.ok(carrying, 'an incremental poll carried the rerun');
  assert.equal(carrying.full, false);
  assert.ok(carrying.experiments.length < 10, `the poll carried ${carrying.experiments.length} experiments`);

  const gone = path.basename(`${seed}_1235`);
  await page.fill('#filter', gone);
  await page.click(`.card[data-id="${gone}"] [data-act="delete"]`);
  await page.click('#confirm-ok');
  await page.waitForSelector(`.card[data-id="${gone}"]`, { state: 'detached', timeout: 15000 });
  assert.ok(polls.some((p) => !p.full && (p.removed || []).includes(gone)), 'an incremental poll carried the removal');
  await page.fill('#filter', '');
  await page.waitForFunction(() => document.querySelectorAll('.card').length >= 150);
  assert.equal(await page.locator(`${finished} .count`).textContent(), COPIES.toLocaleString('en-US'));
  await H.screenshot(page, 'many-experiments.png');
  assert.deepEqual(browser.errors, []);
});
