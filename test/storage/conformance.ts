// The one behaviour suite every ObjectStore backend must pass (after restic's backend test suite).
// Each backend's test file calls storeConformance() with a factory giving a fresh, empty store.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CorruptObjectError, NotFoundError, RepoLockedError, isCode } from '../../shared/errors.ts';
import type { ObjectStore } from '../../shared/storage/types.ts';

export type StoreFactory = () => Promise<ObjectStore>;

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

async function collect(store: ObjectStore, prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of store.list(prefix)) {
    assert.ok(!out.has(o.key), `list yielded ${o.key} twice`);
    out.set(o.key, o.size);
  }
  return out;
}

const keySize = (o: { key: string; size: number } | undefined) => o && { key: o.key, size: o.size };

async function withStore(make: StoreFactory, fn: (s: ObjectStore) => Promise<void>): Promise<void> {
  const s = await make();
  try {
    await fn(s);
  } finally {
    await s.close?.();
  }
}

export function storeConformance(name: string, make: StoreFactory): void {
  describe(`${name} conformance`, () => {
    test('put, get, stat, replace and delete an object', () => withStore(make, async (s) => {
      assert.equal(await s.stat('a/b/c'), undefined);
      await s.put('a/b/c', bytes('hello'));
      assert.equal(text(await s.get('a/b/c')), 'hello');
      assert.deepEqual(keySize(await s.stat('a/b/c')), { key: 'a/b/c', size: 5 });
      await s.put('a/b/c', bytes('replaced!'));
      assert.equal(text(await s.get('a/b/c')), 'replaced!');
      assert.equal((await s.stat('a/b/c'))?.size, 9);
      await s.put('empty', new Uint8Array(0));
      assert.equal((await s.get('empty')).byteLength, 0);
      assert.deepEqual(keySize(await s.stat('empty')), { key: 'empty', size: 0 });
      await s.delete('a/b/c');
      await assert.rejects(s.get('a/b/c'), (e) => e instanceof NotFoundError && e.key === 'a/b/c');
      assert.equal(await s.stat('a/b/c'), undefined);
      await s.delete('a/b/c'); // deleting a missing object succeeds
      await s.delete('never/was');
      // a "directory" of other keys is not itself an object
      await s.put('d/x', bytes('x'));
      assert.equal(await s.stat('d'), undefined);
      await assert.rejects(s.get('d'), NotFoundError);
    }));

    test('stat and list report a modification time (gc grace periods rely on it)', () => withStore(make, async (s) => {
      await s.put('m/one', bytes('1'));
      const st = await s.stat('m/one');
      assert.ok(st?.modified instanceof Date, 'stat gives modified');
      // loose bound: same machine, but Azure timestamps have one-second precision
      assert.ok(Math.abs(st.modified.getTime() - Date.now()) < 120_000, `modified ${st.modified.toISOString()}`);
      const listed = [];
      for await (const o of s.list('m/')) listed.push(o);
      assert.equal(listed.length, 1);
      assert.ok(listed[0]!.modified instanceof Date, 'list gives modified');
      assert.equal(Math.floor(listed[0]!.modified.getTime() / 1000), Math.floor(st.modified.getTime() / 1000));
    }));

    test('getRange returns exact slices and rejects reads past the end', () => withStore(make, async (s) => {
      const data = randomBytes(1000);
      await s.put('r/obj', data);
      assert.deepEqual(Buffer.from(await s.getRange('r/obj', 10, 20)), data.subarray(10, 30));
      assert.deepEqual(Buffer.from(await s.getRange('r/obj', 0, 1000)), data);
      assert.deepEqual(Buffer.from(await s.getRange('r/obj', 990, 10)), data.subarray(990));
      assert.equal((await s.getRange('r/obj', 500, 0)).byteLength, 0);
      await assert.rejects(s.getRange('r/obj', 995, 10), CorruptObjectError);
      await assert.rejects(s.getRange('r/obj', 2000, 1), CorruptObjectError);
      await assert.rejects(s.getRange('r/missing', 0, 1), NotFoundError);
      await assert.rejects(s.getRange('r/obj', -1, 1), (e) => isCode(e, 'INVALID_ARGUMENT'));
    }));

    test('putIfAbsent stores once and never overwrites', () => withStore(make, async (s) => {
      assert.equal(await s.putIfAbsent('p/one', bytes('first')), true);
      assert.equal(await s.putIfAbsent('p/one', bytes('second')), false);
      assert.equal(text(await s.get('p/one')), 'first');
      await s.put('p/two', bytes('x'));
      assert.equal(await s.putIfAbsent('p/two', bytes('y')), false);
      assert.equal(text(await s.get('p/two')), 'x');
    }));

    test('20 concurrent putIfAbsent on one key: exactly one wins and its bytes are stored', () => withStore(make, async (s) => {
      const bodies = Array.from({ length: 20 }, (_, i) => Buffer.concat([Buffer.from(`writer ${i}:`), randomBytes(64 * 1024)]));
      const results = await Promise.all(bodies.map((b) => s.putIfAbsent('race/key', b)));
      const winners = results.flatMap((r, i) => (r ? [i] : []));
      assert.equal(winners.length, 1, `winners: ${winners.join(',')}`);
      assert.deepEqual(Buffer.from(await s.get('race/key')), bodies[winners[0]!]);
      assert.deepEqual([...(await collect(s, 'race/')).keys()], ['race/key'], 'no temp files or leftovers are listed');
    }));

    test('list by prefix covers nested keys, partial segments and sizes', () => withStore(make, async (s) => {
      const keys: Record<string, number> = { 'data/ab/1': 1, 'data/ab/2': 2, 'data/abc/3': 3, 'data/b/4': 4, 'data/ab/deep/er/5': 5, 'index/6': 6, top: 7 };
      await Promise.all(Object.entries(keys).map(([k, n]) => s.put(k, new Uint8Array(n))));
      const sorted = async (p: string) => [...(await collect(s, p)).entries()].sort();
      assert.deepEqual(await sorted(''), Object.entries(keys).sort());
      assert.deepEqual(await sorted('data/'), Object.entries(keys).filter(([k]) => k.startsWith('data/')).sort());
      assert.deepEqual(await sorted('data/ab'), [['data/ab/1', 1], ['data/ab/2', 2], ['data/ab/deep/er/5', 5], ['data/abc/3', 3]]);
      assert.deepEqual(await sorted('data/ab/'), [['data/ab/1', 1], ['data/ab/2', 2], ['data/ab/deep/er/5', 5]]);
      assert.deepEqual(await sorted('t'), [['top', 7]]);
      assert.deepEqual(await sorted('nothing/'), []);
      assert.deepEqual(await sorted('data/ab/1'), [['data/ab/1', 1]]);
    }));

    test('a 20 MiB object round-trips byte for byte', () => withStore(make, async (s) => {
      const big = randomBytes(20 * 1024 * 1024);
      await s.put('big/object', big);
      assert.equal((await s.stat('big/object'))?.size, big.length);
      const back = await s.get('big/object');
      assert.ok(Buffer.from(back.buffer, back.byteOffset, back.byteLength).equals(big));
      const mid = await s.getRange('big/object', 12_345_678, 1_000_000);
      assert.ok(Buffer.from(mid).equals(big.subarray(12_345_678, 13_345_678)));
    }));

    test('invalid keys are rejected with INVALID_ARGUMENT', () => withStore(make, async (s) => {
      for (const k of ['', '/abs', 'a//b', '../up', 'a/../b', 'a/./b', 'trailing/', 'back\\slash', 'x/.tmp-1']) {
        await assert.rejects(s.put(k, bytes('x')), (e) => isCode(e, 'INVALID_ARGUMENT'), `key ${JSON.stringify(k)}`);
      }
      await assert.rejects((async () => { for await (const _ of s.list('../')) { /* */ } })(), (e) => isCode(e, 'INVALID_ARGUMENT'));
    }));

    test('lease: acquire, conflict names the holder, renew, release, re-acquire', () => withStore(make, async (s) => {
      assert.equal(await s.readLease('locks/exclusive'), undefined);
      const a = await s.acquireLease('locks/exclusive', 'backup by alice@host1 pid 1', 120_000);
      assert.equal(a.key, 'locks/exclusive');
      const info = await s.readLease('locks/exclusive');
      assert.equal(info?.holder, 'backup by alice@host1 pid 1');
      assert.equal(info?.stale, false);
      assert.ok(Date.parse(info!.expires) > Date.now() + 60_000);
      await assert.rejects(s.acquireLease('locks/exclusive', 'prune by bob', 120_000), (e) => {
        assert.ok(e instanceof RepoLockedError);
        assert.equal(e.holders[0]?.holder, 'backup by alice@host1 pid 1');
        assert.match(e.message, /alice@host1/);
        return true;
      });
      await sleep(20);
      await a.renew();
      const renewed = await s.readLease('locks/exclusive');
      assert.equal(renewed?.holder, 'backup by alice@host1 pid 1');
      assert.equal(renewed?.since, info?.since);
      assert.ok(Date.parse(renewed!.expires) > Date.parse(info!.expires), 'renew moves the expiry forward');
      await a.release();
      assert.equal(await s.readLease('locks/exclusive'), undefined);
      await a.release(); // releasing twice is harmless
      const b = await s.acquireLease('locks/exclusive', 'prune by bob', 120_000);
      assert.equal((await s.readLease('locks/exclusive'))?.holder, 'prune by bob');
      await b.release();
      // leases on different keys are independent
      const c1 = await s.acquireLease('locks/one', 'c1', 120_000);
      const c2 = await s.acquireLease('locks/two', 'c2', 120_000);
      await c1.release();
      await c2.release();
    }));

    test('lease: expiry makes it stale, acquire still refuses, break lets a new holder in, the old holder loses it', () => withStore(make, async (s) => {
      const old = await s.acquireLease('locks/stale', 'crashed backup', 300);
      await sleep(600);
      const info = await s.readLease('locks/stale');
      assert.equal(info?.holder, 'crashed backup');
      assert.equal(info?.stale, true);
      await assert.rejects(s.acquireLease('locks/stale', 'newcomer', 120_000), RepoLockedError);
      await s.breakLease('locks/stale');
      await s.breakLease('locks/stale'); // breaking nothing is fine
      await s.breakLease('locks/never-existed');
      const fresh = await s.acquireLease('locks/stale', 'newcomer', 120_000);
      await assert.rejects(old.renew(), (e) => isCode(e, 'REPO_LOCKED'));
      await old.release(); // must not remove the newcomer's lease
      const now = await s.readLease('locks/stale');
      assert.equal(now?.holder, 'newcomer');
      assert.equal(now?.stale, false);
      await fresh.release();
    }));

    test('concurrent acquireLease on one key: exactly one holder', () => withStore(make, async (s) => {
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => s.acquireLease('locks/race', `worker ${i}`, 120_000)));
      const held = results.filter((r) => r.status === 'fulfilled');
      assert.equal(held.length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof RepoLockedError, String(r.reason));
      await (held[0] as PromiseFulfilledResult<Awaited<ReturnType<ObjectStore['acquireLease']>>>).value.release();
    }));
  });
}
