// Bad input gets one clear line, a non-zero exit, and no visible restore point.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, chownSync } from 'node:fs';
import path from 'node:path';
import { usePostgres, createTestDatabase, startPostgres } from '../support/postgres.ts';
import { connect } from '../postgres-schema/helpers.ts';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { tempDir } from '../support/temp-dir.ts';

const CLI = path.join(import.meta.dirname, '../../agent/cli.ts');

function agent(args: string[], env: Record<string, string> = {}, onStart?: (pid: number) => void): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, PGPASSWORD: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    onStart?.(child.pid!);
    let stdout = ''; let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

async function emptyRepo(): Promise<string> {
  const dir = tempDir('cb-pgerr-');
  await Repository.init(await openStore(dir, { create: true }), {});
  return dir;
}

async function restorePoints(dir: string): Promise<number> {
  return (await (await Repository.open(await openStore(dir))).listRestorePointIds()).length;
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  return lines[0]!;
}

test('unreachable server: one clear line, exit code, no restore point', async () => {
  const repo = await emptyRepo();
  const r = await agent(['backup', 'postgres', '--source', 'postgres://u@127.0.0.1:1/db', '--repo', repo]);
  assert.notEqual(r.code, 0);
  assert.match(oneLine(r.stderr), /^error: cannot reach PostgreSQL at 127\.0\.0\.1:1 \(ECONNREFUSED\)/);
  assert.equal(await restorePoints(repo), 0);
});

test('wrong password: one clear line naming the user, password never printed', async () => {
  const server = await usePostgres();
  const repo = await emptyRepo();
  const r = await agent(['backup', 'postgres', '--source', `postgres://postgres@127.0.0.1:${server.port}/postgres`, '--password-env', 'DBPW', '--repo', repo], { DBPW: 'not-the-password-42' });
  assert.equal(r.code, 5);
  const line = oneLine(r.stderr);
  assert.match(line, /as postgres refused the password/);
  assert.ok(!line.includes('not-the-password-42'));
  assert.equal(await restorePoints(repo), 0);
});

test('missing permission on one table: the table is named, nothing is stored as a restore point', async () => {
  const server = await usePostgres();
  const db = await createTestDatabase(server, 'perm');
  const c = await connect(server, db);
  const role = `reader_${Date.now()}`;
  await c.query(`CREATE TABLE open_t (id int); CREATE TABLE secret_t (id int); INSERT INTO open_t VALUES (1); INSERT INTO secret_t VALUES (2);
    CREATE ROLE ${role} LOGIN PASSWORD 'rpw'; GRANT SELECT ON open_t TO ${role}; GRANT CONNECT ON DATABASE ${db} TO ${role};`);
  await c.end();
  const repo = await emptyRepo();
  const r = await agent(['backup', 'postgres', '--source', `postgres://${role}:rpw@127.0.0.1:${server.port}/${db}`, '--repo', repo]);
  assert.notEqual(r.code, 0);
  assert.match(oneLine(r.stderr), /secret_t.*permission denied|permission denied.*secret_t/);
  assert.equal(await restorePoints(repo), 0);
});

test('database dropped mid-backup: one clear line, no restore point, repository still verifies', async () => {
  const server = await usePostgres();
  const db = await createTestDatabase(server, 'dropme');
  const c = await connect(server, db);
  await c.query(`CREATE TABLE big (id int, v text); INSERT INTO big SELECT i, repeat(md5(i::text), 20) FROM generate_series(1, 300000) i;`);
  await c.end();
  const repo = await emptyRepo();
  const admin = await connect(server, 'postgres');
  const run = agent(['backup', 'postgres', '--source', server.url(db), '--repo', repo, '--parallel', '1']);
  // Drop the database as soon as the backup's connections are reading it.
  for (let i = 0; i < 400; i++) {
    const n = Number((await admin.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'cosmos-backup worker%'`, [db])).rows[0].n);
    if (n > 0) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  await admin.query(`DROP DATABASE "${db}" WITH (FORCE)`);
  await admin.end();
  const r = await run;
  assert.notEqual(r.code, 0);
  assert.match(oneLine(r.stderr), /^error: /);
  assert.equal(await restorePoints(repo), 0);
  const v = await agent(['verify', '--repo', repo]);
  assert.equal(v.code, 0, v.stderr);
});

test('target disk full: restore fails with one clear line saying so', async (t) => {
  if (process.getuid?.() !== 0) { t.skip('needs root to mount a small tmpfs for the tablespace'); return; }
  const mnt = tempDir('cb-full-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]);
  } catch {
    t.skip('this machine does not allow mounting a tmpfs');
    return;
  }
  // A server of its own: a full tablespace makes checkpoints fail, which would disturb every
  // other test sharing the run's server.
  const server = await startPostgres();
  try {
    const dir = path.join(mnt, 'ts');
    mkdirSync(dir);
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }));
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }));
    chownSync(dir, uid, gid);
    const src = await createTestDatabase(server, 'fullsrc');
    const c = await connect(server, src);
    await c.query(`CREATE TABLE big (id int, v text); INSERT INTO big SELECT i, md5(i::text) || md5((i+1)::text) FROM generate_series(1, 200000) i;`);
    await c.end();
    const admin = await connect(server, 'postgres');
    await admin.query(`CREATE TABLESPACE small LOCATION '${dir}'`);
    await admin.query(`CREATE DATABASE full_target TABLESPACE small`);
    await admin.end();
    const repo = await emptyRepo();
    const b = await agent(['backup', 'postgres', '--source', server.url(src), '--repo', repo]);
    assert.equal(b.code, 0, b.stderr);
    const r = await agent(['restore', b.stdout.trim(), '--target', server.url('full_target'), '--repo', repo]);
    assert.notEqual(r.code, 0);
    assert.match(oneLine(r.stderr), /disk is full|No space left/i);
  } finally {
    await server.stop();
    execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});
