// Repositories through the API with the real repository gateway: on Azurite (credentials from the
// controller's environment, or a connection string registered with the repository) and on file://.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { useAzurite } from '../support/azurite.ts';
import { startController, type Controller } from '../../controller/start.ts';
import { StorageRepositories, locationUrl, isConnectionString } from '../../controller/sessions/storage-repositories.ts';
import { fakeGateways } from './support/fakes.ts';
import { client, tempDir, testConfig } from './support/controller.ts';

const started: Controller[] = [];
after(async () => { for (const c of started) await c.close(); });

async function controllerWith(env: NodeJS.ProcessEnv) {
  const c = await startController({ config: testConfig(tempDir()), gateways: { ...fakeGateways(), repositories: new StorageRepositories({ env }) } });
  started.push(c);
  return { c, api: client(c.app, c.bootstrapToken) };
}

const container = () => `ctl-${randomBytes(5).toString('hex')}`;

test('location urls and credential kinds', () => {
  assert.equal(locationUrl({ storageAccount: 'backupsa', container: 'backups', folder: 'cosmos/main' }), 'azblob://backupsa/backups/cosmos/main');
  assert.equal(locationUrl({ storageAccount: 'backupsa', container: 'backups', folder: '' }), 'azblob://backupsa/backups');
  assert.equal(locationUrl({ kind: 'file', storageAccount: '', container: '', folder: '', path: '/srv/repo' }), 'file:///srv/repo');
  assert.throws(() => locationUrl({ kind: 'file', storageAccount: '', container: '', folder: '', path: 'relative' }), { code: 'INVALID_ARGUMENT' });
  assert.equal(isConnectionString('DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k;'), true);
  assert.equal(isConnectionString('sv=2024-01-01&ss=b&sig=abc'), false);
});

test('azurite: create initialises (config blob), re-registering attaches, wrong or missing password refused', async () => {
  const az = await useAzurite();
  const { api } = await controllerWith({ AZURE_STORAGE_CONNECTION_STRING: az.connectionString });
  const name = container();
  const spec = { name: 'main', storageAccount: az.account, container: name, folder: 'cosmos/main', password: 'repo-password-1' };
  const r = await api.post('/repositories', spec);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.initialised, true);
  assert.equal(r.body.kind, 'azblob');
  assert.match(r.body.formatId, /^[0-9a-f]{32}$/);
  const blobs = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(name);
  assert.equal(await blobs.getBlobClient('cosmos/main/config').exists(), true, 'the format config blob exists');
  assert.ok(!JSON.stringify(r.body).includes('repo-password-1'));

  // mode init on an existing repository is a conflict; the data stays.
  assert.equal((await api.del(`/repositories/${r.body.id}`)).status, 204);
  const init = await api.post('/repositories', { ...spec, mode: 'init' });
  assert.equal(init.status, 409);
  assert.equal(init.body.error.code, 'REPO_EXISTS');

  const wrong = await api.post('/repositories', { ...spec, password: 'not-the-password' });
  assert.equal(wrong.status, 400);
  assert.equal(wrong.body.error.code, 'WRONG_PASSWORD');
  assert.equal(wrong.body.error.message, `wrong password for the repository at azblob://${az.account}/${name}/cosmos/main`);
  const none = await api.post('/repositories', { ...spec, password: null });
  assert.equal(none.status, 400);
  assert.equal(none.body.error.code, 'PASSWORD_REQUIRED');
  assert.match(none.body.error.message, /is encrypted: give its password$/);

  const again = await api.post('/repositories', spec);
  assert.equal(again.status, 201);
  assert.equal(again.body.initialised, false, 'attached');
  assert.equal(again.body.formatId, r.body.formatId);

  // attach-only where nothing is: a clear 404.
  const missing = await api.post('/repositories', { name: 'nothing', storageAccount: az.account, container: container(), mode: 'attach' });
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'REPO_NOT_FOUND');
});

test('azurite: a connection string registered with the repository is used, sealed, and never shown', async () => {
  const az = await useAzurite();
  // No storage credentials in the controller's environment at all.
  const { c, api } = await controllerWith({});
  const name = container();
  const r = await api.post('/repositories', { name: 'own-credential', storageAccount: az.account, container: name, storageCredential: az.connectionString });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.initialised, true);
  assert.equal(r.body.hasStorageCredential, true);
  assert.equal(r.body.encrypted, false);
  const listed = JSON.stringify((await api.get('/repositories')).body);
  assert.ok(!listed.includes(az.accountKey) && !listed.includes('AccountKey'), 'the credential is write-only');
  const rows = JSON.stringify(await c.db.query('SELECT * FROM repositories'));
  assert.ok(!rows.includes(az.accountKey), 'the credential is sealed in the database');
  const blobs = BlobServiceClient.fromConnectionString(az.connectionString).getContainerClient(name);
  assert.equal(await blobs.getBlobClient('config').exists(), true);
  // A password for an unencrypted repository is refused rather than recorded.
  await api.del(`/repositories/${r.body.id}`);
  const pw = await api.post('/repositories', { name: 'own-credential', storageAccount: az.account, container: name, storageCredential: az.connectionString, password: 'some-password' });
  assert.equal(pw.status, 400);
  assert.match(pw.body.error.message, /is not encrypted; register it without a password/);
});

test('file://: a local repository for demos is initialised, attached, and validated', async () => {
  const { api } = await controllerWith({});
  const dir = path.join(tempDir(), 'repo');
  const r = await api.post('/repositories', { name: 'local', kind: 'file', path: dir, password: 'local-password' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.kind, 'file');
  assert.equal(r.body.path, dir);
  assert.equal(r.body.initialised, true);
  assert.ok(existsSync(path.join(dir, 'config')), 'config written in the directory');
  assert.equal((await api.post('/repositories', { name: 'local2', kind: 'file', path: dir, password: 'local-password' })).status, 409, 'one registration per path');
  await api.del(`/repositories/${r.body.id}`);
  const wrong = await api.post('/repositories', { name: 'local', kind: 'file', path: dir, password: 'other-password' });
  assert.equal(wrong.body.error.code, 'WRONG_PASSWORD');
  const again = await api.post('/repositories', { name: 'local', kind: 'file', path: dir, password: 'local-password' });
  assert.equal(again.body.initialised, false);
  assert.equal(again.body.formatId, r.body.formatId);
  const bad = await api.post('/repositories', { name: 'x', kind: 'file', storageAccount: 'abc' });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.message, 'path: required for kind "file"; storageAccount: storageAccount, container and folder are only for kind "azblob"');
  const noAccount = await api.post('/repositories', { name: 'x' });
  assert.equal(noAccount.body.error.message, 'storageAccount: required for kind "azblob"; container: required for kind "azblob"');
});

test('forget is idempotent for restore points already gone', async () => {
  const repos = new StorageRepositories({ env: {} });
  const access = { location: { kind: 'file' as const, storageAccount: '', container: '', folder: '', path: path.join(tempDir(), 'r') }, serviceAccount: null, password: null };
  await repos.init(access);
  await repos.forget(access, ['ab'.repeat(32)]);
  await assert.rejects(repos.forget(access, ['not-an-id']), { code: 'INVALID_ARGUMENT' });
});
