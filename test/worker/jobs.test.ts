// The other jobs through the worker: a MongoDB backup and restore (against the wire-protocol
// stand-in), a copy into an archive repository (only missing chunks), and a verify.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import { sealField } from '../../shared/protocol/auth.ts';
import type { DatabaseTarget } from '../../shared/protocol/messages.ts';
import { useAzurite, type AzuriteServer } from '../support/azurite.ts';
import { startMongoServer, type MongoStandIn } from '../support/mongo-server/index.ts';
import { createTestRepo, findSecrets, spawnWorker, tempStateDir, TestController, type WorkerProcess } from './support.ts';

const MONGO_PW = 'mongo-worker-secret-pw';
let azurite: AzuriteServer;
let mongo: MongoStandIn;
let w: WorkerProcess | undefined;

before(async () => {
  azurite = await useAzurite();
  mongo = await startMongoServer({ users: [{ user: 'u', password: MONGO_PW }] });
  const c = new MongoClient(mongo.url('shop'));
  await c.connect();
  try {
    await c.db('shop').collection<{ _id: number; item: string; qty: number }>('orders').insertMany(Array.from({ length: 2000 }, (_, i) => ({ _id: i, item: `item ${i}`, qty: i % 13 })));
  } finally {
    await c.close();
  }
});

after(async () => {
  if (w && w.child.exitCode === null) w.child.kill('SIGKILL');
  await mongo.stop();
});

test('MongoDB backup and restore, copy to an archive repository and verify, all as worker commands', async () => {
  const ctl = new TestController(azurite, 'jobs');
  await ctl.createQueues();
  const repo = await createTestRepo(azurite);
  const archive = await createTestRepo(azurite);
  w = spawnWorker(ctl, azurite, tempStateDir());
  const { publicKey: pub } = await ctl.hello();
  const port = Number(new URL(mongo.url('shop')).port);
  const endpoint = (id: string, field: string): DatabaseTarget => ({
    host: '127.0.0.1', port, user: 'u', password: sealField(id, `${field}.password`, MONGO_PW, pub), tls: { mode: 'disable' },
  });

  const backupId = crypto.randomUUID();
  await ctl.send(ctl.sign((id) => ({
    kind: 'backup', jobId: 'mongo-1', engine: 'mongodb', source: { ...endpoint(id, 'source'), databases: ['shop'] },
    repository: repo.ref(id, 'repository', pub), labels: {}, tags: [], parallel: 2,
  }), backupId));
  const backup = await ctl.waitFor('completed', (r) => r.commandId === backupId);
  const rpId = backup.result.restorePointId!;
  assert.match(rpId, /^[0-9a-f]{64}$/);
  assert.equal(backup.result.stats.documents, 2000);

  const restoreId = crypto.randomUUID();
  await ctl.send(ctl.sign((id) => ({
    kind: 'restore', jobId: 'mongo-restore', engine: 'mongodb', restorePointId: rpId, repository: repo.ref(id, 'repository', pub),
    target: endpoint(id, 'target'), options: { databaseMap: { shop: 'shop_restored' } },
  }), restoreId));
  await ctl.waitFor('completed', (r) => r.commandId === restoreId);
  const c = new MongoClient(mongo.url('shop'));
  await c.connect();
  try {
    const a = await c.db('shop').collection('orders').find().sort({ _id: 1 }).toArray();
    const b = await c.db('shop_restored').collection('orders').find().sort({ _id: 1 }).toArray();
    assert.equal(b.length, 2000);
    assert.deepEqual(b, a);
  } finally {
    await c.close();
  }

  // Copy twice: the second copy of the same point finds every chunk in the archive already.
  const copies: Array<{ copiedChunks?: number; copiedBytes?: number; restorePointId?: string }> = [];
  for (let i = 0; i < 2; i++) {
    const copyId = crypto.randomUUID();
    await ctl.send(ctl.sign((id) => ({
      kind: 'copy', jobId: `archive-${i}`, restorePointIds: [rpId], from: repo.ref(id, 'from', pub), to: archive.ref(id, 'to', pub),
    }), copyId));
    const done = await ctl.waitFor('completed', (r) => r.commandId === copyId);
    copies.push({ ...done.result.stats, restorePointId: done.result.restorePointId });
  }
  assert.ok(copies[0]!.copiedChunks! > 0 && copies[0]!.copiedBytes! > 0);
  assert.equal(copies[1]!.copiedChunks, 0, 'nothing new the second time');
  const arch = await archive.open();
  const ids = await arch.listRestorePointIds();
  assert.equal(ids.length, 2);
  assert.ok(ids.includes(copies[0]!.restorePointId!));
  const copied = await arch.loadRestorePoint(copies[0]!.restorePointId!);
  assert.equal(copied.engine, 'mongodb');
  assert.equal(copied.labels['copy.of'], rpId);

  const verifyId = crypto.randomUUID();
  await ctl.send(ctl.sign((id) => ({ kind: 'verify', jobId: 'verify-archive', repository: archive.ref(id, 'repository', pub), readData: true }), verifyId));
  const verified = await ctl.waitFor('completed', (r) => r.commandId === verifyId);
  assert.deepEqual(verified.result.problems, []);
  assert.equal(verified.result.stats.objects, 2);

  w.child.kill('SIGTERM');
  assert.equal((await w.exited).code, 0);
  await ctl.poll();
  const secrets = { mongo: MONGO_PW, repo: repo.password, archive: archive.password, mac: ctl.macKey, sig: new URLSearchParams(repo.sas).get('sig')! };
  assert.deepEqual(findSecrets([...ctl.replyTexts, ...ctl.sentTexts, w.output(), ...(await repo.blobs()), ...(await archive.blobs())], secrets), []);
});
