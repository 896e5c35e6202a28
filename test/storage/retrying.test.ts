import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CorruptObjectError, CosmosBackupError, NotFoundError, isCode } from '../../shared/errors.ts';
import { MemoryStore } from '../../shared/storage/memory.ts';
import { backoffDelay, classifyError, DEFAULT_RETRY_POLICY, parseRetryAfter, withRetries, type RetryOptions } from '../../shared/storage/retrying.ts';
import { FaultyStore, networkError, transientError } from '../support/faulty-store.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

/** A retry setup that records the waits instead of sleeping (we measure calls and requested delays, not time). */
function setup(opts: RetryOptions = {}) {
  const faulty = new FaultyStore(new MemoryStore(), { seed: 7 });
  const delays: number[] = [];
  const store = withRetries(faulty, { random: () => 0.5, sleep: async (ms) => { delays.push(ms); }, ...opts });
  return { faulty, store, delays };
}

test('transient errors are retried with growing, jittered delays until the call succeeds', async () => {
  const { faulty, store, delays } = setup();
  await faulty.inner.put('k', bytes('v'));
  faulty.failNext('get', 3);
  assert.equal(new TextDecoder().decode(await store.get('k')), 'v');
  assert.equal(faulty.calls.get, 4);
  assert.deepEqual(delays, [150, 300, 600]); // base 200 doubling, equal jitter at random()=0.5
});

test('a call that keeps failing gives up after maxAttempts with the last error', async () => {
  const { faulty, store } = setup();
  faulty.failNext('put', 100);
  await assert.rejects(store.put('k', bytes('v')), (e) => isCode(e, 'STORAGE_UNAVAILABLE'));
  assert.equal(faulty.calls.put, DEFAULT_RETRY_POLICY.maxAttempts);
  const custom = setup({ maxAttempts: 2 });
  custom.faulty.failNext('stat', 100);
  await assert.rejects(custom.store.stat('k'));
  assert.equal(custom.faulty.calls.stat, 2);
});

test('permanent errors are not retried: not found, auth, corrupt, full, locked, invalid key', async () => {
  const { faulty, store, delays } = setup();
  await assert.rejects(store.get('missing'), NotFoundError);
  assert.equal(faulty.calls.get, 1);
  faulty.failNext('put', 1, new CosmosBackupError('STORAGE_AUTH', 'denied'));
  await assert.rejects(store.put('a', bytes('x')), (e) => isCode(e, 'STORAGE_AUTH'));
  assert.equal(faulty.calls.put, 1);
  faulty.failNext('getRange', 1, new CorruptObjectError('a', 'bad md5'));
  await assert.rejects(store.getRange('a', 0, 1), CorruptObjectError);
  assert.equal(faulty.calls.getRange, 1);
  faulty.diskFull();
  await assert.rejects(store.putIfAbsent('b', bytes('x')), (e) => isCode(e, 'STORAGE_FULL'));
  assert.equal(faulty.calls.putIfAbsent, 1);
  faulty.heal();
  await store.acquireLease('lock', 'me', 60_000);
  await assert.rejects(store.acquireLease('lock', 'you', 60_000), (e) => isCode(e, 'REPO_LOCKED'));
  assert.equal(faulty.calls.acquireLease, 2);
  await assert.rejects(store.put('/abs', bytes('x')), (e) => isCode(e, 'INVALID_ARGUMENT'));
  faulty.failNext('delete', 1, new CosmosBackupError('STORAGE_UNAVAILABLE', 'no such host', { details: { transient: false } }));
  await assert.rejects(store.delete('a'));
  assert.equal(faulty.calls.delete, 1);
  faulty.failNext('delete', 1, Object.assign(new Error('forbidden'), { statusCode: 403 }));
  await assert.rejects(store.delete('a'));
  assert.equal(faulty.calls.delete, 2);
  assert.deepEqual(delays, []);
});

test('Retry-After is honoured (and capped at maxDelayMs), from mapped errors and raw HTTP errors', async () => {
  const { faulty, store, delays } = setup();
  await faulty.inner.put('k', bytes('v'));
  faulty.failNext('get', 1, transientError(429, 7000));
  await store.get('k');
  faulty.failNext('get', 1, transientError(503, 10 * 60_000));
  await store.get('k');
  const raw = (headers: Record<string, string>) => Object.assign(new Error('throttled'), { statusCode: 503, response: { headers: new Map(Object.entries(headers)) } });
  faulty.failNext('stat', 1, raw({ 'retry-after': '3' }));
  await store.stat('k');
  faulty.failNext('stat', 1, raw({ 'retry-after-ms': '1500', 'retry-after': '9' }));
  await store.stat('k');
  faulty.failNext('stat', 1, raw({ 'x-ms-retry-after-ms': '2500' }));
  await store.stat('k');
  assert.deepEqual(delays, [7000, DEFAULT_RETRY_POLICY.maxDelayMs, 3000, 1500, 2500]);
  assert.equal(faulty.calls.get, 4);
  assert.equal(faulty.calls.stat, 6);
});

test('socket-level errors (ECONNRESET, ETIMEDOUT, socket hang up, 500/408) are transient', async () => {
  const { faulty, store } = setup();
  await faulty.inner.put('k', bytes('v'));
  faulty.failNext('get', 1, networkError('ECONNRESET'));
  faulty.failOn('get', 2, networkError('ETIMEDOUT'));
  faulty.failOn('get', 3, new Error('socket hang up'));
  faulty.failOn('get', 4, Object.assign(new Error('x'), { statusCode: 500 }));
  faulty.failOn('get', 5, new Error('wrapped', { cause: Object.assign(new Error('y'), { statusCode: 408 }) }));
  await store.get('k');
  assert.equal(faulty.calls.get, 6);
  assert.equal(classifyError(networkError('ENOTFOUND')).transient, false);
  assert.equal(classifyError(Object.assign(new Error('gone'), { name: 'AbortError' })).transient, false);
});

test('seeded random 503s across many calls are all absorbed by retries', async () => {
  const { faulty, store, delays } = setup();
  faulty.transient(0.2);
  for (let i = 0; i < 150; i++) await store.put(`obj/${i}`, bytes(String(i)));
  for (let i = 0; i < 150; i++) assert.equal(new TextDecoder().decode(await store.get(`obj/${i}`)), String(i));
  assert.ok(faulty.injected > 20, `injected ${faulty.injected}`);
  assert.equal(faulty.calls.put + faulty.calls.get, 300 + faulty.injected);
  assert.equal(delays.length, faulty.injected);
});

test('putIfAbsent whose first response was lost reports true when the stored bytes are ours, false when not', async () => {
  const { faulty, store } = setup();
  faulty.failNext('putIfAbsent', 1, transientError(), { after: true });
  assert.equal(await store.putIfAbsent('mine', bytes('payload')), true);
  assert.equal(faulty.calls.putIfAbsent, 2);
  // someone else's object appears while our first try's answer is lost
  await faulty.inner.put('theirs', bytes('other'));
  faulty.failNext('putIfAbsent', 1, transientError());
  assert.equal(await store.putIfAbsent('theirs', bytes('payload')), false);
});

test('a listing that fails midway restarts and yields each key once', async () => {
  const { faulty, store } = setup();
  for (let i = 0; i < 10; i++) await faulty.inner.put(`p/${i}`, bytes('x'));
  faulty.failNext('list', 1, transientError(), { afterItems: 4 });
  const keys: string[] = [];
  for await (const o of store.list('p/')) keys.push(o.key);
  assert.equal(keys.length, 10);
  assert.equal(new Set(keys).size, 10);
  assert.equal(faulty.calls.list, 2);
});

test('lease renew and release are retried on transient errors', async () => {
  const { faulty, store } = setup();
  const lease = await store.acquireLease('lock', 'me', 60_000);
  faulty.failNext('renew', 2);
  await lease.renew();
  assert.equal(faulty.calls.renew, 3);
  faulty.failNext('release', 1, networkError('EPIPE'));
  await lease.release();
  assert.equal(faulty.calls.release, 2);
  assert.equal(await store.readLease('lock'), undefined);
});

test('backoff and Retry-After parsing are pure functions', () => {
  const p = { maxAttempts: 6, baseDelayMs: 100, maxDelayMs: 1000 };
  assert.equal(backoffDelay(1, p, () => 0), 50);
  assert.equal(backoffDelay(1, p, () => 0.999999), 100);
  assert.equal(backoffDelay(4, p, () => 1), 800);
  assert.equal(backoffDelay(10, p, () => 1), 1000);
  assert.equal(backoffDelay(1, p, () => 0, 700), 700);
  assert.equal(parseRetryAfter('2'), 2000);
  assert.equal(parseRetryAfter('0.5'), 500);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:05 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 5000);
  assert.equal(parseRetryAfter('soon'), undefined);
  assert.equal(parseRetryAfter(undefined), undefined);
});
