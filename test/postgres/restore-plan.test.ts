// Restore planning (pure): data objects are grouped per table, a table's parts keep their backup
// order (part numbers compared as numbers), the biggest table is loaded first, and indexes and keys
// wait only for the tables they need.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planLoad, tableJobs } from '../../agent/engines/postgres/restore.ts';
import type { DdlItem } from '../../agent/engines/postgres/schema-types.ts';
import { tableObjectName } from '../../agent/engines/postgres/backup.ts';
import type { ManifestObject } from '../../shared/repository/types.ts';

const obj = (schema: string, table: string, part: number, size: number): ManifestObject => ({
  name: tableObjectName({ schema, name: table }, part), kind: 'table-data', size, list: [], chunks: 0,
  meta: { schema, table, columns: [] },
});

test('table jobs: one per table (names with dots kept apart), parts in order, biggest table first', () => {
  const jobs = tableJobs([
    obj('s', 'a', 10, 5), obj('s', 'b', 0, 100), obj('s', 'a', 2, 5), obj('s', 'a', 0, 5), obj('s.a', 'b', 0, 1), obj('s', 'a.b', 0, 2), obj('s', 'a', 1, 5),
  ]);
  assert.deepEqual(jobs.map((j) => [j.key, j.size, j.parts.map((p) => p.name.slice(p.name.lastIndexOf('/') + 1))]), [
    ['s.b', 100, ['0']],
    ['s.a', 20, ['0', '1', '2', '10']],
    ['s.a.b', 2, ['0']],
    ['s.a.b', 1, ['0']],
  ]);
});

test('load plan: indexes and keys wait only for the data of their own table and the relations they need', () => {
  const item = (kind: string, name: string, table?: [string, string], needs?: [string, string][]): DdlItem => ({
    section: 'post-data', kind, schema: 's', name, sql: `-- ${name}`,
    ...(table ? { table: { schema: table[0], name: table[1] } } : {}),
    ...(needs ? { needs: needs.map(([schema, n]) => ({ schema, name: n })) } : {}),
  });
  const { jobs, wave } = planLoad([obj('s', 'a', 0, 5), obj('s', 'b', 0, 100), obj('s', 'b', 1, 100)], [
    item('constraint', 'a.a_pkey', ['s', 'a']),
    item('fk', 'a.a_b_fkey', ['s', 'a']),
    item('index', 'b_idx', ['s', 'b'], [['s', 'a'], ['s', 'nodata']]),
    item('index', 'empty_idx', ['s', 'nodata']),
    item('index', 'old_idx'),
    item('trigger', 'a.t', ['s', 'a']),
  ]);
  assert.deepEqual(jobs.map((j) => j.key), ['s.b', 's.a']);
  assert.deepEqual(wave.map((w) => [w.item.name, w.after]), [
    ['a.a_pkey', [JSON.stringify(['s', 'a'])]],
    ['b_idx', [JSON.stringify(['s', 'b']), JSON.stringify(['s', 'a'])]],
    ['empty_idx', []], // a table without data: nothing to wait for
    ['old_idx', undefined], // restore points that do not record the table: after all data
  ]);
});

test('load plan with parallelParts: each part of a split table is a job of its own, shared, biggest first; whole tables keep one job', () => {
  const { jobs, wave } = planLoad([obj('s', 'a', 0, 5), obj('s', 'b', 0, 100), obj('s', 'b', 1, 90), obj('s', 'b', 2, 3)], [
    { section: 'post-data', kind: 'index', schema: 's', name: 'b_idx', sql: '-- b_idx', table: { schema: 's', name: 'b' } },
  ], { parallelParts: true });
  assert.deepEqual(jobs.map((j) => [j.key, j.parts.map((p) => p.name.slice(p.name.lastIndexOf('/') + 1)), j.size, !!j.shared]), [
    ['s.b', ['0'], 100, true],
    ['s.b', ['1'], 90, true],
    ['s.a', ['0'], 5, false],
    ['s.b', ['2'], 3, true],
  ]);
  // All parts of a table share its id, which is what its indexes wait for.
  assert.equal(new Set(jobs.filter((j) => j.key === 's.b').map((j) => j.id)).size, 1);
  assert.deepEqual(wave.map((w) => w.after), [[JSON.stringify(['s', 'b'])]]);
});
