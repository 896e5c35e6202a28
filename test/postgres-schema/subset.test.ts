// Subset selection on a hand-made schema document (no server): which items, tables and sequence
// values a `--table` / `--schema` restore keeps, and the refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relationKey, selectSubset, type PgSubset } from '../../agent/engines/postgres/subset.ts';
import type { DdlItem, SchemaDocument, TableInfo } from '../../agent/engines/postgres/schema-types.ts';
import { CosmosBackupError } from '../../shared/errors.ts';

const rel = (schema: string, name: string) => ({ schema, name });
function it(kind: string, schema: string | undefined, name: string, sql: string, extra: Partial<DdlItem> = {}): DdlItem {
  return { section: 'pre-data', kind, ...(schema !== undefined ? { schema } : {}), name, sql, ...extra };
}
function post(kind: string, schema: string, name: string, table: { schema: string; name: string }, extra: Partial<DdlItem> = {}): DdlItem {
  return { section: 'post-data', kind, schema, name, sql: `-- ${kind} ${name}`, table, ...extra };
}
function table(schema: string, name: string, extra: Partial<TableInfo> = {}): TableInfo {
  return { schema, name, oid: 1, relkind: 'r', columns: ['id'], hasData: true, estimatedBytes: 0, ...extra };
}

function sampleDoc(): SchemaDocument {
  const T = (s: string, n: string, sql = `CREATE TABLE "${s}"."${n}" (id int);`) => it('table', s, n, sql, { table: rel(s, n) });
  const items: DdlItem[] = [
    it('schema', undefined, 'a', 'CREATE SCHEMA "a";'),
    it('owner', undefined, 'a', 'ALTER SCHEMA "a" OWNER TO "alice";', { owner: 'alice', requires: ['alice'] }),
    it('schema', undefined, 'b', 'CREATE SCHEMA "b";'),
    it('schema', undefined, 'c', 'CREATE SCHEMA "c";'),
    it('comment', undefined, 'c', `COMMENT ON SCHEMA "c" IS 'only a lonely table';`),
    it('schema', undefined, 'ext', 'CREATE SCHEMA "ext";'),
    it('schema', undefined, 'x', 'CREATE SCHEMA "x";'),
    it('schema', undefined, 'x.y', 'CREATE SCHEMA "x.y";'),
    it('owner', undefined, 'public', 'ALTER SCHEMA "public" OWNER TO "pg_database_owner";', { owner: 'pg_database_owner', requires: ['pg_database_owner'] }),
    it('extension', undefined, 'pgcrypto', 'CREATE EXTENSION IF NOT EXISTS "pgcrypto" WITH SCHEMA "ext";'),
    it('comment', undefined, 'pgcrypto', `COMMENT ON EXTENSION "pgcrypto" IS 'crypto';`),
    it('type', 'a', 'mood', `CREATE TYPE "a"."mood" AS ENUM ('ok');`),
    it('function', 'b', 'f()', 'CREATE FUNCTION "b"."f"() ...;'),
    it('owner', 'b', 'f()', 'ALTER FUNCTION "b"."f"() OWNER TO "alice";', { owner: 'alice', requires: ['alice'] }),
    it('sequence', 'b', 'counter', 'CREATE SEQUENCE "b"."counter";', { table: rel('b', 'counter') }),
    it('owner', 'b', 'counter', 'ALTER SEQUENCE "b"."counter" OWNER TO "alice";', { table: rel('b', 'counter'), owner: 'alice', requires: ['alice'] }),
    T('a', 'customers', 'CREATE TABLE "a"."customers" (id int);\nALTER TABLE ONLY "a"."customers" ALTER COLUMN "id" ADD GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME "a"."customers_id_seq"\n    START WITH 1\n);'),
    T('a', 'orders'),
    it('comment', 'a', 'orders.note', `COMMENT ON COLUMN "a"."orders"."note" IS 'n';`, { table: rel('a', 'orders') }),
    it('default', 'a', 'orders.n', `ALTER TABLE ONLY "a"."orders" ALTER COLUMN "n" SET DEFAULT nextval('"b"."counter"');`, { table: rel('a', 'orders') }),
    it('sequence-owned-by', 'b', 'counter', 'ALTER SEQUENCE "b"."counter" OWNED BY "a"."orders"."n";', { table: rel('a', 'orders') }),
    T('b', 'items'),
    // A function whose SQL body reads a table (the catalog records that as `needs`).
    it('function', 'b', 'count_items()', 'CREATE FUNCTION "b"."count_items"() ... BEGIN ATOMIC ...;', { needs: [rel('b', 'items')] }),
    it('owner', 'b', 'count_items()', 'ALTER FUNCTION "b"."count_items"() OWNER TO "alice";', { needs: [rel('b', 'items')], owner: 'alice', requires: ['alice'] }),
    T('a', 'events', 'CREATE TABLE "a"."events" (id int)\nPARTITION BY RANGE (id);'),
    T('a', 'events_2024'),
    T('a', 'events_2025'),
    it('table-attach', 'a', 'events_2024', 'ALTER TABLE ONLY "a"."events" ATTACH PARTITION "a"."events_2024" ...;', { table: rel('a', 'events_2024') }),
    it('table-attach', 'a', 'events_2025', 'ALTER TABLE ONLY "a"."events" ATTACH PARTITION "a"."events_2025" ...;', { table: rel('a', 'events_2025') }),
    T('a', 'base'),
    T('a', 'derived', 'CREATE TABLE "a"."derived" (\n    extra int\n)\nINHERITS ("a"."base");'),
    T('c', 'lonely'),
    T('x', 'y.z'),
    T('x.y', 'z'),
    T('x.y', 'w'),
    it('view', 'a', 'v_orders', 'CREATE VIEW "a"."v_orders" AS SELECT 1;', { table: rel('a', 'v_orders'), needs: [rel('a', 'orders')] }),
    it('matview', 'b', 'mv', 'CREATE MATERIALIZED VIEW "b"."mv" AS SELECT 1 WITH NO DATA;', { table: rel('b', 'mv') }),
    it('citus', 'a', 'customers', `SELECT create_reference_table('"a"."customers"');`),
    it('citus', 'a', 'orders', `SELECT create_distributed_table('"a"."orders"', 'id', distribution_type => 'hash', colocate_with => 'none');`),
    it('citus', 'b', 'items', `SELECT create_distributed_table('"b"."items"', 'id', distribution_type => 'hash', colocate_with => '"a"."orders"');`),
    post('constraint', 'a', 'customers.customers_pkey', rel('a', 'customers')),
    post('constraint', 'a', 'orders.orders_pkey', rel('a', 'orders')),
    post('index', 'a', 'events_id', rel('a', 'events')),
    post('index', 'a', 'events_2024_id', rel('a', 'events_2024')),
    post('index', 'a', 'events_2025_id', rel('a', 'events_2025')),
    post('index-attach', 'a', 'events_2024_id', rel('a', 'events_2024')),
    post('index-attach', 'a', 'events_2025_id', rel('a', 'events_2025')),
    post('fk', 'a', 'orders.orders_customer_fkey', rel('a', 'orders'), { references: rel('a', 'customers') }),
    post('fk', 'a', 'orders.orders_item_fkey', rel('a', 'orders'), { references: rel('b', 'items') }),
    post('fk', 'a', 'orders.orders_self_fkey', rel('a', 'orders'), { references: rel('a', 'orders') }),
    post('trigger', 'a', 'orders.audit', rel('a', 'orders')),
    post('comment', 'a', 'orders.audit', rel('a', 'orders')),
    post('statistics', 'b', 'orders_stats', rel('a', 'orders')),
    post('policy', 'b', 'items.p', rel('b', 'items')),
    post('matview-refresh', 'b', 'mv', rel('b', 'mv')),
    { section: 'post-data', kind: 'event-trigger', name: 'no_drops', sql: 'CREATE EVENT TRIGGER "no_drops" ...;' },
    { section: 'post-data', kind: 'owner', name: 'no_drops', sql: 'ALTER EVENT TRIGGER "no_drops" OWNER TO "alice";', owner: 'alice', requires: ['alice'] },
    { section: 'post-data', kind: 'default-acl', schema: 'a', name: 'alice.TABLES', sql: 'ALTER DEFAULT PRIVILEGES FOR ROLE "alice" IN SCHEMA "a" GRANT SELECT ON TABLES TO "bob";' },
    { section: 'post-data', kind: 'default-acl', name: 'alice.TABLES', sql: 'ALTER DEFAULT PRIVILEGES FOR ROLE "alice" GRANT SELECT ON TABLES TO "bob";' },
  ];
  return {
    formatVersion: 1,
    server: { version: 'PostgreSQL 16', versionNum: 160000, encoding: 'UTF8', collate: 'C', ctype: 'C', extensions: [{ name: 'pgcrypto', version: '1.3', schema: 'ext' }] },
    database: { name: 'shop' },
    items,
    tables: [
      table('a', 'customers'), table('a', 'orders'), table('b', 'items'),
      table('a', 'events', { relkind: 'p', hasData: false }),
      table('a', 'events_2024', { partitionOf: '"a"."events"' }), table('a', 'events_2025', { partitionOf: '"a"."events"' }),
      table('a', 'base'), table('a', 'derived'), table('c', 'lonely'), table('x', 'y.z'), table('x.y', 'z'), table('x.y', 'w'),
      table('b', 'mv', { relkind: 'm', hasData: false }),
    ],
    sequences: [
      { schema: 'b', name: 'counter', lastValue: '7', isCalled: true },
      { schema: 'a', name: 'customers_id_seq', lastValue: '3', isCalled: true },
    ],
    matviews: [{ schema: 'b', name: 'mv', populated: true }],
    largeObjects: [{ oid: 4242 }],
    citus: {
      version: '12.1',
      tables: [
        { schema: 'a', name: 'customers', kind: 'reference', method: 'n', colocationId: 1 },
        { schema: 'a', name: 'orders', kind: 'distributed', method: 'h', column: 'id', colocationId: 2, shardCount: 8 },
        { schema: 'b', name: 'items', kind: 'distributed', method: 'h', column: 'id', colocationId: 2 },
      ],
    },
    roles: ['alice', 'bob', 'pg_database_owner'],
  };
}

function select(subset: PgSubset, doc = sampleDoc()) {
  const warnings: string[] = [];
  const r = selectSubset(doc, subset, (m) => warnings.push(m), 'abc123');
  const has = (kind: string, name: string, schema?: string) => r.doc.items.some((i) => i.kind === kind && i.name === name && (schema === undefined || i.schema === schema));
  const keys = (list: { schema: string; name: string }[]) => list.map((t) => `${t.schema}.${t.name}`).sort();
  return { ...r, warnings, has, keys, data: [...r.tables].map((k) => (JSON.parse(k) as string[]).join('.')).sort() };
}

test('one table: its own items, what it may need, FKs to tables left out skipped with a warning', () => {
  const s = select({ tables: ['a.orders'] });
  assert.deepEqual(s.data, ['a.orders']);
  assert.deepEqual(s.keys(s.doc.tables), ['a.orders']);
  for (const [kind, name] of [['table', 'orders'], ['comment', 'orders.note'], ['default', 'orders.n'], ['sequence-owned-by', 'counter'], ['constraint', 'orders.orders_pkey'],
    ['fk', 'orders.orders_self_fkey'], ['trigger', 'orders.audit'], ['comment', 'orders.audit'], ['statistics', 'orders_stats']]) {
    assert.ok(s.has(kind!, name!), `keeps ${kind} ${name}`);
  }
  // Types, routines, sequences and extensions stay whole, with their schemas.
  for (const [kind, name] of [['type', 'mood'], ['function', 'f()'], ['owner', 'f()'], ['sequence', 'counter'], ['owner', 'counter'], ['extension', 'pgcrypto'], ['comment', 'pgcrypto'],
    ['schema', 'a'], ['owner', 'a'], ['schema', 'b'], ['schema', 'ext']]) {
    assert.ok(s.has(kind!, name!), `keeps ${kind} ${name}`);
  }
  // Other tables, their sub-objects, schema c (nothing kept in it), views, event triggers, default ACLs.
  for (const [kind, name] of [['table', 'customers'], ['table', 'items'], ['table', 'lonely'], ['constraint', 'customers.customers_pkey'], ['policy', 'items.p'],
    ['schema', 'c'], ['comment', 'c'], ['schema', 'x'], ['view', 'v_orders'], ['matview', 'mv'], ['matview-refresh', 'mv'], ['event-trigger', 'no_drops'], ['owner', 'no_drops'],
    ['default-acl', 'alice.TABLES'], ['fk', 'orders.orders_customer_fkey'], ['fk', 'orders.orders_item_fkey'], ['owner', 'public']]) {
    assert.ok(!s.has(kind!, name!), `drops ${kind} ${name}`);
  }
  assert.deepEqual(s.warnings.filter((w) => w.includes('foreign key')), [
    'skipped foreign key a.orders.orders_customer_fkey: it references a.customers, which is not restored',
    'skipped foreign key a.orders.orders_item_fkey: it references b.items, which is not restored',
  ]);
  assert.ok(s.warnings.includes('skipped 2 views/materialized views outside the subset (name them with --table to restore them)'), s.warnings.join('\n'));
  assert.ok(s.warnings.some((w) => /^skipped 1 event trigger:/.test(w)));
  // Something that would fail without a table left out is left out too (its owner with it, unmentioned).
  assert.ok(!s.has('function', 'count_items()') && !s.has('owner', 'count_items()'));
  assert.deepEqual(s.warnings.filter((w) => w.includes('count_items')), ['skipped function b.count_items(): it uses b.items, which is not restored']);
  assert.ok(s.warnings.some((w) => /^skipped 1 large object:/.test(w)));
  assert.deepEqual(s.doc.largeObjects, []);
  assert.deepEqual(s.doc.matviews, []);
  // The standalone sequence's value is set; the identity sequence of customers does not exist.
  assert.deepEqual(s.doc.sequences.map((x) => x.name), ['counter']);
  // Citus calls are made again: orders leads its colocation group now that items is gone.
  assert.deepEqual(s.doc.citus?.tables.map((t) => t.name), ['orders']);
  assert.deepEqual(s.doc.items.filter((i) => i.kind === 'citus').map((i) => i.sql),
    [`SELECT create_distributed_table('"a"."orders"', 'id', distribution_type => 'hash', shard_count => 8, colocate_with => 'none');`]);
  // Items keep their document order.
  const order = sampleDoc().items;
  const pos = s.doc.items.filter((i) => i.kind !== 'citus').map((i) => order.findIndex((o) => o.kind === i.kind && o.name === i.name && o.sql === i.sql));
  assert.deepEqual(pos, [...pos].sort((x, y) => x - y));
  assert.ok(pos.every((p) => p >= 0));
});

test('both ends of a foreign key selected: it is kept, and identity sequence values come along', () => {
  const s = select({ tables: ['a.orders', 'a.customers', 'b.items'] });
  assert.ok(s.has('fk', 'orders.orders_customer_fkey') && s.has('fk', 'orders.orders_item_fkey'));
  assert.deepEqual(s.warnings.filter((w) => w.includes('foreign key')), []);
  assert.deepEqual(s.doc.sequences.map((x) => x.name).sort(), ['counter', 'customers_id_seq']);
  assert.deepEqual(s.data, ['a.customers', 'a.orders', 'b.items']);
  assert.ok(s.has('function', 'count_items()') && s.has('owner', 'count_items()'));
});

test('a partition pulls in its parent definition (no other partition); a partitioned table brings all its partitions', () => {
  const one = select({ tables: ['a.events_2025'] });
  assert.deepEqual(one.data, ['a.events_2025']);
  assert.deepEqual(one.keys(one.doc.tables), ['a.events', 'a.events_2025']);
  assert.ok(one.has('table', 'events') && one.has('index', 'events_id'));
  assert.ok(one.has('table-attach', 'events_2025') && one.has('index-attach', 'events_2025_id'));
  assert.ok(!one.has('table', 'events_2024') && !one.has('table-attach', 'events_2024') && !one.has('index-attach', 'events_2024_id'));

  const all = select({ tables: ['a.events'] });
  assert.deepEqual(all.data, ['a.events_2024', 'a.events_2025']);
  assert.ok(all.has('table-attach', 'events_2024') && all.has('table-attach', 'events_2025'));

  // Inheritance children need their parent's definition too, not its rows.
  const child = select({ tables: ['a.derived'] });
  assert.deepEqual(child.data, ['a.derived']);
  assert.ok(child.has('table', 'base'));
});

test('a schema: every table in it (not its views), its default privileges, FKs to other schemas skipped', () => {
  const s = select({ schemas: ['a'] });
  assert.deepEqual(s.data, ['a.base', 'a.customers', 'a.derived', 'a.events_2024', 'a.events_2025', 'a.orders']);
  assert.ok(!s.has('view', 'v_orders'));
  assert.ok(s.has('default-acl', 'alice.TABLES', 'a'));
  assert.equal(s.doc.items.filter((i) => i.kind === 'default-acl').length, 1, 'the global default privileges stay out');
  assert.deepEqual(s.warnings.filter((w) => w.includes('foreign key')), ['skipped foreign key a.orders.orders_item_fkey: it references b.items, which is not restored']);
  assert.ok(s.warnings.includes('skipped 2 views/materialized views outside the subset (name them with --table to restore them)'));
});

test('views and materialized views come only when named; names split at the first dot that exists', () => {
  const s = select({ tables: ['a.v_orders', 'a.orders', 'b.mv'] });
  assert.ok(s.has('view', 'v_orders') && s.has('matview', 'mv') && s.has('matview-refresh', 'mv'));
  assert.deepEqual(s.data, ['a.orders'], 'views hold no rows of their own');
  assert.deepEqual(s.doc.matviews.map((m) => m.name), ['mv']);
  assert.ok(!s.warnings.some((w) => w.includes('views/materialized views')));
  // A view without the table it reads from cannot be restored: refused, naming both.
  assert.throws(() => select({ tables: ['a.v_orders'] }), (e: unknown) => {
    assert.equal((e as CosmosBackupError).code, 'INVALID_ARGUMENT');
    assert.equal((e as Error).message, 'view a.v_orders needs a.orders, not in the subset: add it to the tables to restore');
    return true;
  });

  const dotted = select({ tables: ['x.y.z', 'x.y.w'] });
  assert.deepEqual([...dotted.tables].sort(), [relationKey('x', 'y.z'), relationKey('x.y', 'w')].sort());
  assert.ok(dotted.has('schema', 'x') && dotted.has('schema', 'x.y'));
});

test('unknown names: NOT_FOUND naming each, with the tables there', () => {
  assert.throws(() => select({ tables: ['a.orders', 'a.nope'], schemas: ['nope'] }), (e: unknown) => {
    assert.ok(e instanceof CosmosBackupError);
    assert.equal(e.code, 'NOT_FOUND');
    assert.match(e.message, /^restore point abc123 has no table a\.nope, no schema nope \(its tables and views: a\.base, /);
    assert.match(e.message, /list them all with `export abc123 --format sql`/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  assert.throws(() => select({ tables: ['orders'] }), /has no table orders/);
  assert.throws(() => select({ tables: [], schemas: [] }), (e: unknown) => (e as CosmosBackupError).code === 'INVALID_ARGUMENT');
});

test('a restore point made before subset restore is refused in one line', () => {
  const old = sampleDoc();
  old.items = old.items.map(({ table: _t, references: _r, ...i }) => i);
  assert.throws(() => select({ tables: ['a.orders'] }, old), (e: unknown) => {
    assert.equal((e as CosmosBackupError).code, 'UNSUPPORTED_FORMAT');
    assert.equal((e as Error).message, 'restore point abc123 predates subset restore: restore it whole, or back it up again');
    return true;
  });
});
