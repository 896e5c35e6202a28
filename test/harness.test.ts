import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { BlobServiceClient } from '@azure/storage-blob';
import { usePostgres } from './support/postgres.ts';
import { useAzurite } from './support/azurite.ts';

test('harness PostgreSQL accepts the password and rejects a wrong one', async () => {
  const server = await usePostgres();
  const client = new pg.Client({ connectionString: server.url() });
  await client.connect();
  const r = await client.query('select 1 + 1 as two');
  assert.equal(r.rows[0].two, 2);
  await client.end();
  const bad = new pg.Client({ host: server.host, port: server.port, user: 'postgres', password: 'wrong', database: 'postgres' });
  await assert.rejects(bad.connect(), /password authentication failed/);
});

test('harness Azurite stores and returns a blob', async () => {
  const az = await useAzurite();
  const svc = BlobServiceClient.fromConnectionString(az.connectionString);
  const c = svc.getContainerClient('harness' + Date.now());
  await c.create();
  await c.getBlockBlobClient('x').upload('hello', 5);
  const buf = await c.getBlockBlobClient('x').downloadToBuffer();
  assert.equal(buf.toString(), 'hello');
});
