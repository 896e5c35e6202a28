// The PostgreSQL engine end to end: backup into a repository, restore into a new database, and
// judge fidelity by pg_dump --schema-only of source and target, table checksums, sequences and
// large objects. Also the exported SQL script loaded with psql alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { finished } from 'node:stream/promises';
import path from 'node:path';
import { usePostgres, createTestDatabase, type PostgresServer } from '../support/postgres.ts';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { openRestorePoint } from '../../shared/repository/reader.ts';
import { KEYS } from '../../shared/repository/format.ts';
import { verifyRepository } from '../../shared/repository/verify.ts';
import { backupPostgres } from '../../agent/engines/postgres/backup.ts';
import { restorePostgres, loadSchema } from '../../agent/engines/postgres/restore.ts';
import { exportPostgresSql } from '../../agent/engines/postgres/export.ts';
import { resolveTarget } from '../../agent/engines/postgres/connection.ts';
import { connect, normalizeDump, pgDump, psqlFile, tableChecksums, textDiff } from '../postgres-schema/helpers.ts';
import { tempDir } from '../support/temp-dir.ts';

const here = import.meta.dirname;
const SCHEMA_ONLY = ['--schema-only', '--no-owner', '--no-privileges'];

async function fixtureDb(server: PostgresServer): Promise<string> {
  const db = await createTestDatabase(server, 'engine_src');
  await psqlFile(server, db, path.join(here, '../postgres-schema/fixtures/rich-schema.sql'));
  await psqlFile(server, db, path.join(here, 'fixtures-data.sql'));
  return db;
}

/** A new database with one table t of `rows` rows. */
async function oneTableDb(server: PostgresServer, prefix: string, rows: number): Promise<string> {
  const db = await createTestDatabase(server, prefix);
  const c = await connect(server, db);
  await c.query(`CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, ${rows}) i;`);
  await c.end();
  return db;
}

async function facts(server: PostgresServer, db: string) {
  const c = await connect(server, db);
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { readSchema } = await import('../../agent/engines/postgres/catalog.ts');
    const doc = await readSchema(c);
    const sums = await tableChecksums(c, doc);
    const seqs = (await c.query(`SELECT schemaname || '.' || sequencename AS s, last_value::text AS v FROM pg_sequences ORDER BY 1`)).rows;
    const los = (await c.query(`SELECT oid::text, md5(lo_get(oid)) AS h FROM pg_largeobject_metadata ORDER BY oid`)).rows;
    await c.query('COMMIT');
    return { sums, seqs, los };
  } finally { await c.end(); }
}

async function expectSame(server: PostgresServer, src: string, dst: string): Promise<void> {
  const a = normalizeDump(await pgDump(server, src, SCHEMA_ONLY));
  const b = normalizeDump(await pgDump(server, dst, SCHEMA_ONLY));
  if (a !== b) assert.fail(`pg_dump --schema-only differs:\n${await textDiff(a, b)}`);
  const fa = await facts(server, src);
  const fb = await facts(server, dst);
  assert.deepEqual(fb.sums, fa.sums, 'table checksums');
  assert.deepEqual(fb.seqs, fa.seqs, 'sequence values');
  assert.deepEqual(fb.los, fa.los, 'large objects');
  assert.ok(Object.keys(fa.sums).length > 10 && fa.los.length >= 1, 'the fixture is rich');
}

test('rich database: backup, restore into a new database, identical schema dump, data, sequences and large objects; export script loads with psql', async () => {
  const server = await usePostgres();
  const src = await fixtureDb(server);
  const dir = tempDir('cb-pg-');
  const repo = await Repository.init(await openStore(dir, { create: true }), { password: 'pw', scrypt: { N: 1024, r: 8, p: 1 } });
  // A small split size makes the big table go out in several ctid ranges on parallel connections.
  const rp = await backupPostgres(repo, resolveTarget(server.url(src)), { parallel: 3, splitBytes: 256 * 1024, labels: { env: 'test' } });
  assert.equal(rp.engine, 'postgres');
  assert.equal(rp.labels.env, 'test');
  assert.ok(rp.objects.filter((o) => o.name.includes('"select"')).length > 1, 'the big table was split');
  assert.match(String(rp.server.version), /1[5-9]\.\d+/);
  assert.ok(!JSON.stringify(rp).includes(server.password), 'no password in the manifest');
  // Tables of built-in types only go out as binary COPY; one with an array column as text.
  const format = (schema: string, table: string) => rp.objects.filter((o) => o.meta?.schema === schema && o.meta?.table === table).map((o) => o.meta?.format ?? 'text');
  assert.deepEqual([...new Set(format('app', 'serials'))], ['binary']);
  assert.deepEqual([...new Set(format('Data Edge', 'select'))], ['text']);

  const dst = `engine_dst_${Date.now()}`;
  const res = await restorePostgres(repo, rp.id, resolveTarget(server.url(dst)), { parallel: 3 });
  assert.equal(res.database, dst);
  await expectSame(server, src, dst);

  // The split table's parts loaded on several connections at once: the same content.
  const dstParts = `engine_parts_${Date.now()}`;
  await restorePostgres(repo, rp.id, resolveTarget(server.url(dstParts)), { parallel: 3, parallelParts: true });
  await expectSame(server, src, dstParts);

  // Plain SQL export loaded with psql alone.
  const reader = await openRestorePoint(repo, rp.id);
  const file = path.join(dir, 'export.sql');
  const out = createWriteStream(file);
  await exportPostgresSql(reader, out);
  out.end();
  await finished(out);
  const viaSql = await createTestDatabase(server, 'engine_sql');
  await psqlFile(server, viaSql, file);
  await expectSame(server, src, viaSql);

  const v = await verifyRepository(repo, { readData: true });
  assert.deepEqual(v.problems, []);
  rmSync(dir, { recursive: true, force: true });
});

test('an unchanged second backup adds almost nothing; restore refuses a non-empty target without --clean', async () => {
  const server = await usePostgres();
  const src = await oneTableDb(server, 'engine_dedup', 50000);
  const repo = await Repository.init(await openStore(tempDir('cb-pg-'), { create: true }), {});
  const first = await backupPostgres(repo, resolveTarget(server.url(src)));
  const second = await backupPostgres(repo, resolveTarget(server.url(src)));
  assert.ok(second.stats.storedBytes <= first.stats.storedBytes * 0.01 + 4096, `second backup stored ${second.stats.storedBytes} of ${first.stats.storedBytes}`);
  await assert.rejects(restorePostgres(repo, second.id, resolveTarget(server.url(src))), (e: any) => e.code === 'TARGET_NOT_EMPTY' && /--clean/.test(e.message));
  const res = await restorePostgres(repo, second.id, resolveTarget(server.url(src)), { clean: true });
  assert.equal(res.database, src);
});

test('a restore point whose schema cannot be read: the restore stops, the database it had created meanwhile is gone, an existing empty target stays; a non-empty target is refused before anything is read', async () => {
  const server = await usePostgres();
  const src = await oneTableDb(server, 'engine_badschema', 1000);
  const dir = tempDir('cb-pg-');
  const repo = await Repository.init(await openStore(dir, { create: true }), {});
  const rp = await backupPostgres(repo, resolveTarget(server.url(src)));
  // Damage the frame holding the schema object's chunk.
  const schemaObj = rp.objects.find((o) => o.kind === 'schema')!;
  const index = await repo.loadIndex();
  for await (const id of repo.objectChunkIds(schemaObj.list)) {
    const loc = index.get(id)!;
    const file = path.join(dir, KEYS.pack(loc.packId));
    const bytes = readFileSync(file);
    bytes[loc.offset + (loc.length >> 1)] ^= 0xff;
    writeFileSync(file, bytes);
  }
  const damaged = await Repository.open(await openStore(dir));
  const exists = async (db: string) => {
    const a = await connect(server, 'postgres');
    try { return (await a.query('SELECT 1 FROM pg_database WHERE datname = $1', [db])).rowCount === 1; } finally { await a.end(); }
  };

  // A target that is refused is reported before the repository's index and schema are read.
  await assert.rejects(restorePostgres(damaged, rp.id, resolveTarget(server.url(src))), (e: any) => e.code === 'TARGET_NOT_EMPTY');

  const fresh = `${src}_new`;
  await assert.rejects(restorePostgres(damaged, rp.id, resolveTarget(server.url(fresh))), (e: any) => e.code === 'CORRUPT_OBJECT');
  assert.equal(await exists(fresh), false, 'the database created while the schema loaded is dropped again');

  const empty = await createTestDatabase(server, 'engine_badschema_empty');
  await assert.rejects(restorePostgres(damaged, rp.id, resolveTarget(server.url(empty))), (e: any) => e.code === 'CORRUPT_OBJECT');
  assert.equal(await exists(empty), true, 'a target that existed before is left alone');

  rmSync(dir, { recursive: true, force: true });
});

test('consistency: writes committed during a backup are entirely in or entirely out of the restore point', async () => {
  const server = await usePostgres();
  const db = await createTestDatabase(server, 'engine_consistent');
  const c = await connect(server, db);
  await c.query(`CREATE TABLE a (id int PRIMARY KEY, balance bigint, pad text); CREATE TABLE b (id int PRIMARY KEY, balance bigint, pad text);
    INSERT INTO a SELECT i, 1000, repeat('p', 200) FROM generate_series(1, 40000) i;
    INSERT INTO b SELECT i, 1000, repeat('q', 200) FROM generate_series(1, 40000) i;`);
  const total = async (client: typeof c) => Number((await client.query('SELECT (SELECT sum(balance) FROM a) + (SELECT sum(balance) FROM b) AS s')).rows[0].s);
  const expected = await total(c);
  let stop = false;
  let transfers = 0;
  const writer = (async () => {
    while (!stop) {
      const id = 1 + Math.floor(Math.random() * 40000);
      await c.query('BEGIN');
      await c.query('UPDATE a SET balance = balance - 7 WHERE id = $1', [id]);
      await c.query('UPDATE b SET balance = balance + 7 WHERE id = $1', [id]);
      await c.query('COMMIT');
      transfers++;
    }
  })();
  const repo = await Repository.init(await openStore(tempDir('cb-pg-'), { create: true }), {});
  // Wait for transfers to be under way, back up while they continue, then stop them.
  while (transfers < 20) await new Promise((r) => setTimeout(r, 10));
  const rp = await backupPostgres(repo, resolveTarget(server.url(db)), { parallel: 2, splitBytes: 1024 * 1024 });
  const during = transfers;
  stop = true;
  await writer;
  assert.ok(transfers > 20 && during > 20, 'transfers ran during the backup');
  await c.end();
  const dst = `consistent_dst_${Date.now()}`;
  await restorePostgres(repo, rp.id, resolveTarget(server.url(dst)));
  const d = await connect(server, dst);
  assert.equal(await total(d), expected);
  await d.end();
});

test('schema document is stored in the restore point and server facts are recorded', async () => {
  const server = await usePostgres();
  const db = await createTestDatabase(server, 'engine_facts');
  const repo = await Repository.init(await openStore(tempDir('cb-pg-'), { create: true }), {});
  const c = await connect(server, db);
  await c.query('CREATE EXTENSION IF NOT EXISTS pgcrypto; CREATE TABLE x (id int)');
  await c.end();
  const rp = await backupPostgres(repo, resolveTarget(server.url(db)));
  const doc = await loadSchema(await openRestorePoint(repo, rp.id));
  assert.equal(doc.server.encoding, 'UTF8');
  assert.ok((rp.server.extensions as { name: string }[]).some((e) => e.name === 'pgcrypto'));
  assert.equal(rp.source, `127.0.0.1:${server.port}`);
});

test('restore loads rows frozen and in their source order, also for a table backed up in several parts', async () => {
  const server = await usePostgres();
  const src = await createTestDatabase(server, 'engine_frozen');
  const c = await connect(server, src);
  // Rows in an order unrelated to id, so that a restore loading parts out of order would show.
  await c.query(`CREATE TABLE t (id int, v text); INSERT INTO t SELECT (i * 7919) % 20011, repeat(md5(i::text), 3) FROM generate_series(1, 20000) i;
                 CREATE TABLE small (id int); INSERT INTO small VALUES (1), (2);`);
  const order = async (client: typeof c) => (await client.query(`SELECT string_agg(id::text, ',' ORDER BY ctid) AS s FROM t`)).rows[0].s as string;
  const sourceOrder = await order(c);
  await c.end();
  const repo = await Repository.init(await openStore(tempDir('cb-pg-'), { create: true }), {});
  const rp = await backupPostgres(repo, resolveTarget(server.url(src)), { parallel: 2, splitBytes: 128 * 1024 });
  assert.ok(rp.objects.filter((o) => o.kind === 'table-data').length >= 4, 'the table was backed up in several parts');
  const dst = `${src}_restored`;
  await restorePostgres(repo, rp.id, resolveTarget(server.url(dst)), { parallel: 2 });
  const r = await connect(server, dst);
  try {
    assert.equal(await order(r), sourceOrder, 'physical row order is the source order');
    await r.query('CREATE EXTENSION pg_visibility');
    const vm = (await r.query(`SELECT (SELECT count(*) FROM pg_visibility_map('t')) AS pages, all_frozen FROM pg_visibility_map_summary('t')`)).rows[0];
    assert.ok(Number(vm.pages) > 10, 'several pages');
    assert.equal(Number(vm.all_frozen), Number(vm.pages), 'every page is all-frozen after COPY FREEZE');
  } finally { await r.end(); }
});

test('a source with other output defaults (DateStyle SQL, DMY; sql_standard intervals; rounded floats) restores exactly into a target with yet others', async () => {
  const server = await usePostgres();
  const src = await createTestDatabase(server, 'engine_styles');
  const c = await connect(server, src);
  // Arrays and intervals go out as COPY text, and a date constant sits in a column default.
  await c.query(`ALTER DATABASE ${src} SET DateStyle = 'SQL, DMY'; ALTER DATABASE ${src} SET IntervalStyle = sql_standard; ALTER DATABASE ${src} SET extra_float_digits = -15;
    CREATE TABLE t (id int PRIMARY KEY, days date[], f float8[], span interval, since date DEFAULT '2026-03-04');
    INSERT INTO t VALUES (1, ARRAY['2026-03-04'::date, '1999-12-31'], ARRAY[0.1::float8 + 0.2, 1e-300], '1 year 2 months -3 days 04:05:06.7', DEFAULT),
                         (2, ARRAY['2001-02-03'::date], ARRAY[pi()], '-1 day +02:00:00', '0044-03-15 BC')`);
  await c.end();
  const dst = await createTestDatabase(server, 'engine_styles_dst');
  const d = await connect(server, dst);
  await d.query(`ALTER DATABASE ${dst} SET DateStyle = 'SQL, MDY'; ALTER DATABASE ${dst} SET extra_float_digits = 0`);
  await d.end();
  const repo = await Repository.init(await openStore(tempDir('cb-pg-'), { create: true }), {});
  const rp = await backupPostgres(repo, resolveTarget(server.url(src)));
  await restorePostgres(repo, rp.id, resolveTarget(server.url(dst)));
  const rows = async (db: string) => {
    const k = await connect(server, db);
    try {
      await k.query(`SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3`);
      return (await k.query(`SELECT string_agg(x::text, ' | ' ORDER BY id) AS s FROM t x`)).rows[0].s as string;
    } finally { await k.end(); }
  };
  const expected = await rows(src);
  assert.match(expected, /2026-03-04.*0\.30000000000000004/, 'the fixture holds what the defaults would mangle');
  assert.equal(await rows(dst), expected);
  const a = normalizeDump(await pgDump(server, src, SCHEMA_ONLY));
  const b = normalizeDump(await pgDump(server, dst, SCHEMA_ONLY));
  if (a !== b) assert.fail(`pg_dump --schema-only differs:\n${await textDiff(a, b)}`);
});
