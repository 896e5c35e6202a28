import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  computeMac, exportPrivateKey, generateMacKey, generateWorkerKeyPair, importPrivateKey, keyIdOf, openCommand,
  openCommandSecrets, openReply, openSecret, publicKeyOf, sealSecret, sealedFields, secretAad, signCommand, signReply,
  verifyCommand, verifyReply,
} from '../../shared/protocol/auth.ts';
import { canonicalJson } from '../../shared/protocol/canonical.ts';
import { MESSAGE_MAX_AGE_SECONDS } from '../../shared/protocol/constants.ts';
import { ProtocolError, type ProtocolFault } from '../../shared/protocol/errors.ts';
import { encodeMessage, type Command, type CommandOf } from '../../shared/protocol/messages.ts';
import { SECRETS, WORKER, sampleCommands, sampleReplies } from './samples.ts';

const KEY = generateMacKey();
const worker = generateWorkerKeyPair();
const NOW = Date.parse('2030-06-01T12:00:00.000Z');
const opts = { workerId: WORKER, now: NOW };
const commands = () => sampleCommands(worker.publicKey, WORKER, new Date(NOW));

function fails(fn: () => unknown, fault: ProtocolFault, code = 'UNAUTHENTICATED'): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.fault, fault, err.message);
    assert.equal(err.code, code);
    return true;
  });
}

/** Paths of every scalar leaf except the MAC. */
function leaves(v: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(v)) return v.flatMap((x, i) => leaves(x, [...path, i]));
  if (typeof v === 'object' && v !== null) return Object.entries(v).flatMap(([k, x]) => (path.length === 0 && k === 'mac' ? [] : leaves(x, [...path, k])));
  return [path];
}

function tamper(v: unknown): unknown {
  if (typeof v === 'string') return v.length ? v.slice(0, -1) + (v.endsWith('a') ? 'b' : 'a') : 'a';
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  return 'x';
}

function withLeaf<T>(obj: T, path: Array<string | number>, f: (v: unknown) => unknown): T {
  const copy = structuredClone(obj) as Record<string | number, unknown>;
  let at = copy;
  for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  at[last] = f(at[last]);
  return copy as T;
}

test('canonical JSON sorts keys, has no whitespace, and ignores key order (property)', () => {
  assert.equal(canonicalJson({ b: [1, { d: true, c: null }], a: 'x', u: undefined }), '{"a":"x","b":[1,{"c":null,"d":true}]}');
  assert.throws(() => canonicalJson({ a: Number.NaN }), ProtocolError);
  assert.throws(() => canonicalJson({ a: new Date(0) }), ProtocolError);
  fc.assert(fc.property(fc.jsonValue(), (v) => {
    const reversed = JSON.parse(JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).reverse()) : x)));
    assert.equal(canonicalJson(reversed), canonicalJson(v));
    assert.equal(canonicalJson(JSON.parse(canonicalJson(v))), canonicalJson(v));
  }), { numRuns: 200 });
});

test('every signed command and reply verifies, also after the queue round trip', () => {
  for (const cmd of Object.values(commands())) {
    const signed = signCommand(cmd, KEY);
    assert.equal(verifyCommand(signed, KEY, opts), signed);
    assert.deepEqual(openCommand(encodeMessage(signed), KEY, opts), signed);
  }
  for (const reply of Object.values(sampleReplies(worker.publicKey, WORKER, new Date(NOW)))) {
    const signed = signReply(reply, KEY);
    assert.equal(verifyReply(signed, KEY, opts), signed);
    assert.deepEqual(openReply(encodeMessage(signed), KEY, opts), signed);
  }
});

test('changing any field value of a signed command fails verification (property)', () => {
  const all = Object.values(commands()).map((c) => signCommand(c, KEY));
  fc.assert(fc.property(fc.nat(), fc.nat(), (ci, li) => {
    const cmd = all[ci % all.length]!;
    const paths = leaves(cmd);
    const path = paths[li % paths.length]!;
    const forged = withLeaf(cmd, path, tamper);
    fails(() => verifyCommand(forged, KEY, opts), 'bad-mac');
  }), { numRuns: 300 });
});

test('flipping any byte of the queue text is rejected (property)', () => {
  const all = Object.values(commands()).map((c) => signCommand(c, KEY));
  fc.assert(fc.property(fc.nat(), fc.nat(), fc.integer({ min: 33, max: 126 }), (ci, pos, ch) => {
    const json = JSON.stringify(all[ci % all.length]);
    const at = pos % json.length;
    fc.pre(json.charCodeAt(at) !== ch);
    const text = Buffer.from(json.slice(0, at) + String.fromCharCode(ch) + json.slice(at + 1)).toString('base64');
    assert.throws(() => openCommand(text, KEY, opts), ProtocolError);
  }), { numRuns: 400 });
});

test('a wrong key, a missing MAC, another worker, or a reply MAC do not verify', () => {
  const cmd = signCommand(commands().backup, KEY);
  fails(() => verifyCommand(cmd, generateMacKey(), opts), 'bad-mac');
  const { mac: _mac, ...unsigned } = cmd;
  fails(() => verifyCommand(unsigned as Command, KEY, opts), 'missing-mac');
  fails(() => verifyCommand(cmd, KEY, { ...opts, workerId: 'w-other' }), 'wrong-worker');
  // Signed correctly, but for another worker that shares nothing with us: still refused.
  const elsewhere = signCommand({ ...commands().shutdown, workerId: 'w-other' }, KEY);
  fails(() => verifyCommand(elsewhere, KEY, opts), 'wrong-worker');
  // The direction is part of the MAC input: a reply's MAC never authenticates a command.
  const reflected = { ...cmd, mac: computeMac('reply', cmd, KEY) };
  fails(() => verifyCommand(reflected, KEY, opts), 'bad-mac');
  const reply = signReply(sampleReplies(worker.publicKey, WORKER, new Date(NOW)).completed, KEY);
  fails(() => verifyReply(reply, generateMacKey(), opts), 'bad-mac');
});

test('old and future-dated commands are refused outside the replay window', () => {
  const cmd = signCommand(commands().verify, KEY);
  const age = MESSAGE_MAX_AGE_SECONDS * 1000;
  assert.ok(verifyCommand(cmd, KEY, { ...opts, now: NOW + age }));
  fails(() => verifyCommand(cmd, KEY, { ...opts, now: NOW + age + 1 }), 'expired');
  fails(() => verifyCommand(cmd, KEY, { ...opts, now: NOW + 11_000, maxAgeSeconds: 10 }), 'expired');
  assert.ok(verifyCommand(cmd, KEY, { ...opts, now: NOW - 60_000 }));
  fails(() => verifyCommand(cmd, KEY, { ...opts, now: NOW - 10 * 60_000 }), 'from-future');
  // Re-dating needs the key: moving sentAt forward breaks the MAC.
  fails(() => verifyCommand({ ...cmd, sentAt: new Date(NOW + age).toISOString() }, KEY, { ...opts, now: NOW + age + 1 }), 'bad-mac');
});

test('malformed keys are refused', () => {
  assert.equal(Buffer.from(generateMacKey(), 'base64').length, 32);
  assert.notEqual(generateMacKey(), generateMacKey());
  const cmd = commands().shutdown;
  fails(() => signCommand(cmd, Buffer.alloc(31).toString('base64')), 'bad-key', 'INVALID_ARGUMENT');
  fails(() => signCommand(cmd, 'not base64 at all'), 'bad-key', 'INVALID_ARGUMENT');
  assert.ok(signCommand(cmd, new Uint8Array(32)).mac);
  fails(() => sealSecret('x', Buffer.alloc(31).toString('base64'), 'aad'), 'bad-key', 'INVALID_ARGUMENT');
  fails(() => sealSecret('x', Buffer.alloc(32).toString('base64'), 'aad'), 'bad-key', 'INVALID_ARGUMENT'); // low-order point
  fails(() => importPrivateKey('AAAA'), 'bad-key', 'INVALID_ARGUMENT');
});

test('sealed secrets open only with the right private key and AAD, and never contain the plaintext (property)', () => {
  const other = generateWorkerKeyPair();
  fc.assert(fc.property(fc.string({ minLength: 8, maxLength: 200 }), fc.string({ maxLength: 60 }), (plain, aad) => {
    const sealed = sealSecret(plain, worker.publicKey, aad);
    assert.equal(openSecret(sealed, worker.privateKey, aad).toString('utf8'), plain);
    fails(() => openSecret(sealed, other.privateKey, aad), 'bad-secret');
    fails(() => openSecret(sealed, worker.privateKey, aad + '!'), 'bad-secret');
    assert.ok(!JSON.stringify(sealed).includes(plain));
    assert.ok(!Buffer.from(sealed.ct, 'base64').includes(Buffer.from(plain)));
  }), { numRuns: 50 });
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    assert.deepEqual(openSecret(sealSecret(bytes, worker.publicKey, 'a'), worker.privateKey, 'a'), Buffer.from(bytes));
  }), { numRuns: 20 });
});

test('an altered sealed secret does not open', () => {
  const sealed = sealSecret('s3cret-value', worker.publicKey, 'aad');
  const flip = (b64: string) => { const b = Buffer.from(b64, 'base64'); b[0]! ^= 1; return b.toString('base64'); };
  fails(() => openSecret({ ...sealed, ct: flip(sealed.ct) }, worker.privateKey, 'aad'), 'bad-secret');
  fails(() => openSecret({ ...sealed, nonce: flip(sealed.nonce) }, worker.privateKey, 'aad'), 'bad-secret');
  fails(() => openSecret({ ...sealed, epk: generateWorkerKeyPair().publicKey }, worker.privateKey, 'aad'), 'bad-secret');
  fails(() => openSecret({ ...sealed, kid: keyIdOf(generateWorkerKeyPair().publicKey) }, worker.privateKey, 'aad'), 'bad-secret');
  // Each seal is fresh: same plaintext, different ephemeral key, nonce and ciphertext.
  const again = sealSecret('s3cret-value', worker.publicKey, 'aad');
  assert.notEqual(again.epk, sealed.epk);
  assert.notEqual(again.nonce, sealed.nonce);
  assert.notEqual(again.ct, sealed.ct);
});

test('sealed fields are bound to their command id and field path', () => {
  const cmds = commands();
  const backup = cmds.backup as CommandOf<'backup'>;
  assert.deepEqual(sealedFields(backup).map((f) => f.path).sort(), ['repository.password', 'repository.sas', 'source.password']);
  const opened = openCommandSecrets(backup, worker.privateKey);
  assert.equal(opened.get('source.password')?.toString(), SECRETS.dbPassword);
  assert.equal(opened.get('repository.password')?.toString(), SECRETS.repoPassword);
  assert.equal(opened.get('repository.sas')?.toString(), SECRETS.sas);
  const copy = cmds.copy as CommandOf<'copy'>;
  assert.equal(openCommandSecrets(copy, worker.privateKey).get('to.sas')?.toString(), SECRETS.targetSas);
  // Moved to another field of the same command: refused.
  const swapped = { ...backup, source: { ...backup.source, password: backup.repository.password } };
  fails(() => openCommandSecrets(swapped, worker.privateKey), 'bad-secret');
  // Replayed inside another command: refused.
  const restore = cmds.restore as CommandOf<'restore'>;
  const transplanted = { ...restore, repository: { ...restore.repository, password: backup.repository.password } };
  fails(() => openCommandSecrets(transplanted, worker.privateKey), 'bad-secret');
  assert.equal(openSecret(backup.source.password!, worker.privateKey, secretAad(backup.id, 'source.password')).toString(), SECRETS.dbPassword);
});

test('no plaintext secret appears in any encoded command', () => {
  for (const cmd of Object.values(commands())) {
    const text = encodeMessage(signCommand(cmd, KEY));
    const json = Buffer.from(text, 'base64').toString('utf8');
    for (const secret of Object.values(SECRETS)) {
      assert.ok(!json.includes(secret) && !text.includes(secret), `${cmd.kind} leaks a secret`);
      assert.ok(!json.includes(Buffer.from(secret).toString('base64')), `${cmd.kind} leaks a secret in base64`);
    }
    assert.ok(!/sig=/.test(json), `${cmd.kind} carries a SAS signature`);
  }
});

test('the worker private key survives export and import (restart on the same VM)', () => {
  const restored = importPrivateKey(exportPrivateKey(worker.privateKey));
  assert.equal(publicKeyOf(restored), worker.publicKey);
  const sealed = sealSecret('still-readable', worker.publicKey, 'x');
  assert.equal(openSecret(sealed, exportPrivateKey(worker.privateKey), 'x').toString(), 'still-readable');
  assert.equal(keyIdOf(worker.publicKey), sealed.kid);
});

test('MAC known-answer vector (the one in docs/PROTOCOL.md, checked with Python hmac)', () => {
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64');
  assert.equal(key, 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=');
  const msg: Command = { v: 1, id: '6f9619ff-8b86-4011-b42d-00c04fc964ff', workerId: 'w-eastus-0001', sentAt: '2030-06-01T12:00:00.000Z', kind: 'shutdown', reason: 'session finished', abortRunning: false };
  assert.equal(canonicalJson(msg), '{"abortRunning":false,"id":"6f9619ff-8b86-4011-b42d-00c04fc964ff","kind":"shutdown","reason":"session finished","sentAt":"2030-06-01T12:00:00.000Z","v":1,"workerId":"w-eastus-0001"}');
  const signed = signCommand(msg, key);
  assert.equal(signed.mac, '9XWvGeP/hQl8f8jJz9ozGuTAv9OyY8ZRRcAj7y+MWfE=');
  assert.ok(verifyCommand(signed, key, { workerId: 'w-eastus-0001', now: Date.parse('2030-06-01T12:00:01Z') }));
});
