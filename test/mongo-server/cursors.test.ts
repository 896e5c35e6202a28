// Finds, _id ranges, cursors and counting on the stand-in, as the backup engine uses them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BSON, Decimal128, Int32, Long, MaxKey, MinKey, ObjectId } from 'bson';
import { MongoClient, MongoServerError, type Collection, type Document } from 'mongodb';
import { startMongoServer, uniqueDbName, type MongoStandIn } from '../support/mongo-server/index.ts';

let s: MongoStandIn;
let client: MongoClient;
let big: Collection<any>;
const N = 10_000;

before(async () => {
  s = await startMongoServer();
  client = new MongoClient(s.url());
  big = client.db(uniqueDbName()).collection<any>('big');
  // Inserted out of order, in two unordered batches: the stand-in keeps them sorted by _id.
  const ids = Array.from({ length: N }, (_, i) => i);
  ids.sort((a, b) => ((a * 7919) % N) - ((b * 7919) % N));
  const docs = ids.map((i) => ({ _id: i, v: `doc-${i}`, even: i % 2 === 0 }));
  await big.insertMany(docs.slice(0, N / 2) as any[], { ordered: false });
  await big.insertMany(docs.slice(N / 2) as any[], { ordered: false });
});
after(async () => {
  await client.close();
  await s.stop();
});

test('a small batchSize walks 10k documents over getMore, in _id order', async () => {
  s.resetStats();
  const cursor = big.find({}, { batchSize: 250, sort: { _id: 1 } });
  let expected = 0;
  for await (const d of cursor) {
    assert.equal(d._id, expected);
    expected++;
  }
  assert.equal(expected, N);
  assert.equal(s.stats.commands.getMore, N / 250 - 1, 'one getMore per batch after the first; the last one closes the cursor');
});

test('_id range filters with $gt/$gte/$lt/$lte and $and return exactly the range', async () => {
  const ids = async (filter: Document, opts: Document = {}) => (await big.find(filter, { sort: { _id: 1 }, ...opts }).toArray()).map((d) => d._id);
  assert.deepEqual(await ids({ _id: { $gt: 9995 } }), [9996, 9997, 9998, 9999]);
  assert.deepEqual(await ids({ _id: { $gte: 10, $lt: 13 } }), [10, 11, 12]);
  assert.deepEqual(await ids({ $and: [{ _id: { $gt: 100 } }, { _id: { $lte: 102 } }] }), [101, 102]);
  assert.deepEqual(await ids({ _id: { $in: [5, 3, 99999] } }), [3, 5]);
  assert.deepEqual(await ids({ _id: 42 }), [42]);
  assert.deepEqual(await ids({ _id: { $gt: 9997 } }, { sort: { _id: -1 } }), [9999, 9998]);
  assert.deepEqual(await ids({ _id: { $gte: 0 } }, { skip: 3, limit: 2 }), [3, 4]);
  // A resumed scan, as the engine does after an interruption.
  let last = -1;
  let seen = 0;
  for (;;) {
    const batch = await big.find({ _id: { $gt: last } }, { sort: { _id: 1 }, limit: 3000 }).toArray();
    if (batch.length === 0) break;
    seen += batch.length;
    last = batch[batch.length - 1]!._id as unknown as number;
  }
  assert.equal(seen, N);
});

test('_id comparisons follow MongoDB type order and only match within one type bracket', async () => {
  const coll = client.db(uniqueDbName()).collection<any>('mixed');
  const oid1 = new ObjectId('000000000000000000000001');
  const oid2 = new ObjectId('ffffffffffffffffffffffff');
  const docs = [
    { _id: 'b' }, { _id: oid2 }, { _id: new Int32(2) }, { _id: Long.fromNumber(3) }, { _id: 2.5 }, { _id: Decimal128.fromString('10.5') },
    { _id: 'a' }, { _id: oid1 }, { _id: new Date(-5) }, { _id: new Date(5) }, { _id: true }, { _id: null }, { _id: { x: 1 } },
    { _id: new MinKey() }, { _id: new MaxKey() }, { _id: 'é' }, { _id: 'z' },
  ];
  // The insert command itself: insertMany would replace the null _id with an ObjectId.
  await coll.db.command({ insert: 'mixed', documents: docs });
  const all = await coll.find({}, { sort: { _id: 1 }, promoteValues: false }).toArray();
  const kinds = all.map((d) => {
    const v = d._id as any;
    return v?._bsontype ?? (v instanceof Date ? `Date(${v.getTime()})` : typeof v === 'string' ? `'${v}'` : String(v));
  });
  assert.deepEqual(kinds, [
    'MinKey', 'null', 'Int32', 'Double', 'Long', 'Decimal128', "'a'", "'b'", "'z'", "'é'", 'Object', 'ObjectId', 'ObjectId', 'Boolean',
    'Date(-5)', 'Date(5)', 'MaxKey',
  ].map((k) => (k === 'Boolean' ? 'true' : k === 'Object' ? '[object Object]' : k)));
  const ids = async (filter: Document) => (await coll.find(filter, { sort: { _id: 1 } }).toArray()).map((d) => d._id);
  assert.deepEqual((await ids({ _id: { $gt: 2 } })).map(String), ['2.5', '3', '10.5'], 'numbers only, across int/double/long/decimal');
  assert.deepEqual(await ids({ _id: { $gte: 'b' } }), ['b', 'z', 'é'], 'strings only, by UTF-8 bytes');
  assert.deepEqual((await ids({ _id: { $gt: oid1 } })).map(String), [oid2.toHexString()]);
  assert.equal((await ids({ _id: { $gt: new MinKey() } })).length, docs.length - 1, 'MinKey bounds span every type');
  assert.equal((await ids({ _id: { $lt: new MaxKey() } })).length, docs.length - 1);
  assert.deepEqual(await ids({ _id: { $lt: new Date(0) } }), [new Date(-5)]);
});

test('filters on other fields, projection, sort and skip use MongoDB semantics', async () => {
  const found = await big.find({ even: false, _id: { $lt: 10 } }, { projection: { v: 1 }, sort: { v: -1 } }).toArray();
  assert.deepEqual(found, [9, 7, 5, 3, 1].map((i) => ({ _id: i, v: `doc-${i}` })));
  const excluded = await big.find({ _id: 4 }, { projection: { v: 0, _id: 0 } }).toArray();
  assert.deepEqual(excluded, [{ even: true }]);
  const regex = await big.find({ v: { $regex: '^doc-99[0-2]$' } }).toArray();
  assert.deepEqual(regex.map((d) => d._id), [990, 991, 992]);
});

test('projection keeps the stored bytes of the kept fields', async () => {
  const coll = client.db(uniqueDbName()).collection<any>('proj');
  await coll.insertOne({ _id: 1, a: new Int32(1), b: -0, c: 'x' } as any);
  const [raw] = (await coll.find({}, { projection: { a: 1, b: 1 }, raw: true }).toArray()) as unknown as Buffer[];
  assert.ok(Buffer.from(raw!).equals(Buffer.from(BSON.serialize({ _id: 1, a: new Int32(1), b: -0 }))));
});

test('count, countDocuments and aggregate counting agree', async () => {
  assert.equal(await big.estimatedDocumentCount(), N);
  assert.equal(await big.countDocuments(), N);
  assert.equal(await big.countDocuments({ _id: { $gte: 9000 } }), 1000);
  assert.equal(await big.countDocuments({ even: true }), N / 2);
  assert.equal(await big.countDocuments({}, { skip: 10, limit: 5 }), 5);
  const [c] = await big.aggregate([{ $match: { _id: { $lt: 100 } } }, { $count: 'n' }]).toArray();
  assert.deepEqual(c, { n: 100 });
  const [g] = await big.aggregate([{ $group: { _id: null, total: { $sum: 1 } } }]).toArray();
  assert.deepEqual(g, { _id: null, total: N });
  const grouped = await big.aggregate([{ $match: { _id: { $lt: 10 } } }, { $group: { _id: '$even', n: { $sum: 1 } } }, { $sort: { _id: 1 } }]).toArray();
  assert.deepEqual(grouped, [{ _id: false, n: 5 }, { _id: true, n: 5 }]);
  const empty = await client.db(uniqueDbName()).collection<any>('none').aggregate([{ $count: 'n' }]).toArray();
  assert.deepEqual(empty, []);
});

test('killCursors closes a cursor and getMore on it fails with CursorNotFound (43)', async () => {
  const db = big.db;
  const first = await db.command({ find: 'big', filter: {}, batchSize: 10 });
  const id = first.cursor.id as Long;
  assert.notEqual(String(id), '0');
  const killed = await db.command({ killCursors: 'big', cursors: [id] });
  assert.deepEqual(killed.cursorsKilled.map(String), [String(id)]);
  await assert.rejects(db.command({ getMore: id, collection: 'big' }), (e: unknown) => e instanceof MongoServerError && e.code === 43);
  s.resetStats();
  const cursor = big.find({}, { batchSize: 5 });
  await cursor.next();
  await cursor.close(); // the driver sends killCursors
  assert.equal(s.stats.commands.killCursors, 1);
});

test('limit and singleBatch close the cursor without getMore', async () => {
  s.resetStats();
  const docs = await big.find({}, { limit: 150, batchSize: 1000 }).toArray();
  assert.equal(docs.length, 150);
  const one = await big.db.command({ find: 'big', singleBatch: true, batchSize: 3 });
  assert.equal(one.cursor.firstBatch.length, 3);
  assert.equal(String(one.cursor.id), '0');
  assert.equal(s.stats.commands.getMore ?? 0, 0);
});

test('update and delete change what find returns', async () => {
  const coll = client.db(uniqueDbName()).collection<any>('upd');
  await coll.insertMany([{ _id: 1, a: 1, keep: Long.fromNumber(5) }, { _id: 2, a: 2 }, { _id: 3, a: 3 }] as any[]);
  const r = await coll.updateOne({ _id: 1 }, { $set: { a: 10, 'n.x': 'y' }, $unset: { missing: '' } });
  assert.equal(r.matchedCount, 1);
  assert.equal(r.modifiedCount, 1);
  const [raw] = (await coll.find({ _id: 1 }, { raw: true }).toArray()) as unknown as Buffer[];
  assert.ok(Buffer.from(raw!).equals(Buffer.from(BSON.serialize({ _id: 1, a: 10, keep: Long.fromNumber(5), n: { x: 'y' } }))), 'untouched fields keep their types');
  await coll.replaceOne({ _id: 2 }, { b: 'replaced' });
  assert.deepEqual(await coll.findOne({ _id: 2 } as any), { _id: 2, b: 'replaced' });
  const many = await coll.updateMany({ a: { $gte: 3 } }, { $inc: { a: 1 } });
  assert.equal(many.modifiedCount, 2);
  assert.deepEqual((await coll.find({}, { projection: { a: 1 } }).toArray()).map((d) => d.a), [11, undefined, 4]);
  const up = await coll.updateOne({ _id: 9 }, { $set: { z: 1 } }, { upsert: true });
  assert.equal(up.upsertedId, 9);
  assert.deepEqual(await coll.findOne({ _id: 9 } as any), { _id: 9, z: 1 });
  assert.equal((await coll.deleteOne({ _id: 1 } as any)).deletedCount, 1);
  assert.equal((await coll.deleteMany({})).deletedCount, 3);
  assert.equal(await coll.countDocuments(), 0);
});
