import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCode } from '../../shared/errors.ts';
import { MemoryStore } from '../../shared/storage/memory.ts';
import { FaultyStore, seededRandom, transientError } from '../support/faulty-store.ts';

test('FaultyStore fails exactly the scripted calls and counts every call', async () => {
  const f = new FaultyStore(new MemoryStore());
  f.failOn('put', [2, 4]);
  await f.put('a', new Uint8Array([1]));
  await assert.rejects(f.put('b', new Uint8Array([1])), (e) => isCode(e, 'STORAGE_UNAVAILABLE'));
  await f.put('c', new Uint8Array([1]));
  await assert.rejects(f.put('d', new Uint8Array([1])));
  assert.equal(f.calls.put, 4);
  assert.equal(await f.inner.stat('b'), undefined, 'a failed-before call did not reach the store');
  f.failNext('put', 1, transientError(), { after: true });
  await assert.rejects(f.put('e', new Uint8Array([1])));
  assert.ok(await f.inner.stat('e'), 'a failed-after call did reach the store (lost response)');
  assert.equal(f.injected, 3);
});

test('FaultyStore flips a byte on read and fills the disk on demand', async () => {
  const f = new FaultyStore(new MemoryStore(), { seed: 3 });
  const data = new Uint8Array(64).fill(7);
  await f.put('x', data);
  f.flipBytesOnRead();
  const read = await f.get('x');
  assert.equal(read.filter((b, i) => b !== data[i]).length, 1);
  assert.deepEqual(await f.inner.get('x'), data, 'the stored object is untouched');
  assert.equal((await f.getRange('x', 0, 8)).filter((b) => b !== 7).length, 1);
  f.heal().diskFull();
  await assert.rejects(f.put('y', data), (e) => isCode(e, 'STORAGE_FULL') && /free space/.test((e as Error).message));
  await assert.rejects(f.putIfAbsent('y', data), (e) => isCode(e, 'STORAGE_FULL'));
  f.diskFull(false);
  await f.put('y', data);
});

test('FaultyStore transient faults repeat exactly for the same seed', async () => {
  const run = async (seed: number) => {
    const f = new FaultyStore(new MemoryStore(), { seed }).transient(0.5, { ops: ['stat'] });
    const outcome: boolean[] = [];
    for (let i = 0; i < 32; i++) outcome.push(await f.stat('k').then(() => true, () => false));
    return outcome;
  };
  const a = await run(42);
  assert.deepEqual(await run(42), a);
  assert.ok(a.includes(true) && a.includes(false));
  assert.notDeepEqual(await run(43), a);
  const r = seededRandom(1);
  for (let i = 0; i < 100; i++) { const v = r(); assert.ok(v >= 0 && v < 1); }
});
