// Subset restore on a real server: back up a database with two schemas, foreign keys across
// them, a partitioned table, a view, triggers and indexes; restore a `--table` subset and a
// `--schema` subset into new databases, through the engine and through the command line.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { usePostgres, createTestDatabase, type PostgresServer } from '../support/postgres.ts';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { backupPostgres } from '../../agent/engines/postgres/backup.ts';
import { restorePostgres } from '../../agent/engines/postgres/restore.ts';
import { resolveTarget } from '../../agent/engines/postgres/connection.ts';
import type { SchemaDocument } from '../../agent/engines/postgres/schema-types.ts';
import { connect, tableChecksums } from '../postgres-schema/helpers.ts';
import { runAgentCli } from '../support/agent-cli.ts';


const FIXTURE = `
CREATE SCHEMA sales;
CREATE SCHEMA inventory;
CREATE TABLE inventory.products (id int PRIMARY KEY, name text NOT NULL, price numeric CHECK (price >= 0));
CREATE INDEX products_name ON inventory.products (name);
CREATE FUNCTION inventory.product_count() RETURNS bigint LANGUAGE sql STABLE BEGIN ATOMIC SELECT count(*) FROM inventory.products; END;
CREATE TABLE sales.customers (id serial PRIMARY KEY, email text UNIQUE, created date DEFAULT '2024-01-01');
CREATE TABLE sales.orders (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  customer_id int NOT NULL REFERENCES sales.customers (id),
  product_id int CONSTRAINT orders_product_fk REFERENCES inventory.products (id),
  qty int DEFAULT 1 CHECK (qty > 0),
  note text);
CREATE INDEX orders_customer ON sales.orders (customer_id);
COMMENT ON TABLE sales.orders IS 'what customers bought';
CREATE FUNCTION sales.touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN NEW.note := coalesce(NEW.note, 'touched'); RETURN NEW; END$$;
CREATE TRIGGER orders_touch BEFORE INSERT ON sales.orders FOR EACH ROW EXECUTE FUNCTION sales.touch();
CREATE TABLE sales.events (id int, at date NOT NULL, payload text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE sales.events_2024 PARTITION OF sales.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE sales.events_2025 PARTITION OF sales.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX events_payload ON sales.events (payload);
CREATE VIEW sales.big_orders AS SELECT * FROM sales.orders WHERE qty > 5;
INSERT INTO inventory.products SELECT i, 'product ' || i, i * 1.5 FROM generate_series(1, 20) i;
INSERT INTO sales.customers (email) SELECT 'c' || i || '@example.org' FROM generate_series(1, 50) i;
INSERT INTO sales.orders (customer_id, product_id, qty) SELECT 1 + i % 50, 1 + i % 20, 1 + i % 9 FROM generate_series(1, 300) i;
INSERT INTO sales.events SELECT i, DATE '2024-06-01' + i, 'event ' || i FROM generate_series(1, 400) i;
`;

interface Setup { server: PostgresServer; src: string; repo: Repository; repoDir: string; id: string }

let setup: Promise<Setup> | undefined;
function source(): Promise<Setup> {
  setup ??= (async () => {
    const server = await usePostgres();
    const src = await createTestDatabase(server, 'subset_src');
    const c = await connect(server, src);
    await c.query(FIXTURE);
    await c.end();
    const repoDir = mkdtempSync(path.join(tmpdir(), 'cb-pg-subset-'));
    const repo = await Repository.init(await openStore(repoDir, { create: true }), { password: 'pw', scrypt: { N: 1024, r: 8, p: 1 } });
    const rp = await backupPostgres(repo, resolveTarget(server.url(src)), { parallel: 2 });
    return { server, src, repo, repoDir, id: rp.id };
  })();
  return setup;
}
after(async () => {
  if (setup) rmSync((await setup).repoDir, { recursive: true, force: true });
});

async function facts(server: PostgresServer, db: string, tables: string[]) {
  const c = await connect(server, db);
  try {
    const q = async (sql: string) => (await c.query(sql)).rows.map((r) => Object.values(r).join(' '));
    const doc = { tables: tables.map((t) => { const [schema, name] = t.split('.'); return { schema, name, columns: [], hasData: true }; }) } as unknown as SchemaDocument;
    // Every column of each table, for the checksums.
    for (const t of doc.tables) {
      t.columns = (await c.query(`SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
        [`"${t.schema}"."${t.name}"`])).rows.map((r) => r.attname as string);
    }
    return {
      tables: await q(`SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`),
      schemas: await q(`SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1`),
      indexes: await q(`SELECT schemaname || '.' || indexname FROM pg_indexes WHERE schemaname NOT IN ('pg_catalog') ORDER BY 1`),
      constraints: await q(`SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace::regnamespace::text NOT IN ('pg_catalog') AND conrelid <> 0 ORDER BY 1`),
      triggers: await q(`SELECT tgrelid::regclass::text || ' ' || tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1`),
      comments: await q(`SELECT objoid::regclass::text || ' ' || description FROM pg_description WHERE classoid = 'pg_class'::regclass AND objoid >= 16384 ORDER BY 1`),
      sequences: await q(`SELECT schemaname || '.' || sequencename || ' ' || coalesce(last_value::text, '-') FROM pg_sequences ORDER BY 1`),
      sums: await tableChecksums(c, doc),
    };
  } finally { await c.end(); }
}

test('--table subset: exactly the chosen tables (and a partition parent), their data, indexes, constraints and triggers; FK to a table left out skipped', async () => {
  const { server, src, repo, id } = await source();
  const dst = `subset_tables_${Date.now()}`;
  const warnings: string[] = [];
  const chosen = ['sales.customers', 'sales.events_2025', 'sales.orders'];
  const res = await restorePostgres(repo, id, resolveTarget(server.url(dst)), { subset: { tables: ['sales.orders', 'sales.customers', 'sales.events_2025'] }, onWarning: (m) => warnings.push(m) });
  assert.deepEqual(Object.keys(res.counts).sort(), chosen);
  assert.deepEqual(res.counts, { 'sales.orders': 300, 'sales.customers': 50, 'sales.events_2025': 187 });
  assert.deepEqual(res.warnings, warnings);
  assert.ok(warnings.includes('skipped foreign key sales.orders.orders_product_fk: it references inventory.products, which is not restored'), warnings.join('\n'));
  assert.ok(warnings.includes('skipped 1 view/materialized view outside the subset (name them with --table to restore them)'), warnings.join('\n'));
  // A function whose SQL body reads a table left out would fail: it is left out too.
  assert.ok(warnings.includes('skipped function inventory.product_count(): it uses inventory.products, which is not restored'), warnings.join('\n'));
  assert.equal(warnings.length, 3, warnings.join('\n'));

  const a = await facts(server, src, chosen);
  const b = await facts(server, dst, chosen);
  assert.deepEqual(b.tables, ['sales.customers', 'sales.events', 'sales.events_2025', 'sales.orders']);
  assert.deepEqual(b.sums, a.sums);
  assert.equal(Object.keys(b.sums).length, 3);
  // The inventory schema held only the table left out; sales holds the function and sequences.
  assert.deepEqual(b.schemas, ['public', 'sales']);
  assert.deepEqual(b.indexes, a.indexes.filter((s) => s.startsWith('sales.') && !s.includes('2024')));
  assert.ok(b.indexes.includes('sales.orders_customer') && b.indexes.includes('sales.events_2025_payload_idx'));
  assert.deepEqual(b.constraints, a.constraints.filter((s) => /^sales\.(customers|orders|events_2025|events) /.test(s) && !s.includes('orders_product_fk')));
  assert.ok(b.constraints.some((s) => s.startsWith('sales.orders orders_customer_id_fkey FOREIGN KEY')));
  assert.ok(a.constraints.some((s) => s.includes('orders_product_fk')));
  assert.deepEqual(b.triggers, ['sales.orders orders_touch']);
  assert.deepEqual(b.comments, ['sales.orders what customers bought']);
  assert.deepEqual(b.sequences, a.sequences, 'sequence values (serial and identity)');

  // The restored tables work as the source's: identity and trigger continue, the FK holds.
  const c = await connect(server, dst);
  try {
    const row = (await c.query(`INSERT INTO sales.orders (customer_id) VALUES (3) RETURNING id, note`)).rows[0];
    assert.deepEqual([String(row.id), row.note], ['301', 'touched']);
    await assert.rejects(c.query(`INSERT INTO sales.orders (customer_id) VALUES (999)`), /foreign key/);
    await assert.rejects(c.query(`INSERT INTO sales.events VALUES (1, DATE '2024-07-01', 'x')`), /no partition/);
  } finally { await c.end(); }
});

test('--schema subset: only that schema\'s tables; the objects they may need come along', async () => {
  const { server, src, repo, id } = await source();
  const dst = `subset_schema_${Date.now()}`;
  const warnings: string[] = [];
  const res = await restorePostgres(repo, id, resolveTarget(server.url(dst)), { subset: { schemas: ['inventory'] }, onWarning: (m) => warnings.push(m) });
  assert.deepEqual(res.counts, { 'inventory.products': 20 });
  assert.deepEqual(warnings, ['skipped 1 view/materialized view outside the subset (name them with --table to restore them)']);
  const a = await facts(server, src, ['inventory.products']);
  const b = await facts(server, dst, ['inventory.products']);
  assert.deepEqual(b.tables, ['inventory.products']);
  assert.deepEqual(b.sums, a.sums);
  assert.deepEqual(b.indexes, ['inventory.products_name', 'inventory.products_pkey']);
  assert.deepEqual(b.constraints, a.constraints.filter((s) => s.startsWith('inventory.')));
  assert.equal(b.constraints.length, 2);
  assert.deepEqual(b.triggers, []);
  // The sales schema comes along for its function and sequences, without its tables.
  const c = await connect(server, dst);
  try {
    assert.equal((await c.query('SELECT inventory.product_count() AS n')).rows[0].n, '20');
    assert.deepEqual((await c.query(`SELECT proname FROM pg_proc WHERE pronamespace = 'sales'::regnamespace`)).rows.map((r) => r.proname), ['touch']);
    assert.deepEqual((await c.query(`SELECT sequencename FROM pg_sequences WHERE schemaname = 'sales' ORDER BY 1`)).rows.map((r) => r.sequencename), ['customers_id_seq']);
  } finally { await c.end(); }
});

test('unknown names are refused before the target is touched; the command line takes --table and refuses --collection', async () => {
  const { server, repo, repoDir, id } = await source();
  const dst = `subset_unknown_${Date.now()}`;
  await assert.rejects(restorePostgres(repo, id, resolveTarget(server.url(dst)), { subset: { tables: ['sales.nope'], schemas: ['archive'] } }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'NOT_FOUND');
    assert.match(e.message, new RegExp(`^restore point ${id.slice(0, 12)} has no table sales\\.nope, no schema archive \\(its tables and views: inventory\\.products, sales\\.big_orders, `));
    return true;
  });
  await assert.rejects(restorePostgres(repo, id, resolveTarget(server.url(dst)), { subset: { tables: ['sales.big_orders'] } }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.equal(e.message, 'view sales.big_orders needs sales.orders, not in the subset: add it to the tables to restore');
    return true;
  });
  const admin = await connect(server, 'postgres');
  assert.equal((await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [dst])).rowCount, 0, 'no database was created');
  await admin.end();

  const agent = (args: string[]) => runAgentCli([...args, '--repo', repoDir, '--repo-password-env', 'REPO_PW'], { REPO_PW: 'pw' });
  const wrong = await agent(['restore', id, '--target', server.url(dst), '--collection', 'orders']);
  assert.notEqual(wrong.code, 0);
  assert.equal(wrong.stderr.trim(), 'error: --collection is for MongoDB restore points; for PostgreSQL use --table SCHEMA.TABLE or --schema NAME');

  const ok = await agent(['restore', id, '--target', server.url(dst), '--table', 'sales.customers', '--table', 'inventory.products', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  const res = JSON.parse(ok.stdout) as { counts: Record<string, number>; warnings: string[] };
  assert.deepEqual(res.counts, { 'sales.customers': 50, 'inventory.products': 20 });
  const b = await facts(server, dst, []);
  assert.deepEqual(b.tables, ['inventory.products', 'sales.customers']);
});
