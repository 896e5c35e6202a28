// Cosmos DB's failure modes during backup and restore: throttling (16500 with RetryAfterMs) on
// 10% of requests, partial inserts, and a connection dropped mid-cursor. The result must hold
// exactly the source documents, and the retries must be counted.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { BSON, Int32, type Document } from 'bson';
import { startMongoServer, uniqueDbName, type MongoStandIn } from '../support/mongo-server/index.ts';
import { backupMongo } from '../../agent/engines/mongodb/backup.ts';
import { restoreMongo } from '../../agent/engines/mongodb/restore.ts';
import { connectTo, everyType, memoryRepo, QUICK_RETRY, type Connected } from './helpers.ts';

let s: MongoStandIn;
let c: Connected;
const SRC = uniqueDbName('faults');
const N = 3000;

before(async () => {
  s = await startMongoServer();
  c = await connectTo(s);
  await c.client.db(SRC).collection('docs').insertMany(Array.from({ length: N }, (_, i) => ({ _id: i, name: `doc ${i}`, n: new Int32(i), pad: 'x'.repeat(i % 200) })) as Document[]);
  await c.client.db(SRC).command({ insert: 'mixed', documents: everyType() });
  await c.client.db(SRC).collection('docs').createIndex({ name: 1 }, { unique: true });
});
after(async () => {
  await c.client.close();
  await s.stop();
});
beforeEach(() => {
  s.clearFaults();
  s.resetStats();
});

const same = (a: string, b: string, coll: string) => assert.deepEqual(s.documents(b, coll).map((x) => x.toString('hex')), s.documents(a, coll).map((x) => x.toString('hex')), `${coll} of ${b} equals ${a}`);

test('throttling on 10% of requests: backup and restore complete with the same documents and count their retries', async () => {
  const repo = await memoryRepo();
  s.throttle({ probability: 0.1, retryAfterMs: 5, seed: 11 });
  const b = await backupMongo(repo, c.client, c.target, { database: SRC, batchSize: 50, retry: QUICK_RETRY });
  assert.ok(s.stats.throttled > 0);
  assert.ok(b.retries > 0 && b.throttled > 0, `backup retried (${b.retries})`);
  assert.equal(b.documents, N + everyType().length);
  assert.equal(b.restorePoint.meta.retries, b.retries);

  const dst = uniqueDbName('throttled');
  s.resetStats();
  s.throttle({ probability: 0.1, retryAfterMs: 5, seed: 12 });
  const r = await restoreMongo(repo, b.restorePoint.id, c.client, c.target, { database: dst, maxBatchDocs: 50, retry: QUICK_RETRY });
  assert.ok(s.stats.throttled > 0);
  assert.ok(r.retries > 0 && r.throttled > 0, `restore retried (${r.retries})`);
  s.clearFaults();
  same(SRC, dst, 'docs');
  same(SRC, dst, 'mixed');
  assert.equal(await c.client.db(dst).collection('docs').countDocuments(), N);
  assert.equal((await c.client.db(dst).collection('docs').listIndexes().toArray()).length, 2);
});

test('partial inserts under throttling: only the failed documents are sent again, none twice', async () => {
  const repo = await memoryRepo();
  const b = await backupMongo(repo, c.client, c.target, { database: SRC, collections: ['docs'] });
  const dst = uniqueDbName('partial');
  s.throttle({ probability: 0.2, retryAfterMs: 5, commands: ['insert'], partialWrites: true, seed: 5 });
  const r = await restoreMongo(repo, b.restorePoint.id, c.client, c.target, { database: dst, maxBatchDocs: 200, retry: QUICK_RETRY });
  assert.ok(s.stats.throttled > 0);
  assert.ok(r.throttled > 0);
  assert.equal(r.documents, N);
  s.clearFaults();
  same(SRC, dst, 'docs');
});

test('a connection dropped mid-backup is resumed after the last _id, not restarted, and loses nothing', async () => {
  const repo = await memoryRepo();
  const total = s.documents(SRC, 'docs').reduce((n, d) => n + d.length, 0);
  s.dropConnectionAfter({ command: 'getMore', count: 20 });
  const b = await backupMongo(repo, c.client, c.target, { database: SRC, collections: ['docs'], batchSize: 100, retry: QUICK_RETRY });
  assert.equal(s.stats.droppedConnections, 1);
  assert.ok(b.retries >= 1);
  assert.equal(b.documents, N);
  // Resumed, not restarted: the server sent the collection about once, not twice.
  assert.ok(s.stats.bytesOut < 1.5 * total, `read ${s.stats.bytesOut} bytes for ${total} bytes of documents`);
  const dst = uniqueDbName('dropped');
  await restoreMongo(repo, b.restorePoint.id, c.client, c.target, { database: dst });
  same(SRC, dst, 'docs');
});

test('a resume crosses _id type brackets (numbers, strings, objects, dates, …) without losing any', async () => {
  const repo = await memoryRepo();
  const before = s.documents(SRC, 'mixed');
  // One document per batch, a drop after the first two: the resume starts inside the numbers.
  s.dropConnectionAfter({ command: 'getMore', count: 2 });
  const b = await backupMongo(repo, c.client, c.target, { database: SRC, collections: ['mixed'], batchSize: 1, retry: QUICK_RETRY });
  assert.equal(s.stats.droppedConnections, 1);
  assert.equal(b.documents, before.length);
  const dst = uniqueDbName('brackets');
  await restoreMongo(repo, b.restorePoint.id, c.client, c.target, { database: dst });
  same(SRC, dst, 'mixed');
  assert.deepEqual(s.documents(dst, 'mixed').map((d) => BSON.deserialize(d)._id).length, before.length);
});

test('a server that keeps failing ends the backup with one clear line', async () => {
  const repo = await memoryRepo();
  s.throttle({ probability: 1, retryAfterMs: 1, commands: ['find'] });
  await assert.rejects(backupMongo(repo, c.client, c.target, { database: SRC, collections: ['docs'], retry: { ...QUICK_RETRY, maxAttempts: 3 } }), (e: Error & { code?: string }) => {
    assert.match(e.message, /still failing after 3 attempts \(throttled: raise the request units or lower --parallel\)/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
});
