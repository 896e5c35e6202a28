// The backup's set of chunk ids it stores (pure): every added id is found, absent ids are not,
// adding twice says so, entries keep the numbers they were added with (the chunk index relies on
// it), and it holds through many rehashes and buffer growths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { IdSet } from '../../shared/repository/id-set.ts';

const id = (n: number) => createHash('sha256').update(`chunk ${n}`).digest();

test('id set: 200 000 ids through several rehashes; duplicates refused; absent ids absent', () => {
  const s = new IdSet();
  const N = 200_000;
  for (let n = 0; n < N; n++) assert.equal(s.add(id(n)), true, `id ${n} is new`);
  assert.equal(s.size, N);
  for (let n = 0; n < N; n += 7) assert.equal(s.has(id(n)), true, `id ${n} is found`);
  for (let n = 0; n < N; n += 997) {
    assert.equal(s.indexOf(id(n)), n, `id ${n} keeps the number it was added with`);
    assert.ok(s.at(n).equals(id(n)), `entry ${n} is id ${n}`);
  }
  assert.equal(s.indexOf(id(N)), -1);
  for (let n = 0; n < N; n += 1009) assert.equal(s.add(id(n)), false, `id ${n} is not added twice`);
  assert.equal(s.size, N);
  for (let n = N; n < N + 5000; n++) assert.equal(s.has(id(n)), false, `id ${n} was never added`);
  // Same first 4 bytes (the hash the table uses), different id: both kept apart.
  const a = Buffer.alloc(32, 1);
  const b = Buffer.alloc(32, 1); b[31] = 2;
  assert.equal(s.add(a), true);
  assert.equal(s.has(b), false);
  assert.equal(s.add(b), true);
  assert.equal(s.has(a) && s.has(b), true);
  assert.equal(s.has(Buffer.alloc(5)), false, 'an id of the wrong length is not found');
  assert.throws(() => s.add(Buffer.alloc(5)), RangeError);
  // The caller may reuse the buffer it passed: the set keeps its own copy.
  const c = Buffer.from(id(N + 1)); s.add(c); c.fill(0);
  assert.equal(s.has(id(N + 1)), true);
});

test('id set: ids read in place from a larger buffer, and room reserved ahead, change nothing', () => {
  const N = 20_000;
  // Ids side by side at odd offsets, as in an index object (50-byte entries after a 9-byte header).
  const buf = Buffer.alloc(9 + N * 50);
  for (let n = 0; n < N; n++) id(n).copy(buf, 9 + n * 50);
  const plain = new IdSet();
  const reserved = new IdSet();
  reserved.reserve(N / 4); // an estimate below the truth: it grows as usual past it
  for (let n = 0; n < N; n++) {
    assert.equal(plain.add(id(n)), true);
    assert.equal(reserved.addAt(buf, 9 + n * 50), true, `id ${n} read in place is new`);
    if (n === N / 2) reserved.reserve(4 * N); // a reserve once entries are in keeps them and their numbers
  }
  assert.equal(reserved.size, N);
  for (let n = 0; n < N; n += 101) {
    assert.equal(reserved.indexAt(buf, 9 + n * 50), n);
    assert.equal(reserved.indexOf(id(n)), plain.indexOf(id(n)));
    assert.ok(reserved.at(n).equals(id(n)));
  }
  assert.equal(reserved.addAt(buf, 9 + 7 * 50), false, 'an id already there, read in place, is not added again');
  assert.equal(reserved.indexAt(Buffer.concat([Buffer.alloc(3), id(N)]), 3), -1);
  assert.throws(() => reserved.addAt(buf, buf.length - 31), RangeError, 'no whole id at the end of the buffer');
  buf.fill(0); // the set keeps copies, not views of the buffer it read
  assert.equal(reserved.has(id(N - 1)), true);
});
