import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryStore } from '../../shared/storage/memory.ts';
import { Semaphore, withConcurrencyLimit } from '../../shared/storage/limiting.ts';
import { isCode } from '../../shared/errors.ts';

/** A store whose puts block until released, counting how many are in flight. */
class GatedStore extends MemoryStore {
  inFlight = 0;
  peak = 0;
  readonly gates: (() => void)[] = [];
  override async put(key: string, data: Uint8Array): Promise<void> {
    this.inFlight++;
    this.peak = Math.max(this.peak, this.inFlight);
    await new Promise<void>((r) => this.gates.push(r));
    this.inFlight--;
    await super.put(key, data);
  }
}

test('withConcurrencyLimit keeps at most n calls in flight and runs them all', async () => {
  const g = new GatedStore();
  const limited = withConcurrencyLimit(g, 3);
  const all = Promise.all(Array.from({ length: 10 }, (_, i) => limited.put(`k${i}`, new Uint8Array([i]))));
  let done = 0;
  while (done < 10) {
    await new Promise((r) => setImmediate(r));
    assert.ok(g.inFlight <= 3);
    const gate = g.gates.shift();
    if (gate) { gate(); done++; }
  }
  await all;
  assert.equal(g.peak, 3);
  for (let i = 0; i < 10; i++) assert.deepEqual([...(await limited.get(`k${i}`))], [i]);
});

test('a listing does not hold its slot while the consumer calls the store (no deadlock at n=1)', async () => {
  const limited = withConcurrencyLimit(new MemoryStore(), 1);
  for (let i = 0; i < 5; i++) await limited.put(`d/${i}`, new Uint8Array([i]));
  let sum = 0;
  for await (const o of limited.list('d/')) sum += (await limited.get(o.key))[0]!;
  assert.equal(sum, 0 + 1 + 2 + 3 + 4);
});

test('lease calls bypass the limit so a renew never queues behind uploads', async () => {
  const g = new GatedStore();
  const limited = withConcurrencyLimit(g, 1);
  const blocked = limited.put('big', new Uint8Array(1));
  const lease = await limited.acquireLease('lock', 'me', 60_000);
  await lease.renew();
  await lease.release();
  while (!g.gates.length) await new Promise((r) => setImmediate(r));
  g.gates.shift()!();
  await blocked;
});

test('Semaphore rejects a non-positive limit and releases its slot when the task throws', async () => {
  assert.throws(() => new Semaphore(0), (e) => isCode(e, 'INVALID_ARGUMENT'));
  const s = new Semaphore(1);
  await assert.rejects(s.run(async () => { throw new Error('boom'); }));
  assert.equal(await s.run(async () => 42), 42);
  assert.equal(s.active, 0);
});
