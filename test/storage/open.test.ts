import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isCode } from '../../shared/errors.ts';
import { describeLocation, openStore, parseLocation } from '../../shared/storage/open.ts';

const SIG = 'S3cr3tSig%2Bvalue%3D';
const SAS = `sv=2024-08-04&ss=b&srt=co&sp=rwdlac&se=2030-01-01T00%3A00%3A00Z&sig=${SIG}`;
const KEY = 'QUJDREVGR0hJSktMTU5PUA==';

function rejectsInvalid(fn: () => unknown, pattern: RegExp) {
  assert.throws(fn, (e) => {
    assert.ok(isCode(e, 'INVALID_ARGUMENT'), String(e));
    assert.match((e as Error).message, pattern);
    assert.ok(!(e as Error).message.includes(SIG) && !(e as Error).message.includes(KEY), 'no secrets in the message');
    assert.doesNotMatch((e as Error).message, /\n/);
    return true;
  });
}

test('plain paths and file:// URLs open a filesystem store', () => {
  assert.deepEqual(parseLocation('/backups/repo', {}), { kind: 'file', root: '/backups/repo', location: 'file:///backups/repo' });
  assert.equal(parseLocation('rel/repo', {}).kind, 'file');
  assert.equal((parseLocation('rel/repo', {}) as { root: string }).root, path.resolve('rel/repo'));
  assert.deepEqual(parseLocation('file:///backups/my%20repo', {}), { kind: 'file', root: '/backups/my repo', location: 'file:///backups/my%20repo' });
  assert.equal(parseLocation('C:\\backups\\repo', {}).kind, 'file');
  rejectsInvalid(() => parseLocation('  ', {}), /empty/);
});

test('azblob:// takes credentials from the environment in order: connection string, SAS token, default credential', () => {
  const none = parseLocation('azblob://acct1/backups/prod/db1', {});
  assert.deepEqual(none, { kind: 'azure', account: 'acct1', container: 'backups', prefix: 'prod/db1', serviceUrl: 'https://acct1.blob.core.windows.net', auth: { kind: 'default-credential' }, location: 'azblob://acct1/backups/prod/db1' });
  const noPrefix = parseLocation('azblob://acct1/backups/', {});
  assert.equal(noPrefix.kind === 'azure' && noPrefix.prefix, '');
  assert.equal(noPrefix.location, 'azblob://acct1/backups');

  const cs = `DefaultEndpointsProtocol=https;AccountName=acct1;AccountKey=${KEY};EndpointSuffix=core.windows.net`;
  const withCs = parseLocation('azblob://acct1/backups', { AZURE_STORAGE_CONNECTION_STRING: cs, AZURE_STORAGE_SAS_TOKEN: SAS });
  assert.ok(withCs.kind === 'azure' && withCs.auth.kind === 'connection-string');

  const azurite = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${KEY};BlobEndpoint=http://127.0.0.1:41234/devstoreaccount1;`;
  const dev = parseLocation('azblob://devstoreaccount1/c01/x', { AZURE_STORAGE_CONNECTION_STRING: azurite });
  assert.ok(dev.kind === 'azure');
  assert.equal(dev.serviceUrl, 'http://127.0.0.1:41234/devstoreaccount1');
  assert.ok(parseLocation('azblob://devstoreaccount1/c01', { AZURE_STORAGE_CONNECTION_STRING: 'UseDevelopmentStorage=true' }).kind === 'azure');
  rejectsInvalid(() => parseLocation('azblob://otheracct/backups', { AZURE_STORAGE_CONNECTION_STRING: cs }), /AZURE_STORAGE_CONNECTION_STRING is for storage account "acct1".*"otheracct"/);

  const withSas = parseLocation('azblob://acct1/backups', { AZURE_STORAGE_SAS_TOKEN: `?${SAS}` });
  assert.deepEqual(withSas.kind === 'azure' && withSas.auth, { kind: 'sas', sas: SAS });
  const withEndpoint = parseLocation('azblob://acct1/backups', { AZURE_STORAGE_SAS_TOKEN: SAS, AZURE_STORAGE_BLOB_ENDPOINT: 'https://acct1.privatelink.blob.core.windows.net/' });
  assert.equal(withEndpoint.kind === 'azure' && withEndpoint.serviceUrl, 'https://acct1.privatelink.blob.core.windows.net');
});

test('container SAS URLs (service and Azurite path-style) carry their own credential, and never show it', () => {
  const svc = parseLocation(`https://acct1.blob.core.windows.net/backups/prod/db1?${SAS}`, {});
  assert.deepEqual(svc, { kind: 'azure', account: 'acct1', container: 'backups', prefix: 'prod/db1', serviceUrl: 'https://acct1.blob.core.windows.net', auth: { kind: 'sas', sas: SAS }, location: 'https://acct1.blob.core.windows.net/backups/prod/db1' });
  const emu = parseLocation(`http://127.0.0.1:10000/devstoreaccount1/backups/p?${SAS}`, {});
  assert.ok(emu.kind === 'azure');
  assert.equal(emu.account, 'devstoreaccount1');
  assert.equal(emu.container, 'backups');
  assert.equal(emu.prefix, 'p');
  assert.equal(emu.serviceUrl, 'http://127.0.0.1:10000/devstoreaccount1');
  assert.ok(!emu.location.includes(SIG));
  const local = parseLocation(`http://localhost:10000/devstoreaccount1/backups?${SAS}`, {});
  assert.equal(local.kind === 'azure' && local.account, 'devstoreaccount1');
  // without a SAS in the URL: the environment's SAS token, else the default credential
  const bare = parseLocation('https://acct1.blob.core.windows.net/backups', {});
  assert.deepEqual(bare.kind === 'azure' && bare.auth, { kind: 'default-credential' });
  const envSas = parseLocation('https://acct1.blob.core.windows.net/backups', { AZURE_STORAGE_SAS_TOKEN: SAS });
  assert.deepEqual(envSas.kind === 'azure' && envSas.auth, { kind: 'sas', sas: SAS });
});

test('bad locations give one clear INVALID_ARGUMENT line without secrets', () => {
  rejectsInvalid(() => parseLocation(`s3://bucket/x?${SAS}`, {}), /unsupported repository location scheme "s3:"/);
  rejectsInvalid(() => parseLocation('azblob://acct1', {}), /names no container/);
  rejectsInvalid(() => parseLocation(`https://acct1.blob.core.windows.net/?${SAS}`, {}), /names no container/);
  rejectsInvalid(() => parseLocation(`https://acct1.blob.core.windows.net/Bad_Container?${SAS}`, {}), /invalid container name "Bad_Container"/);
  rejectsInvalid(() => parseLocation('azblob://ab/backups', {}), /invalid storage account "ab"/);
  rejectsInvalid(() => parseLocation(`https://acct1.blob.core.windows.net/backups/a%5Cb?${SAS}`, {}), /invalid prefix "a\\b"/);
  // dot segments (even %2E%2E) are resolved by URL parsing, so a prefix cannot climb out
  assert.equal((parseLocation('azblob://acct1/backups/a/%2E%2E/b', {}) as { prefix: string }).prefix, 'b');
});

test('describeLocation strips SAS signatures, user info, and keys', () => {
  assert.equal(describeLocation(`https://acct1.blob.core.windows.net/backups/p?${SAS}`), 'https://acct1.blob.core.windows.net/backups/p');
  assert.equal(describeLocation(`http://127.0.0.1:10000/devstoreaccount1/c/p?${SAS}#frag`), 'http://127.0.0.1:10000/devstoreaccount1/c/p');
  assert.equal(describeLocation('https://user:pw@host.example/c'), 'https://host.example/c');
  assert.equal(describeLocation('azblob://acct1/backups/prod'), 'azblob://acct1/backups/prod');
  assert.equal(describeLocation('/backups/repo'), '/backups/repo');
  const cs = describeLocation(`DefaultEndpointsProtocol=https;AccountName=a;AccountKey=${KEY};SharedAccessSignature=${SAS}`);
  assert.ok(!cs.includes(KEY) && !cs.includes(SIG), cs);
  assert.match(cs, /AccountKey=\*\*\*/);
  assert.ok(!describeLocation(`https://bad url/with space?sig=${SIG}`).includes(SIG));
});

test('openStore on a directory: create makes it, and the wrapped store works', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cosmos-backup-open-'));
  try {
    const root = path.join(dir, 'nested', 'repo');
    const store = await openStore(`file://${root}`, { create: true, env: {} });
    assert.ok(statSync(root).isDirectory());
    assert.equal(store.location, `file://${root}`);
    assert.equal(await store.putIfAbsent('config', Buffer.from('x')), true);
    assert.equal(Buffer.from(await store.get('config')).toString(), 'x');
    const lease = await store.acquireLease('locks/exclusive', 'me', 60_000);
    await lease.release();
    await assert.rejects(openStore('ftp://x/y', { env: {} }), (e) => isCode(e, 'INVALID_ARGUMENT'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
