import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { BlobServiceClient, ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { CorruptObjectError, RepoLockedError, isCode } from '../../shared/errors.ts';
import { AzureBlobStore, mapAzureError } from '../../shared/storage/azure-blob.ts';
import { openStore } from '../../shared/storage/open.ts';
import { useAzurite, type AzuriteServer } from '../support/azurite.ts';
import { storeConformance } from './conformance.ts';

let az: AzuriteServer;
let svc: BlobServiceClient;
let container: ContainerClient;
const containerName = `storage-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
let n = 0;

before(async () => {
  az = await useAzurite();
  svc = BlobServiceClient.fromConnectionString(az.connectionString);
  container = svc.getContainerClient(containerName);
  await container.create();
});

storeConformance('AzureBlobStore', async () => new AzureBlobStore({ container, prefix: `t${++n}/sub` }));

function sas(permissions: string, key = az.accountKey): string {
  return generateBlobSASQueryParameters(
    { containerName, permissions: ContainerSASPermissions.parse(permissions), expiresOn: new Date(Date.now() + 3_600_000) },
    new StorageSharedKeyCredential(az.account, key),
  ).toString();
}

test('AzureBlobStore: a blob whose bytes do not match its stored Content-MD5 is reported corrupt on get', async () => {
  const store = new AzureBlobStore({ container, prefix: 'md5' });
  const blob = container.getBlockBlobClient('md5/data/ab/bad');
  // Put Block List stores blobContentMD5 without checking it, so we can plant a mismatch.
  const id = Buffer.from('block-0').toString('base64');
  await blob.stageBlock(id, Buffer.from('the real bytes'), 14);
  await blob.commitBlockList([id], { blobHTTPHeaders: { blobContentMD5: createHash('md5').update('other bytes').digest() } });
  await assert.rejects(store.get('data/ab/bad'), (e) => {
    assert.ok(e instanceof CorruptObjectError);
    assert.equal(e.object, 'data/ab/bad');
    assert.match(e.message, /data\/ab\/bad.*Content-MD5/);
    return true;
  });
  // ranged reads cannot check the whole-object MD5 and still work
  assert.equal(Buffer.from(await store.getRange('data/ab/bad', 4, 4)).toString(), 'real');
  // our own uploads store a correct MD5 that the service returns
  await store.put('data/ab/good', Buffer.from('fine'));
  const props = await container.getBlockBlobClient('md5/data/ab/good').getProperties();
  assert.deepEqual(Buffer.from(props.contentMD5!), createHash('md5').update('fine').digest());
  assert.equal(Buffer.from(await store.get('data/ab/good')).toString(), 'fine');
});

test('AzureBlobStore: keys live under the prefix and list strips it', async () => {
  const store = new AzureBlobStore({ container, prefix: '/pfx/inner/' });
  assert.equal(store.prefix, 'pfx/inner/');
  assert.equal(store.location, `azblob://${az.account}/${containerName}/pfx/inner`);
  await store.put('a/b', Buffer.from('x'));
  assert.equal((await container.getBlockBlobClient('pfx/inner/a/b').getProperties()).contentLength, 1);
  const keys = [];
  for await (const o of store.list('')) keys.push(o.key);
  assert.deepEqual(keys, ['a/b']);
});

test('AzureBlobStore: a missing container is REPO_NOT_FOUND, and ensureContainer creates it', async () => {
  const c = svc.getContainerClient(`${containerName}-new`);
  const store = new AzureBlobStore({ container: c });
  await assert.rejects(store.get('config'), (e) => isCode(e, 'REPO_NOT_FOUND') && /does not exist/.test((e as Error).message));
  await assert.rejects(store.put('config', Buffer.from('x')), (e) => isCode(e, 'REPO_NOT_FOUND'));
  await assert.rejects((async () => { for await (const _ of store.list('')) { /* */ } })(), (e) => isCode(e, 'REPO_NOT_FOUND'));
  await store.ensureContainer();
  await store.ensureContainer(); // idempotent
  await store.put('config', Buffer.from('x'));
  assert.equal((await store.stat('config'))?.size, 1);
  await c.delete();
});

test('AzureBlobStore: a wrongly signed SAS is STORAGE_AUTH without the signature in the message', async () => {
  const badSas = sas('racwdl', Buffer.from('not the key').toString('base64'));
  const store = new AzureBlobStore({ container: new BlobServiceClient(`${az.blobEndpoint}?${badSas}`).getContainerClient(containerName), location: 'test-location' });
  await assert.rejects(store.get('anything'), (e) => {
    assert.ok(isCode(e, 'STORAGE_AUTH'), String(e));
    const sig = new URLSearchParams(badSas).get('sig')!;
    assert.ok(!(e as Error).message.includes(sig));
    assert.ok(!JSON.stringify((e as any).details).includes(sig));
    assert.equal((e as Error).cause, undefined);
    return true;
  });
});

test('AzureBlobStore: an unreachable endpoint is a transient STORAGE_UNAVAILABLE', async () => {
  const client = new BlobServiceClient('http://127.0.0.1:1/devstoreaccount1', undefined, { retryOptions: { maxTries: 1 } });
  const store = new AzureBlobStore({ container: client.getContainerClient('c1') });
  await assert.rejects(store.stat('x'), (e) => isCode(e, 'STORAGE_UNAVAILABLE') && (e as any).details.transient === true);
});

test('mapAzureError: status and error codes map to typed errors; 503 carries Retry-After', () => {
  const ctx = { op: 'reading', key: 'k', location: 'azblob://a/c', container: 'c' };
  const rest = (statusCode: number, code?: string, headers: Record<string, string> = {}) => Object.assign(new Error('svc'), { statusCode, code, response: { headers: new Map(Object.entries(headers)) } });
  assert.ok(isCode(mapAzureError(rest(404, 'BlobNotFound'), ctx), 'NOT_FOUND'));
  assert.ok(isCode(mapAzureError(rest(404, 'ContainerNotFound'), ctx), 'REPO_NOT_FOUND'));
  assert.ok(isCode(mapAzureError(rest(403, 'AuthorizationFailure'), ctx), 'STORAGE_AUTH'));
  assert.ok(isCode(mapAzureError(rest(401), ctx), 'STORAGE_AUTH'));
  const busy = mapAzureError(rest(503, 'ServerBusy', { 'retry-after': '4' }), ctx) as any;
  assert.ok(isCode(busy, 'STORAGE_UNAVAILABLE'));
  assert.equal(busy.details.transient, true);
  assert.equal(busy.details.retryAfterMs, 4000);
  const conflict = mapAzureError(rest(409, 'SomethingElse'), ctx) as any;
  assert.equal(conflict.details.transient, false);
  assert.equal(mapAzureError(rest(400, 'Md5Mismatch'), ctx) instanceof Error && (mapAzureError(rest(400, 'Md5Mismatch'), ctx) as any).details.transient, true);
  const cred = Object.assign(new Error('no creds'), { name: 'CredentialUnavailableError' });
  assert.ok(isCode(mapAzureError(cred, ctx), 'STORAGE_AUTH'));
  const dns = Object.assign(new Error('getaddrinfo'), { code: 'REQUEST_SEND_ERROR', cause: Object.assign(new Error('x'), { code: 'ENOTFOUND' }) });
  assert.equal((mapAzureError(dns, ctx) as any).details.transient, false);
  const other = new TypeError('bug');
  assert.equal(mapAzureError(other, ctx), other);
});

test('openStore: azblob:// with an Azurite connection string, and a container SAS URL, reach the same objects', async () => {
  const env = { AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
  const viaEnv = await openStore(`azblob://${az.account}/${containerName}/opened`, { env });
  assert.equal(viaEnv.location, `azblob://${az.account}/${containerName}/opened`);
  await viaEnv.put('hello', Buffer.from('world'));
  const token = sas('racwdl');
  const viaSas = await openStore(`${az.blobEndpoint}/${containerName}/opened?${token}`, { env: {} });
  assert.ok(!viaSas.location.includes('sig='), viaSas.location);
  assert.equal(Buffer.from(await viaSas.get('hello')).toString(), 'world');
  const viaEnvSas = await openStore(`azblob://${az.account}/${containerName}/opened`, { env: { AZURE_STORAGE_SAS_TOKEN: `?${token}`, AZURE_STORAGE_BLOB_ENDPOINT: az.blobEndpoint } });
  assert.equal(Buffer.from(await viaEnvSas.get('hello')).toString(), 'world');
  // create: true makes the container for `repo init`
  const fresh = await openStore(`azblob://${az.account}/${containerName}-init`, { env, create: true });
  await fresh.put('config', Buffer.from('c'));
  assert.equal((await fresh.stat('config'))?.size, 1);
  await svc.getContainerClient(`${containerName}-init`).delete();
  // a container SAS cannot create containers, but create: true accepts an existing container
  const existing = await openStore(`${az.blobEndpoint}/${containerName}?${token}`, { env: {}, create: true });
  assert.equal(Buffer.from(await existing.get('opened/hello')).toString(), 'world');
});

test('AzureBlobStore: a lease whose holder vanished lapses on the service and can be taken again', async () => {
  const store = new AzureBlobStore({ container, prefix: 'lapse' });
  await store.acquireLease('locks/x', 'vanished', 1000); // service lease: the 15 s minimum
  await assert.rejects(store.acquireLease('locks/x', 'next', 60_000), RepoLockedError);
  await sleep(16_000);
  assert.equal((await store.readLease('locks/x'))?.stale, true);
  const next = await store.acquireLease('locks/x', 'next', 60_000);
  assert.equal((await store.readLease('locks/x'))?.holder, 'next');
  await next.release();
  await store.close();
});
