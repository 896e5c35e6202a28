// Schema round trip on the harness PostgreSQL: a rich fixture database is read from the catalogs
// in a REPEATABLE READ snapshot, the document goes through JSON, and a fresh database rebuilt from
// it must give the same `pg_dump --schema-only` as the source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, createWriteStream, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { to as copyTo } from 'pg-copy-streams';
import { usePostgres, createTestDatabase, type PostgresServer } from '../support/postgres.ts';
import { lockRelations, readSchema } from '../../agent/engines/postgres/catalog.ts';
import { applyItems, sequenceValuesSql, writeSqlScript, type ApplyOptions } from '../../agent/engines/postgres/apply.ts';
import type { SchemaDocument } from '../../agent/engines/postgres/schema-types.ts';
import { qualify } from '../../agent/engines/postgres/schema-util.ts';
import { CosmosBackupError } from '../../shared/errors.ts';
import { connect, copyColumns, copyData, normalizeDump, pgDump, psqlFile, tableChecksums, textDiff } from './helpers.ts';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'rich-schema.sql');
const SCHEMA_ONLY = ['--schema-only', '--no-owner', '--no-privileges'];

async function readInSnapshot(server: PostgresServer, db: string, warnings: string[] = []): Promise<SchemaDocument> {
  const c = await connect(server, db);
  try {
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    assert.ok(await lockRelations(c, { lockTimeoutMs: 5000 }) > 0);
    const doc = await readSchema(c, { onWarning: (m) => warnings.push(m) });
    // The reader leaves the session's search_path as it found it.
    assert.equal((await c.query('SHOW search_path')).rows[0].search_path, '"$user", public');
    await c.query('COMMIT');
    return JSON.parse(JSON.stringify(doc)) as SchemaDocument;
  } finally {
    await c.end();
  }
}

async function restore(server: PostgresServer, srcDb: string, doc: SchemaDocument, opts: ApplyOptions = {}): Promise<string> {
  const dstDb = await createTestDatabase(server, 'schema_dst');
  const dst = await connect(server, dstDb);
  const src = await connect(server, srcDb);
  try {
    await applyItems(dst, doc.items, { ...opts, section: 'pre-data' });
    await copyData(src, dst, doc);
    await applyItems(dst, doc.items, { ...opts, section: 'post-data' });
    await dst.query(sequenceValuesSql(doc));
  } finally {
    await dst.end();
    await src.end();
  }
  return dstDb;
}

async function assertSameDump(server: PostgresServer, srcDb: string, dstDb: string, args: string[]): Promise<string> {
  const a = normalizeDump(await pgDump(server, srcDb, args));
  const b = normalizeDump(await pgDump(server, dstDb, args));
  if (a !== b) assert.fail(`pg_dump ${args.join(' ')} differs between source and target:\n${(await textDiff(a, b)).slice(0, 20000)}`);
  return a;
}

let richDb: Promise<string> | undefined;
/** The fixture database, loaded once per file. */
function richSource(server: PostgresServer): Promise<string> {
  richDb ??= (async () => {
    const db = await createTestDatabase(server, 'schema_src');
    await psqlFile(server, db, FIXTURE);
    return db;
  })();
  return richDb;
}

test('rich schema: restore from the catalog document gives an identical pg_dump --schema-only', async () => {
  const server = await usePostgres();
  const srcDb = await richSource(server);
  const warnings: string[] = [];
  const doc = await readInSnapshot(server, srcDb, warnings);
  assert.deepEqual(warnings, []);
  assert.ok(doc.items.length > 100, `only ${doc.items.length} items`);
  const dstDb = await restore(server, srcDb, doc);
  const dump = await assertSameDump(server, srcDb, dstDb, SCHEMA_ONLY);
  // The comparison covers the whole fixture, not an empty dump.
  for (const expected of ['CREATE TABLE "Sales Data"."order"', 'ATTACH PARTITION app.measurement_2024_rest DEFAULT', 'CREATE POLICY no_sad',
    'CREATE EVENT TRIGGER log_ddl', 'EXCLUDE USING gist', 'CREATE MATERIALIZED VIEW app.mood_top', 'CREATE AGGREGATE app.my_sum',
    'ALTER INDEX app.measurement_pkey ATTACH PARTITION', 'INHERITS (app.car, app.other)', 'CREATE UNLOGGED TABLE app.scratch']) {
    assert.ok(dump.includes(expected), `dump lacks ${expected}`);
  }

  const src = await connect(server, srcDb);
  const dst = await connect(server, dstDb);
  try {
    assert.deepEqual(await tableChecksums(dst, doc), await tableChecksums(src, doc));
    const seqs = `SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2`;
    assert.deepEqual((await dst.query(seqs)).rows, (await src.query(seqs)).rows);
    const los = `SELECT oid, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY oid`;
    assert.deepEqual((await dst.query(los)).rows, (await src.query(los)).rows);
    const populated = `SELECT relname, relispopulated FROM pg_class WHERE relkind = 'm' ORDER BY 1`;
    assert.deepEqual((await dst.query(populated)).rows, (await src.query(populated)).rows);
  } finally {
    await src.end();
    await dst.end();
  }
});

test('rich schema: the document describes tables, sequences, large objects and server facts', async () => {
  const server = await usePostgres();
  const doc = await readInSnapshot(server, await richSource(server));
  assert.equal(doc.formatVersion, 1);
  assert.equal(doc.server.encoding, 'UTF8');
  assert.ok(doc.server.versionNum >= 150000);
  assert.ok(doc.server.extensions.some((e) => e.name === 'ltree' && e.schema === 'ext'));
  const t = (schema: string, name: string) => doc.tables.find((x) => x.schema === schema && x.name === name);
  const customer = t('app', 'customer')!;
  assert.ok(!customer.columns.includes('doubled'), 'generated column is not copied');
  assert.deepEqual(customer.primaryKey, ['id']);
  assert.equal(customer.hasData, true);
  assert.deepEqual(t('Sales Data', 'order')!.primaryKey, ['select']);
  assert.equal(t('app', 'measurement')!.hasData, false);
  assert.equal(t('app', 'measurement_2024')!.hasData, false);
  assert.equal(t('app', 'measurement_2024_a')!.partitionOf, '"app"."measurement_2024"');
  assert.equal(t('app', 'scratch')!.unlogged, true);
  assert.equal(t('app', 'mood_counts')!.hasData, false);
  assert.equal(doc.tables.some((x) => x.name === 'rich_customers'), false, 'views are not tables');
  assert.deepEqual(doc.matviews.map((m) => [m.name, m.populated]).sort(), [['mood_counts', true], ['mood_top', true], ['never_filled', false]]);
  assert.deepEqual(doc.largeObjects.map((l) => l.oid), [424242, 424243]);
  const inv = doc.sequences.find((s) => s.name === 'invoice_no')!;
  assert.equal(inv.isCalled, true);
  // Six nextval calls with CACHE 5 fetched two batches: the relation holds the last cached value, as pg_dump reads it.
  assert.equal(inv.lastValue, String(1000 + 9 * 7));
  assert.deepEqual(doc.sequences.find((s) => s.name === 'Order Seq'), { schema: 'Sales Data', name: 'Order Seq', lastValue: '42', isCalled: false });
  // Extension members never appear as items of their own.
  assert.equal(doc.items.some((i) => i.kind === 'function' && i.name.startsWith('hstore')), false);
  // Dependency order: the function used in a generated column precedes the table, which precedes its default.
  const at = (kind: string, name: string) => doc.items.findIndex((i) => i.kind === kind && i.name === name);
  assert.ok(at('function', 'double_it(i integer)') < at('table', 'customer'));
  assert.ok(at('table', 'customer') < at('view', 'rich_customers'));
  assert.ok(at('view', 'rich_customers') < at('view', 'very_rich'));
  assert.ok(at('view', 'rich_customers') < at('function', 'richest()'));
  assert.ok(at('matview-refresh', 'mood_counts') < at('matview-refresh', 'mood_top'));
  const firstPost = doc.items.findIndex((i) => i.section === 'post-data');
  assert.ok(doc.items.slice(firstPost).every((i) => i.section === 'post-data'), 'post-data items come last');
});

test('owners and grants are restored when the roles exist, skipped with a warning otherwise', async () => {
  const server = await usePostgres();
  const admin = await connect(server, 'postgres');
  const suffix = Math.random().toString(16).slice(2, 8);
  const owner = `owner_${suffix}`;
  const reader = `Reader ${suffix}`;
  const srcDb = await createTestDatabase(server, 'schema_acl');
  try {
    await admin.query(`CREATE ROLE "${owner}"; CREATE ROLE "${reader}"`);
    const s = await connect(server, srcDb);
    await s.query(`
      CREATE SCHEMA sec AUTHORIZATION "${owner}";
      CREATE TABLE sec.t (id int PRIMARY KEY, secret text, pub text);
      ALTER TABLE sec.t OWNER TO "${owner}";
      GRANT SELECT, INSERT ON sec.t TO "${reader}" WITH GRANT OPTION;
      GRANT UPDATE (pub) ON sec.t TO "${reader}";
      CREATE SEQUENCE sec.s; ALTER SEQUENCE sec.s OWNER TO "${owner}"; GRANT USAGE ON SEQUENCE sec.s TO "${reader}";
      CREATE FUNCTION sec.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
      REVOKE EXECUTE ON FUNCTION sec.f() FROM PUBLIC; GRANT EXECUTE ON FUNCTION sec.f() TO "${reader}";
      GRANT USAGE ON SCHEMA sec TO "${reader}";
      REVOKE CREATE ON SCHEMA public FROM PUBLIC;
      CREATE TYPE sec.e AS ENUM ('a'); REVOKE USAGE ON TYPE sec.e FROM PUBLIC;
      ALTER DEFAULT PRIVILEGES FOR ROLE "${owner}" IN SCHEMA sec GRANT SELECT ON TABLES TO "${reader}";
      ALTER DEFAULT PRIVILEGES FOR ROLE "${owner}" REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
      CREATE POLICY p ON sec.t TO "${reader}" USING (true);
    `);
    await s.end();
    const doc = await readInSnapshot(server, srcDb);
    assert.deepEqual(doc.roles, [owner, reader, 'pg_database_owner', 'postgres'].sort());

    // Roles present: owners and grants equal, as pg_dump shows them.
    const full = await restore(server, srcDb, doc);
    const withAcl = await assertSameDump(server, srcDb, full, ['--schema-only']);
    for (const expected of [`GRANT SELECT,INSERT ON TABLE sec.t TO "${reader}" WITH GRANT OPTION;`, `GRANT UPDATE(pub) ON TABLE sec.t TO "${reader}";`,
      `ALTER TABLE sec.t OWNER TO ${owner};`, 'REVOKE ALL ON FUNCTION sec.f() FROM PUBLIC;', `ALTER DEFAULT PRIVILEGES FOR ROLE ${owner} IN SCHEMA sec GRANT SELECT ON TABLES  TO "${reader}";`]) {
      assert.ok(withAcl.includes(expected), `dump lacks ${expected}`);
    }

    // --no-owner / --no-privileges: nothing owned by or granted to the roles.
    const bare = await restore(server, srcDb, doc, { noOwner: true, noPrivileges: true });
    await assertSameDump(server, srcDb, bare, SCHEMA_ONLY);
    const b = await connect(server, bare);
    const owned = await b.query(`SELECT count(*)::int AS n FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = $1)`, [owner]);
    assert.equal(owned.rows[0].n, 0);
    const acl = await b.query(`SELECT relacl IS NULL AS dflt FROM pg_class WHERE oid = '"sec"."t"'::regclass`);
    assert.equal(acl.rows[0].dflt, true);
    await b.end();

    // A target without the reader role: its grants and policy are skipped, each with a warning naming it.
    const warnings: string[] = [];
    const partial = await restore(server, srcDb, doc, { availableRoles: ['postgres', 'pg_database_owner', owner], onWarning: (m) => warnings.push(m) });
    assert.ok(warnings.length > 0);
    assert.ok(warnings.every((w) => w.includes(`"${reader}"`) && w.includes('does not exist on the target')), warnings.join('\n'));
    assert.ok(warnings.some((w) => w.startsWith('skipped policy')));
    const p = await connect(server, partial);
    const own = await p.query(`SELECT pg_get_userbyid(relowner) AS o FROM pg_class WHERE oid = '"sec"."t"'::regclass`);
    assert.equal(own.rows[0].o, owner);
    await p.end();
  } finally {
    await admin.end();
  }
});

test('a failing item names the object and the server message', async () => {
  const server = await usePostgres();
  const db = await createTestDatabase(server, 'schema_err');
  const c = await connect(server, db);
  try {
    await assert.rejects(applyItems(c, [
      { section: 'pre-data', kind: 'schema', name: 'ok', sql: 'CREATE SCHEMA ok;' },
      { section: 'pre-data', kind: 'table', schema: 'ok', name: 'broken', sql: 'CREATE TABLE ok.broken (a no_such_type);' },
    ]), (err: unknown) => {
      assert.ok(err instanceof CosmosBackupError);
      assert.equal(err.code, 'DATABASE_ERROR');
      assert.match(err.message, /^restore failed at table "ok"\."broken": type "no_such_type" does not exist$/);
      assert.equal(err.details.sqlstate, '42704');
      return true;
    });
  } finally {
    await c.end();
  }
});

test('export script: pre-data, COPY blocks and post-data load with psql alone and give the same schema', async () => {
  const server = await usePostgres();
  const srcDb = await richSource(server);
  const doc = await readInSnapshot(server, srcDb);
  const dir = mkdtempSync(path.join(tmpdir(), 'schema-export-'));
  const file = path.join(dir, 'export.sql');
  const src = await connect(server, srcDb);
  try {
    const out = createWriteStream(file);
    await writeSqlScript(doc, async (s) => {
      if (!out.write(s)) await once(out, 'drain');
    }, (t) => src.query(copyTo(`COPY ${qualify(t.schema, t.name)} (${copyColumns(t)}) TO STDOUT`)), {
      largeObjectData: async function* (oid) {
        yield (await src.query(`SELECT pg_catalog.lo_get($1::oid) AS b`, [oid])).rows[0].b as Buffer;
      },
    });
    out.end();
    await once(out, 'finish');
    const dstDb = await createTestDatabase(server, 'schema_sql');
    await psqlFile(server, dstDb, file);
    await assertSameDump(server, srcDb, dstDb, SCHEMA_ONLY);
    const dst = await connect(server, dstDb);
    try {
      assert.deepEqual(await tableChecksums(dst, doc), await tableChecksums(src, doc));
      const los = `SELECT oid, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY oid`;
      assert.deepEqual((await dst.query(los)).rows, (await src.query(los)).rows);
    } finally {
      await dst.end();
    }
  } finally {
    await src.end();
    rmSync(dir, { recursive: true, force: true });
  }
});
