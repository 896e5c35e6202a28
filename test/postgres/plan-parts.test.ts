// Splitting big tables into ctid ranges (pure): parts keep their ranges when the table grows a
// little (only the last part takes the growth), so each part lines up with its previous version;
// the ranges cover every block once; small tables and servers before 14 get one part.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planParts } from '../../agent/engines/postgres/backup.ts';
import type { TableInfo } from '../../agent/engines/postgres/schema-types.ts';

const GiB = 1024 ** 3;
const table = (name: string, blocks: number, bytesPerBlock = 8192): TableInfo & { blocks: number } =>
  ({ schema: 'public', name, oid: 1, relkind: 'r', columns: ['a'], hasData: true, estimatedBytes: blocks * bytesPerBlock, blocks } as TableInfo & { blocks: number });
const ranges = (t: TableInfo & { blocks: number }) => planParts([t], GiB, true).map((p) => [p.object, p.from, p.to]).sort((a, b) => Number(a[1]) - Number(b[1]));

test('big tables split into fixed power-of-two block ranges that survive growth; small ones stay whole', () => {
  const before = ranges(table('orders', 400_000)); // about 3 GiB of heap
  const after = ranges(table('orders', 404_000)); // 1 % more blocks after updates
  assert.ok(before.length >= 3);
  assert.deepEqual(after.slice(0, -1), before.slice(0, -1), 'every part but the last keeps its name and range');
  assert.equal(after[after.length - 1]![2], undefined, 'the last part is open-ended');
  const step = Number(before[1]![1]);
  assert.equal(Math.log2(step) % 1, 0, 'the step is a power of two');
  before.forEach((r, i) => { assert.equal(r[1], i * step); if (i < before.length - 1) assert.equal(r[2], (i + 1) * step); });
  // TOAST counts in the size: a table with half its bytes outside the heap gets ranges of fewer blocks.
  assert.ok(Number(ranges(table('wide', 400_000, 16_384))[1]![1]) < step);
  assert.deepEqual(ranges(table('small', 100_000)), [['data/["public","small"]/0', undefined, undefined]]);
  assert.equal(planParts([table('orders', 400_000)], GiB, false).length, 1, 'no TID range scans before PostgreSQL 14');
  // Largest first: the parts are sorted by their share of the table.
  const parts = planParts([table('orders', 404_000)], GiB, true);
  assert.equal(parts[parts.length - 1]!.to, undefined, 'the small open-ended part goes last');
});
