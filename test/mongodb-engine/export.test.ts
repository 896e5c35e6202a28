// `export --format mongodump`: the files mongorestore reads, read back here with the `bson`
// package, equal the source documents, indexes and options; the tar.gz holds the same files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import { BSON, EJSON, type Document } from 'bson';
import { startMongoServer, uniqueDbName, type MongoStandIn } from '../support/mongo-server/index.ts';
import { backupMongo } from '../../agent/engines/mongodb/backup.ts';
import { exportMongodumpArchive, exportMongodumpDir } from '../../agent/engines/mongodb/export.ts';
import { openRestorePoint } from '../../shared/repository/reader.ts';
import type { Repository } from '../../shared/repository/repository.ts';
import type { RestorePointReader } from '../../shared/repository/types.ts';
import { canonical, connectTo, everyType, memoryRepo, type Connected } from './helpers.ts';

let s: MongoStandIn;
let c: Connected;
let repo: Repository;
let reader: RestorePointReader;
const SRC = uniqueDbName('dump');
const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(path.join(tmpdir(), 'cb-mongodump-')); dirs.push(d); return d; };

before(async () => {
  s = await startMongoServer();
  c = await connectTo(s);
  const db = c.client.db(SRC);
  await db.command({ insert: 'types', documents: everyType() });
  await db.createCollection('validated', { validator: { n: { $type: 'int' } }, validationAction: 'error' });
  await db.collection('validated').insertMany(Array.from({ length: 300 }, (_, i) => ({ _id: i, n: i })) as Document[]);
  await db.command({ createIndexes: 'validated', indexes: [{ key: { n: -1 }, name: 'n_desc', unique: true, partialFilterExpression: { n: { $gt: 3 } } }] });
  await db.createCollection('recent', { viewOn: 'validated', pipeline: [{ $match: { n: { $gte: 250 } } }] });
  repo = await memoryRepo();
  const b = await backupMongo(repo, c.client, c.target, { database: SRC });
  reader = await openRestorePoint(repo, b.restorePoint.id);
});
after(async () => {
  await c.client.close();
  await s.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function splitBson(file: string): Buffer[] {
  const all = readFileSync(file);
  const out: Buffer[] = [];
  for (let o = 0; o < all.length;) {
    const len = all.readInt32LE(o);
    out.push(all.subarray(o, o + len));
    o += len;
  }
  return out;
}

async function checkDump(root: string): Promise<void> {
  const dir = path.join(root, SRC);
  assert.deepEqual(readdirSync(dir).sort(), [
    'recent.metadata.json', 'types.bson', 'types.metadata.json', 'validated.bson', 'validated.metadata.json',
  ]);
  for (const coll of ['types', 'validated']) {
    const docs = splitBson(path.join(dir, `${coll}.bson`));
    assert.deepEqual(docs.map((d) => d.toString('hex')), s.documents(SRC, coll).map((d) => d.toString('hex')), `${coll}.bson`);
    // Decoded with the bson package, the documents equal what the driver reads from the source.
    const decoded = docs.map((d) => BSON.deserialize(d, { promoteValues: false, bsonRegExp: true }));
    const source = await c.client.db(SRC).collection(coll).find({}, { sort: { _id: 1 }, promoteValues: false, bsonRegExp: true }).toArray();
    assert.equal(canonical(decoded), canonical(source));
    const text = readFileSync(path.join(dir, `${coll}.metadata.json`), 'utf8');
    const meta = EJSON.parse(text, { relaxed: false }) as Document;
    assert.deepEqual(Object.keys(meta), ['options', 'indexes', 'uuid', 'collectionName', 'type']);
    assert.equal(meta.collectionName, coll);
    assert.equal(meta.type, 'collection');
    assert.match(meta.uuid, /^[0-9a-f]{32}$/);
    assert.match(text, /"\$numberInt":"2"/, 'canonical Extended JSON');
    const info = (await c.client.db(SRC).listCollections({ name: coll }).toArray())[0] as Document;
    assert.equal(canonical(meta.options), canonical(info.options));
    assert.equal(meta.uuid, Buffer.from(info.info.uuid.buffer).toString('hex'));
    assert.equal(canonical(meta.indexes), canonical(await c.client.db(SRC).collection(coll).listIndexes().toArray()));
  }
  const view = EJSON.parse(readFileSync(path.join(dir, 'recent.metadata.json'), 'utf8'), { relaxed: false }) as Document;
  assert.equal(view.type, 'view');
  assert.equal(view.options.viewOn, 'validated');
  assert.equal(canonical(view.options.pipeline), canonical([{ $match: { n: { $gte: 250 } } }]));
  assert.deepEqual(view.indexes, []);
}

test('mongodump directory layout: documents, options, indexes and views as mongodump writes them', async () => {
  const out = tmp();
  const files = await exportMongodumpDir(reader, out);
  assert.equal(files.length, 5);
  await checkDump(out);
  await assert.rejects(exportMongodumpDir(reader, out), /already exists: export into an empty directory/);
});

test('the same layout as one tar.gz (extracted with tar)', async () => {
  const dir = tmp();
  const file = path.join(dir, 'dump.tar.gz');
  const out = createWriteStream(file);
  await exportMongodumpArchive(reader, out);
  await finished(out);
  const listing = execFileSync('tar', ['-tzf', file], { encoding: 'utf8' }).trim().split('\n').sort();
  assert.equal(listing.length, 5);
  const x = tmp();
  execFileSync('tar', ['-xzf', file, '-C', x]);
  await checkDump(x);
});
