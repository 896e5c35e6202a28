// `worker`: run as a controller-driven worker over Azure Queue Storage (docs/AGENT.md, docs/PROTOCOL.md).
// Secrets (the per-worker MAC key, queue connection string or SAS) come from environment variables
// or 0600 files, never from arguments, which other users can read in the process list.
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { CosmosBackupError } from '../../shared/errors.ts';
import {
  HEARTBEAT_INTERVAL_SECONDS, MAX_DEQUEUE_COUNT, PROGRESS_MIN_INTERVAL_SECONDS, VISIBILITY_RENEW_SECONDS, VISIBILITY_TIMEOUT_SECONDS,
} from '../../shared/protocol/constants.ts';
import { parseDuration } from './repo.ts';
import { VERSION, COMMIT } from '../version.ts';
import type { QueueAuth } from '../worker/queues.ts';

interface WorkerCliOptions {
  workerId?: string;
  queueService?: string;
  queueConnectionStringEnv: string;
  queueSasEnv: string;
  clientId?: string;
  keyFile?: string;
  keyEnv: string;
  stateDir?: string;
  idleTimeout: string;
  maxDequeue: string;
  visibilityTimeout: string;
  renewEvery: string;
  heartbeatEvery: string;
  progressEvery: string;
  poll: string;
  defer: string;
  abortGrace: string;
  logLevel: string;
}

const bad = (m: string) => new CosmosBackupError('INVALID_ARGUMENT', m);

/** The MAC key from a 0600 file or an environment variable; only its validity is ever reported. */
export function readMacKey(o: { keyFile?: string; keyEnv: string }): string {
  let key: string | undefined;
  if (o.keyFile) {
    let st;
    try {
      st = statSync(o.keyFile);
      key = readFileSync(o.keyFile, 'utf8').trim();
    } catch (e) {
      throw bad(`cannot read the worker key file ${o.keyFile}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    if ((st.mode & 0o077) !== 0) throw bad(`the worker key file ${o.keyFile} is readable by others; chmod 600 it`);
  } else {
    key = process.env[o.keyEnv]?.trim();
    if (!key) throw bad(`no worker key: set ${o.keyEnv} or give --key-file (a 0600 file holding the base64 key the controller made)`);
  }
  const raw = Buffer.from(key, 'base64');
  if (raw.length !== 32 || raw.toString('base64') !== key) throw bad('the worker key must be 32 bytes in standard base64');
  return key;
}

function queueAuth(o: WorkerCliOptions): QueueAuth {
  const cs = process.env[o.queueConnectionStringEnv];
  if (cs) return { kind: 'connection-string', connectionString: cs };
  const service = o.queueService ?? process.env.COSMOS_BACKUP_QUEUE_SERVICE;
  if (!service) throw bad(`no queue service: give --queue-service URL (env COSMOS_BACKUP_QUEUE_SERVICE) or set ${o.queueConnectionStringEnv}`);
  let u: URL;
  try {
    u = new URL(service);
  } catch {
    throw bad('--queue-service is not a URL (expected https://<account>.queue.core.windows.net)');
  }
  if (u.search) throw bad(`--queue-service must not carry a SAS (a secret on the command line); put the SAS in ${o.queueSasEnv}`);
  const sas = process.env[o.queueSasEnv]?.trim();
  if (sas?.startsWith('{')) {
    // {"<queue name>": "<SAS token>", …}: one least-privilege token per queue, as the controller gives.
    let tokens: unknown;
    try { tokens = JSON.parse(sas); } catch { tokens = undefined; }
    if (!tokens || typeof tokens !== 'object' || Array.isArray(tokens) || !Object.values(tokens).every((t) => typeof t === 'string' && t.length > 0)) {
      throw bad(`${o.queueSasEnv} starts with "{" but is not a JSON object of queue names to SAS tokens`);
    }
    return { kind: 'queue-sas', serviceUrl: service, tokens: tokens as Record<string, string> };
  }
  if (sas) return { kind: 'sas', serviceUrl: service, sas: sas.replace(/^\?/, '') };
  return { kind: 'identity', serviceUrl: service, clientId: o.clientId ?? process.env.AZURE_CLIENT_ID };
}

function seconds(name: string, v: string, min = 0): number {
  const ms = parseDuration(v);
  if (ms < min * 1000) throw bad(`${name} must be at least ${min} s`);
  return ms;
}

export function registerWorkerCommand(program: Command): void {
  program.command('worker')
    .description('run as a worker: take commands from the controller over Azure Queue Storage until stopped or idle')
    .option('--worker-id <id>', 'this worker\'s id (env COSMOS_BACKUP_WORKER_ID); its queues are cb-<id>-cmd and cb-<id>-reply')
    .option('--queue-service <url>', 'queue service URL, e.g. https://acct.queue.core.windows.net (env COSMOS_BACKUP_QUEUE_SERVICE); without a SAS or connection string the managed identity is used')
    .option('--queue-connection-string-env <var>', 'environment variable holding a storage connection string', 'COSMOS_BACKUP_QUEUE_CONNECTION_STRING')
    .option('--queue-sas-env <var>', 'environment variable holding a SAS token for the queue service, or a JSON object of a token per queue name', 'COSMOS_BACKUP_QUEUE_SAS')
    .option('--client-id <id>', 'client id of the user-assigned managed identity (env AZURE_CLIENT_ID)')
    .option('--key-file <file>', 'file (mode 0600) holding the per-worker key, base64')
    .option('--key-env <var>', 'environment variable holding the per-worker key, base64', 'COSMOS_BACKUP_WORKER_KEY')
    .option('--state-dir <dir>', 'where the worker keeps its sealing key and command ledger (env COSMOS_BACKUP_STATE_DIR; default ~/.cosmos-backup-agent/<worker-id>)')
    .option('--idle-timeout <duration>', 'exit after this long without a job; 0 = never', '30m')
    .option('--max-dequeue <n>', 'deliveries of one message before it goes to the poison queue', String(MAX_DEQUEUE_COUNT))
    .option('--visibility-timeout <duration>', 'how long a received command stays hidden; renewed while it runs', `${VISIBILITY_TIMEOUT_SECONDS}s`)
    .option('--renew-every <duration>', 'how often a running command\'s visibility is renewed', `${VISIBILITY_RENEW_SECONDS}s`)
    .option('--heartbeat-every <duration>', 'heartbeat period', `${HEARTBEAT_INTERVAL_SECONDS}s`)
    .option('--progress-every <duration>', 'at most one progress reply per period', `${PROGRESS_MIN_INTERVAL_SECONDS}s`)
    .option('--poll <duration>', 'wait between polls of an empty queue', '2s')
    .option('--defer <duration>', 'how long a job that arrives while another runs is put off', '10m')
    .option('--abort-grace <duration>', 'how long an aborted job may take to stop before it is abandoned', '30s')
    .option('--log-level <level>', 'debug, info, warn or error', 'info')
    .action(async (o: WorkerCliOptions) => {
      const workerId = o.workerId ?? process.env.COSMOS_BACKUP_WORKER_ID;
      if (!workerId) throw bad('no worker id: give --worker-id or set COSMOS_BACKUP_WORKER_ID');
      // The message schemas (zod) are loaded here, not by every command at start-up.
      const { queueNames, WorkerIdSchema } = await import('../../shared/protocol/messages.ts');
      if (!WorkerIdSchema.safeParse(workerId).success) throw bad(`invalid worker id "${workerId.slice(0, 60)}": lowercase letters, digits and single hyphens, at most 40 characters`);
      const macKey = readMacKey(o);
      const maxDequeue = Number(o.maxDequeue);
      if (!Number.isInteger(maxDequeue) || maxDequeue < 1) throw bad(`--max-dequeue must be a whole number of at least 1, not "${o.maxDequeue}"`);
      const visibilityMs = seconds('--visibility-timeout', o.visibilityTimeout, 1);
      const renewMs = seconds('--renew-every', o.renewEvery, 0);
      if (renewMs >= visibilityMs) throw bad('--renew-every must be shorter than --visibility-timeout');
      const stateDir = path.resolve(o.stateDir ?? process.env.COSMOS_BACKUP_STATE_DIR ?? path.join(homedir(), '.cosmos-backup-agent', workerId));
      // Loaded when the worker starts: the queue SDK and the engines are large.
      const [{ workerLog }, { queueOpener, WorkerQueues }, { Worker }] = await Promise.all([
        import('../worker/log.ts'), import('../worker/queues.ts'), import('../worker/worker.ts'),
      ]);
      const log = workerLog({ workerId, level: o.logLevel });
      const queues = new WorkerQueues(await queueOpener(queueAuth(o)), queueNames(workerId));
      const worker = new Worker({
        workerId, macKey, stateDir, queues, log, version: VERSION, commit: COMMIT,
        idleTimeoutMs: parseDuration(o.idleTimeout), maxDequeue,
        visibilitySeconds: Math.ceil(visibilityMs / 1000), renewMs: Math.max(renewMs, 200),
        heartbeatMs: Math.max(seconds('--heartbeat-every', o.heartbeatEvery), 200),
        progressMs: seconds('--progress-every', o.progressEvery), pollMs: Math.max(seconds('--poll', o.poll), 50),
        deferSeconds: Math.max(1, Math.ceil(seconds('--defer', o.defer) / 1000)),
        abortGraceMs: seconds('--abort-grace', o.abortGrace),
      });
      const onSignal = (sig: NodeJS.Signals) => {
        log.info({ signal: sig }, 'signal received: stopping');
        worker.requestStop('sigterm', true);
      };
      process.on('SIGTERM', onSignal);
      process.on('SIGINT', onSignal);
      const reason = await worker.run();
      log.info({ reason }, 'worker stopped');
      // Idle sockets of database drivers and HTTP agents must not keep a finished worker alive.
      setTimeout(() => process.exit(0), 2000).unref();
    });
}
