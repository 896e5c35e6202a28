// Collections, views, options and indexes on the stand-in: what the backup reads and restore writes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BSON, BSONRegExp, Double, Int32, Long } from 'bson';
import { MongoClient, MongoServerError, type Db } from 'mongodb';
import { startMongoServer, uniqueDbName, type MongoStandIn } from '../support/mongo-server/index.ts';

let s: MongoStandIn;
let client: MongoClient;
before(async () => {
  s = await startMongoServer();
  client = new MongoClient(s.url(), { promoteValues: false, bsonRegExp: true });
  await client.connect();
});
after(async () => {
  await client.close();
  await s.stop();
});

const bytes = (v: unknown) => Buffer.from(BSON.serialize({ v }));

async function infos(db: Db, filter = {}) {
  return db.listCollections(filter).toArray() as Promise<any[]>;
}

test('create keeps collection options with their BSON types; listCollections returns them', async () => {
  const db = client.db(uniqueDbName());
  const validator = { $jsonSchema: { bsonType: 'object', required: ['name'], properties: { n: { minimum: new Double(1.5) } } }, code: new BSONRegExp('^[A-Z]', 'i') };
  await db.createCollection('validated', { validator, validationLevel: 'moderate', validationAction: 'warn' });
  await db.createCollection('capped', { capped: true, size: 1 << 20, max: 1000 });
  await db.createCollection('french', { collation: { locale: 'fr', strength: 2 } });
  await db.createCollection('series', { timeseries: { timeField: 'ts', metaField: 'meta', granularity: 'minutes' }, expireAfterSeconds: 86400 });
  await db.createCollection('clustered', { clusteredIndex: { key: { _id: 1 }, unique: true } });
  await db.createCollection('source');
  await db.createCollection('active', { viewOn: 'source', pipeline: [{ $match: { active: true } }, { $project: { secret: 0 } }] });

  const all = await infos(db);
  const byName = Object.fromEntries(all.map((c) => [c.name, c]));
  assert.deepEqual(Object.keys(byName).sort(), ['active', 'capped', 'clustered', 'french', 'series', 'source', 'validated']);
  assert.ok(bytes(byName.validated.options.validator).equals(bytes(validator)), 'validator round-trips byte for byte');
  assert.equal(byName.validated.options.validationLevel, 'moderate');
  assert.equal(byName.validated.options.validationAction, 'warn');
  assert.equal(byName.validated.type, 'collection');
  assert.equal(byName.capped.options.capped, true);
  assert.equal(Number(byName.capped.options.size), 1 << 20);
  assert.equal(Number(byName.capped.options.max), 1000);
  assert.equal(byName.french.options.collation.locale, 'fr');
  assert.equal(Number(byName.french.options.collation.strength), 2);
  assert.equal(byName.french.options.collation.caseFirst, 'off', 'collation defaults filled in as mongod reports them');
  assert.equal(byName.series.type, 'timeseries');
  assert.deepEqual(byName.series.options.timeseries, { timeField: 'ts', metaField: 'meta', granularity: 'minutes' });
  assert.deepEqual((await db.collection<any>('series').listIndexes().toArray()).map((i: any) => i.name), ['meta_1_ts_1'], 'mongod 7 indexes meta and time');
  assert.ok(byName.clustered.options.clusteredIndex);
  assert.equal(byName.active.type, 'view');
  assert.equal(byName.active.options.viewOn, 'source');
  assert.ok(bytes(byName.active.options.pipeline).equals(bytes([{ $match: { active: true } }, { $project: { secret: new Int32(0) } }])));
  assert.equal(byName.active.info.readOnly, true);
  assert.equal(byName.source.info.readOnly, false);
  assert.equal(byName.source.info.uuid._bsontype, 'Binary');
  assert.equal(byName.source.idIndex.name, '_id_');

  assert.deepEqual((await infos(db, { name: 'french' })).map((c) => c.name), ['french']);
  assert.deepEqual((await infos(db, { type: 'view' })).map((c) => c.name), ['active']);
  const names = await db.listCollections({}, { nameOnly: true }).toArray();
  assert.deepEqual(Object.keys(names[0]!).sort(), ['name', 'type']);

  await assert.rejects(db.createCollection('source'), (e: unknown) => e instanceof MongoServerError && Number(e.code) === 48);
  await assert.rejects(db.createCollection('bad', { capped: true }), (e: unknown) => e instanceof MongoServerError && Number(e.code) === 72);
});

test('views answer find and aggregate through their pipeline and refuse writes and indexes', async () => {
  const db = client.db(uniqueDbName());
  await db.collection<any>('source').insertMany([{ _id: 1, active: true, secret: 's' }, { _id: 2, active: false }, { _id: 3, active: true }] as any[]);
  await db.createCollection('active', { viewOn: 'source', pipeline: [{ $match: { active: true } }, { $project: { secret: 0 } }] });
  const plain = new MongoClient(s.url());
  try {
    const view = plain.db(db.databaseName).collection<any>('active');
    assert.deepEqual(await view.find({}, { sort: { _id: 1 } }).toArray(), [{ _id: 1, active: true }, { _id: 3, active: true }]);
    assert.equal(await view.countDocuments(), 2);
    assert.deepEqual(await view.find({ _id: { $gt: 1 } }).toArray(), [{ _id: 3, active: true }]);
    await assert.rejects(view.insertOne({ x: 1 }), (e: unknown) => e instanceof MongoServerError && Number(e.code) === 166);
    await assert.rejects(view.listIndexes().toArray(), (e: unknown) => e instanceof MongoServerError && Number(e.code) === 166);
  } finally {
    await plain.close();
  }
});

test('createIndexes keeps every index option; listIndexes returns them in mongod\'s shape', async () => {
  const db = client.db(uniqueDbName());
  const c = db.collection<any>('idx');
  await c.insertOne({ _id: 1 } as any);
  const partial = { partialFilterExpression: { qty: { $gt: new Int32(5) }, kind: { $exists: true } } };
  const specs = [
    { key: { email: 1 }, name: 'email_1', unique: true, collation: { locale: 'en', strength: 2 } },
    { key: { a: 1, b: -1 }, name: 'a_1_b_-1', sparse: true },
    { key: { qty: 1 }, name: 'qty_partial', ...partial },
    { key: { createdAt: 1 }, name: 'ttl', expireAfterSeconds: 3600 },
    { key: { hiddenField: 1 }, name: 'hidden_1', hidden: true },
    { key: { title: 'text', body: 'text' }, name: 'text', weights: { title: 10 }, default_language: 'french' },
    { key: { loc: '2dsphere' }, name: 'loc_2dsphere' },
    { key: { h: 'hashed' }, name: 'h_hashed' },
    { key: { '$**': 1 }, name: 'wildcard', wildcardProjection: { secret: 0 } },
    { key: { big: Long.fromNumber(1) }, name: 'long_key' },
  ];
  const r = await db.command({ createIndexes: 'idx', indexes: specs });
  assert.equal(r.numIndexesBefore, 1);
  assert.equal(r.numIndexesAfter, 1 + specs.length);
  assert.equal(r.createdCollectionAutomatically, false);

  const list = await c.listIndexes().toArray() as any[];
  const by = Object.fromEntries(list.map((i) => [i.name, i]));
  assert.deepEqual(list.map((i) => i.name), ['_id_', ...specs.map((x) => x.name)]);
  for (const i of list) assert.deepEqual(Object.keys(i).slice(0, 3), ['v', 'key', 'name']);
  assert.equal(by.email_1.unique, true);
  assert.equal(by.email_1.collation.locale, 'en');
  assert.equal(by['a_1_b_-1'].sparse, true);
  assert.ok(bytes(by.qty_partial.partialFilterExpression).equals(bytes(partial.partialFilterExpression)));
  assert.equal(Number(by.ttl.expireAfterSeconds), 3600);
  assert.equal(by.hidden_1.hidden, true);
  assert.ok(bytes(by.text.key).equals(bytes({ _fts: 'text', _ftsx: new Int32(1) })), 'text keys stored as mongod does');
  assert.equal(Number(by.text.weights.title), 10);
  assert.equal(Number(by.text.weights.body), 1);
  assert.equal(by.text.default_language, 'french');
  assert.equal(Number(by.text.textIndexVersion), 3);
  assert.equal(Number(by.loc_2dsphere['2dsphereIndexVersion']), 3);
  assert.equal(by.h_hashed.key.h, 'hashed');
  assert.ok(bytes(by.wildcard.wildcardProjection).equals(bytes({ secret: new Int32(0) })));
  assert.ok(bytes(by.long_key.key).equals(bytes({ big: Long.fromNumber(1) })), 'key value types kept');

  // Re-creating the listed spec elsewhere gives the same listing (what a restore does).
  const copy = db.collection<any>('copy');
  await db.command({ createIndexes: 'copy', indexes: list.filter((i) => i.name !== '_id_') });
  const copied = await copy.listIndexes().toArray();
  assert.ok(bytes(copied).equals(bytes(list)));

  const again = await db.command({ createIndexes: 'idx', indexes: [specs[0]] });
  assert.equal(again.note, 'all indexes already exist');
  await assert.rejects(db.command({ createIndexes: 'idx', indexes: [{ key: { other: 1 }, name: 'email_1' }] }), (e: unknown) => e instanceof MongoServerError && Number(e.code) === 86);
  await assert.rejects(db.command({ createIndexes: 'idx', indexes: [{ key: { a: 1, b: -1 }, name: 'other_name' }] }), (e: unknown) => e instanceof MongoServerError && Number(e.code) === 85);

  await c.dropIndex('hidden_1');
  await assert.rejects(c.dropIndex('nope'), (e: unknown) => e instanceof MongoServerError && Number(e.code) === 27);
  await assert.rejects(c.dropIndex('_id_'), (e: unknown) => e instanceof MongoServerError && Number(e.code) === 72);
  assert.equal((await c.listIndexes().toArray()).length, specs.length);
  await c.dropIndexes();
  assert.deepEqual((await c.listIndexes().toArray()).map((i: any) => i.name), ['_id_']);
  await assert.rejects(db.collection<any>('missing').listIndexes().toArray(), (e: unknown) => e instanceof MongoServerError && Number(e.code) === 26);
});

test('listDatabases, drop and dropDatabase', async () => {
  const name = uniqueDbName();
  const db = client.db(name);
  await db.collection<any>('a').insertOne({ _id: 1, pad: 'x'.repeat(1000) } as any);
  await db.collection<any>('b').insertOne({ _id: 1 } as any);
  const listed = await client.db('admin').admin().listDatabases();
  const mine = listed.databases.find((d) => d.name === name)!;
  assert.ok(Number(mine.sizeOnDisk) > 1000);
  assert.equal(mine.empty, false);
  const names = await client.db('admin').command({ listDatabases: 1, nameOnly: true });
  assert.ok(names.databases.some((d: any) => d.name === name));
  assert.equal(names.databases[0].sizeOnDisk, undefined);
  assert.equal(await db.collection<any>('a').drop(), true);
  assert.deepEqual((await infos(db)).map((c) => c.name), ['b']);
  await db.dropDatabase();
  assert.deepEqual(await infos(db), []);
  assert.ok(!(await client.db('admin').admin().listDatabases()).databases.some((d) => d.name === name));
});
