// Restore planning (pure): data objects are grouped per table, a table's parts keep their backup
// order (part numbers compared as numbers), and the biggest table is loaded first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tableJobs } from '../../agent/engines/postgres/restore.ts';
import { tableObjectName } from '../../agent/engines/postgres/backup.ts';
import type { ManifestObject } from '../../shared/repository/types.ts';

const obj = (schema: string, table: string, part: number, size: number): ManifestObject => ({
  name: tableObjectName({ schema, name: table }, part), kind: 'table-data', size, sha256: '', list: [], chunks: 0,
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
