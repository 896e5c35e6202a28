// Cosmos DB's failure modes, injected on demand: throttling (16500 with RetryAfterMs), dropped
// connections mid-cursor, slow answers.
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { MongoBulkWriteError, MongoClient, MongoNetworkError, MongoServerError } from 'mongodb';
import { startMongoServer, type MongoStandIn } from '../support/mongo-server/index.ts';

let s: MongoStandIn;
let client: MongoClient;
const DB = 'faults';

before(async () => {
  s = await startMongoServer();
  // No driver retries: every injected fault must surface.
  client = new MongoClient(s.url(DB), { retryReads: false, retryWrites: false });
  await client.connect();
  await client.db(DB).collection<any>('docs').insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: i, v: i })) as any[]);
});
after(async () => {
  await client.close();
  await s.stop();
});
beforeEach(() => {
  s.clearFaults();
  s.resetStats();
});

test('throttled commands fail with 16500 RequestRateTooLarge and a RetryAfterMs hint, as Cosmos DB sends', async () => {
  s.throttle({ probability: 1, retryAfterMs: 123, commands: ['find'] });
  const err = await client.db(DB).collection<any>('docs').findOne({}).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof MongoServerError);
  assert.equal(err.code, 16500);
  assert.equal(err.codeName, 'RequestRateTooLarge');
  assert.match(err.message, /^Error=16500, RetryAfterMs=123, Details='Response status code does not indicate success: TooManyRequests \(429\)/);
  assert.match(err.message, /Request rate is large\. More Request Units may be needed/);
  assert.equal(s.stats.throttled, 1);
  // Commands outside the list run normally.
  assert.equal(await client.db(DB).collection<any>('docs').countDocuments(), 500);
});

test('a probability throttles about that share of requests, repeatably for a seed', async () => {
  const run = async () => {
    s.clearFaults();
    s.resetStats();
    s.throttle({ probability: 0.3, seed: 42, commands: ['count'] });
    const outcomes: boolean[] = [];
    for (let i = 0; i < 200; i++) {
      outcomes.push(await client.db(DB).command({ count: 'docs' }).then(() => true, (e: MongoServerError) => { assert.equal(e.code, 16500); return false; }));
    }
    return outcomes;
  };
  const first = await run();
  const failed = first.filter((ok) => !ok).length;
  assert.ok(failed > 30 && failed < 90, `about 30% throttled, got ${failed}/200`);
  assert.equal(s.stats.throttled, failed);
  assert.deepEqual(await run(), first, 'same seed, same sequence');
});

test('count stops throttling after that many answers; clearFaults stops it at once', async () => {
  s.throttle({ probability: 1, count: 2 });
  const db = client.db(DB);
  await assert.rejects(db.command({ count: 'docs' }), (e: unknown) => e instanceof MongoServerError && e.code === 16500);
  await assert.rejects(db.command({ count: 'docs' }), (e: unknown) => e instanceof MongoServerError && e.code === 16500);
  assert.equal((await db.command({ count: 'docs' })).n, 500);
  s.throttle({ probability: 1 });
  await assert.rejects(db.command({ count: 'docs' }));
  s.clearFaults();
  assert.equal((await db.command({ count: 'docs' })).n, 500);
});

test('a throttled getMore leaves the cursor where it was', async () => {
  const db = client.db(DB);
  const first = await db.command({ find: 'docs', filter: {}, sort: { _id: 1 }, batchSize: 100 });
  s.throttle({ probability: 1, count: 1, commands: ['getMore'] });
  await assert.rejects(db.command({ getMore: first.cursor.id, collection: 'docs', batchSize: 100 }), (e: unknown) => e instanceof MongoServerError && e.code === 16500);
  const next = await db.command({ getMore: first.cursor.id, collection: 'docs', batchSize: 100 });
  assert.equal(next.cursor.nextBatch[0]._id, 100);
});

test('partial-write throttling stores a prefix of an insert and reports 16500 for the rest', async () => {
  const coll = client.db(DB).collection<any>('partial');
  s.throttle({ probability: 1, count: 1, commands: ['insert'], partialWrites: true, seed: 7 });
  const docs = Array.from({ length: 50 }, (_, i) => ({ _id: i }));
  const err = await coll.insertMany(docs as any[], { ordered: false }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof MongoBulkWriteError);
  const stored = await coll.countDocuments();
  assert.ok(stored < 50);
  assert.equal(err.result.insertedCount, stored);
  const errs = err.writeErrors as unknown as Array<{ code: number; index: number }>;
  assert.equal(errs.length, 50 - stored);
  assert.ok(errs.every((e) => e.code === 16500 && e.index >= stored));
  // Retrying the failed documents completes the collection without duplicates.
  await coll.insertMany(errs.map((e) => docs[e.index]!) as any[], { ordered: false });
  assert.equal(await coll.countDocuments(), 50);
});

test('a dropped connection mid-cursor surfaces as a network error', async () => {
  s.dropConnectionAfter({ command: 'getMore', count: 2 });
  const seen: number[] = [];
  const err = await (async () => {
    for await (const d of client.db(DB).collection<any>('docs').find({}, { batchSize: 50, sort: { _id: 1 } })) seen.push(d._id as unknown as number);
  })().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof MongoNetworkError, `network error, got ${String(err)}`);
  assert.equal(seen.length, 150, 'first batch and two getMores arrived');
  assert.equal(s.stats.droppedConnections, 1);
  // The fault fires once: a resumed read from the last _id completes.
  const rest = await client.db(DB).collection<any>('docs').find({ _id: { $gt: seen[seen.length - 1]! } }, { batchSize: 50 }).toArray();
  assert.equal(seen.length + rest.length, 500);
});

test('slow answers are held back while other commands are answered', async () => {
  s.slow({ ms: 400, commands: ['count'] });
  const order: string[] = [];
  const slow = client.db(DB).command({ count: 'docs' }).then((r) => { order.push('count'); return r; });
  await client.db(DB).command({ ping: 1 }).then(() => order.push('ping'));
  assert.equal((await slow).n, 500);
  assert.deepEqual(order, ['ping', 'count']);
  assert.equal(s.stats.slowed, 1);
});
