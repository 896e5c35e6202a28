// One well-formed message of every kind, built the way the controller and the worker will build
// them (secrets sealed to the worker's key, bound to the command id and field), for the protocol tests.
import { randomUUID } from 'node:crypto';
import { sealField } from '../../shared/protocol/auth.ts';
import {
  createCommand, createReply,
  type Command, type CommandKind, type Reply, type ReplyKind, type Repository,
} from '../../shared/protocol/messages.ts';

export const WORKER = 'w-eastus-0001';

/** Plaintext secrets the sample commands carry sealed; none may ever show up in a message. */
export const SECRETS = {
  dbPassword: 'pg-P4ssw0rd-!@#-marker',
  repoPassword: 'repo-passphrase-marker-7781',
  sas: 'sv=2024-05-04&ss=b&srt=co&sp=rwdlac&se=2030-01-01T00:00:00Z&sig=SIGmarkerAbCdEf%2B%3D',
  targetSas: 'sv=2024-05-04&sr=c&sp=r&se=2030-01-01&sig=ARCHIVEsigMarker%3D',
  exportSas: 'sv=2024-05-04&sr=b&sp=cw&sig=EXPORTsigMarker%3D',
  mongoKey: 'mongoAccountKeyMarker==',
};

const RP = 'a'.repeat(64);
const RP2 = '0123456789abcdef'.repeat(4);

function sasRepo(id: string, path: string, pub: string, opts: { sas: string; password?: string; location?: string; accessTier?: 'Cool' | 'Cold' | 'Archive' }): Repository {
  return {
    ...(opts.accessTier ? { accessTier: opts.accessTier } : {}),
    location: opts.location ?? 'azblob://acct/backups/prod',
    endpoint: 'http://127.0.0.1:10000/devstoreaccount1',
    access: 'sas',
    sas: sealField(id, `${path}.sas`, opts.sas, pub),
    ...(opts.password ? { password: sealField(id, `${path}.password`, opts.password, pub) } : {}),
  };
}

/** One command of each kind for `workerId`, secrets sealed to `workerPublicKey`. */
export function sampleCommands(workerPublicKey: string, workerId = WORKER, now = new Date()): Record<CommandKind, Command> {
  const pub = workerPublicKey;
  const at = { workerId, now };
  const id = () => randomUUID();
  const b = id();
  const r = id();
  const c = id();
  const v = id();
  const e = id();
  return {
    backup: createCommand({
      kind: 'backup', jobId: 'session-42/acct-pg', engine: 'postgres',
      source: {
        host: 'c-cluster.postgres.cosmos.azure.com', port: 5432, user: 'citus',
        password: sealField(b, 'source.password', SECRETS.dbPassword, pub),
        tls: { mode: 'verify-full' }, options: { application_name: 'cosmos-backup' }, databases: ['citus'],
      },
      repository: sasRepo(b, 'repository', pub, { sas: SECRETS.sas, password: SECRETS.repoPassword }),
      labels: { policy: 'daily', 'cosmos.account': 'acct-pg' }, tags: ['D', 'W'], parallel: 4,
    }, { ...at, id: b }),
    restore: createCommand({
      kind: 'restore', jobId: 'session-43', engine: 'mongodb', restorePointId: RP,
      repository: sasRepo(r, 'repository', pub, { sas: SECRETS.sas, password: SECRETS.repoPassword }),
      target: {
        host: 'acct.mongo.cosmos.azure.com', port: 10255, user: 'acct',
        password: sealField(r, 'target.password', SECRETS.mongoKey, pub),
        tls: { mode: 'require' }, options: { replicaSet: 'globaldb', retrywrites: 'false' },
      },
      options: { databaseMap: { shop: 'shop_restored' }, clean: false, subset: { collections: ['orders'] } },
    }, { ...at, id: r }),
    copy: createCommand({
      kind: 'copy', jobId: 'archive-7', restorePointIds: [RP, RP2],
      from: sasRepo(c, 'from', pub, { sas: SECRETS.sas, password: SECRETS.repoPassword }),
      to: sasRepo(c, 'to', pub, { sas: SECRETS.targetSas, password: SECRETS.repoPassword, location: 'azblob://acct/archive/prod', accessTier: 'Cold' }),
    }, { ...at, id: c }),
    verify: createCommand({
      kind: 'verify', jobId: 'verify-1', readData: true,
      repository: { location: 'azblob://acct/backups/prod', access: 'managed-identity', clientId: '6f1c3f0e-8a3b-4d5e-9f00-1234567890ab' },
    }, { ...at, id: v }),
    export: createCommand({
      kind: 'export', jobId: 'export-1', restorePointId: RP, format: 'sql',
      repository: sasRepo(e, 'repository', pub, { sas: SECRETS.sas }),
      destination: { url: 'https://acct.blob.core.windows.net/exports/citus.sql', access: 'sas', sas: sealField(e, 'destination.sas', SECRETS.exportSas, pub) },
    }, { ...at, id: e }),
    cancel: createCommand({ kind: 'cancel', commandId: b, reason: 'session cancelled by user' }, at),
    shutdown: createCommand({ kind: 'shutdown', reason: 'session finished', abortRunning: false }, at),
  };
}

/** One reply of each kind from `workerId`. */
export function sampleReplies(workerPublicKey: string, workerId = WORKER, now = new Date()): Record<ReplyKind, Reply> {
  const at = { workerId, now };
  const cmd = randomUUID();
  return {
    hello: createReply({
      kind: 'hello', version: '0.1.0', commit: '3f2a9c1', publicKey: workerPublicKey, pid: 4242, startedAt: now.toISOString(),
      host: { hostname: 'cb-worker-1', cpus: 2, memoryBytes: 4 * 2 ** 30, os: { platform: 'linux', release: '6.5.0-1025-azure', arch: 'x64' }, glibc: '2.35' },
    }, at),
    accepted: createReply({ kind: 'accepted', commandId: cmd, commandKind: 'backup', attempt: 1 }, at),
    progress: createReply({ kind: 'progress', commandId: cmd, phase: 'data', bytes: 1_048_576, objects: 3, objectsTotal: 10, bytesStored: 400_000, rate: 52_428_800.5, etaSeconds: null }, at),
    heartbeat: createReply({ kind: 'heartbeat', state: 'busy', commandId: cmd, uptimeSeconds: 93 }, at),
    completed: createReply({
      kind: 'completed', commandId: cmd,
      result: { restorePointId: RP, stats: { durationMs: 1234, bytesRead: 10_000, bytesStored: 3_000, objects: 12, chunks: 4, newChunks: 2 }, counts: { 'public.orders': 100 } },
    }, at),
    failed: createReply({ kind: 'failed', commandId: cmd, code: 'DATABASE_AUTH', message: 'password authentication failed for user "citus"', retryable: false, details: { host: 'c-cluster', port: 5432 } }, at),
    rejected: createReply({ kind: 'rejected', messageId: 'b8c6-queue-message-id', claimedId: 'not-a-uuid', fault: 'bad-mac', code: 'UNAUTHENTICATED', message: 'command has a wrong MAC' }, at),
    goodbye: createReply({ kind: 'goodbye', reason: 'sigterm', abortedCommandId: cmd, message: 'stopping on SIGTERM' }, at),
  };
}
