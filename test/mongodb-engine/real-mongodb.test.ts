// Opt-in: with MONGODB_TEST_URL set (a disposable MongoDB 7+ or a Cosmos DB for MongoDB account
// you may write to, e.g. `docker run -p 27017:27017 mongo:7` and
// MONGODB_TEST_URL=mongodb://127.0.0.1:27017), the engine backs up and restores a database on
// that server, and the restored copy must equal the source byte for byte. Skipped otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Document } from 'bson';
import { backupMongo } from '../../agent/engines/mongodb/backup.ts';
import { restoreMongo } from '../../agent/engines/mongodb/restore.ts';
import { connectMongo, resolveMongoTarget } from '../../agent/engines/mongodb/connection.ts';
import { uniqueDbName } from '../support/mongo-server/index.ts';
import { canonical, everyType, memoryRepo } from './helpers.ts';

const REAL = process.env.MONGODB_TEST_URL;

test('backup and restore against a real MongoDB (MONGODB_TEST_URL)', { skip: REAL ? false : 'set MONGODB_TEST_URL to a disposable MongoDB 7+ to run' }, async () => {
  const target = resolveMongoTarget(REAL!);
  const client = await connectMongo(target);
  const src = uniqueDbName('cbsrc');
  const dst = uniqueDbName('cbdst');
  try {
    const db = client.db(src);
    await db.command({ insert: 'types', documents: everyType() });
    await db.createCollection('validated', { validator: { n: { $type: 'int' } }, validationLevel: 'moderate' });
    await db.collection('validated').insertMany(Array.from({ length: 2000 }, (_, i) => ({ _id: i, n: i })) as Document[]);
    await db.command({ createIndexes: 'validated', indexes: [
      { key: { n: -1 }, name: 'n', unique: true, partialFilterExpression: { n: { $gt: 3 } } },
      { key: { t: 'text' }, name: 't', weights: { t: 3 } },
      { key: { h: 'hashed' }, name: 'h' },
    ] });
    await db.createCollection('v', { viewOn: 'validated', pipeline: [{ $match: { n: { $lt: 10 } } }] });
    const repo = await memoryRepo();
    const b = await backupMongo(repo, client, target, { database: src, batchSize: 100 });
    await restoreMongo(repo, b.restorePoint.id, client, target, { database: dst });
    for (const coll of ['types', 'validated']) {
      const raw = async (name: string) => ((await client.db(name).collection(coll).find({}, { raw: true, sort: { _id: 1 } }).toArray()) as unknown as Uint8Array[]).map((d) => Buffer.from(d).toString('hex'));
      assert.deepEqual(await raw(dst), await raw(src), `documents of ${coll}`);
      const idx = async (name: string) => canonical(await client.db(name).collection(coll).listIndexes().toArray());
      assert.equal(await idx(dst), await idx(src), `indexes of ${coll}`);
    }
    const listing = async (name: string) => canonical(((await client.db(name).listCollections().toArray()) as Document[]).map(({ info: _i, idIndex: _x, ...rest }) => rest).sort((x, y) => String(x.name).localeCompare(String(y.name))));
    assert.equal(await listing(dst), await listing(src));
  } finally {
    await client.db(src).dropDatabase().catch(() => undefined);
    await client.db(dst).dropDatabase().catch(() => undefined);
    await client.close();
  }
});
