// Access tiers on Azure Blob (Azurite): packs written in the Archive tier (indexes and manifests
// not), reads of archived packs refused with DATA_ARCHIVED, retrieval in two rounds (chunk-list
// packs, then data packs), and packs moved back to Archive afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { useAzurite } from '../support/azurite.ts';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { startBackup } from '../../shared/repository/backup-writer.ts';
import { openRestorePoint } from '../../shared/repository/reader.ts';
import { KEYS } from '../../shared/repository/format.ts';
import { packTierRule, rearchive, retrieve } from '../../shared/repository/retrieval.ts';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test('Archive-tier packs: unreadable until retrieval rehydrates them, then moved back by rearchive', async () => {
  const az = await useAzurite();
  const env = { ...process.env, AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
  const container = `tier${randomBytes(4).toString('hex')}`;
  const url = `azblob://${az.account}/${container}`;
  const tierFor = packTierRule('Archive');
  const repo = await Repository.init(await openStore(url, { env, create: true, tierFor }), { packSize: 1 << 20 });
  const data = randomBytes(3 * 1024 * 1024);
  const w = await startBackup(repo, { engine: 'test', database: 'db', source: 'unit' });
  await w.putObject('big', 'table-data', data);
  const rp = await w.commit();

  const blobs = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(container);
  const tiers = new Map<string, string>();
  for await (const b of blobs.listBlobsFlat()) tiers.set(b.name, String(b.properties.accessTier));
  const packs = [...tiers].filter(([k]) => k.startsWith(KEYS.dataPrefix));
  assert.ok(packs.length >= 3, `several packs (${packs.length})`);
  assert.ok(packs.every(([, t]) => t === 'Archive'), 'every pack is in the Archive tier');
  assert.ok([...tiers].filter(([k]) => !k.startsWith(KEYS.dataPrefix)).every(([, t]) => t !== 'Archive'), 'indexes, manifests and config are not archived');

  const again = await Repository.open(await openStore(url, { env }));
  const reader = await openRestorePoint(again, rp.id);
  await assert.rejects(reader.readObject(reader.restorePoint.objects[0]!), (e: any) => e.code === 'DATA_ARCHIVED' && /rehydrate/.test(e.message));

  const before = await retrieve(again, [rp.id], { start: false });
  assert.equal(before.state, 'archived');
  assert.ok(before.archived >= 1, JSON.stringify(before));
  // Azurite rehydrates at once, so one call gets through both rounds.
  const after = await retrieve(again, [rp.id], { start: true, priority: 'High' });
  assert.deepEqual({ state: after.state, archived: after.archived, rehydrating: after.rehydrating }, { state: 'ready', archived: 0, rehydrating: 0 });
  assert.equal(after.packs, packs.length, 'the point needs every pack it wrote');
  assert.equal(sha(await reader.readObject(reader.restorePoint.objects[0]!)), sha(data));
  assert.equal((await retrieve(again, [rp.id], { start: false })).state, 'online', 'nothing left to wait for');

  assert.equal(await rearchive(again, [rp.id]), packs.length);
  for await (const b of blobs.listBlobsFlat({ prefix: KEYS.dataPrefix })) assert.equal(b.properties.accessTier, 'Archive');
  assert.equal((await retrieve(again, [rp.id], { start: false })).state, 'archived');
});
