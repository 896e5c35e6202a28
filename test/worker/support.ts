// A test "controller" for the worker tests: creates a worker's queue pair on Azurite, signs and
// seals commands the way the controller will, collects and authenticates replies; plus a worker
// child process (`node agent/cli.ts worker …`) whose log output is kept for scanning.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { QueueServiceClient, type QueueClient } from '@azure/storage-queue';
import { ContainerSASPermissions, generateBlobSASQueryParameters, StorageSharedKeyCredential, BlobServiceClient } from '@azure/storage-blob';
import pg from 'pg';
import { generateMacKey, openReply, sealField, signCommand } from '../../shared/protocol/auth.ts';
import { createCommand, encodeMessage, queueNames, type CommandBody, type QueueNames, type Reply, type ReplyOf, type ReplyKind, type Repository as RepoRef } from '../../shared/protocol/messages.ts';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import type { AzuriteServer } from '../support/azurite.ts';
import type { PostgresServer } from '../support/postgres.ts';
import { tempDir } from '../support/temp-dir.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitUntil<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export class TestController {
  readonly workerId: string;
  readonly macKey = generateMacKey();
  readonly names: QueueNames;
  readonly service: QueueServiceClient;
  readonly cmdQ: QueueClient;
  readonly replyQ: QueueClient;
  readonly poisonQ: QueueClient;
  /** every authentic reply, in arrival order */
  readonly replies: Reply[] = [];
  /** raw text of every message seen on the reply queue (for the secret scan) */
  readonly replyTexts: string[] = [];
  /** texts of commands sent */
  readonly sentTexts: string[] = [];

  constructor(azurite: AzuriteServer, prefix = 'wt') {
    this.workerId = `${prefix}-${randomBytes(4).toString('hex')}`;
    this.names = queueNames(this.workerId);
    this.service = QueueServiceClient.fromConnectionString(azurite.connectionString);
    this.cmdQ = this.service.getQueueClient(this.names.commands);
    this.replyQ = this.service.getQueueClient(this.names.replies);
    this.poisonQ = this.service.getQueueClient(this.names.commandsPoison);
  }

  async createQueues(): Promise<void> {
    await this.cmdQ.createIfNotExists();
    await this.replyQ.createIfNotExists();
  }

  /** Reads (and deletes) what is on the reply queue; every reply must authenticate. */
  async poll(): Promise<void> {
    for (;;) {
      const r = await this.replyQ.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 30 });
      if (!r.receivedMessageItems.length) return;
      for (const m of r.receivedMessageItems) {
        this.replyTexts.push(m.messageText);
        this.replies.push(openReply(m.messageText, this.macKey, { workerId: this.workerId }));
        await this.replyQ.deleteMessage(m.messageId, m.popReceipt);
      }
    }
  }

  of<K extends ReplyKind>(kind: K, commandId?: string): Array<ReplyOf<K>> {
    return this.replies.filter((r): r is ReplyOf<K> => r.kind === kind && (commandId === undefined || (r as { commandId?: string }).commandId === commandId));
  }

  async waitFor<K extends ReplyKind>(kind: K, pred: (r: ReplyOf<K>) => boolean = () => true, timeoutMs = 90_000): Promise<ReplyOf<K>> {
    return waitUntil(`a ${kind} reply`, async () => {
      await this.poll();
      return this.of(kind).find(pred);
    }, timeoutMs, 100);
  }

  async hello(timeoutMs = 30_000): Promise<ReplyOf<'hello'>> {
    const hellos = await waitUntil('hello', async () => { await this.poll(); const h = this.of('hello'); return h.length ? h : undefined; }, timeoutMs);
    return hellos[hellos.length - 1]!;
  }

  /** Signs a command; `build(id)` gets the command id first so secrets can be sealed bound to it. */
  sign(build: (id: string) => CommandBody, id = randomUUID()): string {
    const cmd = signCommand(createCommand(build(id), { workerId: this.workerId, id }), this.macKey);
    return encodeMessage(cmd);
  }

  async send(text: string): Promise<void> {
    this.sentTexts.push(text);
    await this.cmdQ.sendMessage(text, { messageTimeToLive: 24 * 3600 });
  }

  async poisonTexts(): Promise<string[]> {
    if (!(await this.poisonQ.exists())) return [];
    const r = await this.poisonQ.peekMessages({ numberOfMessages: 32 });
    return r.peekedMessageItems.map((m) => m.messageText);
  }
}

export interface TestRepo {
  container: string;
  location: string;
  sas: string;
  password: string;
  open(): Promise<Repository>;
  /** a command's repository field with the SAS and password sealed to the worker */
  ref(commandId: string, field: string, workerPublicKey: string): RepoRef;
  /** raw bytes of every blob in the container */
  blobs(): Promise<Buffer[]>;
}

export async function createTestRepo(azurite: AzuriteServer): Promise<TestRepo> {
  const container = `wk-${randomBytes(5).toString('hex')}`;
  const location = `azblob://${azurite.account}/${container}/repo`;
  const env = { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString };
  const password = `repo-pw-${randomBytes(9).toString('hex')}`;
  await Repository.init(await openStore(location, { env, create: true }), { password });
  const sas = generateBlobSASQueryParameters({
    containerName: container, permissions: ContainerSASPermissions.parse('racwdl'), expiresOn: new Date(Date.now() + 6 * 3600_000),
  }, new StorageSharedKeyCredential(azurite.account, azurite.accountKey)).toString();
  return {
    container, location, sas, password,
    open: async () => Repository.open(await openStore(location, { env }), { password }),
    ref: (id, field, pub) => ({
      location, endpoint: azurite.blobEndpoint, access: 'sas',
      sas: sealField(id, `${field}.sas`, sas, pub), password: sealField(id, `${field}.password`, password, pub),
    }),
    async blobs() {
      const c = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(container);
      const out: Buffer[] = [];
      for await (const b of c.listBlobsFlat()) out.push(await c.getBlobClient(b.name).downloadToBuffer());
      return out;
    },
  };
}

export function backupBody(id: string, pub: string, server: PostgresServer, database: string, repo: TestRepo): CommandBody {
  return {
    kind: 'backup', jobId: `test/${database}`, engine: 'postgres',
    source: {
      host: server.host, port: server.port, user: server.user,
      password: sealField(id, 'source.password', server.password, pub),
      tls: { mode: 'disable' }, databases: [database],
    },
    repository: repo.ref(id, 'repository', pub),
    labels: { policy: 'test' }, tags: ['D'], parallel: 2,
  };
}

/** A database with a few tables (and a large object); `rows` sizes the big one. */
export async function fillDatabase(server: PostgresServer, database: string, rows: number): Promise<void> {
  const c = new pg.Client({ connectionString: server.url(database) });
  await c.connect();
  try {
    await c.query(`CREATE TABLE small (id int PRIMARY KEY, name text NOT NULL)`);
    await c.query(`INSERT INTO small SELECT g, 'name ' || g FROM generate_series(1, 100) g`);
    await c.query(`CREATE TABLE big (id int PRIMARY KEY, payload text)`);
    // md5 text compresses poorly and deduplicates not at all: real work for the chunker.
    await c.query(`INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) || md5((g * 31)::text) FROM generate_series(1, $1::int) g`, [rows]);
    await c.query(`SELECT lo_from_bytea(0, decode(repeat('00ff', 5000), 'hex'))`);
  } finally {
    await c.end();
  }
}

export interface WorkerProcess {
  child: ChildProcess;
  /** everything the worker wrote to stdout and stderr */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnWorker(ctl: TestController, azurite: AzuriteServer, stateDir: string, extra: string[] = []): WorkerProcess {
  const child = spawn(process.execPath, [
    path.join(ROOT, 'agent', 'cli.ts'), 'worker', '--worker-id', ctl.workerId, '--state-dir', stateDir,
    '--visibility-timeout', '3s', '--renew-every', '1s', '--heartbeat-every', '1s', '--progress-every', '200ms',
    '--poll', '200ms', '--defer', '2s', '--idle-timeout', '10m', '--abort-grace', '5s', ...extra,
  ], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME,
      COSMOS_BACKUP_QUEUE_CONNECTION_STRING: azurite.connectionString,
      COSMOS_BACKUP_WORKER_KEY: ctl.macKey,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

export function tempStateDir(): string {
  return tempDir('cosmos-worker-state-');
}

/** Where each secret occurs in the texts (plain, or inside base64 message bodies). */
export function findSecrets(texts: Array<string | Buffer>, secrets: Record<string, string>): string[] {
  const found: string[] = [];
  for (const t of texts) {
    const raw = Buffer.isBuffer(t) ? t : Buffer.from(t);
    const views = [raw];
    if (!Buffer.isBuffer(t)) {
      // Queue texts are base64 JSON (poison texts: base64 record "." original).
      for (const part of t.split('.')) if (/^[A-Za-z0-9+/=]+$/.test(part)) views.push(Buffer.from(part, 'base64'));
    }
    for (const [name, s] of Object.entries(secrets)) {
      if (views.some((v) => v.includes(s))) found.push(name);
    }
  }
  return [...new Set(found)];
}
