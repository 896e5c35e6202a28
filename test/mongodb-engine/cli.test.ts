// The agent's command line for MongoDB (and the tar.gz export of both engines), run as a user
// runs it: `node agent/cli.ts …` in a child process against the stand-in and a repository on disk.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Document } from 'bson';
import { startMongoServer, uniqueDbName, type MongoStandIn } from '../support/mongo-server/index.ts';
import { usePostgres, createTestDatabase } from '../support/postgres.ts';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { connectTo, everyType, FAST_SCRYPT, type Connected } from './helpers.ts';

const CLI = path.join(import.meta.dirname, '../../agent/cli.ts');
const REPO_PW = 'repo-secret-7';
const DB_PW = 'mongo-Secret/with@odd:chars';

let s: MongoStandIn;
let c: Connected;
let repoDir: string;
const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(path.join(tmpdir(), 'cb-mongocli-')); dirs.push(d); return d; };
const SRC = uniqueDbName('clisrc');

interface Run { code: number; stdout: Buffer; stderr: string }

function agent(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, REPO_PW, MONGO_PW: DB_PW, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr }));
  });
}

const repoArgs = () => ['--repo', repoDir, '--repo-password-env', 'REPO_PW'];
const userUrl = (db = '') => `mongodb://admin@127.0.0.1:${s.port}/${db}?authSource=admin`;

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  return lines[0]!;
}

function noSecrets(r: Run): void {
  for (const secret of [DB_PW, encodeURIComponent(DB_PW), REPO_PW]) {
    assert.ok(!r.stderr.includes(secret) && !r.stdout.toString('latin1').includes(secret), 'no password in the output');
  }
}

before(async () => {
  s = await startMongoServer({ users: [{ user: 'admin', password: DB_PW }] });
  c = await connectTo(s);
  await c.client.db(SRC).command({ insert: 'types', documents: everyType() });
  await c.client.db(SRC).collection('many').insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: i, v: i })) as Document[]);
  await c.client.db(SRC).collection('many').createIndex({ v: -1 }, { name: 'v_desc' });
  await c.client.db(SRC).createCollection('view', { viewOn: 'many', pipeline: [] });
  repoDir = tmp();
  await Repository.init(await openStore(repoDir, { create: true }), { password: REPO_PW, scrypt: FAST_SCRYPT });
});
after(async () => {
  await c.client.close();
  await s.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

let restorePointId = '';

test('backup mongodb: the password from --password-env, a JSON summary, no secret anywhere', async () => {
  const r = await agent(['backup', 'mongodb', '--source', userUrl(), '--password-env', 'MONGO_PW', '--database', SRC, ...repoArgs(), '--json']);
  assert.equal(r.code, 0, r.stderr);
  noSecrets(r);
  const summary = JSON.parse(r.stdout.toString()) as { id: string; database: string; collections: number; views: number; documents: number; retries: number };
  assert.equal(summary.database, SRC);
  assert.equal(summary.collections, 2);
  assert.equal(summary.views, 1);
  assert.equal(summary.documents, 500 + everyType().length);
  assert.equal(summary.retries, 0);
  restorePointId = summary.id;
  const rp = await (await Repository.open(await openStore(repoDir), { password: REPO_PW })).loadRestorePoint(summary.id);
  assert.equal(rp.engine, 'mongodb');
  assert.equal(rp.source, `127.0.0.1:${s.port}`);
});

test('backup mongodb --collection db.coll: only that collection', async () => {
  const url = `mongodb://admin:${encodeURIComponent(DB_PW)}@127.0.0.1:${s.port}/?authSource=admin`;
  const r = await agent(['backup', 'mongodb', '--source', url, '--collection', `${SRC}.many`, ...repoArgs(), '--json']);
  assert.equal(r.code, 0, r.stderr);
  noSecrets(r);
  const summary = JSON.parse(r.stdout.toString()) as { collections: number; views: number; documents: number };
  assert.deepEqual([summary.collections, summary.views, summary.documents], [1, 0, 500]);
});

test('restore with --database-map, refusal of a non-empty target, then --drop', async () => {
  const dst = uniqueDbName('clidst');
  const args = ['restore', restorePointId.slice(0, 16), '--target', userUrl(), '--password-env', 'MONGO_PW', '--database-map', `${SRC}:${dst}`, ...repoArgs()];
  const r = await agent([...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  noSecrets(r);
  const res = JSON.parse(r.stdout.toString()) as { database: string; documents: number; indexes: number; views: number };
  assert.equal(res.database, dst);
  assert.equal(res.documents, 500 + everyType().length);
  assert.equal(res.indexes, 1);
  assert.equal(res.views, 1);
  assert.deepEqual(s.documents(dst, 'types'), s.documents(SRC, 'types'));
  assert.deepEqual(s.documents(dst, 'many'), s.documents(SRC, 'many'));

  const again = await agent(args);
  assert.notEqual(again.code, 0);
  assert.match(oneLine(again.stderr), new RegExp(`^error: target collections ${dst}\\.many, ${dst}\\.types, ${dst}\\.view on 127\\.0\\.0\\.1:\\d+ are not empty: .*--drop`));

  const dropped = await agent([...args, '--drop']);
  assert.equal(dropped.code, 0, dropped.stderr);
  assert.deepEqual(s.documents(dst, 'many'), s.documents(SRC, 'many'));
});

test('export --format mongodump: -o DIR, --archive FILE.tar.gz and -o - (stdout) hold the same files', async () => {
  const dir = tmp();
  const d = await agent(['export', restorePointId, '--format', 'mongodump', '-o', path.join(dir, 'dump'), ...repoArgs()]);
  assert.equal(d.code, 0, d.stderr);
  const files = readdirSync(path.join(dir, 'dump', SRC)).sort();
  assert.deepEqual(files, ['many.bson', 'many.metadata.json', 'types.bson', 'types.metadata.json', 'view.metadata.json']);
  const bson = readFileSync(path.join(dir, 'dump', SRC, 'types.bson'));
  assert.ok(bson.equals(Buffer.concat(s.documents(SRC, 'types'))));

  const file = path.join(dir, 'dump.tar.gz');
  const a = await agent(['export', restorePointId, '--format', 'mongodump', '--archive', file, ...repoArgs()]);
  assert.equal(a.code, 0, a.stderr);
  const listing = (f: string) => execFileSync('tar', ['-tzf', f], { encoding: 'utf8' }).trim().split('\n').sort();
  assert.deepEqual(listing(file), files.map((f) => `${SRC}/${f}`));

  const o = await agent(['export', restorePointId, '--format', 'mongodump', '-o', '-', ...repoArgs()]);
  assert.equal(o.code, 0, o.stderr);
  const piped = path.join(dir, 'stdout.tar.gz');
  writeFileSync(piped, o.stdout);
  assert.deepEqual(listing(piped), listing(file));
  const x = tmp();
  execFileSync('tar', ['-xzf', piped, '-C', x]);
  assert.ok(readFileSync(path.join(x, SRC, 'many.bson')).equals(Buffer.concat(s.documents(SRC, 'many'))));

  const wrong = await agent(['export', restorePointId, '--format', 'sql', ...repoArgs()]);
  assert.equal(wrong.code, 2);
  assert.match(oneLine(wrong.stderr), /format "sql" is not available for mongodb restore points \(use --format mongodump\)/);
});

test('wrong password: one clear line, exit code 5, the password never printed', async () => {
  const r = await agent(['backup', 'mongodb', '--source', userUrl(SRC), '--password-env', 'BAD_PW', ...repoArgs()], { BAD_PW: 'not-it-42' });
  assert.equal(r.code, 5);
  const line = oneLine(r.stderr);
  assert.match(line, /^error: MongoDB at 127\.0\.0\.1:\d+ refused the login of admin: check the user name, the password and authSource$/);
  assert.ok(!line.includes('not-it-42'));
});

test('unreachable server: one clear line', async () => {
  const r = await agent(['backup', 'mongodb', '--source', 'mongodb://127.0.0.1:1/x?serverSelectionTimeoutMS=300', ...repoArgs()]);
  assert.equal(r.code, 1);
  assert.match(oneLine(r.stderr), /^error: cannot reach MongoDB at 127\.0\.0\.1:1 \(ECONNREFUSED\)/);
});

test('bad arguments: one clear line each', async () => {
  const bad = await agent(['backup', 'mongodb', '--source', 'http://x', ...repoArgs()]);
  assert.equal(bad.code, 2);
  assert.match(oneLine(bad.stderr), /must be a mongodb:\/\/ or mongodb\+srv:\/\/ URL/);
  const coll = await agent(['backup', 'mongodb', '--source', userUrl(), '--collection', 'nodot', ...repoArgs()]);
  assert.match(oneLine(coll.stderr), /--collection "nodot" is not DATABASE\.COLLECTION/);
  const map = await agent(['restore', restorePointId, '--target', userUrl(), '--database-map', 'other:x', ...repoArgs()]);
  assert.match(oneLine(map.stderr), /--database-map has no entry for clisrc_/);
});

test('PostgreSQL export --archive: a tar.gz holding the .sql file', async () => {
  const pg = await usePostgres();
  const db = await createTestDatabase(pg, 'cliarch');
  const { default: pgLib } = await import('pg');
  const client = new pgLib.Client({ connectionString: pg.url(db) });
  await client.connect();
  await client.query("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'archived row')");
  await client.end();
  const b = await agent(['backup', 'postgres', '--source', pg.url(db), ...repoArgs(), '--json']);
  assert.equal(b.code, 0, b.stderr);
  const id = (JSON.parse(b.stdout.toString()) as { id: string }).id;
  const dir = tmp();
  const file = path.join(dir, 'pg.tar.gz');
  const r = await agent(['export', id, '--format', 'sql', '--archive', file, ...repoArgs()]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n'), [`${db}.sql`]);
  const sql = execFileSync('tar', ['-xzOf', file], { encoding: 'utf8' });
  assert.match(sql, /archived row/);
  assert.match(sql, /CREATE TABLE/);
});
