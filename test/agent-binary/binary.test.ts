// The built agent binary, run the way a worker VM runs it: no Node.js, no npm, no node_modules
// (PATH points at an empty directory, the working directory is a temp dir), through a full
// PostgreSQL backup and restore, and a MongoDB one against the wire-protocol stand-in.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { createTestDatabase, usePostgres, type PostgresServer } from '../support/postgres.ts';
import { tempDir } from '../support/temp-dir.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const BINARY = path.join(ROOT, 'dist', 'cosmos-backup-agent-linux-x64');
let server: PostgresServer;
let work: string;
let emptyPath: string;
let manifest: { version: string; commit: string; size: number; md5: { hex: string; base64: string }; sha256: string; node: string };

interface Run { code: number; stdout: string; stderr: string }

/** Runs the binary with an environment holding only what is given (no node anywhere on PATH). */
function agent(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(BINARY, args, { cwd: work, env: { PATH: emptyPath, HOME: work, ...env }, maxBuffer: 64 << 20, timeout: 300_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await agent(args, env);
  assert.equal(r.code, 0, `agent ${args.slice(0, 2).join(' ')} failed (${r.code}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

before(async () => {
  // Builds once (about 10 s), or reuses a binary newer than every source file.
  const b = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-agent.ts')], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
  assert.equal(b.status, 0, `build failed: ${b.stderr}`);
  manifest = JSON.parse(readFileSync(`${BINARY}.json`, 'utf8')) as typeof manifest;
  server = await usePostgres();
  work = tempDir('cosmos-agent-bin-');
  emptyPath = tempDir('cosmos-agent-nopath-');
});

test('the manifest and .md5 describe the binary', () => {
  const bytes = readFileSync(BINARY);
  assert.equal(manifest.size, statSync(BINARY).size);
  const md5 = createHash('md5').update(bytes).digest();
  assert.equal(manifest.md5.hex, md5.toString('hex'));
  assert.equal(manifest.md5.base64, md5.toString('base64'));
  assert.equal(manifest.sha256, createHash('sha256').update(bytes).digest('hex'));
  assert.match(manifest.node, /^v24\./);
  assert.equal(readFileSync(`${BINARY}.md5`, 'utf8'), `${manifest.md5.hex}  cosmos-backup-agent-linux-x64\n`);
});

test('there is no node on the PATH the binary runs with', () => {
  const r = spawnSync('/bin/sh', ['-c', 'command -v node'], { env: { PATH: emptyPath }, encoding: 'utf8' });
  assert.notEqual(r.status, 0, `node resolvable: ${r.stdout}`);
});

test('--version prints the version and the commit', async () => {
  const out = (await ok(['--version'])).trim();
  assert.equal(out, `${manifest.version} (${manifest.commit})`);
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(manifest.version, pkg.version);
});

test('text with non-ASCII characters survives the build (the bundle is escaped to ASCII)', async () => {
  const help = await ok(['backup', 'postgres', '--help']);
  assert.ok(help.includes('("host=\u2026 dbname=\u2026 sslmode=require")'), help);
});

async function query<T extends pg.QueryResultRow>(db: string, sql: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: server.url(db) });
  await c.connect();
  try { return (await c.query<T>(sql)).rows; } finally { await c.end(); }
}

async function fingerprint(db: string): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const t of ['customers', 'orders', 'blobs']) {
    out[t] = (await query<{ h: string | null }>(db, `SELECT md5(string_agg(t::text, ',' ORDER BY id)) AS h FROM ${t} t`))[0]!.h;
  }
  const los = await query<{ oid: string; h: string }>(db, `SELECT oid::text, md5(lo_get(oid)) AS h FROM pg_largeobject_metadata ORDER BY oid`);
  out.largeObjects = los.map((l) => `${l.oid}:${l.h}`).join(',');
  return out;
}

test('PostgreSQL: repo init, backup, restore into a new database, same data, verify --read-data', async () => {
  const db = await createTestDatabase(server, 'binsrc');
  await query(db, `CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text UNIQUE, created timestamptz DEFAULT now())`);
  await query(db, `INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com', '2030-01-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 2000) g`);
  await query(db, `CREATE TABLE orders (id bigint PRIMARY KEY, customer int REFERENCES customers(id), amount numeric(12,2), note text)`);
  await query(db, `INSERT INTO orders SELECT g, 1 + g % 2000, (g * 37 % 100000) / 100.0, md5(g::text) FROM generate_series(1, 30000) g`);
  await query(db, `CREATE TABLE blobs (id int PRIMARY KEY, data bytea)`);
  await query(db, `INSERT INTO blobs SELECT g, decode(repeat(md5(g::text), 40), 'hex') FROM generate_series(1, 200) g`);
  await query(db, `SELECT lo_from_bytea(0, decode(repeat(md5('large object'), 3000), 'hex'))`);
  const before = await fingerprint(db);
  assert.ok(before.largeObjects, 'the source has a large object');

  const repo = path.join(work, 'repo-pg');
  const env = { REPO_PW: 'binary test repository password', PGPW: server.password };
  await ok(['repo', 'init', '--repo', repo, '--password-env', 'REPO_PW'], env);
  const backup = JSON.parse(await ok(['backup', 'postgres', '--repo', repo, '--repo-password-env', 'REPO_PW', '--password-env', 'PGPW',
    '--source', `postgres://${server.user}@${server.host}:${server.port}/${db}`, '--label', 'test=binary', '--json'], env)) as { id: string; objects: number };
  assert.match(backup.id, /^[0-9a-f]{64}$/);

  const target = `${db}_restored`;
  await ok(['restore', backup.id, '--repo', repo, '--repo-password-env', 'REPO_PW', '--password-env', 'PGPW',
    '--target', `postgres://${server.user}@${server.host}:${server.port}/${target}`], env);
  assert.deepEqual(await fingerprint(target), before);

  const verify = JSON.parse(await ok(['verify', '--read-data', '--json', '--repo', repo, '--password-env', 'REPO_PW'], env)) as { problems: unknown[]; restorePoints: number; blobsChecked: number };
  assert.deepEqual(verify.problems, []);
  assert.equal(verify.restorePoints, 1);
  assert.ok(verify.blobsChecked > 0);
});

test('MongoDB: backup and restore through the binary against the stand-in', async (t) => {
  const help = await agent(['backup', '--help']);
  if (!/\bmongodb\b/.test(help.stdout)) {
    t.skip('the binary has no `backup mongodb` yet: waits on the MongoDB engine');
    return;
  }
  const { startMongoServer } = await import('../support/mongo-server/index.ts');
  const { MongoClient } = await import('mongodb');
  const mongo = await startMongoServer({ users: [{ user: 'u', password: 'mongo-binary-pw' }] });
  try {
    const client = new MongoClient(mongo.url('shop'));
    await client.connect();
    try {
      await client.db('shop').collection<{ _id: number; item: string; qty: number; tags: string[] }>('orders').insertMany(Array.from({ length: 3000 }, (_, i) => ({ _id: i, item: `item ${i}`, qty: i % 17, tags: ['a', String(i % 5)] })));
      await client.db('shop').collection<{ _id: string; name: string }>('customers').insertMany(Array.from({ length: 200 }, (_, i) => ({ _id: `c${i}`, name: `customer ${i}` })));
    } finally {
      await client.close();
    }
    const repo = path.join(work, 'repo-mongo');
    const env = { REPO_PW: 'binary test mongo repository password', MONGOPW: 'mongo-binary-pw' };
    await ok(['repo', 'init', '--repo', repo, '--password-env', 'REPO_PW'], env);
    const url = new URL(mongo.url('shop'));
    url.password = '';
    const source = url.toString();
    const out = await ok(['backup', 'mongodb', '--repo', repo, '--repo-password-env', 'REPO_PW', '--password-env', 'MONGOPW', '--source', source, '--database', 'shop', '--json'], env);
    const id = (JSON.parse(out) as { id: string }).id;
    await ok(['restore', id, '--repo', repo, '--repo-password-env', 'REPO_PW', '--password-env', 'MONGOPW', '--target', source, '--database', 'shop_restored'], env);
    const check = new MongoClient(mongo.url('shop'));
    await check.connect();
    try {
      const a = await check.db('shop').collection('orders').find().sort({ _id: 1 }).toArray();
      const b = await check.db('shop_restored').collection('orders').find().sort({ _id: 1 }).toArray();
      assert.equal(b.length, 3000);
      assert.deepEqual(b, a);
      assert.equal(await check.db('shop_restored').collection('customers').countDocuments(), 200);
    } finally {
      await check.close();
    }
    const verify = JSON.parse(await ok(['verify', '--read-data', '--json', '--repo', repo, '--password-env', 'REPO_PW'], env)) as { problems: unknown[] };
    assert.deepEqual(verify.problems, []);
  } finally {
    await mongo.stop();
  }
});
