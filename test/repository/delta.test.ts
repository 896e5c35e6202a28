// Chunk deltas: a chunk changed by a few table rows is stored as a small patch against 1-4 old
// chunks; applying the patch gives back exactly the chunk, and malformed patches are rejected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyDelta, compactBases, deltaContentLength, diffChunk, MAX_DELTA_BASES } from '../../shared/repository/delta.ts';
import { CorruptObjectError } from '../../shared/errors.ts';
import { seededRandom } from '../support/seeded-random.ts';

const WORDS = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima', 'mike', 'november', 'oscar', 'papa', 'quebec', 'romeo', 'sierra', 'tango'];

/** One table row of about 250 bytes: id, name, a JSON document, a number. */
function row(rand: () => number, id: number): string {
  const word = (): string => WORDS[Math.floor(rand() * WORDS.length)];
  const doc = {
    status: ['active', 'pending', 'closed'][Math.floor(rand() * 3)],
    tags: [word(), word(), word()],
    note: Array.from({ length: 10 + Math.floor(rand() * 8) }, word).join(' '),
    score: Number((rand() * 1000).toFixed(2)),
  };
  return `${id}\t${word()} ${word()}\t${JSON.stringify(doc)}\t${Math.floor(rand() * 1e9)}\n`;
}

/** Rows from `firstId` on, at least `bytes` long in all. */
function table(rand: () => number, bytes: number, firstId = 1): string[] {
  const rows: string[] = [];
  for (let n = 0, id = firstId; n < bytes; id++) {
    rows.push(row(rand, id));
    n += rows[rows.length - 1].length;
  }
  return rows;
}

const buf = (rows: readonly string[]): Buffer => Buffer.from(rows.join(''));

function randomBytes(rand: () => number, n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

type Op = { op: 'copy'; base: number; offset: number; length: number } | { op: 'insert'; length: number };

/** Reads a patch's ops per the documented encoding, to check what diffChunk writes. */
function ops(patch: Buffer): Op[] {
  assert.equal(patch[0], 1, 'version 1');
  const out: Op[] = [];
  for (let p = 5; p < patch.length;) {
    if (patch[p] === 0) {
      out.push({ op: 'copy', base: patch[p + 1], offset: patch.readUInt32LE(p + 2), length: patch.readUInt32LE(p + 6) });
      p += 10;
    } else {
      assert.equal(patch[p], 1, `op at ${p}`);
      const length = patch.readUInt32LE(p + 1);
      out.push({ op: 'insert', length });
      p += 5 + length;
    }
  }
  return out;
}

/** Diffs, asserts a patch came out and rebuilds the target exactly, and returns it. */
function roundTrip(target: Buffer, bases: readonly Buffer[], what: string): Buffer {
  const patch = diffChunk(target, bases);
  assert.ok(patch, `${what}: a patch`);
  assert.equal(deltaContentLength(patch), target.length, `${what}: declared length`);
  assert.ok(applyDelta(patch, bases).equals(target), `${what}: rebuilds the target`);
  return patch;
}

test('one row removed from the middle of a base: two COPY ops', () => {
  const rows = table(seededRandom(1), 8192);
  const base = buf(rows);
  const mid = rows.length >> 1;
  const target = buf(rows.toSpliced(mid, 1));
  const patch = roundTrip(target, [base], 'row removed');
  assert.ok(patch.length < 64, `patch of ${patch.length} bytes`);
  const before = rows.slice(0, mid).join('').length;
  const list = ops(patch);
  // The removed row and its successor may share a prefix ("id\t"...), so the first COPY may run on.
  assert.equal(list.length, 2, JSON.stringify(list));
  assert.ok(list.every((o) => o.op === 'copy' && o.base === 0));
  assert.equal(list[0].op === 'copy' && list[0].offset, 0);
  assert.ok(list[0].length >= before, 'the first COPY covers the rows before');
});

test('one row replaced in place: a patch about as long as the new row', () => {
  const rand = seededRandom(2);
  const rows = table(rand, 8192);
  const base = buf(rows);
  const mid = rows.length >> 1;
  const fresh = row(rand, mid + 1);
  const target = buf(rows.toSpliced(mid, 1, fresh));
  const patch = roundTrip(target, [base], 'row replaced');
  assert.ok(patch.length < fresh.length + 64, `patch of ${patch.length} bytes for a ${fresh.length}-byte row`);
  assert.equal(diffChunk(target, [base], 0.01), undefined, 'over a budget of 1 % there is no patch');
  // Also a row added: the same small patch.
  const added = roundTrip(buf(rows.toSpliced(mid, 0, fresh)), [base], 'row added');
  assert.ok(added.length < fresh.length + 64, `patch of ${added.length} bytes for an added ${fresh.length}-byte row`);
});

test('a chunk spanning the tail of one base, minus a row, and the head of the next', () => {
  const rand = seededRandom(3);
  const a = table(rand, 8192);
  const b = table(rand, 8192, 1000);
  const bases = [buf(a), buf(b)];
  const target = buf([...a.slice(10).toSpliced(10, 1), ...b.slice(0, 12)]);
  const patch = roundTrip(target, bases, 'two bases');
  assert.ok(patch.length < 64, `patch of ${patch.length} bytes`);
  const list = ops(patch);
  assert.ok(list.some((o) => o.op === 'copy' && o.base === 0) && list.some((o) => o.op === 'copy' && o.base === 1), 'copies from both bases');
  // Given in the other order, the bases are found all the same.
  assert.ok(roundTrip(target, [bases[1], bases[0]], 'bases swapped').length < 64);
  // Copies that continue at the same offset in another base stay two ops.
  const x = randomBytes(rand, 4096);
  const y = randomBytes(rand, 4096);
  assert.deepEqual(ops(roundTrip(Buffer.concat([x.subarray(0, 1000), y.subarray(1000, 3000)]), [x, y], 'base switch')), [
    { op: 'copy', base: 0, offset: 0, length: 1000 },
    { op: 'copy', base: 1, offset: 1000, length: 2000 },
  ]);
});

test('a target starting in the middle of a base: one COPY at that offset', () => {
  const base = buf(table(seededRandom(4), 8192));
  const target = base.subarray(1234, 6234);
  const patch = roundTrip(target, [base], 'middle');
  assert.deepEqual(ops(patch), [{ op: 'copy', base: 0, offset: 1234, length: 5000 }]);
  assert.equal(patch.length, 15);
  // The same with a second, unrelated base in front of it.
  const other = randomBytes(seededRandom(5), 8192);
  assert.deepEqual(ops(roundTrip(target, [other, base], 'second base')), [{ op: 'copy', base: 1, offset: 1234, length: 5000 }]);
});

test('no patch for unrelated data, short targets, or no bases', () => {
  const rand = seededRandom(6);
  const base = buf(table(rand, 8192));
  assert.equal(diffChunk(randomBytes(rand, 8192), [base]), undefined, 'random bytes');
  assert.equal(diffChunk(randomBytes(rand, 8192), [base, randomBytes(rand, 8192)]), undefined, 'random bytes, two bases');
  assert.equal(diffChunk(base.subarray(0, 63), [base]), undefined, '63 bytes, though all in the base');
  assert.ok(diffChunk(base.subarray(0, 64), [base]), 'but 64 bytes give a patch');
  assert.equal(diffChunk(base, []), undefined, 'no bases');
  assert.throws(() => diffChunk(base, Array.from({ length: MAX_DELTA_BASES + 1 }, () => base)), RangeError);
});

test('random edits round-trip; a single edit always gives a patch', () => {
  const rand = seededRandom(7);
  const int = (n: number): number => Math.floor(rand() * n);
  let single = 0;
  let defined = 0;
  const sizes: number[] = [];
  for (let trial = 0; trial < 400; trial++) {
    const bases = Array.from({ length: 1 + int(3) }, () => buf(table(rand, 2048 + int(8192), 1 + int(1e6))));
    // A slice of the bases in a row, so it may start mid-base and span a base boundary.
    const all = Buffer.concat(bases);
    const length = 2048 + int(Math.min(8192, all.length - 2048));
    const start = int(all.length - length + 1);
    let target = all.subarray(start, start + length);
    const edits = int(6);
    for (let e = 0; e < edits; e++) {
      const at = int(target.length);
      const kind = int(3);
      const cut = kind === 1 ? 0 : 1 + int(300);
      const added = kind === 0 ? Buffer.alloc(0) : int(2) ? Buffer.from(row(rand, int(1e6))) : randomBytes(rand, 1 + int(300));
      target = Buffer.concat([target.subarray(0, at), added, target.subarray(Math.min(target.length, at + cut))]);
    }
    const patch = diffChunk(target, bases);
    if (edits === 1) {
      single++;
      assert.ok(patch, `trial ${trial}: a single edit gives a patch`);
    }
    if (patch) {
      defined++;
      sizes.push(patch.length);
      assert.ok(patch.length <= 0.5 * target.length, `trial ${trial}: within the budget`);
      assert.ok(applyDelta(patch, bases).equals(target), `trial ${trial}: ${edits} edits, ${bases.length} bases`);
    }
  }
  assert.ok(single > 30, `${single} single-edit trials`);
  assert.ok(defined > 300, `${defined} of 400 trials give a patch`);
});

test('applyDelta follows the documented encoding', () => {
  const base = Buffer.from('0123456789abcdef');
  const patch = Buffer.from([1, 9, 0, 0, 0, /* COPY */ 0, 0, 10, 0, 0, 0, 4, 0, 0, 0, /* INSERT */ 1, 3, 0, 0, 0, 0x58, 0x59, 0x5a, /* COPY */ 0, 1, 2, 0, 0, 0, 2, 0, 0, 0]);
  assert.equal(applyDelta(patch, [base, Buffer.from('zz12')]).toString(), 'abcdXYZ12');
  assert.equal(deltaContentLength(patch), 9);
});

test('malformed patches throw CorruptObjectError', () => {
  const rand = seededRandom(8);
  const rows = table(rand, 8192);
  const base = buf(rows);
  const mid = rows.length >> 1;
  const target = buf(rows.toSpliced(mid, 1, row(rand, 1)));
  const good = diffChunk(target, [base])!;
  assert.ok(ops(good).some((o) => o.op === 'insert'), 'the patch has COPY and INSERT ops');

  const corrupt = (patch: Buffer, why: string, bases: readonly Buffer[] = [base]): void => {
    assert.throws(() => applyDelta(patch, bases, 'chunk 1234'), (err: unknown) => {
      assert.ok(err instanceof CorruptObjectError, `${why}: ${String(err)}`);
      assert.equal(err.object, 'chunk 1234');
      assert.match(err.message, /delta/);
      return true;
    }, why);
  };
  const edit = (f: (p: Buffer) => void): Buffer => { const p = Buffer.from(good); f(p); return p; };
  const copy = (index: number, offset: number, length: number): Buffer => {
    const p = Buffer.alloc(15);
    p[0] = 1;
    p.writeUInt32LE(length, 1);
    p[5] = 0;
    p[6] = index;
    p.writeUInt32LE(offset, 7);
    p.writeUInt32LE(length, 11);
    return p;
  };

  for (const n of [0, 1, 4]) corrupt(good.subarray(0, n), `header cut to ${n} bytes`);
  for (let n = 6; n < good.length; n += 7) corrupt(good.subarray(0, n), `patch cut to ${n} of ${good.length} bytes`);
  corrupt(good.subarray(0, good.length - 1), 'last byte missing');
  corrupt(edit((p) => { p[0] = 2; }), 'version 2');
  corrupt(edit((p) => { p[0] = 0; }), 'version 0');
  corrupt(good, 'a base missing', []);
  corrupt(edit((p) => { p[6] = 1; }), 'base index 1 of 1');
  corrupt(copy(1, 0, 10), 'hand-made COPY from base 1 of 1');
  corrupt(copy(0, base.length - 9, 10), 'COPY one byte past the end of the base');
  corrupt(copy(0, base.length, 1), 'COPY starting at the end of the base');
  corrupt(copy(0, 0xffffffff, 0xffffffff), 'COPY offset and length near 2^32');
  corrupt(copy(0, 0, 0), 'zero-length COPY');
  corrupt(edit((p) => { p.writeUInt32LE(target.length - 1, 1); }), 'declared length one short');
  corrupt(edit((p) => { p.writeUInt32LE(target.length + 1, 1); }), 'declared length one long');
  corrupt(edit((p) => { p.writeUInt32LE(0xffffffff, 1); }), 'declared length 4 GiB');
  corrupt(edit((p) => { p[5] = 2; }), 'unknown op 0x02');
  corrupt(Buffer.concat([good, Buffer.from([0xff])]), 'unknown op 0xff after the last op');
  corrupt(Buffer.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0]), 'zero-length INSERT');
  corrupt(Buffer.from([1, 5, 0, 0, 0, 1, 6, 0, 0, 0, 1, 2, 3, 4, 5]), 'INSERT longer than the rest of the patch');

  assert.ok(applyDelta(good, [base]).equals(target), 'the patch itself is fine');
  assert.equal(applyDelta(Buffer.from([1, 0, 0, 0, 0]), [base]).length, 0, 'an empty target needs no ops');
});

test('deltaContentLength reads the header without applying the patch', () => {
  const base = buf(table(seededRandom(9), 8192));
  const patch = diffChunk(base.subarray(100, 4100), [base])!;
  assert.equal(deltaContentLength(patch), 4000);
  assert.equal(deltaContentLength(Buffer.from([1, 0x78, 0x56, 0x34, 0x12])), 0x12345678, 'u32 little-endian');
  assert.throws(() => deltaContentLength(patch.subarray(0, 4), 'chunk x'), (err: unknown) => err instanceof CorruptObjectError && err.object === 'chunk x');
  assert.throws(() => deltaContentLength(Buffer.from([7, 0, 0, 0, 0])), CorruptObjectError);
});

test('compactBases keeps only the bases a patch copies from, renumbered, and the patch still applies', () => {
  const a = Buffer.from('a'.repeat(40) + 'first base, with enough text to be found by anchors'.repeat(20));
  const b = Buffer.from('b'.repeat(40) + 'an unrelated second base that nothing copies from'.repeat(20));
  const c = Buffer.from('c'.repeat(40) + 'third base: the target continues here and ends'.repeat(20));
  const target = Buffer.concat([a.subarray(100, 700), c.subarray(50, 650)]);
  const p = diffChunk(target, [a, b, c])!;
  assert.ok(p);
  const { patch, bases } = compactBases(Buffer.from(p), [a, b, c]);
  assert.deepEqual(bases, [a, c]);
  assert.ok(applyDelta(patch, bases).equals(target));
  assert.throws(() => applyDelta(patch, [a, b, c].slice(0, 1)), CorruptObjectError, 'the renumbered patch names base 1');
  const full = diffChunk(target, [a, c])!;
  assert.equal(compactBases(full, [a, c]).patch, full, 'a patch using every base is returned as it is');
});
