// Experiment directories for the runs-table tests, made from one real experiment that `EXP run`
// created: each copy gets its own config.json (name, tags, params: what expman writes), its own
// status (Finished, or Error as a failed run leaves it) and its own metrics table, written as
// expman's writer writes it (`timestamp,run_id,<fields>` CSV in metrics/<run>.csv). The server
// reads them exactly as it reads any experiment; nothing is mocked.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const assert = require('node:assert/strict');
const H = require('./helpers');

/** One real experiment (a scheduler run of H.WRITES_ROWS) under `dir`/experiments; returns
 *  {baseDir, seed} where seed is its directory. */
function realSeed(dir) {
  const baseDir = path.join(dir, 'experiments');
  const r = H.runScheduler(dir, { jobs: [{ name: 'seed', command: H.WRITES_ROWS }] });
  assert.equal(r.status, 0, `EXP run: ${r.stdout}\n${r.stderr}`);
  return { baseDir, seed: H.expDir(baseDir, 'seed') };
}

const pad = (n, w) => String(n).padStart(w, '0');

/** A metrics CSV: `columns` (after timestamp,run_id) and `rows` of values. */
function csv(runId, columns, rows) {
  const lines = [['timestamp', 'run_id', ...columns].join(',')];
  rows.forEach((r, i) => {
    lines.push([`2025-09-26T14:${pad(Math.floor(i / 60) % 60, 2)}:${pad(i % 60, 2)}.000000`, runId, ...r].join(','));
  });
  return `${lines.join('\n')}\n`;
}

/** Writes experiment `p` ({name, params, tags, status: 'Finished'|'Error', columns, rows,
 *  index}) as a copy of `seed` into `baseDir`; returns its directory. */
function writeExperiment(baseDir, seed, p) {
  const i = p.index || 0;
  const stamp = `2026-01-0${1 + Math.floor(i / 86400) % 9}__${pad(Math.floor(i / 3600) % 24, 2)}-${pad(Math.floor(i / 60) % 60, 2)}-${pad(i % 60, 2)}`;
  const dir = path.join(baseDir, `${p.name}_${stamp}`);
  fs.mkdirSync(path.join(dir, 'metrics'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  const config = JSON.parse(p.seedConfig || fs.readFileSync(path.join(seed, 'config.json'), 'utf8'));
  config.name = p.name;
  config.tags = p.tags || [];
  config.params = p.params || {};
  config.created_at = new Date(Date.UTC(2026, 0, 1, 0, 0, 0) + i * 1000).toISOString();
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const status = JSON.parse(p.seedStatus || fs.readFileSync(path.join(seed, 'status.json'), 'utf8'));
  if (p.status === 'Error') {
    status.status = 'Error';
    status.exit_code = 3;
    status.error = 'exit code 3';
  }
  fs.writeFileSync(path.join(dir, 'status.json'), JSON.stringify(status, null, 2));
  fs.writeFileSync(path.join(dir, 'metrics', 'run_0001.csv'), csv('run_0001', p.columns, p.rows));
  fs.writeFileSync(path.join(dir, 'logs', 'run_0001.log'), 'wrote rows\n');
  return dir;
}

/** A small sweep: lr x depth x opt with a constant seed, accuracies that tell them apart, two
 *  failed runs. Returns the points (with their directories). */
function smallSweep(baseDir, seed) {
  const lrs = [0.1, 0.01, 0.001, 0.0001];
  const depths = [18, 50];
  const opts = ['sgd', 'adam'];
  const points = [];
  let index = 0;
  for (const lr of lrs) {
    for (const depth of depths) {
      const opt = opts[index % 2];
      const acc = Math.round((0.5 + 0.03 * index + (lr === 0.001 ? 0.2 : 0)) * 1000) / 1000;
      const name = `sw-${pad(index, 2)}`;
      const p = {
        name, index, tags: [depth === 18 ? 'small' : 'big'],
        params: { lr, depth, opt, seed: 1 },
        status: index === 3 || index === 6 ? 'Error' : 'Finished',
        columns: ['step', 'loss', 'acc'],
        rows: [1, 2, 3, 4].map((s) => [s, (2 / s + lr).toFixed(4), (acc * s / 4).toFixed(3)]),
        acc,
      };
      p.dir = writeExperiment(baseDir, seed, p);
      points.push(p);
      index++;
    }
  }
  return points;
}

/** `n` experiments with 30 params and 20 metric columns each (the size), written fast
 *  (the seed's JSON read once). */
function bigSweep(baseDir, seed, n) {
  const seedConfig = fs.readFileSync(path.join(seed, 'config.json'), 'utf8');
  const seedStatus = fs.readFileSync(path.join(seed, 'status.json'), 'utf8');
  const columns = ['step', ...Array.from({ length: 19 }, (_, k) => `m${pad(k, 2)}`)];
  for (let i = 0; i < n; i++) {
    const params = {};
    for (let k = 0; k < 30; k++) params[`p${pad(k, 2)}`] = k % 5 === 0 ? `v${(i + k) % 7}` : k % 3 === 0 ? (i * 7 + k) % 97 : ((i * 13 + k) % 1000) / 997;
    const rows = [1, 2, 3].map((s) => [s, ...Array.from({ length: 19 }, (_, k) => (((i * 31 + k * 17 + s) % 1000) / 1000).toFixed(4))]);
    writeExperiment(baseDir, seed, { name: `big-${pad(i, 5)}`, index: i, params, columns, rows, seedConfig, seedStatus });
  }
}

/** Whether the server has the issue-13 API (params, summaries, /api/query, /api/fields). */
async function hasQueryApi(url) {
  const u = new URL(url);
  const r = await fetch(`${u.origin}/api/fields`);
  return r.status === 200;
}

module.exports = { realSeed, writeExperiment, smallSweep, bigSweep, hasQueryApi };
