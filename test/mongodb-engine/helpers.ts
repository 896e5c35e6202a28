// Shared pieces of the MongoDB engine tests: a repository in memory, a connected client for a
// stand-in, and documents covering every BSON type.
import {
  Binary, BSONRegExp, Code, DBRef, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, UUID, EJSON,
  type Document,
} from 'bson';
import { MongoClient } from 'mongodb';
import { MemoryStore } from '../../shared/storage/memory.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { resolveMongoTarget, type MongoTarget } from '../../agent/engines/mongodb/connection.ts';
import type { MongoStandIn } from '../support/mongo-server/index.ts';

export const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };

export async function memoryRepo(): Promise<Repository> {
  return Repository.init(new MemoryStore(), { scrypt: FAST_SCRYPT, packSize: 1 << 20 });
}

export interface Connected { client: MongoClient; target: MongoTarget }

/** A client as the engine gets it (no driver retries of its own that would hide faults). */
export async function connectTo(s: MongoStandIn): Promise<Connected> {
  const target = resolveMongoTarget(s.url());
  const client = new MongoClient(target.url, { retryReads: false, retryWrites: false });
  await client.connect();
  return { client, target };
}

/** No retry sleeps worth waiting for in tests. */
export const QUICK_RETRY = { baseMs: 1, maxMs: 20, maxThrottleMs: 20 };

export const canonical = (v: unknown): string => EJSON.stringify(v, { relaxed: false });

/** Documents covering every BSON type a backup must carry, with mixed `_id` types. */
export function everyType(): Document[] {
  const bin = (sub: number, bytes: number[]) => new Binary(Buffer.from(bytes), sub);
  return [
    {
      _id: new ObjectId('65a1b2c3d4e5f60718293a4b'),
      double: 1.5, negZero: new Double(-0), nan: NaN, inf: Infinity, negInf: -Infinity, wholeDouble: new Double(42),
      int32: new Int32(-7), long: Long.fromString('9223372036854775807'), longMin: Long.MIN_VALUE,
      decimal: Decimal128.fromString('1234567890.123456789012345678901234'), decNaN: Decimal128.fromString('NaN'), decNegZero: Decimal128.fromString('-0.00'),
      string: 'plain', unicode: 'zürich – 東京 – 🦀 – e\u0301', empty: '',
      date: new Date('2024-02-29T12:34:56.789Z'), pre1970: new Date(-2208988800000), epoch: new Date(0),
      ts: new Timestamp({ t: 1700000000, i: 42 }),
      bool: true, no: false, nil: null,
      regex: new BSONRegExp('^a.*b$', 'imsux'), regexNoFlags: new BSONRegExp('x'),
      code: new Code('function () { return 1; }'), codeWithScope: new Code('x + y', { x: 1, y: new Int32(2) }),
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
    // Integer-like keys: a plain JavaScript object would list them first.
    new Map<string, unknown>([['_id', new Int32(4)], ['zeta', 1], ['2024', 'y'], ['1999', 'x'], ['inner', new Map<string, unknown>([['b', 1], ['10', 2], ['2', 3]])]]) as unknown as Document,
    { _id: Long.fromNumber(5), n: new Double(5) },
    { _id: 6.5 },
    { _id: new Date(-1) },
    { _id: { compound: 1, key: 'x' } },
    { _id: new UUID('1f8fad5b-d9cb-469f-a165-70867728950e') },
    { _id: true },
    { _id: new Timestamp({ t: 1, i: 1 }) },
  ];
}
