// The shared pool of reused buffers (pure): a buffer given back is taken again, bigger requests get
// buffers of their own that are never pooled, at most `max` free buffers are kept, and a new view
// of a pooled buffer's memory (as one comes back from a compression thread) counts as the buffer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BufferPool } from '../../shared/buffer-pool.ts';

test('buffer pool: reuse, oversized requests, the cap on free buffers, views of pooled memory', () => {
  const pool = new BufferPool(1024, 2);
  const a = pool.take();
  const b = pool.take(100);
  assert.equal(a.length, 1024);
  assert.equal(b.length, 1024, 'a smaller request gets a pooled buffer of the pool size');
  assert.equal(pool.allocated, 2);
  pool.give(a);
  assert.equal(pool.take(), a, 'a buffer given back is taken again');
  assert.equal(pool.allocated, 2);

  const big = pool.take(4096);
  assert.equal(big.length, 4096);
  pool.give(big);
  assert.notEqual(pool.take(), big, 'an oversized buffer is never pooled');

  // A view of part of a pooled buffer's memory, as a new object: the whole buffer comes back.
  const view = Buffer.from(b.buffer, 0, 10);
  pool.give(view);
  const again = pool.take();
  assert.equal(again.buffer, b.buffer);
  assert.equal(again.length, 1024);

  const made = [pool.take(), pool.take(), pool.take()];
  made.forEach((x) => pool.give(x));
  const before = pool.allocated;
  pool.take(); pool.take();
  assert.equal(pool.allocated, before, 'two free buffers were kept');
  pool.take();
  assert.equal(pool.allocated, before + 1, 'the third was left to the GC');
});
