// Worker mode end to end: a test controller on Azurite queues, worker child processes, the
// harness PostgreSQL, and repositories in Azurite blob containers reached with a sealed SAS.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { generateMacKey, signCommand } from '../../shared/protocol/auth.ts';
import { createCommand, encodeMessage } from '../../shared/protocol/messages.ts';
import { decodePoisonMessage } from '../../shared/protocol/poison.ts';
import { verifyRepository } from '../../shared/repository/verify.ts';
import { useAzurite, type AzuriteServer } from '../support/azurite.ts';
import { createTestDatabase, usePostgres, type PostgresServer } from '../support/postgres.ts';
import {
  backupBody, createTestRepo, fillDatabase, findSecrets, sleep, spawnWorker, tempStateDir, TestController,
  type TestRepo, type WorkerProcess,
} from './support.ts';

let azurite: AzuriteServer;
let server: PostgresServer;
let database: string;
const workers: WorkerProcess[] = [];
const controllers: TestController[] = [];
const repos: TestRepo[] = [];

before(async () => {
  azurite = await useAzurite();
  server = await usePostgres();
  database = await createTestDatabase(server, 'worker');
  await fillDatabase(server, database, 300_000);
});

after(async () => {
  for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
});

async function setup(prefix: string): Promise<{ ctl: TestController; repo: TestRepo }> {
  const ctl = new TestController(azurite, prefix);
  await ctl.createQueues();
  controllers.push(ctl);
  const repo = await createTestRepo(azurite);
  repos.push(repo);
  return { ctl, repo };
}

function start(ctl: TestController, stateDir = tempStateDir(), extra: string[] = []): WorkerProcess {
  const w = spawnWorker(ctl, azurite, stateDir, extra);
  workers.push(w);
  return w;
}

async function stop(w: WorkerProcess): Promise<void> {
  if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  const r = await w.exited;
  assert.equal(r.code, 0, `worker exited with ${r.code ?? r.signal}: ${w.output().slice(-2000)}`);
}

test('a signed backup command produces a restore point, progress and a completed reply with statistics', async () => {
  const { ctl, repo } = await setup('ok');
  const w = start(ctl);
  const hello = await ctl.hello();
  assert.match(hello.version, /^\d+\.\d+\.\d+/);
  assert.equal(hello.pid, w.child.pid);
  const id = randomUUID();
  await ctl.send(ctl.sign((cid) => backupBody(cid, hello.publicKey, server, database, repo), id));

  const done = await ctl.waitFor('completed', (r) => r.commandId === id);
  const accepted = ctl.of('accepted', id);
  assert.equal(accepted.length, 1);
  assert.equal(accepted[0]!.attempt, 1);
  const progress = ctl.of('progress', id);
  assert.ok(progress.some((p) => p.phase === 'data' && p.bytes > 0), `expected data progress, got ${JSON.stringify(progress.map((p) => [p.phase, p.bytes]))}`);
  assert.ok(progress.every((p) => p.rate >= 0));

  const r = await repo.open();
  const ids = await r.listRestorePointIds();
  assert.deepEqual(ids, [done.result.restorePointId]);
  const rp = await r.loadRestorePoint(ids[0]!);
  assert.equal(rp.database, database);
  assert.deepEqual(rp.labels, { policy: 'test' });
  assert.equal(done.result.stats.bytesRead, rp.stats.bytes);
  assert.equal(done.result.stats.objects, rp.stats.objects);
  assert.ok(done.result.stats.bytesRead! > 10_000_000);
  assert.ok(done.result.stats.bytesStored! > 0);

  assert.ok(ctl.of('heartbeat').length >= 1, 'heartbeats arrive');
  await stop(w);
  await ctl.poll();
  const bye = ctl.of('goodbye');
  assert.equal(bye.length, 1);
  assert.equal(bye[0]!.reason, 'sigterm');
  assert.equal(bye[0]!.abortedCommandId, undefined);
});

test('the same command delivered twice makes one restore point and two consistent replies', async () => {
  const { ctl, repo } = await setup('twice');
  const w = start(ctl);
  const hello = await ctl.hello();
  const id = randomUUID();
  const text = ctl.sign((cid) => backupBody(cid, hello.publicKey, server, database, repo), id);
  await ctl.send(text);
  await ctl.send(text);
  await ctl.waitFor('completed', (r) => r.commandId === id);
  const both = await (async () => {
    for (let i = 0; i < 300; i++) {
      await ctl.poll();
      if (ctl.of('completed', id).length >= 2) return ctl.of('completed', id);
      await sleep(100);
    }
    throw new Error('second reply did not arrive');
  })();
  assert.equal(both.length, 2);
  assert.deepEqual(both[1]!.result, both[0]!.result);
  assert.notEqual(both[1]!.id, both[0]!.id, 'each reply has its own envelope');
  assert.equal(ctl.of('accepted', id).length, 1, 'the job ran once');
  const r = await repo.open();
  assert.deepEqual(await r.listRestorePointIds(), [both[0]!.result.restorePointId]);
  await stop(w);
});

test('forged, tampered and malformed commands are rejected, set aside and run nothing', async () => {
  const { ctl, repo } = await setup('forged');
  const w = start(ctl);
  const hello = await ctl.hello();

  // Tampered: a signed command with one field changed afterwards.
  const tamperedId = randomUUID();
  const signed = JSON.parse(Buffer.from(ctl.sign((cid) => backupBody(cid, hello.publicKey, server, database, repo), tamperedId), 'base64').toString()) as { source: { databases: string[] } };
  signed.source.databases = ['postgres'];
  await ctl.send(Buffer.from(JSON.stringify(signed)).toString('base64'));
  // Forged: well-formed, signed with a key that is not the worker's.
  const forgedId = randomUUID();
  const forged = signCommand(createCommand(backupBody(forgedId, hello.publicKey, server, database, repo), { workerId: ctl.workerId, id: forgedId }), generateMacKey());
  await ctl.send(encodeMessage(forged));
  // Malformed: not even base64 JSON.
  await ctl.send('this is not a command');

  await ctl.waitFor('rejected', (r) => r.claimedId === tamperedId);
  await ctl.waitFor('rejected', (r) => r.claimedId === forgedId);
  await ctl.waitFor('rejected', (r) => r.fault === 'malformed');
  const rejected = ctl.of('rejected');
  assert.equal(rejected.length, 3);
  assert.deepEqual(rejected.filter((r) => r.claimedId).map((r) => r.fault).sort(), ['bad-mac', 'bad-mac']);
  assert.ok(rejected.filter((r) => r.fault === 'bad-mac').every((r) => r.code === 'UNAUTHENTICATED'));

  const poison = (await ctl.poisonTexts()).map(decodePoisonMessage);
  assert.equal(poison.length, 3);
  assert.deepEqual(poison.map((p) => p.record.fault).sort(), ['bad-mac', 'bad-mac', 'malformed']);
  assert.ok(poison.every((p) => p.record.queue === ctl.names.commands && p.record.reason.length > 0));
  assert.ok(poison.some((p) => p.originalText === 'this is not a command'), 'the original is kept byte for byte');

  await sleep(1000);
  await ctl.poll();
  assert.equal(ctl.of('accepted').length, 0, 'nothing ran');
  assert.equal(ctl.of('completed').length + ctl.of('failed').length, 0);
  assert.deepEqual(await (await repo.open()).listRestorePointIds(), []);
  assert.equal((await ctl.cmdQ.getProperties()).approximateMessagesCount, 0, 'refused commands leave the queue');
  await stop(w);
});

test('a worker killed with SIGKILL mid-backup: a new worker completes the redelivered command, verify passes, one restore point', async () => {
  const { ctl, repo } = await setup('kill');
  const stateDir = tempStateDir();
  const first = start(ctl, stateDir);
  const hello = await ctl.hello();
  const id = randomUUID();
  await ctl.send(ctl.sign((cid) => backupBody(cid, hello.publicKey, server, database, repo), id));
  await ctl.waitFor('progress', (p) => p.commandId === id && p.phase === 'data' && p.bytes > 0);
  first.child.kill('SIGKILL');
  await first.exited;
  await ctl.poll();
  assert.equal(ctl.of('completed', id).length, 0, 'killed before it finished (make the table bigger if this fails)');
  assert.deepEqual(await (await repo.open()).listRestorePointIds(), [], 'no partial restore point');

  const second = start(ctl, stateDir);
  const hello2 = await ctl.waitFor('hello', (h) => h.pid === second.child.pid);
  assert.equal(hello2.publicKey, hello.publicKey, 'the restarted worker keeps its key (sealed secrets still open)');
  const done = await ctl.waitFor('completed', (r) => r.commandId === id);
  const attempts = ctl.of('accepted', id).map((a) => a.attempt);
  assert.deepEqual(attempts, [1, 2]);

  const r = await repo.open();
  assert.deepEqual(await r.listRestorePointIds(), [done.result.restorePointId]);
  const v = await verifyRepository(r, { readData: true });
  assert.deepEqual(v.problems, []);
  assert.equal(v.restorePoints, 1);
  await stop(second);
});

test('SIGTERM during a backup aborts it without a restore point, replies failed and goodbye, and exits 0', async () => {
  const { ctl, repo } = await setup('term');
  const w = start(ctl);
  const hello = await ctl.hello();
  const id = randomUUID();
  await ctl.send(ctl.sign((cid) => backupBody(cid, hello.publicKey, server, database, repo), id));
  await ctl.waitFor('progress', (p) => p.commandId === id && p.phase === 'data' && p.bytes > 0);
  w.child.kill('SIGTERM');
  const exit = await w.exited;
  assert.equal(exit.code, 0);
  await ctl.poll();
  const failed = ctl.of('failed', id);
  assert.equal(failed.length, 1, `replies: ${ctl.replies.map((r) => r.kind).join(',')}`);
  assert.equal(failed[0]!.code, 'ABORTED');
  assert.equal(failed[0]!.retryable, true);
  const bye = ctl.of('goodbye');
  assert.equal(bye.length, 1);
  assert.equal(bye[0]!.reason, 'sigterm');
  assert.equal(bye[0]!.abortedCommandId, id);
  assert.equal(ctl.replies[ctl.replies.length - 1]!.kind, 'goodbye', 'goodbye is the last reply');
  const r = await repo.open();
  assert.deepEqual(await r.listRestorePointIds(), []);
  assert.deepEqual((await verifyRepository(r)).problems, []);
});

test('a message delivered too often ends in the poison queue with its reason', async () => {
  const { ctl, repo } = await setup('poison');
  // The worker's key is needed to seal; a first worker announces it, then exits.
  const stateDir = tempStateDir();
  const w1 = start(ctl, stateDir);
  const hello = await ctl.hello();
  await stop(w1);
  const id = randomUUID();
  await ctl.send(ctl.sign((cid) => backupBody(cid, hello.publicKey, server, database, repo), id));
  // Two deliveries that never finished (as if two workers died on it).
  for (let i = 0; i < 2; i++) {
    const m = (await ctl.cmdQ.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 30 })).receivedMessageItems[0]!;
    await ctl.cmdQ.updateMessage(m.messageId, m.popReceipt, undefined, 0);
  }
  const w2 = start(ctl, stateDir, ['--max-dequeue', '2']);
  const rej = await ctl.waitFor('rejected', (r) => r.claimedId === id);
  assert.equal(rej.fault, 'poison');
  const poison = (await ctl.poisonTexts()).map(decodePoisonMessage);
  assert.equal(poison.length, 1);
  assert.equal(poison[0]!.record.fault, 'poison');
  assert.equal(poison[0]!.record.dequeueCount, 3);
  assert.match(poison[0]!.record.reason, /delivered 3 times without finishing \(limit 2\)/);
  assert.equal(poison[0]!.record.claimedId, id);
  assert.equal(poison[0]!.originalText, ctl.sentTexts[0]);
  assert.equal(ctl.of('accepted', id).length, 0);
  await stop(w2);
});

test('the idle timeout makes the worker say goodbye and exit by itself', async () => {
  const { ctl } = await setup('idle');
  const w = start(ctl, tempStateDir(), ['--idle-timeout', '1s']);
  const exit = await w.exited;
  assert.equal(exit.code, 0);
  await ctl.poll();
  assert.equal(ctl.of('goodbye')[0]?.reason, 'idle-timeout');
});

test('no secret appears in any queue message, worker log line or repository object', async () => {
  assert.ok(controllers.length >= 5 && workers.length >= 5, 'runs after the other tests');
  const secrets: Record<string, string> = { dbPassword: server.password };
  controllers.forEach((c, i) => { secrets[`macKey${i}`] = c.macKey; });
  repos.forEach((r, i) => {
    secrets[`repoPassword${i}`] = r.password;
    secrets[`sasSig${i}`] = decodeURIComponent(new URLSearchParams(r.sas).get('sig')!);
    secrets[`sasSigEncoded${i}`] = new URLSearchParams(r.sas).get('sig')!;
  });
  const texts: Array<string | Buffer> = [];
  for (const c of controllers) {
    await c.poll();
    texts.push(...c.replyTexts, ...c.sentTexts, ...(await c.poisonTexts()));
  }
  texts.push(...workers.map((w) => w.output()));
  for (const r of repos) texts.push(...(await r.blobs()));
  assert.ok(texts.length > 50);
  assert.deepEqual(findSecrets(texts, secrets), []);
  // The scan itself can fail: a log with a secret in it is found.
  assert.deepEqual(findSecrets([`x ${server.password} y`], secrets), ['dbPassword']);
});
