// Every BSON type goes into the stand-in and comes back byte for byte, through the driver.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  BSON, Binary, BSONRegExp, BSONSymbol, Code, DBRef, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, UUID,
  type Document,
} from 'bson';
import { MongoClient, MongoBulkWriteError } from 'mongodb';
import { startMongoServer, uniqueDbName, type MongoStandIn } from '../support/mongo-server/index.ts';

let s: MongoStandIn;
let client: MongoClient;
before(async () => {
  s = await startMongoServer();
  client = new MongoClient(s.url());
  await client.connect();
});
after(async () => {
  await client.close();
  await s.stop();
});

/** Documents covering every BSON type the backup must carry, each with _id first. */
function everyType(): Document[] {
  const bin = (sub: number, bytes: number[]) => new Binary(Buffer.from(bytes), sub);
  return [
    {
      _id: new ObjectId('65a1b2c3d4e5f60718293a4b'),
      double: 1.5, negZero: new Double(-0), nan: NaN, inf: Infinity, negInf: -Infinity, wholeDouble: new Double(42),
      int32: new Int32(-7), long: Long.fromString('9223372036854775807'), longMin: Long.MIN_VALUE,
      decimal: Decimal128.fromString('1234567890.123456789012345678901234'), decNaN: Decimal128.fromString('NaN'),
      decNegZero: Decimal128.fromString('-0.00'),
      string: 'plain', unicode: 'zürich – 東京 – 🦀 – e\u0301', empty: '',
      date: new Date('2024-02-29T12:34:56.789Z'), pre1970: new Date(-2208988800000), epoch: new Date(0),
      ts: new Timestamp({ t: 1700000000, i: 42 }),
      bool: true, no: false, nil: null,
      regex: new BSONRegExp('^a.*b$', 'imsux'), regexNoFlags: new BSONRegExp('x'),
      code: new Code('function () { return 1; }'), codeWithScope: new Code('x + y', { x: 1, y: new Int32(2) }),
      symbol: new BSONSymbol('sym'),
      min: new MinKey(), max: new MaxKey(),
      dbref: new DBRef('other', new ObjectId('65a1b2c3d4e5f60718293a4c'), 'otherdb'),
    },
    {
      _id: 'string-id',
      binGeneric: bin(0, [0, 1, 2, 255]), binFunction: bin(1, [1]), binOld: bin(2, [9, 8, 7]),
      uuidOld: bin(3, [...Array(16).keys()]), uuid: new UUID('0f8fad5b-d9cb-469f-a165-70867728950e'),
      md5: bin(5, [...Array(16).keys()].reverse()), encrypted: bin(6, [1, 2, 3]), column: bin(7, [4, 5]),
      sensitive: bin(8, [6]), vector: Binary.fromInt8Array(new Int8Array([1, -2, 3])),
      userDefined: bin(0x80, [0xde, 0xad]), emptyBin: bin(0, []),
    },
    {
      _id: new Int32(3),
      nested: { z: 1, a: { deeper: [1, [2, [3, { four: new Long(4) }]]] }, '': 'empty key', 'dot.ted': 1, $dollar: 2 },
      arrays: [[], [[]], [null, new MinKey(), 'mixed', 1.25, { k: 'v' }]],
      emptyDoc: {},
      order: { c: 3, b: 2, a: 1 },
    },
    { _id: Long.fromNumber(4) },
    { _id: new Date(-1) },
    { _id: { compound: 1, key: 'x' } },
  ];
}

test('every BSON type is returned byte-identical by find (raw)', async () => {
  const db = client.db(uniqueDbName());
  const docs = everyType();
  const expected = docs.map((d) => Buffer.from(BSON.serialize(d)));
  await db.collection<any>('types').insertMany(docs.map((d) => ({ ...d })));
  const raw = (await db.collection<any>('types').find({}, { raw: true }).toArray()) as unknown as Buffer[];
  const byId = (bufs: Buffer[]) => [...bufs].sort(Buffer.compare);
  assert.equal(raw.length, expected.length);
  assert.deepEqual(byId(raw.map((b) => Buffer.from(b))), byId(expected));
  // Decoded without promotion and serialized again, each document is still the same bytes.
  const decoded = await db.collection<any>('types').find({}, { promoteValues: false, promoteLongs: false, bsonRegExp: true }).toArray();
  assert.deepEqual(byId(decoded.map((d) => Buffer.from(BSON.serialize(d)))), byId(expected));
});

test('the stand-in stores a document with _id first; an absent _id becomes an ObjectId', async () => {
  const db = client.db(uniqueDbName());
  await db.command({ insert: 'c', documents: [{ a: 1, _id: 'late' }, { b: 2 }] });
  const stored = s.documents(db.databaseName, 'c');
  const first = BSON.deserialize(stored.find((b) => BSON.deserialize(b)._id === 'late')!);
  assert.deepEqual(Object.keys(first), ['_id', 'a']);
  const generated = BSON.deserialize(stored.find((b) => BSON.deserialize(b).b === 2)!);
  assert.deepEqual(Object.keys(generated), ['_id', 'b']);
  assert.ok(generated._id instanceof ObjectId);
});

test('a document near the 16 MiB limit round-trips', async () => {
  const db = client.db(uniqueDbName());
  const payload = Buffer.alloc(16 * 1024 * 1024 - 200, 7);
  payload[12345] = 1;
  const doc = { _id: 'big', payload: new Binary(payload), tail: 'end' };
  const expected = Buffer.from(BSON.serialize(doc));
  assert.ok(expected.length > 16 * 1024 * 1024 - 256 && expected.length <= 16 * 1024 * 1024);
  await db.collection<any>('big').insertOne(doc as any);
  await db.collection<any>('big').insertOne({ _id: 'small' } as any);
  const raw = (await db.collection<any>('big').find({}, { raw: true, batchSize: 2 }).toArray()) as unknown as Buffer[];
  assert.equal(raw.length, 2);
  assert.ok(Buffer.from(raw[0]!).equals(expected));
});

test('a Cosmos-style size limit rejects larger documents with error 16 and keeps the rest', async () => {
  const limited = await startMongoServer({ auth: false, maxDocumentSize: 2 * 1024 * 1024 });
  const c = new MongoClient(limited.url('lim'));
  try {
    const coll = c.db('lim').collection<any>('c');
    const docs = [{ _id: 1, b: new Binary(Buffer.alloc(1024)) }, { _id: 2, b: new Binary(Buffer.alloc(2 * 1024 * 1024)) }, { _id: 3 }];
    await assert.rejects(coll.insertMany(docs as any[], { ordered: false }), (e: unknown) => {
      assert.ok(e instanceof MongoBulkWriteError);
      const errs = e.writeErrors as unknown as Array<{ index: number; code: number; errmsg: string }>;
      const list = Array.isArray(errs) ? errs : [errs];
      assert.equal(list.length, 1);
      assert.equal(list[0]!.index, 1);
      assert.equal(list[0]!.code, 16);
      assert.match(list[0]!.errmsg, /Request size is too large/);
      return true;
    });
    assert.deepEqual((await coll.find().project({ _id: 1 }).toArray()).map((d) => d._id), [1, 3]);
    assert.equal(limited.stats.rejectedTooLarge, 1);
    limited.maxDocumentSize = undefined;
    await coll.insertOne(docs[1] as any);
    assert.equal(await coll.countDocuments(), 3);
  } finally {
    await c.close();
    await limited.stop();
  }
});

test('duplicate _id gives E11000 write errors; unordered inserts continue, ordered stop', async () => {
  const coll = client.db(uniqueDbName()).collection<any>('dups');
  await coll.insertOne({ _id: 1 } as any);
  await assert.rejects(coll.insertMany([{ _id: 2 }, { _id: 1 }, { _id: 3 }, { _id: 1.0 }] as any[], { ordered: false }), (e: unknown) => {
    assert.ok(e instanceof MongoBulkWriteError);
    assert.equal(e.code, 11000);
    assert.equal(e.result.insertedCount, 2);
    return true;
  });
  await assert.rejects(coll.insertMany([{ _id: 4 }, { _id: 2 }, { _id: 5 }] as any[]), (e: unknown) => e instanceof MongoBulkWriteError && e.result.insertedCount === 1);
  assert.deepEqual((await coll.find().toArray()).map((d) => d._id), [1, 2, 3, 4]);
});
