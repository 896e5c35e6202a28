// Fidelity check, opt-in: with MONGODB_TEST_URL set (a disposable real MongoDB 7+, e.g.
// `docker run -p 27017:27017 mongo:7` and MONGODB_TEST_URL=mongodb://127.0.0.1:27017), the same
// scenarios run against the real server and the stand-in, and their answers must be equal.
// Without the variable the test is skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BSON, Binary, BSONRegExp, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, UUID } from 'bson';
import { MongoClient, MongoServerError, type Db } from 'mongodb';
import { startMongoServer, uniqueDbName } from '../support/mongo-server/index.ts';

const REAL = process.env.MONGODB_TEST_URL;
const canonical = (v: unknown) => BSON.EJSON.stringify(v, { relaxed: false });

async function code(p: Promise<unknown>): Promise<number | string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof MongoServerError ? Number(e.code) : String(e);
  }
}

const scenarios: Record<string, (db: Db) => Promise<unknown>> = {
  async 'raw round trip of every type'(db) {
    const docs = [
      { _id: 1, d: new Double(-0), nan: NaN, i: new Int32(1), l: Long.MAX_VALUE, dec: Decimal128.fromString('-1.50E+10'), s: 'é🦀', dt: new Date(-1e12),
        ts: new Timestamp({ t: 5, i: 6 }), re: new BSONRegExp('a', 'imx'), min: new MinKey(), max: new MaxKey(), u: new UUID('0f8fad5b-d9cb-469f-a165-70867728950e'),
        b2: new Binary(Buffer.from([1, 2]), 2), b128: new Binary(Buffer.from([3]), 128), nest: { z: [1, { y: null }], a: {} } },
    ];
    await db.collection<any>('t').insertMany(docs);
    return ((await db.collection<any>('t').find({}, { raw: true }).toArray()) as unknown as Buffer[]).map((b) => Buffer.from(b).toString('hex'));
  },
  async '_id order and range brackets'(db) {
    const ids = [new MinKey(), null, new Int32(2), 2.5, Long.fromNumber(3), 'a', 'é', { x: 1 }, new ObjectId('000000000000000000000001'), true, new Date(-5), new MaxKey()];
    await db.command({ insert: 'm', documents: ids.map((_id) => ({ _id })) });
    const q = async (filter: object) => canonical((await db.collection<any>('m').find(filter, { sort: { _id: 1 } }).toArray()).map((d) => d._id));
    return [await q({}), await q({ _id: { $gt: 2 } }), await q({ _id: { $gte: 'a' } }), await q({ _id: { $gt: new MinKey() } }), await q({ _id: { $lt: new Date(0) } })];
  },
  async 'index listing'(db) {
    await db.collection<any>('i').insertOne({ _id: 1 });
    await db.command({ createIndexes: 'i', indexes: [
      { key: { e: 1 }, name: 'e', unique: true, collation: { locale: 'en', strength: 2 } },
      { key: { s: 1 }, name: 's', sparse: true, expireAfterSeconds: 60 },
      { key: { p: 1 }, name: 'p', partialFilterExpression: { p: { $gt: 5 } }, hidden: true },
      { key: { t: 'text', u: 'text' }, name: 't', weights: { t: 5 } },
      { key: { g: '2dsphere' }, name: 'g' },
      { key: { h: 'hashed' }, name: 'h' },
      { key: { '$**': 1 }, name: 'w', wildcardProjection: { x: 0 } },
    ] });
    return canonical(await db.collection<any>('i').listIndexes().toArray());
  },
  async 'collection listing'(db) {
    await db.createCollection('v', { validator: { a: { $type: 'string' } }, validationLevel: 'moderate', validationAction: 'warn' });
    await db.createCollection('view', { viewOn: 'v', pipeline: [{ $match: { a: 'x' } }] });
    const list = (await db.listCollections().toArray()) as any[];
    return canonical(list.map(({ info: _info, ...rest }) => rest).sort((a, b) => a.name.localeCompare(b.name)));
  },
  async 'error codes'(db) {
    await db.collection<any>('e').insertOne({ _id: 1 });
    await db.createCollection('view', { viewOn: 'e', pipeline: [] });
    return [
      await code(db.collection<any>('e').insertOne({ _id: 1 })),
      await code(db.createCollection('e')),
      await code(db.command({ noSuchCommand: 1 })),
      await code(db.collection<any>('missing').listIndexes().toArray()),
      await code(db.collection<any>('view').insertOne({ a: 1 })),
      await code(db.command({ getMore: Long.fromNumber(123456789), collection: 'e' })),
      await code(db.collection<any>('e').dropIndex('_id_')),
    ];
  },
};

test('the stand-in answers like a real MongoDB (MONGODB_TEST_URL)', { skip: REAL ? false : 'set MONGODB_TEST_URL to a disposable MongoDB 7+ to run' }, async (t) => {
  const standIn = await startMongoServer({ auth: false });
  const fake = new MongoClient(standIn.url());
  const real = new MongoClient(REAL!);
  try {
    for (const [name, run] of Object.entries(scenarios)) {
      await t.test(name, async () => {
        const dbName = uniqueDbName('fidelity');
        try {
          const expected = await run(real.db(dbName));
          const actual = await run(fake.db(dbName));
          assert.deepEqual(actual, expected);
        } finally {
          await real.db(dbName).dropDatabase();
        }
      });
    }
  } finally {
    await fake.close();
    await real.close();
    await standIn.stop();
  }
});
