import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import fc from 'fast-check';
import { Chunker, chunkBuffer, gearTable, DEFAULT_CHUNKER } from '../../shared/repository/chunker.ts';

const gear = gearTable(Buffer.alloc(32));
const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('chunks concatenate to the input and respect min/max sizes', () => {
  const data = randomBytes(3 * 1024 * 1024);
  const chunks = chunkBuffer(data, DEFAULT_CHUNKER, gear);
  assert.ok(Buffer.concat(chunks).equals(data));
  for (const c of chunks.slice(0, -1)) {
    assert.ok(c.length >= DEFAULT_CHUNKER.minSize, `chunk of ${c.length} below min`);
    assert.ok(c.length <= DEFAULT_CHUNKER.maxSize, `chunk of ${c.length} above max`);
  }
  const avg = data.length / chunks.length;
  assert.ok(avg > DEFAULT_CHUNKER.avgSize * 0.6 && avg < DEFAULT_CHUNKER.avgSize * 1.6, `average ${avg} far from ${DEFAULT_CHUNKER.avgSize}`);
});

test('boundaries do not depend on how the stream is split into buffers', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 40 }), (cuts) => {
    const data = randomBytes(300_000);
    const whole = chunkBuffer(data, DEFAULT_CHUNKER, gear).map(hash);
    const pieces: string[] = [];
    const c = new Chunker(DEFAULT_CHUNKER, gear, (ch) => pieces.push(hash(ch)));
    let off = 0;
    for (const n of cuts) {
      if (off >= data.length) break;
      c.push(data.subarray(off, off + n));
      off += n;
    }
    if (off < data.length) c.push(data.subarray(off));
    c.finish();
    assert.deepEqual(pieces, whole);
  }), { numRuns: 25 });
});

test('an insert in the middle changes only the chunks around it', () => {
  const data = randomBytes(8 * 1024 * 1024);
  const mid = 4 * 1024 * 1024 + 12345;
  const changed = Buffer.concat([data.subarray(0, mid), Buffer.from('a new row inserted here\n'), data.subarray(mid)]);
  const before = new Set(chunkBuffer(data, DEFAULT_CHUNKER, gear).map(hash));
  const after = chunkBuffer(changed, DEFAULT_CHUNKER, gear).map(hash);
  const fresh = after.filter((h) => !before.has(h));
  assert.ok(fresh.length >= 1 && fresh.length <= 3, `${fresh.length} new chunks after a one-row insert`);
});

test('low-entropy input still chunks within bounds (max size cuts)', () => {
  const data = Buffer.alloc(1024 * 1024, 0x41);
  const chunks = chunkBuffer(data, DEFAULT_CHUNKER, gear);
  assert.ok(Buffer.concat(chunks).equals(data));
  assert.ok(chunks.every((c) => c.length <= DEFAULT_CHUNKER.maxSize));
});
