// The page on a directory that no scheduler owns any more (the run is over): Rerun and Delete
// act directly; the page on a server bound to a non-loopback address, where every request needs
// the printed token; and an empty directory.
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const H = require('./helpers');

let dir;
let baseDir;
const servers = [];
const browsers = [];

before(() => {
  H.checkPrerequisites();
  dir = H.tempDir('ui-actions');
  baseDir = path.join(dir, 'experiments');
  const r = H.runScheduler(dir, {
    maxConcurrent: 2,
    jobs: [
      { name: 'ok_job', tags: ['done'], command: 'echo all good' },
      { name: 'bad_job', tags: ['broken'], command: 'echo failing on purpose >&2; exit 3' },
    ],
  });
  // One job failed, so the scheduler exits 1; it must have run both.
  assert.equal(r.status, 1, `EXP run: ${r.stdout}\n${r.stderr}`);
});

after(async () => {
  for (const b of browsers) await b.close();
  for (const s of servers) await H.stopProcess(s.child, 5000);
  if (baseDir) H.killLeftoverJobs(baseDir);
  if (dir && !process.env.KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
});

async function open(url, args) {
  const server = await H.startServer(url, args);
  servers.push(server);
  const b = await H.openBrowser();
  browsers.push(b);
  return { server, page: b.page, browser: b };
}

test('without a scheduler, Rerun starts run_0002 itself and Delete removes the directory', { timeout: 60000 }, async () => {
  const { server, page, browser } = await open(baseDir);
  await page.goto(server.url);
  await page.waitForSelector(H.card('bad_job', 'Error'));
  await page.waitForSelector(H.card('ok_job', 'Finished'));
  assert.match(await page.locator('#sched').textContent(), /no scheduler/);

  const bad = H.expDir(baseDir, 'bad_job');
  await page.click(`${H.card('bad_job', 'Error')} [data-act="retry"]`);
  await page.waitForSelector('.toast.ok:has-text("run_0002")', { timeout: 20000 });
  // The detached run fails again, as its command says, and is recorded as run_0002.
  await H.waitUntil('run_0002 to end', () => {
    const st = H.readStatus(bad);
    return st && st.run_id === 'run_0002' && st.status === 'Error' && st.exit_code === 3;
  }, { timeout: 30000 });
  await page.waitForSelector(`${H.card('bad_job', 'Error')} .card-run:text-is("run_0002")`, { timeout: 15000 });

  // The drawer lists both runs, and each run's log.
  await page.click(`${H.card('bad_job', 'Error')} .card-name`);
  await page.waitForSelector('#drawer .kv');
  await page.waitForFunction(() => document.querySelectorAll('#drawer [data-pane="overview"] tbody tr').length === 2);
  await H.screenshot(page, 'drawer-overview.png');
  await page.click('#drawer .tab[data-tab="logs"]');
  await page.waitForSelector('#drawer [data-log="run_0002.log"]');
  await page.waitForSelector('#drawer [data-log="run_0001.log"]');
  await page.waitForFunction(() => document.querySelector('#drawer [data-log="run_0002.log"] pre.log').textContent.includes('failing on purpose'));
  await page.keyboard.press('Escape');

  const ok = H.expDir(baseDir, 'ok_job');
  await page.click(`${H.card('ok_job', 'Finished')} [data-act="delete"]`);
  await page.click('#confirm-ok');
  await page.waitForSelector('.toast.ok:has-text("deleted")', { timeout: 15000 });
  assert.ok(!fs.existsSync(ok), 'the directory is gone');
  await page.waitForSelector(H.card('ok_job'), { state: 'detached', timeout: 10000 });
  assert.deepEqual(browser.errors, []);
});

test('on a non-loopback address the page sends the printed token with every request', { timeout: 60000 }, async () => {
  // Bound to all interfaces, but only ever reached through 127.0.0.1.
  const { server, page, browser } = await open(baseDir, ['--host', '0.0.0.0']);
  const url = new URL(server.url);
  const token = url.searchParams.get('token');
  assert.ok(token, `the printed URL carries a token: ${server.url}`);

  // Without it, nothing is served.
  const bare = await fetch(`${url.origin}/api/experiments`);
  assert.equal(bare.status, 403);

  const apiCalls = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/')) apiCalls.push(r);
  });
  await page.goto(server.url);
  await page.waitForSelector(H.card('bad_job', 'Error'));
  await page.click(`${H.card('bad_job', 'Error')} .card-name`);
  await page.click('#drawer .tab[data-tab="logs"]');
  await page.waitForSelector('#drawer [data-log="run_0002.log"] pre.log:has-text("failing on purpose")');
  assert.ok(apiCalls.length > 2);
  for (const r of apiCalls) {
    assert.equal(new URL(r.url()).searchParams.get('token'), token, r.url());
    assert.equal((await r.allHeaders())['x-expman-token'], token, r.url());
  }
  // A POST through the page works too.
  await page.click('#drawer [data-act="retry"]');
  await page.waitForSelector('.toast.ok:has-text("run_0003")', { timeout: 20000 });
  await H.waitUntil('run_0003 to end', () => {
    const st = H.readStatus(H.expDir(baseDir, 'bad_job'));
    return st && st.run_id === 'run_0003' && st.status === 'Error';
  }, { timeout: 30000 });
  assert.deepEqual(browser.errors, []);
});

test('an empty directory shows four empty columns', { timeout: 30000 }, async () => {
  const empty = path.join(dir, 'empty');
  fs.mkdirSync(empty);
  const { server, page, browser } = await open(empty);
  await page.goto(server.url);
  await page.waitForFunction(() => document.querySelectorAll('.col-empty').length === 4);
  assert.deepEqual(await page.locator('.column .count').allTextContents(), ['0', '0', '0', '0']);
  assert.match(await page.locator('#conn').textContent(), /0 experiments/);
  assert.deepEqual(browser.errors, []);
});
