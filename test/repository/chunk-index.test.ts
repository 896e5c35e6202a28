// The in-memory chunk index (pure): every added id is found with its location, absent ids are
// not, the first location of an id wins, and entries come back in the order they were added.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ChunkIndex } from '../../shared/repository/chunk-index.ts';

const id = (n: number) => createHash('sha256').update(`chunk ${n}`).digest();

test('chunk index: 100 000 ids through several rehashes, lookups, duplicates and order', () => {
  const idx = new ChunkIndex();
  const N = 100_000;
  for (let n = 0; n < N; n++) {
    assert.equal(idx.add(`pack${n % 37}`, { id: id(n), type: n % 2, codec: 1, offset: n * 3, length: n % 65536, rawOffset: n % 1000, rawLength: 8192 + (n % 7) }), true);
  }
  assert.equal(idx.size, N);
  for (let n = 0; n < N; n += 997) {
    const l = idx.get(id(n))!;
    assert.deepEqual({ ...l, id: l.id.toString('hex') }, { id: id(n).toString('hex'), packId: `pack${n % 37}`, type: n % 2, codec: 1, offset: n * 3, length: n % 65536, rawOffset: n % 1000, rawLength: 8192 + (n % 7) });
  }
  for (let n = N; n < N + 1000; n++) assert.equal(idx.has(id(n)), false);
  assert.equal(idx.has(Buffer.alloc(5)), false, 'an id of the wrong length is not found');
  assert.equal(idx.add('other', { id: id(5), type: 0, codec: 0, offset: 1, length: 1, rawOffset: 0, rawLength: 1 }), false, 'the first location wins');
  assert.equal(idx.get(id(5))!.packId, 'pack5');
  let i = 0;
  for (const e of idx.entries()) {
    if (i % 5003 === 0) assert.ok(e.id.equals(id(i)), `entry ${i} in order`);
    i++;
  }
  assert.equal(i, N);
  assert.equal(idx.packs().length, 37);
});
