// WorkerChannel against real worker processes (`node agent/cli.ts worker`) on Azurite queues, with
// the harness PostgreSQL as the source and repositories in Azurite blob containers.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { CosmosBackupError } from '../../shared/errors.ts';
import { generateMacKey, signReply } from '../../shared/protocol/auth.ts';
import { createReply, encodeMessage, queueNames } from '../../shared/protocol/messages.ts';
import { decodePoisonMessage } from '../../shared/protocol/poison.ts';
import { COMMIT, VERSION } from '../../agent/version.ts';
import { JobFailedError, WorkerChannel, WorkerLostError, WorkerTimeoutError, type JobProgress, type WorkerTimings } from '../../controller/workers/channel.ts';
import { useAzurite, type AzuriteServer } from '../support/azurite.ts';
import { createTestDatabase, usePostgres, type PostgresServer } from '../support/postgres.ts';
import { backupBody, createTestRepo, fillDatabase, findSecrets, tempStateDir, waitUntil, type TestRepo, type WorkerProcess } from '../worker/support.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

let azurite: AzuriteServer;
let server: PostgresServer;
let database: string;
let service: QueueServiceClient;
const workers: WorkerProcess[] = [];

before(async () => {
  azurite = await useAzurite();
  server = await usePostgres();
  service = QueueServiceClient.fromConnectionString(azurite.connectionString);
  database = await createTestDatabase(server, 'channel');
  // Big enough that a backup is still running when its first progress arrives.
  await fillDatabase(server, database, 300_000);
});

after(() => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
});

/** test/worker/support.ts's spawnWorker, taking the id and key instead of a TestController. */
function spawnWorker(workerId: string, macKey: string, stateDir = tempStateDir()): WorkerProcess {
  const child = spawn(process.execPath, [
    path.join(ROOT, 'agent', 'cli.ts'), 'worker', '--worker-id', workerId, '--state-dir', stateDir,
    '--visibility-timeout', '3s', '--renew-every', '1s', '--heartbeat-every', '1s', '--progress-every', '200ms',
    '--poll', '200ms', '--defer', '2s', '--idle-timeout', '10m', '--abort-grace', '5s',
  ], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, COSMOS_BACKUP_QUEUE_CONNECTION_STRING: azurite.connectionString, COSMOS_BACKUP_WORKER_KEY: macKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const w = { child, output: () => out, exited };
  workers.push(w);
  return w;
}

interface Setup {
  workerId: string;
  macKey: string;
  channel: WorkerChannel;
  logs: string[];
}

async function setup(prefix: string, timings: Partial<WorkerTimings> = {}, expected: { version: string; commit?: string } = { version: VERSION, commit: COMMIT }): Promise<Setup> {
  const workerId = `${prefix}-${randomBytes(4).toString('hex')}`;
  const macKey = generateMacKey();
  const logs: string[] = [];
  const channel = new WorkerChannel({
    queues: service, workerId, macKey, expected, keepTexts: true, log: (l) => logs.push(l),
    timings: { pollMs: 200, ...timings },
  });
  await channel.createQueues();
  return { workerId, macKey, channel, logs };
}

/** The JSON of every base64 message text (commands and replies alike). */
function decoded(texts: string[]): Array<Record<string, any>> {
  return texts.flatMap((t) => {
    try {
      return [JSON.parse(Buffer.from(t, 'base64').toString('utf8')) as Record<string, any>];
    } catch {
      return [];
    }
  });
}

function secretsOf(repo: TestRepo, macKey: string): Record<string, string> {
  const sig = new URLSearchParams(repo.sas).get('sig')!;
  return { dbPassword: server.password, repoPassword: repo.password, sasSig: decodeURIComponent(sig), sasSigEncoded: sig, macKey };
}

async function exitsCleanly(w: WorkerProcess): Promise<void> {
  const r = await w.exited;
  assert.equal(r.code, 0, `worker exited with ${r.code ?? r.signal}: ${w.output().slice(-2000)}`);
}

test('hello timeout and abort, a refused agent version, shutdown with goodbye, deleteQueues', async () => {
  const { workerId, macKey, channel, logs } = await setup('ver', {}, { version: '0.0.0-other', commit: 'deadbeef' });

  // No worker yet: a short hello timeout is a typed error, and an abort rejects with its reason.
  const impatient = new WorkerChannel({ queues: service, workerId, macKey, timings: { helloTimeoutMs: 800, pollMs: 100 } });
  await assert.rejects(impatient.waitForHello(), (e: unknown) => e instanceof WorkerTimeoutError && e.code === 'ABORTED' && /did not say hello within/.test(e.message));
  const ac = new AbortController();
  const reason = new Error('session cancelled');
  setTimeout(() => ac.abort(reason), 300);
  await assert.rejects(impatient.waitForHello(ac.signal), (e: unknown) => e === reason);

  const w = spawnWorker(workerId, macKey);
  await assert.rejects(channel.waitForHello(), (e: unknown) => {
    assert.ok(e instanceof CosmosBackupError);
    assert.equal(e.code, 'UNSUPPORTED_FORMAT');
    assert.match(e.message, new RegExp(`runs agent ${VERSION.replace(/\./g, '\\.')} \\(${COMMIT}\\), but the controller deployed 0\\.0\\.0-other \\(deadbeef\\)`));
    return true;
  });
  assert.ok(channel.lastSeen() instanceof Date, 'the hello was authentic');

  await channel.shutdown('refused: another agent version', { waitMs: 30_000 });
  await exitsCleanly(w);
  const bye = decoded(channel.texts()).filter((m) => m.kind === 'goodbye');
  assert.equal(bye.length, 1);
  assert.equal(bye[0]!.reason, 'shutdown');
  const sent = decoded(channel.texts()).filter((m) => m.kind === 'shutdown');
  assert.equal(sent.length, 1);
  assert.equal(sent[0]!.abortRunning, false);
  assert.ok(logs.some((l) => /goodbye \(shutdown\)/.test(l)));

  const names = queueNames(workerId);
  for (const q of [names.commandsPoison, names.repliesPoison]) await service.getQueueClient(q).createIfNotExists();
  for (const q of Object.values(names)) assert.equal(await service.getQueueClient(q).exists(), true, q);
  await channel.deleteQueues();
  for (const q of Object.values(names)) assert.equal(await service.getQueueClient(q).exists(), false, q);
  await channel.deleteQueues(); // already gone: fine
});

test('one worker: backup with progress despite forged replies, a failing job, an aborted job, no secrets on the wire', async (t) => {
  const { workerId, macKey, channel, logs } = await setup('main');
  const repo = await createTestRepo(azurite);
  const w = spawnWorker(workerId, macKey);
  const names = queueNames(workerId);
  const replyQ = service.getQueueClient(names.replies);
  const forgedTexts: string[] = [];
  const forge = async (body: Parameters<typeof createReply>[0]) => {
    const text = encodeMessage(signReply(createReply(body, { workerId }), generateMacKey()));
    forgedTexts.push(text);
    await replyQ.sendMessage(text);
  };

  const hello = await channel.waitForHello();
  assert.equal(Buffer.from(hello.publicKey, 'base64').length, 32);
  assert.equal(hello.version, VERSION);
  assert.equal(hello.commit, COMMIT);
  assert.equal(hello.pid, w.child.pid);

  let firstRestorePoint = '';
  await t.test('a backup returns a restore point of the repository; progress arrives; forged replies are set aside', async () => {
    const id = randomUUID();
    const fake = 'a'.repeat(64);
    // Already waiting on the queue before the command is sent: a forged success.
    await forge({ kind: 'completed', commandId: id, result: { restorePointId: fake, stats: { durationMs: 1 } } });
    const progress: JobProgress[] = [];
    let duringRun: Promise<void> | undefined;
    const result = await channel.run((cid, pub) => backupBody(cid, pub, server, database, repo), {
      commandId: id,
      onProgress: (p) => {
        progress.push(p);
        // And one forged failure while the job runs.
        duringRun ??= forge({ kind: 'failed', commandId: id, code: 'DATABASE_ERROR', message: 'forged', retryable: false });
      },
    });
    await duringRun;
    assert.match(result.restorePointId ?? '', /^[0-9a-f]{64}$/);
    assert.notEqual(result.restorePointId, fake);
    const r = await repo.open();
    assert.deepEqual(await r.listRestorePointIds(), [result.restorePointId]);
    assert.equal((await r.loadRestorePoint(result.restorePointId!)).database, database);
    assert.ok(result.stats.bytesRead! > 10_000_000);
    firstRestorePoint = result.restorePointId!;

    const data = progress.filter((p) => p.phase === 'data');
    assert.ok(data.some((p) => p.bytes > 0), `expected data progress, got ${JSON.stringify(progress.map((p) => [p.phase, p.bytes]))}`);
    for (let i = 1; i < data.length; i++) assert.ok(data[i]!.bytes >= data[i - 1]!.bytes, 'older progress is not delivered after newer');
    assert.ok(progress.every((p) => p.rate >= 0 && (p.etaSeconds === null || p.etaSeconds >= 0)));
    assert.ok(duringRun, 'a progress callback ran');
  });

  await t.test('a failed job rejects with the worker\'s code, message and retryable', async () => {
    const wrong = { ...server, password: 'not-the-password' };
    await assert.rejects(channel.run((cid, pub) => backupBody(cid, pub, wrong, database, repo)), (e: unknown) => {
      assert.ok(e instanceof JobFailedError, String(e));
      assert.equal(e.code, 'DATABASE_AUTH');
      assert.match(e.message, /refused the password/);
      assert.equal(e.retryable, false);
      assert.equal(e.details.retryable, false);
      assert.equal(e.details.workerId, workerId);
      return true;
    });
  });

  await t.test('an abort sends cancel, waits for ABORTED and rejects with the signal\'s reason', async () => {
    const id = randomUUID();
    const ac = new AbortController();
    const reason = new CosmosBackupError('ABORTED', 'the operator cancelled the session');
    await assert.rejects(channel.run((cid, pub) => backupBody(cid, pub, server, database, repo), {
      commandId: id, onProgress: (p) => { if (p.bytes > 0) ac.abort(reason); }, signal: ac.signal,
    }), (e: unknown) => e === reason);
    const msgs = decoded(channel.texts());
    const cancel = msgs.filter((m) => m.kind === 'cancel' && m.commandId === id);
    assert.equal(cancel.length, 1);
    assert.match(cancel[0]!.reason, /the operator cancelled the session/);
    const failed = msgs.filter((m) => m.kind === 'failed' && m.commandId === id);
    assert.equal(failed.length, 1, 'the channel waited for the job\'s end');
    assert.equal(failed[0]!.code, 'ABORTED');
    assert.equal(failed[0]!.retryable, false);
    assert.deepEqual(await (await repo.open()).listRestorePointIds(), [firstRestorePoint], 'no restore point from the aborted job');
  });

  await t.test('forged replies ended on the reply poison queue, one log line each', async () => {
    const poisonQ = service.getQueueClient(names.repliesPoison);
    const poison = (await poisonQ.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map((m) => decodePoisonMessage(m.messageText));
    assert.equal(poison.length, 2);
    assert.deepEqual(poison.map((p) => p.originalText).sort(), [...forgedTexts].sort(), 'kept byte for byte');
    for (const p of poison) {
      assert.equal(p.record.fault, 'bad-mac');
      assert.equal(p.record.queue, names.replies);
      assert.equal(p.record.claimedId, decoded([p.originalText])[0]!.id);
    }
    assert.equal(logs.filter((l) => /set aside a reply/.test(l) && /bad-mac/.test(l)).length, 2);
  });

  await t.test('no secret in any text sent or received, nor in the log', async () => {
    const texts = [...channel.texts(), ...logs];
    assert.ok(channel.texts().length > 20);
    const poisonQ = service.getQueueClient(names.repliesPoison);
    texts.push(...(await poisonQ.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map((m) => m.messageText));
    const secrets = secretsOf(repo, macKey);
    assert.deepEqual(findSecrets(texts, secrets), []);
    // The scan can fail: a sealed secret's plaintext is found when it is there.
    assert.deepEqual(findSecrets([Buffer.from(JSON.stringify({ x: repo.password })).toString('base64')], secrets), ['repoPassword']);
  });

  await channel.shutdown('test finished');
  await exitsCleanly(w);
  await channel.deleteQueues();
});

test('a worker killed mid-job is reported lost', async () => {
  const lostAfterMs = 4000;
  const { workerId, macKey, channel } = await setup('lost', { lostAfterMs });
  const repo = await createTestRepo(azurite);
  const w = spawnWorker(workerId, macKey);
  await channel.waitForHello();
  let killed = false;
  await assert.rejects(channel.run((cid, pub) => backupBody(cid, pub, server, database, repo), {
    onProgress: (p) => {
      if (p.bytes > 0 && !killed) {
        killed = true;
        w.child.kill('SIGKILL');
      }
    },
  }), (e: unknown) => {
    assert.ok(e instanceof WorkerLostError, String(e));
    assert.equal(e.details.retryable, true);
    assert.match(e.message, /no reply for \d+ s while command/);
    return true;
  });
  assert.ok(killed, 'killed during the job');
  assert.equal((await w.exited).signal, 'SIGKILL');
  await channel.deleteQueues();
});

test('a worker restarted without its key: the bad-secret failure is re-sealed to the new hello and re-sent with the same id', async () => {
  const { workerId, macKey, channel } = await setup('reseal');
  const repo = await createTestRepo(azurite);
  const first = spawnWorker(workerId, macKey);
  const hello1 = await channel.waitForHello();
  await channel.shutdown('replaced');
  await exitsCleanly(first);

  const id = randomUUID();
  const running = channel.run((cid, pub) => backupBody(cid, pub, server, database, repo), { commandId: id });
  running.catch(() => undefined);
  // Sealed to the first worker's key; the replacement starts with an empty state directory.
  await waitUntil('the backup command on the queue', () => decoded(channel.texts()).some((m) => m.kind === 'backup'));
  const second = spawnWorker(workerId, macKey);
  const result = await running;

  const r = await repo.open();
  assert.deepEqual(await r.listRestorePointIds(), [result.restorePointId]);
  const msgs = decoded(channel.texts());
  const sends = msgs.filter((m) => m.kind === 'backup');
  assert.equal(sends.length, 2);
  assert.ok(sends.every((m) => m.id === id), 'the same command id');
  const hello2 = msgs.filter((m) => m.kind === 'hello').at(-1)!;
  assert.notEqual(hello2.publicKey, hello1.publicKey);
  assert.notEqual(sends[0]!.source.password.kid, sends[1]!.source.password.kid, 're-sealed to another key');
  const failed = msgs.filter((m) => m.kind === 'failed' && m.commandId === id);
  assert.equal(failed.length, 1);
  assert.equal(failed[0]!.code, 'UNAUTHENTICATED');
  assert.equal(failed[0]!.details.fault, 'bad-secret');
  assert.deepEqual(msgs.filter((m) => m.kind === 'accepted' && m.commandId === id).map((m) => m.attempt), [2]);

  await channel.shutdown('test finished');
  await exitsCleanly(second);
  await channel.deleteQueues();
});
