// Citus metadata reading and distribution DDL, on catalog rows recorded from a Citus 12
// coordinator (no Citus server exists here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CITUS_TABLES_SQL, citusDdl, readCitus } from '../../agent/engines/postgres/citus.ts';
import type { CitusInfo } from '../../agent/engines/postgres/schema-types.ts';

// Rows as CITUS_TABLES_SQL returns them: ordered by colocation id, then relation oid.
const RECORDED = [
  { nspname: 'public', relname: 'countries', partmethod: 'n', repmodel: 't', colocationid: 1, distcol: null, shardcount: 1 },
  { nspname: 'public', relname: 'companies', partmethod: 'h', repmodel: 's', colocationid: 2, distcol: 'id', shardcount: 32 },
  { nspname: 'public', relname: 'campaigns', partmethod: 'h', repmodel: 's', colocationid: 2, distcol: 'company_id', shardcount: 32 },
  { nspname: 'Sales Data', relname: 'ads', partmethod: 'h', repmodel: 's', colocationid: 2, distcol: 'company_id', shardcount: 32 },
  { nspname: 'public', relname: 'events', partmethod: 'h', repmodel: 's', colocationid: 3, distcol: 'device id', shardcount: 8 },
  { nspname: 'public', relname: 'logs', partmethod: 'a', repmodel: 'c', colocationid: 0, distcol: 'ts', shardcount: null },
  { nspname: 'public', relname: 'local_cfg', partmethod: 'n', repmodel: 's', colocationid: 0, distcol: null, shardcount: null },
  { nspname: 'public', relname: 'currencies', partmethod: 'n', repmodel: 't', colocationid: 1, distcol: null, shardcount: 1 },
];

function recordedQuery(): { calls: string[]; q: (sql: string) => Promise<Record<string, any>[]> } {
  const calls: string[] = [];
  return {
    calls,
    q: async (sql: string) => {
      calls.push(sql);
      if (sql.includes("extname = 'citus'")) return [{ extversion: '12.1-1' }];
      if (sql === CITUS_TABLES_SQL) return RECORDED;
      throw new Error(`unexpected query: ${sql}`);
    },
  };
}

test('readCitus turns pg_dist_partition rows into distributed, reference and local tables', async () => {
  const { q, calls } = recordedQuery();
  const info = await readCitus(q);
  assert.equal(calls.length, 2);
  assert.equal(info.version, '12.1-1');
  assert.deepEqual(info.tables.map((t) => [t.schema, t.name, t.kind, t.column ?? null, t.colocationId]), [
    ['public', 'countries', 'reference', null, 1],
    ['public', 'companies', 'distributed', 'id', 2],
    ['public', 'campaigns', 'distributed', 'company_id', 2],
    ['Sales Data', 'ads', 'distributed', 'company_id', 2],
    ['public', 'events', 'distributed', 'device id', 3],
    ['public', 'logs', 'distributed', 'ts', 0],
    ['public', 'local_cfg', 'local', null, 0],
    ['public', 'currencies', 'reference', null, 1],
  ]);
  assert.equal(info.tables[1]!.shardCount, 32);
  // The reading query resolves the distribution column through Citus' own function.
  assert.match(CITUS_TABLES_SQL, /column_to_column_name\(p\.logicalrelid, p\.partkey\)/);
});

test('citusDdl: reference tables first, each colocation group led by its first table', async () => {
  const info = await readCitus(recordedQuery().q);
  const items = citusDdl(info);
  assert.ok(items.every((i) => i.kind === 'citus' && i.section === 'pre-data'));
  assert.deepEqual(items.map((i) => i.sql), [
    `SELECT create_reference_table('"public"."countries"');`,
    `SELECT create_reference_table('"public"."currencies"');`,
    `SELECT create_distributed_table('"public"."companies"', 'id', distribution_type => 'hash', shard_count => 32, colocate_with => 'none');`,
    `SELECT create_distributed_table('"public"."campaigns"', 'company_id', distribution_type => 'hash', colocate_with => '"public"."companies"');`,
    `SELECT create_distributed_table('"Sales Data"."ads"', 'company_id', distribution_type => 'hash', colocate_with => '"public"."companies"');`,
    `SELECT create_distributed_table('"public"."events"', 'device id', distribution_type => 'hash', shard_count => 8, colocate_with => 'none');`,
    `SELECT create_distributed_table('"public"."logs"', 'ts', distribution_type => 'append');`,
    `SELECT citus_add_local_table_to_metadata('"public"."local_cfg"');`,
  ]);
});

test('citusDdl quotes names with quotes and refuses a distributed table without a column', () => {
  const info: CitusInfo = { version: '11.3', tables: [{ schema: 'a"b', name: "it's", kind: 'distributed', method: 'h', column: "c'ol", colocationId: 5 }] };
  assert.deepEqual(citusDdl(info).map((i) => i.sql), [
    `SELECT create_distributed_table('"a""b"."it''s"', 'c''ol', distribution_type => 'hash', colocate_with => 'none');`,
  ]);
  assert.throws(() => citusDdl({ version: '11.3', tables: [{ schema: 's', name: 't', kind: 'distributed', method: 'h', colocationId: 5 }] }), /no distribution column/);
});
