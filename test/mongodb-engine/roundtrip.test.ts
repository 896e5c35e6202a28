// Backup and restore through the real driver against the stand-in: every BSON type comes back
// byte-identical, and collections keep their options, indexes and views.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BSON, Binary, Int32, type Document } from 'bson';
import { startMongoServer, uniqueDbName, type MongoStandIn } from '../support/mongo-server/index.ts';
import { backupMongo } from '../../agent/engines/mongodb/backup.ts';
import { restoreMongo } from '../../agent/engines/mongodb/restore.ts';
import { canonical, connectTo, everyType, memoryRepo, type Connected } from './helpers.ts';

let s: MongoStandIn;
let c: Connected;
before(async () => {
  s = await startMongoServer();
  c = await connectTo(s);
});
after(async () => {
  await c.client.close();
  await s.stop();
});

test('every BSON type restores byte-identical, in _id order, with counts', async () => {
  const src = uniqueDbName('src');
  const dst = uniqueDbName('dst');
  const docs = everyType();
  await c.client.db(src).command({ insert: 'types', documents: docs });
  await c.client.db(src).command({ insert: 'plain', documents: Array.from({ length: 2500 }, (_, i) => ({ _id: i, v: `value ${i}`, n: new Int32(i) })) });
  const expected = docs.map((d) => Buffer.from(BSON.serialize(d)));
  assert.equal(s.documents(src, 'types').length, expected.length);

  const repo = await memoryRepo();
  const b = await backupMongo(repo, c.client, c.target, { database: src, batchSize: 3 });
  assert.equal(b.documents, docs.length + 2500);
  assert.equal(b.collections, 2);
  assert.equal(b.restorePoint.engine, 'mongodb');
  assert.equal(b.restorePoint.source, `127.0.0.1:${s.port}`);
  assert.ok(!JSON.stringify(b.restorePoint).includes(s.password!), 'no password in the manifest');

  const r = await restoreMongo(repo, b.restorePoint.id, c.client, c.target, { database: dst, maxBatchDocs: 7 });
  assert.equal(r.documents, docs.length + 2500);
  const restored = s.documents(dst, 'types');
  // The stand-in keeps documents in _id order: compare document by document.
  assert.deepEqual(restored.map((x) => x.toString('hex')), s.documents(src, 'types').map((x) => x.toString('hex')));
  const sortedExpected = [...expected].sort(Buffer.compare).map((x) => x.toString('hex'));
  assert.deepEqual([...restored].sort(Buffer.compare).map((x) => x.toString('hex')), sortedExpected);
  assert.deepEqual(s.documents(dst, 'plain'), s.documents(src, 'plain'));
  assert.equal(await c.client.db(dst).collection('plain').countDocuments(), 2500);
});

test('collection options, every index kind and views match after restore', async () => {
  const src = uniqueDbName('src');
  const dst = uniqueDbName('dst');
  const db = c.client.db(src);
  await db.createCollection('validated', { validator: { $jsonSchema: { bsonType: 'object', required: ['a'] } }, validationLevel: 'moderate', validationAction: 'warn' });
  await db.createCollection('collated', { collation: { locale: 'fr', strength: 2 } });
  await db.createCollection('capped', { capped: true, size: 1 << 20, max: 1000 });
  await db.createCollection('series', { timeseries: { timeField: 't', metaField: 'm', granularity: 'minutes' }, expireAfterSeconds: 86400 });
  await db.command({ create: 'clustered', clusteredIndex: { key: { _id: 1 }, unique: true, name: 'by id' } });
  await db.collection('validated').insertMany([{ a: 1 }, { b: 'no a: allowed by warn' }]);
  await db.collection('series').insertMany([{ t: new Date(0), m: 'x', v: 1 }, { t: new Date(1000), m: 'y', v: 2 }]);
  await db.collection('clustered').insertOne({ _id: 'c1' } as Document);
  await db.collection('indexed').insertMany(Array.from({ length: 50 }, (_, i) => ({ _id: i, e: `e${i}`, s: i % 2 ? i : undefined, p: i, t: 'words', g: { type: 'Point', coordinates: [i / 10, 0] }, h: i })) as Document[]);
  await db.command({ createIndexes: 'indexed', indexes: [
    { key: { e: 1 }, name: 'e_unique', unique: true, collation: { locale: 'en', strength: 2 } },
    { key: { s: -1 }, name: 's_sparse_ttl', sparse: true, expireAfterSeconds: 3600 },
    { key: { p: 1 }, name: 'p_partial_hidden', partialFilterExpression: { p: { $gt: new Int32(5) } }, hidden: true },
    { key: { t: 'text', e: 'text' }, name: 't_text', weights: { t: 5 }, default_language: 'french' },
    { key: { g: '2dsphere' }, name: 'g_geo' },
    { key: { h: 'hashed' }, name: 'h_hashed' },
    { key: { '$**': 1 }, name: 'wild', wildcardProjection: { h: 0 } },
    { key: { e: 1, p: -1 }, name: 'compound' },
  ] });
  await db.createCollection('view1', { viewOn: 'indexed', pipeline: [{ $match: { p: { $gt: 10 } } }] });
  await db.createCollection('view2', { viewOn: 'view1', pipeline: [{ $project: { e: 1 } }], collation: { locale: 'en' } });

  const repo = await memoryRepo();
  const b = await backupMongo(repo, c.client, c.target, { database: src, parallel: 3 });
  assert.equal(b.views, 2);
  assert.equal(b.collections, 6);
  const r = await restoreMongo(repo, b.restorePoint.id, c.client, c.target, { database: dst, parallel: 3 });
  assert.equal(r.views, 2);
  let sourceIndexes = 0;
  for (const coll of ['validated', 'collated', 'capped', 'series', 'clustered', 'indexed']) {
    sourceIndexes += (await db.collection(coll).listIndexes().toArray()).filter((i) => i.name !== '_id_').length;
  }
  assert.ok(sourceIndexes >= 8);
  assert.equal(r.indexes, sourceIndexes);

  const listing = async (name: string) => {
    const list = (await c.client.db(name).listCollections().toArray()) as Document[];
    return canonical(list.map(({ info: _i, ...rest }) => rest).sort((x, y) => String(x.name).localeCompare(String(y.name))));
  };
  assert.equal(await listing(dst), await listing(src));
  for (const coll of ['validated', 'collated', 'capped', 'series', 'clustered', 'indexed']) {
    assert.equal(canonical(await c.client.db(dst).collection(coll).listIndexes().toArray()), canonical(await c.client.db(src).collection(coll).listIndexes().toArray()), `indexes of ${coll}`);
    assert.equal(await c.client.db(dst).collection(coll).countDocuments(), await c.client.db(src).collection(coll).countDocuments(), `count of ${coll}`);
    assert.deepEqual(s.documents(dst, coll), s.documents(src, coll), `documents of ${coll}`);
  }
  assert.deepEqual(await c.client.db(dst).collection('view2').find().toArray(), await c.client.db(src).collection('view2').find().toArray());
});

test('a document near the 16 MiB limit backs up and restores', async () => {
  const src = uniqueDbName('src');
  const dst = uniqueDbName('dst');
  const payload = Buffer.alloc(16 * 1024 * 1024 - 200, 7);
  payload[12345] = 1;
  const big = { _id: 'big', payload: new Binary(payload), tail: 'end' };
  assert.ok(BSON.calculateObjectSize(big) > 16 * 1024 * 1024 - 256);
  await c.client.db(src).collection('big').insertMany([{ _id: 'a' }, big, { _id: 'z' }] as Document[]);
  const repo = await memoryRepo();
  const b = await backupMongo(repo, c.client, c.target, { database: src });
  assert.equal(b.documents, 3);
  await restoreMongo(repo, b.restorePoint.id, c.client, c.target, { database: dst });
  const got = s.documents(dst, 'big');
  assert.equal(got.length, 3);
  assert.ok(got[1]!.equals(Buffer.from(BSON.serialize(big))));
});

test('a non-empty target collection is refused without --drop, replaced with it', async () => {
  const src = uniqueDbName('src');
  await c.client.db(src).collection('a').insertMany([{ _id: 1 }, { _id: 2 }] as Document[]);
  await c.client.db(src).collection('b').insertMany([{ _id: 1 }] as Document[]);
  const repo = await memoryRepo();
  const b = await backupMongo(repo, c.client, c.target, { database: src });
  await c.client.db(src).collection('a').insertOne({ _id: 3 } as Document);
  await c.client.db(src).collection('b').deleteMany({});
  await assert.rejects(restoreMongo(repo, b.restorePoint.id, c.client, c.target), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'TARGET_NOT_EMPTY');
    assert.match(e.message, new RegExp(`collection ${src}\\.a on .* is not empty.*--drop`));
    return true;
  });
  assert.equal(await c.client.db(src).collection('a').countDocuments(), 3, 'nothing touched');
  const r = await restoreMongo(repo, b.restorePoint.id, c.client, c.target, { drop: true });
  assert.equal(r.documents, 3);
  assert.deepEqual((await c.client.db(src).collection('a').find().toArray()).map((d) => d._id), [1, 2]);
  assert.equal(await c.client.db(src).collection('b').countDocuments(), 1);
});

test('--collection limits the backup; a missing collection is a clear error', async () => {
  const src = uniqueDbName('src');
  await c.client.db(src).collection('a').insertOne({ _id: 1 } as Document);
  await c.client.db(src).collection('b').insertOne({ _id: 1 } as Document);
  const repo = await memoryRepo();
  const b = await backupMongo(repo, c.client, c.target, { database: src, collections: ['b'] });
  assert.equal(b.collections, 1);
  assert.deepEqual(b.restorePoint.objects.map((o) => o.name).sort(), ['data/b', 'metadata.json']);
  await assert.rejects(backupMongo(repo, c.client, c.target, { database: src, collections: ['nope'] }), /collection .*\.nope does not exist/);
});
