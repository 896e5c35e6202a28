import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateMacKey, generateWorkerKeyPair, sealSecret, signCommand } from '../../shared/protocol/auth.ts';
import { CosmosBackupError } from '../../shared/errors.ts';
import { REDACTED, SEALED, isSecretKey, redact, redactString } from '../../shared/protocol/redact.ts';
import { SECRETS, sampleCommands } from './samples.ts';

const worker = generateWorkerKeyPair();

test('secret-named fields are redacted at any depth; the rest is kept', () => {
  const input = {
    host: 'db.example', port: 5432, publicKey: worker.publicKey, hasPassword: true,
    source: { user: 'citus', password: 'p1', nested: [{ token: 't1', note: 'ok' }, { AccountKey: 'k1' }] },
    headers: { Authorization: 'Bearer abc', cookie: 'c1' },
    pg_password: 'p2', 'connection-string': 'Server=x', clientSecret: 's1', mac: 'm1', sas: 'sv=1', key: 'k2', apiKey: 'k3',
    partitionKey: '/tenant', labels: { policy: 'daily' }, empty: null,
  };
  const out = redact(input) as typeof input;
  assert.deepEqual(out, {
    host: 'db.example', port: 5432, publicKey: worker.publicKey, hasPassword: true,
    source: { user: 'citus', password: REDACTED, nested: [{ token: REDACTED, note: 'ok' }, { AccountKey: REDACTED }] },
    headers: { Authorization: REDACTED, cookie: REDACTED },
    pg_password: REDACTED, 'connection-string': REDACTED, clientSecret: REDACTED, mac: REDACTED, sas: REDACTED, key: REDACTED, apiKey: REDACTED,
    partitionKey: '/tenant', labels: { policy: 'daily' }, empty: null,
  });
  assert.equal(input.source.password, 'p1', 'the input is not modified');
});

test('secrets inside strings are cut out: SAS signatures, URL passwords, connection strings, bearer tokens', () => {
  assert.equal(
    redactString('GET https://acct.blob.core.windows.net/c/b?sv=2024-05-04&se=2030-01-01&sp=r&sig=AbC%2Bd%3D&x=1 failed'),
    `GET https://acct.blob.core.windows.net/c/b?sv=2024-05-04&se=2030-01-01&sp=r&sig=${REDACTED}&x=1 failed`,
  );
  assert.equal(redactString('https://a/x?sig=ZZZ'), `https://a/x?sig=${REDACTED}`);
  assert.equal(redactString('mongodb://acct:K3y%3D%3D@acct.mongo.cosmos.azure.com:10255/?ssl=true'), `mongodb://acct:${REDACTED}@acct.mongo.cosmos.azure.com:10255/?ssl=true`);
  assert.equal(redactString('postgres://citus:p@ss@host:5432/db'), `postgres://citus:${REDACTED}@host:5432/db`);
  assert.equal(
    redactString('DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFy+/==;EndpointSuffix=core.windows.net'),
    `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${REDACTED};EndpointSuffix=core.windows.net`,
  );
  assert.equal(redactString('host=h user=u password=hunter2 dbname=d').includes('hunter2'), false);
  assert.equal(redactString('Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.sig'), `Authorization: Bearer ${REDACTED}`);
  // Plain prose and ordinary URLs are left alone.
  for (const s of [
    'Bearer token authentication is not permitted for non-TLS protected (non-https) URLs.',
    'password authentication failed for user "citus"',
    'https://acct.blob.core.windows.net:443/container/prefix',
    'connect ECONNREFUSED 127.0.0.1:5432',
  ]) assert.equal(redactString(s), s);
});

test('sealed secrets, errors, bytes, cycles and maps are made log-safe', () => {
  const sealed = sealSecret('pw', worker.publicKey, 'a');
  const err = new CosmosBackupError('STORAGE_AUTH', 'cannot read https://a/c?sv=1&sig=LEAK1', { details: { url: 'https://a/c?sig=LEAK2', password: 'LEAK3' }, cause: new Error('token=x sig? no: &sig=LEAK4') });
  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  const out = redact({ sealed, err, bytes: Buffer.from('LEAK5'), cyclic, map: new Map([['token', 'LEAK6'], ['ok', 'fine']]), when: new Date(0), n: 10n, fn: () => 1, key: worker.privateKey });
  const text = JSON.stringify(out);
  for (const leak of ['LEAK1', 'LEAK2', 'LEAK3', 'LEAK4', 'LEAK5', 'LEAK6']) assert.ok(!text.includes(leak), leak);
  const o = out as Record<string, any>;
  assert.equal(o.sealed, SEALED);
  assert.equal(o.err.code, 'STORAGE_AUTH');
  assert.match(o.err.message, /sig=\[redacted\]/);
  assert.equal(o.bytes, '[5 bytes]');
  assert.equal(o.cyclic.self, '[circular]');
  assert.deepEqual(o.map, { token: REDACTED, ok: 'fine' });
  assert.equal(o.when, '1970-01-01T00:00:00.000Z');
  assert.equal(o.n, '10');
  assert.equal(o.key, REDACTED);
});

test('a redacted command keeps its shape and shows no secret', () => {
  const cmds = sampleCommands(worker.publicKey);
  for (const cmd of Object.values(cmds)) {
    const logged = JSON.stringify(redact(signCommand(cmd, generateMacKey())));
    for (const s of Object.values(SECRETS)) assert.ok(!logged.includes(s));
    assert.ok(!logged.includes('"ct"'), 'sealed secrets are shown as [sealed]');
    assert.ok(logged.includes(`"kind":"${cmd.kind}"`));
  }
});

test('secrets planted anywhere in a nested value never survive redaction (property)', () => {
  const secretName = fc.constantFrom('password', 'Password', 'db_password', 'secret', 'clientSecret', 'sasToken', 'token', 'accessToken', 'accountKey', 'connectionString', 'sas', 'mac', 'key');
  const plainName = fc.constantFrom('host', 'name', 'items', 'meta', 'port', 'database', 'note');
  const secret = fc.stringMatching(/^[A-Za-z0-9]{6,20}$/).map((s) => `Zq${s}`);
  // A secret either under a secret-named key or embedded in a URL/connection string.
  const planted = fc.oneof(
    fc.tuple(secretName, secret).map(([k, s]) => ({ tree: { [k]: s } as unknown, s })),
    secret.map((s) => ({ tree: `see https://acct.blob.core.windows.net/c/b?sv=1&sig=${s}&se=2` as unknown, s })),
    secret.map((s) => ({ tree: `mongodb://user:${s}@host:10255/db` as unknown, s })),
    secret.map((s) => ({ tree: `AccountName=a;AccountKey=${s};EndpointSuffix=x` as unknown, s })),
  );
  const nest = (depth: number) => fc.array(plainName, { minLength: depth, maxLength: depth });
  fc.assert(fc.property(planted, nest(4), fc.boolean(), ({ tree, s }, path, inArray) => {
    let value: unknown = tree;
    for (const k of path.reverse()) value = inArray ? [{ [k]: value }, 'x'] : { [k]: value, other: 'keep' };
    const out = redact(value);
    assert.ok(!JSON.stringify(out).includes(s), JSON.stringify(out));
    assert.deepEqual(redact(out), out, 'redaction is idempotent');
  }), { numRuns: 300 });
});

test('isSecretKey names', () => {
  for (const k of ['password', 'PGPASSWORD', 'repoPassword', 'secret', 'sas', 'sasToken', 'sig', 'mac', 'key', 'workerKey', 'connectionString', 'ConnectionString', 'token', 'refresh_token']) assert.ok(isSecretKey(k), k);
  for (const k of ['publicKey', 'partitionKey', 'host', 'user', 'kid', 'keyId', 'database', 'tls', 'message']) assert.ok(!isSecretKey(k), k);
});
