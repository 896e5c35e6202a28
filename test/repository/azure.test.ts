import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { useAzurite } from '../support/azurite.ts';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { startBackup } from '../../shared/repository/backup-writer.ts';
import { openRestorePoint } from '../../shared/repository/reader.ts';
import { verifyRepository } from '../../shared/repository/verify.ts';
import { lockExclusive, lockShared } from '../../shared/repository/locks.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('repository round trip on Azure Blob (Azurite): byte-identical, verify clean, insert re-stores few chunks', async () => {
  const az = await useAzurite();
  const env = { ...process.env, AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
  const container = `repo${randomBytes(4).toString('hex')}`;
  const store = await openStore(`azblob://${az.account}/${container}/backups/main`, { env, create: true });
  const repo = await Repository.init(store, { password: 'pw', scrypt: { N: 1024, r: 8, p: 1 }, packSize: 1 << 20 });
  const data = randomBytes(5 * 1024 * 1024);
  const w = await startBackup(repo, { engine: 'test', database: 'db', source: 'unit' });
  await w.putObject('big', 'table-data', data);
  const rp = await w.commit();

  const again = await Repository.open(await openStore(`azblob://${az.account}/${container}/backups/main`, { env }), { password: 'pw' });
  const r = await openRestorePoint(again, rp.id);
  assert.equal(sha(await r.readObject(r.restorePoint.objects[0]!)), sha(data));
  const v = await verifyRepository(again, { readData: true });
  assert.deepEqual(v.problems, []);
  assert.ok(v.packs >= 4, `expected several packs, got ${v.packs}`);

  const changed = Buffer.concat([data.subarray(0, 2_500_000), Buffer.from('inserted'), data.subarray(2_500_000)]);
  const w2 = await startBackup(again, { engine: 'test', database: 'db', source: 'unit' });
  await w2.putObject('big', 'table-data', changed);
  const rp2 = await w2.commit();
  assert.ok(rp2.stats.newChunks >= 1 && rp2.stats.newChunks <= 4, `new chunks ${rp2.stats.newChunks}`);
  const r2 = await openRestorePoint(again, rp2.id);
  assert.equal(sha(await r2.readObject(r2.restorePoint.objects[0]!)), sha(changed));
});

test('locks on Azure: gc (exclusive, a Blob lease) refuses while a backup holds a shared lock, and vice versa', async () => {
  const az = await useAzurite();
  const env = { ...process.env, AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
  const store = await openStore(`azblob://${az.account}/locks${randomBytes(4).toString('hex')}`, { env, create: true });
  await Repository.init(store, {});
  const shared = await lockShared(store, 'backup of test');
  await assert.rejects(lockExclusive(store, 'garbage collection'), (e: any) => e.code === 'REPO_LOCKED' && /backup of test/.test(e.message));
  await shared.release();
  const ex = await lockExclusive(store, 'garbage collection');
  await assert.rejects(lockShared(store, 'backup of test'), (e: any) => e.code === 'REPO_LOCKED' && /garbage collection/.test(e.message));
  await ex.release();
  const again = await lockShared(store, 'backup of test');
  await again.release();
});
