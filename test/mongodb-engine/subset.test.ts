// Restoring only some collections of a MongoDB restore point, against the stand-in: only they
// come back (documents, options, indexes), views only when named, unknown names refused, and the
// target checks and --drop look at the chosen collections only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Document } from 'bson';
import { startMongoServer, uniqueDbName, type MongoStandIn } from '../support/mongo-server/index.ts';
import { backupMongo } from '../../agent/engines/mongodb/backup.ts';
import { restoreMongo } from '../../agent/engines/mongodb/restore.ts';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { canonical, connectTo, everyType, FAST_SCRYPT, type Connected } from './helpers.ts';
import { runAgentCli } from '../support/agent-cli.ts';


let s: MongoStandIn;
let c: Connected;
let repo: Repository;
let repoDir: string;
let pointId: string;
const SRC = uniqueDbName('subsrc');

const hash = (docs: Buffer[]) => createHash('sha256').update(Buffer.concat(docs)).digest('hex');
const names = async (db: string) => ((await c.client.db(db).listCollections({}, { nameOnly: true }).toArray()) as Document[]).map((x) => String(x.name)).sort();
const indexes = async (db: string, coll: string) => canonical(await c.client.db(db).collection(coll).listIndexes().toArray());

before(async () => {
  s = await startMongoServer();
  c = await connectTo(s);
  const db = c.client.db(SRC);
  await db.createCollection('orders', { validator: { $jsonSchema: { bsonType: 'object', required: ['qty'] } } });
  await db.collection('orders').insertMany(Array.from({ length: 1200 }, (_, i) => ({ _id: i, qty: i % 7, customer: `c${i % 40}`, note: 'x'.repeat(i % 50) })) as Document[]);
  await db.command({ createIndexes: 'orders', indexes: [
    { key: { customer: 1, qty: -1 }, name: 'by_customer' },
    { key: { note: 1 }, name: 'note_sparse', sparse: true },
  ] });
  await db.command({ insert: 'customers', documents: everyType() });
  await db.collection('logs').insertMany(Array.from({ length: 30 }, (_, i) => ({ _id: `l${i}`, line: i })) as Document[]);
  await db.createCollection('big_orders', { viewOn: 'orders', pipeline: [{ $match: { qty: { $gt: 5 } } }] });
  repoDir = mkdtempSync(path.join(tmpdir(), 'cb-mongo-subset-'));
  repo = await Repository.init(await openStore(repoDir, { create: true }), { password: 'pw', scrypt: FAST_SCRYPT });
  const b = await backupMongo(repo, c.client, c.target, { database: SRC });
  assert.deepEqual([b.collections, b.views], [3, 1]);
  pointId = b.restorePoint.id;
});
after(async () => {
  await c.client.close();
  await s.stop();
  rmSync(repoDir, { recursive: true, force: true });
});

test('one collection: only it, with identical documents, options and indexes; counts list only it', async () => {
  const dst = uniqueDbName('subdst');
  const warnings: string[] = [];
  const r = await restoreMongo(repo, pointId, c.client, c.target, { database: dst, collections: ['orders'], onWarning: (m) => warnings.push(m) });
  assert.deepEqual(await names(dst), ['orders']);
  assert.deepEqual(r.counts, { orders: 1200 });
  assert.deepEqual([r.collections, r.views, r.indexes, r.documents], [1, 0, 2, 1200]);
  assert.deepEqual(warnings, []);
  assert.equal(hash(s.documents(dst, 'orders')), hash(s.documents(SRC, 'orders')));
  assert.equal(s.documents(dst, 'orders').length, 1200);
  assert.equal(await indexes(dst, 'orders'), await indexes(SRC, 'orders'));
  const options = async (db: string) => canonical(((await c.client.db(db).listCollections({ name: 'orders' }).toArray()) as Document[])[0]!.options);
  assert.equal(await options(dst), await options(SRC));
});

test('views only when named; a named view whose source is left out is restored with a warning', async () => {
  const both = uniqueDbName('subdst');
  const r = await restoreMongo(repo, pointId, c.client, c.target, { database: both, collections: ['big_orders', 'logs', 'orders'] });
  assert.deepEqual(await names(both), ['big_orders', 'logs', 'orders']);
  assert.deepEqual(r.counts, { orders: 1200, logs: 30 });
  assert.equal(r.views, 1);
  assert.deepEqual(await c.client.db(both).collection('big_orders').find().toArray(), await c.client.db(SRC).collection('big_orders').find().toArray());

  const alone = uniqueDbName('subdst');
  const warnings: string[] = [];
  const v = await restoreMongo(repo, pointId, c.client, c.target, { database: alone, collections: [`${SRC}.big_orders`], onWarning: (m) => warnings.push(m) });
  assert.deepEqual([v.collections, v.views, v.documents], [0, 1, 0]);
  assert.deepEqual(warnings, ['view big_orders reads from orders, which is not restored']);
});

test('unknown names are refused naming them, before anything is created', async () => {
  const dst = uniqueDbName('subdst');
  await assert.rejects(restoreMongo(repo, pointId, c.client, c.target, { database: dst, collections: ['orders', 'nope', 'other.logs'] }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'NOT_FOUND');
    assert.equal(e.message, `restore point ${pointId.slice(0, 12)} (database ${SRC}) has no collection or view nope, other.logs (it holds: big_orders, customers, logs, orders; list them all with \`export ${pointId.slice(0, 12)} --format mongodump -o DIR\`)`);
    return true;
  });
  assert.deepEqual(await names(dst), []);
});

test('the non-empty check and --drop consider only the chosen collections', async () => {
  const dst = uniqueDbName('subdst');
  const db = c.client.db(dst);
  await db.collection('customers').insertOne({ _id: 'mine', keep: true } as Document);
  const r = await restoreMongo(repo, pointId, c.client, c.target, { database: dst, collections: ['logs'] });
  assert.deepEqual(r.counts, { logs: 30 });
  assert.deepEqual(await db.collection('customers').find().toArray(), [{ _id: 'mine', keep: true }], 'a collection not chosen is left alone');

  await assert.rejects(restoreMongo(repo, pointId, c.client, c.target, { database: dst, collections: ['logs'] }), (e: Error & { code?: string }) => e.code === 'TARGET_NOT_EMPTY' && e.message.includes(`${dst}.logs`) && !e.message.includes('customers'));
  await db.collection('logs').insertOne({ _id: 'extra' } as Document);
  await restoreMongo(repo, pointId, c.client, c.target, { database: dst, collections: ['logs'], drop: true });
  assert.equal(hash(s.documents(dst, 'logs')), hash(s.documents(SRC, 'logs')));
  assert.deepEqual(await db.collection('customers').find().toArray(), [{ _id: 'mine', keep: true }], '--drop leaves collections not chosen alone');
});

test('command line: --collection restores the subset; --table or --schema on a MongoDB point is a usage error', async () => {
  const agent = (args: string[]) => runAgentCli([...args, '--repo', repoDir, '--repo-password-env', 'REPO_PW'], { REPO_PW: 'pw' });
  const dst = uniqueDbName('subcli');
  for (const flag of [['--table', 'public.orders'], ['--schema', 'public']]) {
    const r = await agent(['restore', pointId, '--target', s.url(), '--database', dst, ...flag]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stderr.trim(), 'error: --table and --schema are for PostgreSQL restore points; for MongoDB use --collection NAME');
  }
  const ok = await agent(['restore', pointId, '--target', s.url(), '--database', dst, '--collection', 'customers', '--collection', 'logs', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual((JSON.parse(ok.stdout) as { counts: Record<string, number> }).counts, { customers: everyType().length, logs: 30 });
  assert.deepEqual(await names(dst), ['customers', 'logs']);
  assert.deepEqual(s.documents(dst, 'customers'), s.documents(SRC, 'customers'));
});
