// The in-memory chunk index (pure): every added id is found with its location, absent ids are
// not, the first location of an id wins, and entries come back in the order they were added.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { ChunkIndex } from '../../shared/repository/chunk-index.ts';
import { decodeIndex, decodePackTrailer, encodeIndex, encodePackTrailer, type BlobEntry, type IndexPack } from '../../shared/repository/format.ts';
import { CorruptObjectError } from '../../shared/errors.ts';

const id = (n: number) => createHash('sha256').update(`chunk ${n}`).digest();

test('chunk index: 100 000 ids through several rehashes, lookups, duplicates and order', () => {
  const idx = new ChunkIndex();
  const N = 100_000;
  const packId = (n: number) => createHash('sha256').update(`pack ${n % 37}`).digest('hex');
  const entry = (n: number) => ({ id: id(n), type: n % 2, codec: 1, offset: n * 3, length: n % 65536, rawOffset: n % 1000, rawLength: 8192 + (n % 7) });
  // Index objects of 5 000 one-entry packs each, as many as it takes.
  for (let from = 0; from < N; from += 5000) {
    idx.addIndexObject(`index/${from}`, encodeIndex(Array.from({ length: 5000 }, (_, k) => ({ packId: packId(from + k), entries: [entry(from + k)] })), 1));
  }
  assert.equal(idx.size, N);
  for (let n = 0; n < N; n += 997) {
    const l = idx.get(id(n))!;
    assert.deepEqual({ ...l, id: l.id.toString('hex') }, { ...entry(n), id: id(n).toString('hex'), packId: packId(n) });
  }
  for (let n = N; n < N + 1000; n++) assert.equal(idx.has(id(n)), false);
  assert.equal(idx.has(Buffer.alloc(5)), false, 'an id of the wrong length is not found');
  idx.addIndexObject('index/again', encodeIndex([{ packId: packId(6), entries: [{ ...entry(5), offset: 1 }] }], 1));
  assert.equal(idx.size, N, 'an id already there is not added again');
  assert.deepEqual([idx.get(id(5))!.packId, idx.get(id(5))!.offset], [packId(5), 15], 'the first location wins');
  let i = 0;
  for (const e of idx.entries()) {
    if (i % 5003 === 0) assert.ok(e.id.equals(id(i)), `entry ${i} in order`);
    i++;
  }
  assert.equal(i, N);
  assert.equal(idx.packs().length, 37);
});

test('chunk index: room reserved ahead (too little or too much) gives the same index; a pack whose entries are all known already is not listed', () => {
  const packId = (n: number) => createHash('sha256').update(`pack ${n % 11}`).digest('hex');
  const objects = Array.from({ length: 6 }, (_, o) => encodeIndex(Array.from({ length: 40 }, (_, k) => ({
    packId: packId(o * 40 + k),
    entries: Array.from({ length: 50 }, (_, e) => { const n = (o * 40 + k) * 50 + e; return { id: id(n), type: 0, codec: 1, offset: n * 7, length: 100 + (n % 9), rawOffset: 0, rawLength: 8192 }; }),
  })), 1));
  const build = (reserve?: number) => {
    const idx = new ChunkIndex();
    if (reserve !== undefined) idx.reserve(reserve);
    objects.forEach((o, k) => idx.addIndexObject(`index/${k}`, o));
    return [...idx.entries()].map((e) => ({ ...e, id: e.id.toString('hex') }));
  };
  const plain = build();
  assert.equal(plain.length, 6 * 40 * 50);
  assert.deepEqual(build(1000), plain);
  assert.deepEqual(build(100_000), plain);
  const idx = new ChunkIndex();
  objects.forEach((o, k) => idx.addIndexObject(`index/${k}`, o));
  const other = createHash('sha256').update('a pack holding copies only').digest('hex');
  idx.addIndexObject('index/copies', encodeIndex([{ packId: other, entries: [{ id: id(3), type: 0, codec: 1, offset: 0, length: 10, rawOffset: 0, rawLength: 8192 }] }], 1));
  assert.equal(idx.packs().includes(other), false);
  assert.equal(idx.get(id(3))!.packId, packId(0));
});

test('chunk index: an index object read in place gives the entries decodeIndex gives; damage is named', () => {
  const packs: IndexPack[] = [0, 1, 2].map((p) => ({
    packId: createHash('sha256').update(`pack ${p}`).digest('hex'),
    entries: Array.from({ length: 300 }, (_, k) => ({ id: id(p * 1000 + k), type: k % 2, codec: k % 3, offset: k * 70_000, length: 1000 + k, rawOffset: (k * 8192) % 131072, rawLength: 8192 - k })),
  }));
  packs[2]!.entries.push({ ...packs[0]!.entries[7]!, offset: 1 }); // a chunk stored twice
  const plain = encodeIndex(packs, 1);
  const idx = new ChunkIndex();
  idx.addIndexObject('index/x', plain);
  assert.equal(idx.size, 900);
  for (const p of decodeIndex('index/x', plain)) {
    for (const e of p.entries) {
      const l = idx.get(e.id)!;
      const first = packs.find((q) => q.entries.some((f) => f.id.equals(e.id)))!;
      if (first.packId !== p.packId) { assert.equal(l.packId, first.packId, 'the first location wins'); continue; }
      assert.deepEqual(l, { ...e, packId: p.packId });
    }
  }
  const withEmpty = decodeIndex('index/e', encodeIndex([...packs, { packId: 'ab'.repeat(32), entries: [] }], 2));
  assert.deepEqual(withEmpty.map((p) => [p.packId, p.entries.length]), [...packs.map((p) => [p.packId, p.entries.length]), ['ab'.repeat(32), 0]], 'decodeIndex keeps every pack, even one listed with no entries');
  assert.throws(() => idx.addIndexObject('index/y', plain.subarray(0, plain.length - 3)), (e: unknown) => e instanceof CorruptObjectError && /index\/y/.test(e.message) && /truncated/.test(e.message));
  assert.throws(() => idx.addIndexObject('index/z', Buffer.concat([plain, Buffer.alloc(1)])), (e: unknown) => e instanceof CorruptObjectError && /trailing/.test(e.message));
});

test('delta records: version 2 index objects and trailers carry each delta\'s content length and bases; damage is refused', () => {
  const pack = createHash('sha256').update('pack d').digest('hex');
  const entries = Array.from({ length: 6 }, (_, k) => ({ id: id(50_000 + k), type: k % 3 === 1 ? 2 : 0, codec: 1, offset: 0, length: 900, rawOffset: k * 100, rawLength: 100 }));
  const withDeltas: BlobEntry[] = entries.map((e, k) => (e.type === 2 ? { ...e, delta: { size: 8000 + k, bases: [id(k), id(k + 100)].slice(0, 1 + (k % 2)) } } : e));
  const plain = encodeIndex([{ packId: pack, entries: withDeltas }], 2);
  const decoded = decodeIndex('index/d', plain)[0]!.entries;
  assert.deepEqual(decoded.map((e) => [e.type, e.delta?.size, e.delta?.bases.map((b) => b.toString('hex'))]), withDeltas.map((e) => [e.type, e.delta?.size, e.delta?.bases.map((b) => b.toString('hex'))]));
  const idx = new ChunkIndex();
  idx.addIndexObject('index/d', plain);
  assert.deepEqual(idx.describe(id(50_001)), { type: 2, size: 8001 });
  assert.deepEqual(idx.describe(id(50_000)), { type: 0, size: 100 });
  assert.ok(idx.get(id(50_004))!.delta!.bases[0]!.equals(id(4)));
  assert.equal(idx.get(id(50_002))!.delta, undefined);
  // Trailers: CBP2 with the delta section only when the pack holds deltas.
  const t2 = encodePackTrailer(withDeltas);
  assert.equal(t2.subarray(0, 4).toString(), 'CBP2');
  assert.deepEqual(decodePackTrailer('p', t2).map((e) => e.delta?.size), withDeltas.map((e) => e.delta?.size));
  assert.equal(encodePackTrailer(entries.filter((e) => e.type === 0)).subarray(0, 4).toString(), 'CBPK');
  assert.throws(() => decodePackTrailer('p', t2.subarray(0, t2.length - 1)), CorruptObjectError);
  // A delta record pointing at a whole chunk, or a version 1 index with deltas, is refused.
  const wrong = Buffer.from(plain);
  wrong.writeUInt32LE(0, 9 + 36 + 6 * 50 + 4); // the first record now names entry 0, a data chunk
  assert.throws(() => decodeIndex('index/w', wrong), (e: unknown) => e instanceof CorruptObjectError && /not a delta/.test(e.message));
  assert.throws(() => encodeIndex([{ packId: pack, entries: withDeltas }], 1), /version 1/);
  // A whole copy of a chunk (a concurrent backup's) wins over a delta copy: bases must be whole.
  const whole = { ...withDeltas[1]!, type: 0, offset: 7, rawLength: 8001 };
  delete whole.delta;
  idx.addIndexObject('index/w', encodeIndex([{ packId: 'cd'.repeat(32), entries: [whole] }], 2));
  assert.deepEqual(idx.describe(id(50_001)), { type: 0, size: 8001 });
  assert.equal(idx.get(id(50_001))!.delta, undefined);
  assert.equal(idx.get(id(50_001))!.packId, 'cd'.repeat(32));
  idx.addIndexObject('index/d2', plain);
  assert.equal(idx.get(id(50_001))!.type, 0, 'and a delta copy read later does not replace it');
});
