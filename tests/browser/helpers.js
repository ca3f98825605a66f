// Shared pieces of the browser tests: the real EXP binary, a real scheduled run, the UI server
// it serves, and Debian's Chromium driven by playwright-core (no browser download).
'use strict';

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const ROOT = path.resolve(__dirname, '..', '..');
const EXP_BIN = path.resolve(ROOT, process.env.EXP_BIN || 'target/debug/EXP');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'target', 'browser-artifacts');

// The flags this machine needs: no sandbox as root, and no background connections (the network
// is closed; without these Chromium retries refused connections at every start).
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

function checkPrerequisites() {
  if (!fs.existsSync(EXP_BIN)) {
    throw new Error(`${EXP_BIN} does not exist: build it with \`cargo build --features ui\` or set EXP_BIN`);
  }
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} does not exist: \`apt-get install chromium\` (scripts/setup-test-deps does) or set CHROMIUM`);
  }
}

/** A fresh temporary directory; `{ memory: true }` puts it on tmpfs (/dev/shm) where there is
 *  one, for tests that create thousands of files. */
function tempDir(prefix, { memory = false } = {}) {
  let base = os.tmpdir();
  if (memory) {
    try {
      fs.accessSync('/dev/shm', fs.constants.W_OK);
      base = '/dev/shm';
    } catch (e) {
      /* no tmpfs: the disk will do, slower */
    }
  }
  return fs.mkdtempSync(path.join(base, `expman-${prefix}-`));
}

/** TOML for a scheduler config; `jobs` are {name, command, ...} objects. */
function schedulerToml({ baseDir = 'experiments', maxConcurrent = 2, jobs }) {
  const str = (s) => JSON.stringify(s); // a TOML basic string is a JSON string
  const lines = ['[scheduler]', `base_dir = ${str(baseDir)}`, `max_concurrent = ${maxConcurrent}`, ''];
  for (const j of jobs) {
    lines.push('[[experiments]]', `name = ${str(j.name)}`, `command = ${str(j.command)}`);
    if (j.priority != null) lines.push(`priority = ${j.priority}`);
    if (j.tags) lines.push(`tags = [${j.tags.map(str).join(', ')}]`);
    if (j.description) lines.push(`description = ${str(j.description)}`);
    lines.push('');
  }
  return lines.join('\n');
}

/** A job that writes a metrics table the way expman does: plain CSV with the header
 *  `timestamp,run_id,<fields>` in the run's metrics/<run>.csv. */
const WRITES_ROWS = [
  'f="$EXPMAN_EXPERIMENT_DIR/metrics/$EXPMAN_RUN_ID.csv"',
  "printf 'timestamp,run_id,step,loss,acc\\n' > \"$f\"",
  'for s in 1 2 3 4 5 6 7 8; do',
  "  printf '2025-09-26T14:30:%02d.000000,%s,%d,%d.25,0.%d\\n' \"$s\" \"$EXPMAN_RUN_ID\" \"$s\" \"$((9 - s))\" \"$s\" >> \"$f\"",
  'done',
  'echo wrote 8 rows',
].join('\n');

/** Runs `EXP run --config` to completion (returns its result) or, with `background`, returns
 *  the scheduler's child process. */
function runScheduler(dir, config, { background = false } = {}) {
  const cfg = path.join(dir, 'expman.toml');
  fs.writeFileSync(cfg, schedulerToml(config));
  if (!background) {
    return spawnSync(EXP_BIN, ['run', '--config', cfg], { cwd: dir, encoding: 'utf8', timeout: 60000 });
  }
  const child = spawn(EXP_BIN, ['run', '--config', cfg], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  child.output = '';
  child.stdout.on('data', (d) => { child.output += d; });
  child.stderr.on('data', (d) => { child.output += d; });
  return child;
}

/** Starts `EXP <dir> --no-browser --port 0 ...` and resolves with {child, url} once it prints
 *  its URL. */
function startServer(dir, extraArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(EXP_BIN, [dir, '--no-browser', '--port', '0', ...extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`EXP did not print its URL within 20 s:\n${out}`));
    }, 20000);
    const onData = (d) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:\d+\/\S*/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[0] });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => { out += d; });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`EXP exited (${code}) before printing its URL:\n${out}`));
    });
  });
}

/** Stops a child process: SIGINT (the scheduler then terminates its jobs), SIGKILL after `ms`. */
async function stopProcess(child, ms = 15000) {
  if (!child || child.exitCode != null || child.signalCode != null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(timer);
}

/** Kills the process group of every job still recorded as running under `baseDir` (jobs run in
 *  their own groups, so a scheduler killed hard can leave them behind). */
function killLeftoverJobs(baseDir) {
  if (!fs.existsSync(baseDir)) return;
  for (const name of fs.readdirSync(baseDir)) {
    const st = readStatus(path.join(baseDir, name));
    for (const pid of [st && st.pid, st && st.supervisor_pid]) {
      if (!pid) continue;
      try {
        process.kill(-pid, 'SIGKILL');
      } catch (e) {
        /* already gone */
      }
    }
  }
}

function readStatus(expDir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(expDir, 'status.json'), 'utf8'));
  } catch (e) {
    return null;
  }
}

/** The directory of the experiment named `name` (directories are `<name>_<timestamp>`). */
function expDir(baseDir, name) {
  const re = new RegExp(`^${name}_\\d{4}-\\d{2}-\\d{2}__\\d{2}-\\d{2}-\\d{2}(_\\d+)?$`);
  const hit = fs.readdirSync(baseDir).find((n) => re.test(n));
  if (!hit) throw new Error(`no experiment directory for ${name} in ${baseDir}: ${fs.readdirSync(baseDir)}`);
  return path.join(baseDir, hit);
}

async function waitUntil(what, fn, { timeout = 30000, interval = 200 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/** A fresh Chromium profile; resolves with {context, page, close, errors}. Page errors and
 *  failed API calls are collected so a test can assert there were none. */
async function openBrowser({ width = 1280, height = 800 } = {}) {
  const profile = tempDir('chromium-profile');
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width, height },
  });
  const page = context.pages()[0] || (await context.newPage());
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return {
    context,
    page,
    errors,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A CSS selector for the card of experiment `name` in column `status` (any column if null). */
function card(name, status) {
  const col = status ? `.column[data-status="${status}"]` : '.column';
  return `${col} .card:has(.card-name:text-is("${name}"))`;
}

async function screenshot(page, file) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const p = path.join(ARTIFACTS, file);
  await page.screenshot({ path: p });
  return p;
}

/* What a board test started, stopped in order: the browser, the server, the scheduler (and any
   job it left), then the temporary directory (kept with KEEP_TMP=1 for a look afterwards). */
async function teardown({ browser, server, scheduler, baseDir, dir }) {
  if (browser) await browser.close();
  await stopProcess(server && server.child, 5000);
  await stopProcess(scheduler, 15000);
  if (baseDir) killLeftoverJobs(baseDir);
  if (dir && !process.env.KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
}

module.exports = {
  ROOT, EXP_BIN, ARTIFACTS, WRITES_ROWS,
  checkPrerequisites, tempDir, runScheduler, startServer, stopProcess, killLeftoverJobs,
  readStatus, expDir, waitUntil, openBrowser, card, screenshot, teardown,
};
