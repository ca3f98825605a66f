// What a user of the seed framework expects to find in the page (issue 11): a failed Python
// run's card names the exception that ended it, not only its exit code; a Rerun that a running
// scheduler queues says "queued" rather than "started"; and the drawer shows config.json and
// status.json under "Metadata", where the seed showed metadata.json.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const H = require('./helpers');
const F = require('./fixtures');

const EXCEPTION = 'ValueError: learning rate 0.5 diverged';

let dir;
let baseDir;
let scheduler;
let server;
let browser;
let page;

before(async () => {
  H.checkPrerequisites();
  dir = H.tempDir('ui-seed');
  baseDir = path.join(dir, 'experiments');
  const script = path.join(dir, 'train.py');
  fs.writeFileSync(script, [
    "print('epoch 1: loss=0.31', flush=True)",
    'lr = 0.5',
    "raise ValueError(f'learning rate {lr} diverged')",
    '',
  ].join('\n'));
  // One slot: `diverges` runs first and fails; then `holds_the_slot` keeps the slot busy, so a
  // rerun of `diverges` has to wait in the scheduler's queue.
  scheduler = H.runScheduler(dir, {
    maxConcurrent: 1,
    jobs: [
      { name: 'diverges', priority: 10, tags: ['seed'], command: `python3 ${script}` },
      { name: 'holds_the_slot', priority: 0, command: 'exec sleep 120' },
    ],
  }, { background: true });
  await H.waitUntil('diverges to fail and holds_the_slot to run', () => {
    if (!fs.existsSync(baseDir)) return false;
    try {
      const failed = H.readStatus(H.expDir(baseDir, 'diverges'));
      const holding = H.readStatus(H.expDir(baseDir, 'holds_the_slot'));
      return failed && failed.status === 'Error' && holding && holding.status === 'Running';
    } catch (e) {
      return false;
    }
  }, { timeout: 45000 });
  server = await H.startServer(baseDir);
  browser = await H.openBrowser({ width: 1280, height: 800 });
  page = browser.page;
  await page.goto(server.url);
});

after(() => H.teardown({ browser, server, scheduler, baseDir, dir }));

test('a failed run\'s card and drawer show the last exception line of its log', { timeout: 30000 }, async () => {
  const card = page.locator(H.card('diverges', 'Error'));
  await card.waitFor();
  assert.equal(await card.locator('.card-error').textContent(), 'exited with code 1');
  assert.equal(await card.locator('.card-exception').textContent(), EXCEPTION);
  await H.screenshot(page, 'seed-error-card.png');

  await card.locator('.card-name').click();
  await page.waitForSelector('#drawer:not([hidden]) .kv');
  const row = page.locator('#drawer .kv dt:text-is("Exception") + dd');
  assert.equal(await row.textContent(), EXCEPTION);
});

test('an exception that is also the run\'s recorded error (the Python exit hook records it) is shown once', { timeout: 30000 }, async () => {
  const dir = F.writeExperiment(baseDir, H.expDir(baseDir, 'diverges'), { name: 'raised', columns: ['step'], rows: [[0]], index: 8, status: 'Error' });
  const statusPath = path.join(dir, 'status.json');
  const status = JSON.parse(fs.readFileSync(statusPath, 'utf8'));
  status.error = EXCEPTION;
  fs.writeFileSync(statusPath, JSON.stringify(status, null, 2));
  fs.writeFileSync(path.join(dir, 'logs', `${status.run_id}.log`), `Traceback (most recent call last):\n  File "train.py", line 3, in <module>\n${EXCEPTION}\n`);
  const card = page.locator(H.card('raised', 'Error'));
  await card.waitFor({ timeout: 15000 });
  assert.equal(await card.locator('.card-error').textContent(), EXCEPTION);
  assert.equal(await card.locator('.card-exception').count(), 0, 'the same line printed twice');
});

test('the drawer shows config.json and status.json under "Metadata"', { timeout: 30000 }, async () => {
  // The drawer is open on `diverges` (previous test); a seed user looks for "Metadata".
  const metadata = page.locator('#drawer [data-pane="overview"] .section', { has: page.getByRole('heading', { name: 'Metadata', exact: true }) });
  await metadata.waitFor();
  assert.deepEqual(await metadata.locator('details > summary').allTextContents(), ['config.json', 'status.json']);
  const text = await metadata.textContent();
  assert.match(text, /"name": "diverges"/);
  assert.match(text, /"status": "Error"/);
  await H.screenshot(page, 'seed-drawer-metadata.png');
  await page.keyboard.press('Escape');
  await page.waitForSelector('#drawer', { state: 'hidden' });
});

test('a run whose metrics table was damaged by another program says so on its card and in the drawer', { timeout: 30000 }, async () => {
  // A copy of `diverges` with a metrics table, then a row typed by hand with a cell too many.
  const dir = F.writeExperiment(baseDir, H.expDir(baseDir, 'diverges'), {
    name: 'damaged', columns: ['step', 'loss'], rows: [[0, 0.5], [1, 0.25]], index: 7,
  });
  fs.appendFileSync(path.join(dir, 'metrics', 'run_0001.csv'), '2026-01-01T00:00:00.000000,run_0001,2,0.1,extra\n');
  const card = page.locator(H.card('damaged', 'Error'));
  const note = card.locator('.card-metrics-error');
  await note.waitFor({ timeout: 15000 });
  assert.match(await note.textContent(), /^Metrics unreadable: .*run_0001\.csv:4: row has 5 cells but the header has 4 columns/);
  await card.locator('.card-name').click();
  const row = page.locator('#drawer .kv dt:text-is("Metrics") + dd');
  await row.waitFor();
  assert.match(await row.textContent(), /^unreadable: .*row has 5 cells/);
  await page.keyboard.press('Escape');
  await page.waitForSelector('#drawer', { state: 'hidden' });
  assert.deepEqual(browser.errors, []);
});

test('Rerun while a scheduler holds the directory says the run was queued', { timeout: 45000 }, async () => {
  await page.click(`${H.card('diverges', 'Error')} [data-act="retry"]`);
  const toast = await page.waitForSelector('.toast.ok:has-text("run_0002")', { timeout: 20000 });
  const said = await toast.textContent();
  assert.match(said, /run_0002 queued/);
  assert.doesNotMatch(said, /started/);
  // And it is what happened: the run waits as Pending while the slot is held.
  await page.waitForSelector(`${H.card('diverges', 'Pending')} .card-run:text-is("run_0002")`, { timeout: 15000 });
  assert.equal(H.readStatus(H.expDir(baseDir, 'diverges')).status, 'Pending');
  assert.equal(H.readStatus(H.expDir(baseDir, 'holds_the_slot')).status, 'Running');
  assert.deepEqual(browser.errors, []);
});
