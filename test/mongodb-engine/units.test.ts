// The engine's pure parts: raw BSON walking, resume filters, retry decisions, batch sizing,
// command-line selections and URL handling.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BSON, Double, Int32, Long, ObjectId, type Document } from 'bson';
import { bracketOf, insertable, needsOrderedDecode, readId, resumeFilters, splitDocuments } from '../../agent/engines/mongodb/bson-raw.ts';
import { classifyError, firstLine, retryAfterMs, retryDelay, Retrier } from '../../agent/engines/mongodb/retry.ts';
import { BatchLimits } from '../../agent/engines/mongodb/restore.ts';
import { indexSpecs, viewOrder, type CollectionMeta } from '../../agent/engines/mongodb/metadata.ts';
import { parseDatabaseMap, selectDatabases, targetDatabase } from '../../agent/engines/mongodb/selection.ts';
import { resolveMongoTarget } from '../../agent/engines/mongodb/connection.ts';
import { CosmosBackupError } from '../../shared/errors.ts';

const ser = (d: Document | Map<string, unknown>) => Buffer.from(BSON.serialize(d as Document));

test('readId finds _id anywhere, decoded without losing its type', () => {
  assert.deepEqual(readId(ser({ _id: new Int32(5), a: 1 })), { type: 0x10, value: new Int32(5) });
  const late = readId(ser({ a: 'x', b: { _id: 1 }, _id: Long.fromNumber(7) }));
  assert.equal(late.type, 0x12);
  assert.ok(Long.fromNumber(7).equals(late.value as Long));
  assert.ok((readId(ser({ _id: new Double(-0) })).value as Double).value === 0);
  assert.ok(Object.is((readId(ser({ _id: new Double(-0) })).value as Double).value, -0));
  assert.throws(() => readId(ser({ a: 1 })), /no _id/);
});

test('resume filters: $gt within the bracket, whole later brackets up to the largest _id', () => {
  const last = readId(ser({ _id: 5 }));
  assert.deepEqual(resumeFilters(last, 0x10), [{ _id: { $gt: new Int32(5) } }]);
  const f = resumeFilters(last, 0x07);
  assert.equal(f.length, 5); // rest of numbers, strings, objects, binary, ObjectId (no arrays)
  assert.deepEqual(f[1], { _id: { $gte: '' } });
  assert.deepEqual(f[4], { _id: { $gte: new ObjectId('000000000000000000000000') } });
  assert.deepEqual(resumeFilters(readId(ser({ _id: NaN })), 0x01), [{ _id: { $gte: -Infinity } }]);
  assert.ok(bracketOf(0x10) === bracketOf(0x13) && bracketOf(0x02) === bracketOf(0x0e));
});

test('integer-like keys are decoded into Maps, so the driver writes the same field order', () => {
  const plain = ser({ _id: 1, b: { c: 1 }, list: [{ x: 1 }] });
  assert.equal(needsOrderedDecode(plain), false);
  assert.ok(ser(insertable(plain)).equals(plain));
  const odd = ser(new Map<string, unknown>([['_id', 1], ['z', 1], ['10', new Map([['b', 1], ['2', 2]])], ['arr', [new Map([['q', 1], ['0', 1]])]]]));
  assert.equal(needsOrderedDecode(odd), true);
  assert.ok(ser(insertable(odd)).equals(odd));
  assert.ok(!ser(BSON.deserialize(odd)).equals(odd), 'a plain object would reorder');
});

test('splitDocuments cuts a stream at document boundaries, whatever the chunking, and rejects garbage', async () => {
  const docs = [ser({ _id: 1 }), ser({ _id: 'two', pad: 'x'.repeat(1000) }), ser({ _id: 3 })];
  const all = Buffer.concat(docs);
  for (const size of [1, 3, 7, 100, all.length]) {
    const chunks = async function* () { for (let o = 0; o < all.length; o += size) yield all.subarray(o, o + size); };
    const got: Buffer[] = [];
    for await (const d of splitDocuments(chunks(), 'x')) got.push(Buffer.from(d));
    assert.deepEqual(got, docs);
  }
  const cut = async function* () { yield all.subarray(0, all.length - 2); };
  await assert.rejects(async () => { for await (const _ of splitDocuments(cut(), 'obj')) { /* drain */ } }, /corrupt object obj: ends with \d+ bytes of an incomplete document/);
  const bad = async function* () { yield Buffer.from([1, 0, 0, 0, 0]); };
  await assert.rejects(async () => { for await (const _ of splitDocuments(bad(), 'obj')) { /* drain */ } }, /impossible length 1/);
});

test('errors: throttling, transient and fatal; RetryAfterMs honoured', async () => {
  const throttled = Object.assign(new Error("Error=16500, RetryAfterMs=123, Details='Response status code does not indicate success: TooManyRequests (429)'\r\nmore"), { code: 16500 });
  assert.equal(classifyError(throttled), 'throttle');
  assert.equal(retryAfterMs(throttled), 123);
  const d = retryDelay('throttle', 1, throttled, undefined, () => 0.5);
  assert.ok(d >= 123 && d < 200);
  assert.equal(classifyError(Object.assign(new Error('x'), { name: 'MongoNetworkError' })), 'transient');
  assert.equal(classifyError(Object.assign(new Error('cursor id 5 not found'), { code: 43 })), 'transient');
  assert.equal(classifyError(Object.assign(new Error('E11000'), { code: 11000 })), 'fatal');
  assert.equal(classifyError(new CosmosBackupError('STORAGE_UNAVAILABLE', 'ECONNRESET to the blob store')), 'fatal');
  assert.ok(retryDelay('transient', 30, new Error('x'), { maxAttempts: 5, baseMs: 100, maxMs: 1000, maxThrottleMs: 10 }) <= 1000);
  assert.equal(firstLine('one\r\ntwo'), 'one');
  const r = new Retrier({ baseMs: 1, maxMs: 2, maxAttempts: 4 });
  let calls = 0;
  assert.equal(await r.run('x', async () => { if (++calls < 3) throw throttled; return 'ok'; }), 'ok');
  assert.deepEqual(r.counts, { retries: 2, throttled: 2 });
  await assert.rejects(r.run('x', async () => { throw new Error('fatal'); }), /^Error: fatal$/);
});

test('batch limits shrink on throttling and grow back, always sending at least one document', () => {
  const l = new BatchLimits(1000, 4 * 1024 * 1024);
  assert.equal(l.take([5 * 1024 * 1024, 1]), 1);
  assert.equal(l.take(Array(2000).fill(100)), 1000);
  l.shrink();
  l.shrink();
  assert.equal(l.docs, 250);
  assert.equal(l.take(Array(2000).fill(100)), 250);
  for (let i = 0; i < 20; i++) l.grow();
  assert.equal(l.docs, 1000);
  for (let i = 0; i < 20; i++) l.shrink();
  assert.equal(l.docs, 1);
  assert.equal(l.bytes, 64 * 1024);
});

test('metadata helpers: index specs for createIndexes, views after the views they read', () => {
  assert.deepEqual(indexSpecs([{ v: 2, key: { _id: 1 }, name: '_id_' }, { v: 2, key: { a: 1 }, name: 'a', ns: 'd.c', unique: true }]), [{ key: { a: 1 }, name: 'a', unique: true }]);
  const v = (name: string, on: string): CollectionMeta => ({ name, type: 'view', options: { viewOn: on, pipeline: [] }, indexes: [] });
  assert.deepEqual(viewOrder([v('c', 'b'), v('b', 'a'), v('a', 'coll')]).map((x) => x.name), ['a', 'b', 'c']);
});

test('selections: --database, --collection db.coll, the URL database, --database-map', () => {
  assert.equal(selectDatabases([], [], undefined), undefined);
  assert.deepEqual(selectDatabases([], [], 'u'), [{ database: 'u' }]);
  assert.deepEqual(selectDatabases(['a', 'b'], ['b.x.y', 'c.z']), [{ database: 'a' }, { database: 'b', collections: ['x.y'] }, { database: 'c', collections: ['z'] }]);
  assert.throws(() => selectDatabases([], ['nodot']), /not DATABASE\.COLLECTION/);
  const map = parseDatabaseMap(['a:b']);
  assert.equal(targetDatabase('a', map), 'b');
  assert.equal(targetDatabase('a', new Map(), 'n'), 'n');
  assert.throws(() => targetDatabase('z', map), /no entry for z/);
  assert.throws(() => parseDatabaseMap(['a']), /not OLD:NEW/);
});

test('URLs: the password from --password-env, a label without credentials', () => {
  process.env.UNIT_MONGO_PW = 'p@ss/word';
  const t = resolveMongoTarget('mongodb://user@h1,h2:27018/db?authSource=admin', { passwordEnv: 'UNIT_MONGO_PW' });
  assert.equal(t.url, 'mongodb://user:p%40ss%2Fword@h1,h2:27018/db?authSource=admin');
  assert.equal(t.label, 'h1:27017,h2:27018');
  assert.equal(t.database, 'db');
  const srv = resolveMongoTarget('mongodb+srv://u:secret@acct.mongo.cosmos.azure.com/?tls=true');
  assert.equal(srv.label, 'acct.mongo.cosmos.azure.com');
  assert.equal(srv.database, undefined);
  assert.throws(() => resolveMongoTarget('mongodb://h/db', { passwordEnv: 'UNIT_MONGO_PW' }), /needs a user name/);
  assert.throws(() => resolveMongoTarget('mongodb://u@h/db', { passwordEnv: 'UNIT_MONGO_UNSET' }), /UNIT_MONGO_UNSET .* is not set/);
  assert.throws(() => resolveMongoTarget('postgres://h'), /mongodb:\/\//);
});
