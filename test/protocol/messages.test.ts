import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { generateMacKey, generateWorkerKeyPair, sealField, signCommand, signReply } from '../../shared/protocol/auth.ts';
import { MAX_MESSAGE_TEXT_BYTES } from '../../shared/protocol/constants.ts';
import { ProtocolError, type ProtocolFault } from '../../shared/protocol/errors.ts';
import {
  COMMAND_KINDS, CommandSchema, REPLY_KINDS, ReplySchema, createCommand, decodeMessage, encodeMessage,
  parseCommand, parseReply, peekEnvelope, queueNames,
  type Command, type CommandOf,
} from '../../shared/protocol/messages.ts';
import { WORKER, sampleCommands, sampleReplies } from './samples.ts';

const KEY = generateMacKey();
const { publicKey } = generateWorkerKeyPair();

/** Queue text of an arbitrary JSON value, bypassing encodeMessage's checks (what a forger could send). */
function rawText(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64');
}

function rejects(fn: () => unknown, fault: ProtocolFault, code?: string, pattern?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ProtocolError, `expected ProtocolError, got ${String(err)}`);
    assert.equal(err.fault, fault, err.message);
    if (code) assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

test('the kind lists match the schemas', () => {
  assert.deepEqual([...CommandSchema.options.map((o) => o.shape.kind.value)].sort(), [...COMMAND_KINDS].sort());
  assert.deepEqual([...ReplySchema.options.map((o) => o.shape.kind.value)].sort(), [...REPLY_KINDS].sort());
});

test('every command kind round-trips through encodeMessage and parseCommand', () => {
  const cmds = sampleCommands(publicKey);
  assert.deepEqual(Object.keys(cmds).sort(), [...COMMAND_KINDS].sort());
  for (const cmd of Object.values(cmds)) {
    const signed = signCommand(cmd, KEY);
    const text = encodeMessage(signed);
    assert.match(text, /^[A-Za-z0-9+/]+=*$/);
    assert.ok(text.length <= MAX_MESSAGE_TEXT_BYTES);
    assert.deepEqual(parseCommand(text), signed, cmd.kind);
  }
});

test('every reply kind round-trips through encodeMessage and parseReply', () => {
  const replies = sampleReplies(publicKey);
  assert.deepEqual(Object.keys(replies).sort(), [...REPLY_KINDS].sort());
  for (const reply of Object.values(replies)) {
    const signed = signReply(reply, KEY);
    assert.deepEqual(parseReply(encodeMessage(signed)), signed, reply.kind);
  }
});

test('generated backup commands round-trip (property)', () => {
  const name = fc.string({ minLength: 1, maxLength: 30 });
  fc.assert(fc.property(
    fc.array(name, { maxLength: 5 }),
    fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9._-]{0,20}$/).filter((k) => !/(key|token|secret|pass|sas|sig|mac|cred)/.test(k)), fc.string({ maxLength: 40 }), { maxKeys: 5 }),
    fc.array(fc.string({ minLength: 1, maxLength: 20 }), { maxLength: 5 }),
    fc.integer({ min: 1, max: 64 }),
    fc.constantFrom('postgres' as const, 'mongodb' as const),
    (databases, labels, tags, parallel, engine) => {
      const id = crypto.randomUUID();
      // Generated text that happens to look like a secret is refused by design; skip those cases.
      const cmd = (() => {
        try {
          return createCommand({
            kind: 'backup', jobId: 'job-1', engine, labels: { ...labels }, tags, parallel,
            source: { host: 'db.example', port: 5432, user: 'u', tls: { mode: 'require' }, databases, password: sealField(id, 'source.password', 'pw', publicKey) },
            repository: { location: 'file:///var/backups/repo', access: 'managed-identity' },
          }, { workerId: WORKER, id });
        } catch (err) {
          if (err instanceof ProtocolError && /secret/.test(err.message)) return undefined;
          throw err;
        }
      })();
      if (!cmd) return;
      const signed = signCommand(cmd, KEY);
      assert.deepEqual(parseCommand(encodeMessage(signed)), signed);
    },
  ), { numRuns: 60 });
});

test('parseCommand rejects unknown kinds, replies, other versions and unknown fields', () => {
  const cmd = signCommand(sampleCommands(publicKey).shutdown, KEY);
  rejects(() => parseCommand(rawText({ ...cmd, kind: 'format-disk' })), 'schema', 'INVALID_ARGUMENT', /unknown kind 'format-disk'/);
  rejects(() => parseCommand(rawText(signReply(sampleReplies(publicKey).hello, KEY))), 'schema', 'INVALID_ARGUMENT', /kind 'hello', which is not a command/);
  rejects(() => parseReply(rawText(cmd)), 'schema', 'INVALID_ARGUMENT', /not a reply/);
  rejects(() => parseCommand(rawText({ ...cmd, v: 2 })), 'version', 'UNSUPPORTED_FORMAT', /version 2; this build speaks 1/);
  rejects(() => parseCommand(rawText({ ...cmd, v: '1' })), 'version', 'UNSUPPORTED_FORMAT');
  const { v: _v, ...noVersion } = cmd;
  rejects(() => parseCommand(rawText(noVersion)), 'schema', 'INVALID_ARGUMENT', /no version/);
  rejects(() => parseCommand(rawText({ ...cmd, extra: 1 })), 'schema', 'INVALID_ARGUMENT', /Unrecognized key/);
  rejects(() => parseCommand(rawText({ ...cmd, id: 'not-a-uuid' })), 'schema', 'INVALID_ARGUMENT', /id:/);
  rejects(() => parseCommand(rawText({ ...cmd, workerId: 'Bad_Worker' })), 'schema', 'INVALID_ARGUMENT', /workerId/);
  rejects(() => parseCommand(rawText([cmd])), 'malformed');
  rejects(() => parseCommand('not base64!'), 'malformed', 'INVALID_ARGUMENT', /not base64/);
  rejects(() => parseCommand(Buffer.from('{"v":1,').toString('base64')), 'malformed', 'INVALID_ARGUMENT', /not JSON/);
});

test('nested fields are validated too: plaintext password, SAS in a URL, secret-named options', () => {
  const backup = sampleCommands(publicKey).backup as CommandOf<'backup'>;
  const withPlainPassword = { ...backup, source: { ...backup.source, password: 'hunter2' } };
  rejects(() => parseCommand(rawText(withPlainPassword)), 'schema', 'INVALID_ARGUMENT', /source\.password/);
  const withSasLocation = { ...backup, repository: { ...backup.repository, location: 'https://a.blob.core.windows.net/c?sv=1&sig=abc' } };
  rejects(() => parseCommand(rawText(withSasLocation)), 'schema', 'INVALID_ARGUMENT', /repository/);
  const withSecretOption = { ...backup, source: { ...backup.source, options: { password: 'x' } } };
  rejects(() => parseCommand(rawText(withSecretOption)), 'schema', 'INVALID_ARGUMENT', /source\.options/);
  const withUserInfo = { ...backup, repository: { ...backup.repository, endpoint: 'https://user:pw@a.blob.core.windows.net' } };
  rejects(() => parseCommand(rawText(withUserInfo)), 'schema', 'INVALID_ARGUMENT', /repository/);
  const withSigTag = { ...backup, tags: ['see https://x.blob.core.windows.net/c?sig=abcdef'] };
  rejects(() => parseCommand(rawText(withSigTag)), 'schema', 'INVALID_ARGUMENT', /tags/);
  // The rejection message names the field, never the value.
  assert.throws(() => parseCommand(rawText(withPlainPassword)), (e: Error) => !e.message.includes('hunter2'));
});

test('parse refuses queue text over the size budget', () => {
  const big = 'A'.repeat(MAX_MESSAGE_TEXT_BYTES + 4);
  rejects(() => parseCommand(big), 'too-large', 'INVALID_ARGUMENT');
  rejects(() => parseReply(big), 'too-large');
});

test('encodeMessage refuses oversize, unsigned and secret-carrying messages', () => {
  const replies = sampleReplies(publicKey);
  const completed = replies.completed as Extract<typeof replies.completed, { kind: 'completed' }>;
  const huge = { ...completed, result: { ...completed.result, problems: Array.from({ length: 60 }, (_, i) => `${i}`.padEnd(1000, 'x')) } };
  rejects(() => encodeMessage(signReply(huge, KEY)), 'too-large', 'INVALID_ARGUMENT', /PayloadRef/);
  rejects(() => encodeMessage(sampleCommands(publicKey).shutdown), 'missing-mac', 'UNAUTHENTICATED');
  const leaky = { ...completed, result: { ...completed.result, counts: { 'https://a.blob.core.windows.net/c/x?sv=1&sig=LEAK': 1 } } };
  rejects(() => encodeMessage(signReply(leaky, KEY)), 'secret-in-message', 'INVALID_ARGUMENT', /plaintext secret/);
  const failed = replies.failed as Extract<typeof replies.failed, { kind: 'failed' }>;
  const leakyMessage = { ...failed, message: 'cannot open https://a.blob.core.windows.net/c?sv=1&sig=LEAK' };
  assert.throws(() => encodeMessage(signReply(leakyMessage, KEY)), (e: Error) => e instanceof ProtocolError && !e.message.includes('LEAK'));
});

test('encodeMessage enforces the size limit exactly (property)', () => {
  // Vary the payload around the limit through result.counts entries of a chosen total size.
  const completed = sampleReplies(publicKey).completed as Extract<ReturnType<typeof sampleReplies>['completed'], { kind: 'completed' }>;
  fc.assert(fc.property(fc.integer({ min: 0, max: 120 }), fc.integer({ min: 1, max: 500 }), (n, len) => {
    const counts: Record<string, number> = {};
    for (let i = 0; i < n; i++) counts[`t${i}_`.padEnd(len, 'c')] = i;
    const msg = signReply({ ...completed, result: { ...completed.result, counts } }, KEY);
    const expected = Buffer.from(JSON.stringify(msg)).toString('base64').length;
    if (expected <= MAX_MESSAGE_TEXT_BYTES) {
      const text = encodeMessage(msg);
      assert.equal(text.length, expected);
      assert.deepEqual(parseReply(text), msg);
    } else {
      rejects(() => encodeMessage(msg), 'too-large');
    }
  }), { numRuns: 80 });
});

test('a message of exactly the budget is sent, one base64 quantum more is refused', () => {
  const completed = sampleReplies(publicKey).completed as Extract<ReturnType<typeof sampleReplies>['completed'], { kind: 'completed' }>;
  const make = (counts: Record<string, number>) => signReply({ ...completed, result: { ...completed.result, counts } }, KEY);
  const jsonLength = (counts: Record<string, number>) => Buffer.byteLength(JSON.stringify(make(counts)));
  // base64 turns 3 bytes into 4: the budget holds exactly MAX * 3 / 4 bytes of JSON.
  const target = MAX_MESSAGE_TEXT_BYTES * 3 / 4;
  const filler: Record<string, number> = {};
  for (let i = 0; jsonLength(filler) < target - 450; i++) filler[`f${i}`.padEnd(400, 'f')] = 1;
  const gap = target - jsonLength({ ...filler, z: 1 });
  const exact = make({ ...filler, ['z'.repeat(1 + gap)]: 1 });
  const over = make({ ...filler, ['z'.repeat(2 + gap)]: 1 });
  assert.equal(encodeMessage(exact).length, MAX_MESSAGE_TEXT_BYTES);
  assert.deepEqual(parseReply(encodeMessage(exact)), exact);
  assert.equal(Buffer.from(JSON.stringify(over)).toString('base64').length, MAX_MESSAGE_TEXT_BYTES + 4);
  rejects(() => encodeMessage(over), 'too-large');
});

test('createCommand validates the body it wraps', () => {
  assert.throws(() => createCommand({ kind: 'shutdown', reason: 'x', abortRunning: 'no' } as never, { workerId: WORKER }), ProtocolError);
  assert.throws(() => createCommand({ kind: 'shutdown', reason: 'x', abortRunning: false }, { workerId: 'UPPER' }), /workerId/);
  const c: Command = createCommand({ kind: 'shutdown', reason: 'x', abortRunning: false }, { workerId: WORKER, now: new Date('2030-01-02T03:04:05.678Z') });
  assert.equal(c.v, 1);
  assert.equal(c.sentAt, '2030-01-02T03:04:05.678Z');
  assert.equal(c.mac, undefined);
});

test('queue names follow cb-<workerId>-cmd/-reply and <queue>-poison within Azure naming rules', () => {
  const q = queueNames('w-eastus-0001');
  assert.deepEqual(q, { commands: 'cb-w-eastus-0001-cmd', replies: 'cb-w-eastus-0001-reply', commandsPoison: 'cb-w-eastus-0001-cmd-poison', repliesPoison: 'cb-w-eastus-0001-reply-poison' });
  const longest = queueNames('a'.repeat(40));
  for (const n of Object.values(longest)) assert.ok(n.length <= 63 && /^[a-z0-9]+(-[a-z0-9]+)*$/.test(n), n);
  for (const bad of ['', 'A', 'a--b', '-a', 'a-', 'a'.repeat(41), 'a_b']) assert.throws(() => queueNames(bad), ProtocolError, bad);
});

test('decodeMessage and peekEnvelope read what a message claims without trusting it', () => {
  const cmd = signCommand(sampleCommands(publicKey).verify, KEY);
  const text = encodeMessage(cmd);
  assert.deepEqual(decodeMessage(text), cmd);
  assert.deepEqual(peekEnvelope(text), { v: 1, id: cmd.id, kind: 'verify', workerId: WORKER });
  assert.deepEqual(peekEnvelope('%%%'), {});
  assert.deepEqual(peekEnvelope(Buffer.from('"just a string"').toString('base64')), {});
  assert.deepEqual(peekEnvelope(Buffer.from('null').toString('base64')), {});
});
