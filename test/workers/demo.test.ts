// Smoke test of `npm run demo` (scripts/demo.ts --exit-after-check), run as a user would, in a
// directory of its own: the whole signature path (local cloud, controller on PGlite, worker VMs,
// two backups, two restores) must end with both restored databases identical to their sources.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { compareDigests } from '../../scripts/demo/data.ts';

const DEMO = path.resolve(import.meta.dirname, '..', '..', 'scripts', 'demo.ts');

function run(cwd: string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [DEMO, '--exit-after-check'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d; });
    child.stderr.on('data', (d: Buffer) => { err += d; });
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

const bytes = (s: string) => {
  const m = /^([\d.]+) (KiB|MiB)$/.exec(s.trim());
  assert.ok(m, `a size: ${s}`);
  return Number(m[1]) * (m[2] === 'MiB' ? 1048576 : 1024);
};

test('compareDigests: identical only when every table/collection has the same count and hash', () => {
  assert.deepEqual(compareDigests({ a: '2:x', b: '3:y' }, { b: '3:y', a: '2:x' }), { identical: true, objects: 2, items: 5, differing: [] });
  assert.deepEqual(compareDigests({ a: '2:x', b: '3:y' }, { a: '2:x', b: '3:z' }).differing, ['b']);
  assert.deepEqual(compareDigests({ a: '2:x' }, { a: '2:x', extra: '0:' }).differing, ['extra'], 'an extra collection on the target differs');
  assert.equal(compareDigests({}, {}).identical, false, 'nothing compared is no verdict of identity');
});

test('npm run demo --exit-after-check: two backups, two restores, both restored databases identical to their sources', { timeout: 20 * 60_000 }, async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'cosmos-backup-demo-'));
  try {
    const r = await run(cwd);
    assert.equal(r.code, 0, `the demo exited ${r.code}:\n${r.out.slice(-3000)}\n${r.err.slice(-2000)}`);
    assert.doesNotMatch(r.out, /DIFFERS/);
    const row = (name: string) => {
      const line = r.out.split('\n').find((l) => l.trimStart().startsWith(`${name} `));
      assert.ok(line, `a table row for ${name}:\n${r.out.slice(-2000)}`);
      return line.trim().split(/\s{2,}/);
    };
    const [, pgEngine, pgPoints, pgRead, pgStored, pgDedup, pgVerdict] = row('shop-analytics');
    assert.equal(pgEngine, 'PostgreSQL');
    assert.equal(pgPoints, '2', 'one restore point per run');
    assert.equal(pgVerdict, 'identical: 3 tables, 48,000 rows (shop -> shop_restored)');
    assert.ok(bytes(pgRead!) > bytes(pgStored!), 'less stored than read');
    assert.match(pgDedup!, /^\d+\.\dx$/);
    const [, mEngine, mPoints, , , , mVerdict] = row('shop-catalog');
    assert.equal(mEngine, 'MongoDB');
    assert.equal(mPoints, '2');
    assert.equal(mVerdict, 'identical: 2 collections, 910 documents (catalog -> catalog_restored)');
    // The second run stores only what changed: far less than the first.
    const m = /stored per run: run 1 ([\d.]+ \w+), run 2 ([\d.]+ \w+)/.exec(r.out);
    assert.ok(m, 'the per-run line');
    assert.ok(bytes(m[2]!) * 5 < bytes(m[1]!), `run 2 (${m[2]}) stores much less than run 1 (${m[1]})`);
    // The controller ran on PGlite in the working directory and released it on exit.
    const dir = path.join(cwd, '.cosmos-backup', 'demo-controller');
    assert.ok(existsSync(path.join(dir, 'controller')), 'PGlite data directory');
    assert.ok(!existsSync(path.join(dir, 'controller.pid')), 'lock released by a clean shutdown');
    assert.doesNotMatch(r.out, /keeps running/, '--exit-after-check does not wait');
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
