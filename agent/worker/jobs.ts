// The jobs a worker runs for the controller: backup, restore, copy, verify, export. Each takes an
// authentic command, its opened secrets, an abort signal and a progress sink, and returns the
// `completed` result or throws a typed error. The engines do the work; this maps protocol to them.
import { createHash } from 'node:crypto';
import { PassThrough, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AnonymousCredential, BlockBlobClient } from '@azure/storage-blob';
import { CosmosBackupError } from '../../shared/errors.ts';
import type { CommandOf, Result } from '../../shared/protocol/messages.ts';
import { removeLocks } from '../../shared/repository/locks.ts';
import { copyRestorePoint } from '../../shared/repository/copy.ts';
import { openRestorePoint } from '../../shared/repository/reader.ts';
import { verifyRepository } from '../../shared/repository/verify.ts';
import { backupPostgres } from '../engines/postgres/backup.ts';
import { restorePostgres } from '../engines/postgres/restore.ts';
import { exportPostgresSql } from '../engines/postgres/export.ts';
import { exportMongodumpArchive } from '../engines/mongodb/export.ts';
import { connect } from '../engines/postgres/connection.ts';
import { openCommandRepository, pgTarget, type Secrets } from './access.ts';
import type { ProgressSample } from './progress.ts';
import { runMongoBackup, runMongoRestore } from './mongo-jobs.ts';

export type JobCommand = CommandOf<'backup' | 'restore' | 'copy' | 'verify' | 'export'>;

export interface JobContext {
  secrets: Secrets;
  signal: AbortSignal;
  onProgress(sample: ProgressSample): void;
  /** a previous attempt of this command was cut short (the worker was killed) */
  interrupted: boolean;
  log(msg: string, fields?: Record<string, unknown>): void;
}

function checkAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new CosmosBackupError('ABORTED', 'the job was aborted', { cause: signal.reason });
}

export async function runJob(cmd: JobCommand, ctx: JobContext): Promise<Result> {
  switch (cmd.kind) {
    case 'backup': return runBackup(cmd, ctx);
    case 'restore': return runRestore(cmd, ctx);
    case 'copy': return runCopy(cmd, ctx);
    case 'verify': return runVerify(cmd, ctx);
    case 'export': return runExport(cmd, ctx);
  }
}

/** Every user database of a PostgreSQL server (the maintenance and Azure-internal ones left out). */
async function listPgDatabases(cmd: CommandOf<'backup'>, ctx: JobContext): Promise<string[]> {
  const client = await connect(pgTarget(cmd.source, 'source', ctx.secrets, 'postgres'), 'cosmos-backup worker');
  try {
    const r = await client.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate AND datname <> 'postgres' AND datname NOT LIKE 'azure\\_%' ORDER BY datname`);
    return r.rows.map((x) => x.datname);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function runBackup(cmd: CommandOf<'backup'>, ctx: JobContext): Promise<Result> {
  const started = Date.now();
  ctx.onProgress({ phase: 'connecting', bytes: 0, objects: 0 });
  const repo = await openCommandRepository(cmd.repository, 'repository', ctx.secrets, ctx.signal);
  if (ctx.interrupted) {
    // A killed attempt left a shared lock naming a dead process; its uploaded packs stay for gc.
    const removed = await removeLocks(repo.store, false);
    if (removed.length) ctx.log('removed stale repository locks left by an interrupted attempt', { locks: removed.length });
  }
  if (cmd.engine === 'mongodb') return runMongoBackup(cmd, repo, ctx);
  const databases = cmd.source.databases.length ? cmd.source.databases : await listPgDatabases(cmd, ctx);
  if (databases.length === 0) throw new CosmosBackupError('NOT_FOUND', `no user databases on ${cmd.source.host}:${cmd.source.port}`);
  const points: Array<{ database: string; restorePointId: string; bytesStored: number }> = [];
  const totals = { bytesRead: 0, bytesStored: 0, objects: 0, chunks: 0, newChunks: 0 };
  for (const db of databases) {
    checkAborted(ctx.signal);
    const before = { ...totals };
    const rp = await backupPostgres(repo, pgTarget(cmd.source, 'source', ctx.secrets, db), {
      parallel: cmd.parallel, labels: cmd.labels, tags: cmd.tags,
      onProgress: (p) => ctx.onProgress({
        phase: 'data', bytes: before.bytesRead + p.bytesRead, objects: before.objects + p.tablesDone, objectsTotal: p.tables,
        bytesTotal: before.bytesRead + Math.max(p.totalEstimate, p.bytesRead), bytesStored: before.bytesStored + p.bytesStored,
      }),
    });
    points.push({ database: db, restorePointId: rp.id, bytesStored: rp.stats.storedBytes });
    totals.bytesRead += rp.stats.bytes;
    totals.bytesStored += rp.stats.storedBytes;
    totals.objects += rp.stats.objects;
    totals.chunks += rp.stats.chunks;
    totals.newChunks += rp.stats.newChunks;
    ctx.log('backed up a database', { database: db, restorePointId: rp.id, bytes: rp.stats.bytes });
  }
  return {
    ...(points.length === 1 ? { restorePointId: points[0]!.restorePointId } : {}),
    restorePoints: points,
    stats: { durationMs: Date.now() - started, ...totals },
  };
}

async function runRestore(cmd: CommandOf<'restore'>, ctx: JobContext): Promise<Result> {
  const started = Date.now();
  const repo = await openCommandRepository(cmd.repository, 'repository', ctx.secrets, ctx.signal);
  const rp = await repo.loadRestorePoint(cmd.restorePointId);
  if (rp.engine !== cmd.engine) throw new CosmosBackupError('INVALID_ARGUMENT', `restore point ${rp.id.slice(0, 12)} is a ${rp.engine} backup, not a ${cmd.engine} one`);
  const subset = cmd.options.subset;
  if (subset?.ref) throw new CosmosBackupError('INVALID_ARGUMENT', 'a subset given by reference is not supported: list the tables or collections in the command');
  if (subset?.databases && !subset.databases.includes(rp.database)) {
    throw new CosmosBackupError('INVALID_ARGUMENT', `restore point ${rp.id.slice(0, 12)} holds database "${rp.database}", which the subset leaves out`);
  }
  const database = cmd.options.databaseMap?.[rp.database] ?? rp.database;
  if (cmd.engine === 'mongodb') return runMongoRestore(cmd, repo, database, ctx);
  if (subset?.collections?.length) throw new CosmosBackupError('INVALID_ARGUMENT', 'collections are a MongoDB subset; name tables or schemas for a PostgreSQL restore point');
  const pgSubset = subset?.tables?.length || subset?.schemas?.length ? { tables: subset.tables, schemas: subset.schemas } : undefined;
  const res = await restorePostgres(repo, rp.id, pgTarget(cmd.target, 'target', ctx.secrets, database), {
    parallel: cmd.options.parallel, ...(pgSubset ? { subset: pgSubset } : {}), clean: cmd.options.clean, noOwner: cmd.options.noOwner, noPrivileges: cmd.options.noPrivileges,
    onWarning: (m) => ctx.log('restore warning', { warning: m }),
    onProgress: (p) => ctx.onProgress({ phase: p.phase.toLowerCase().replace(/[^a-z0-9-]+/g, '-').slice(0, 40) || 'data', bytes: p.bytes, bytesTotal: p.totalBytes, objects: 0 }),
  });
  return { restorePointId: rp.id, stats: { durationMs: Date.now() - started, bytesWritten: res.bytes, objects: res.tables, rows: Object.values(res.counts).reduce((n, c) => n + c, 0) }, counts: res.counts };
}

async function runCopy(cmd: CommandOf<'copy'>, ctx: JobContext): Promise<Result> {
  const started = Date.now();
  const from = await openCommandRepository(cmd.from, 'from', ctx.secrets, ctx.signal);
  const to = await openCommandRepository(cmd.to, 'to', ctx.secrets, ctx.signal);
  const points: Array<{ database: string; restorePointId: string }> = [];
  const stats = { bytesRead: 0, objects: 0, copiedChunks: 0, copiedBytes: 0 };
  for (const [i, id] of cmd.restorePointIds.entries()) {
    const before = { ...stats };
    const r = await copyRestorePoint(from, to, id, {
      signal: ctx.signal,
      onProgress: (p) => ctx.onProgress({ phase: 'copying', bytes: before.bytesRead + p.bytesRead, bytesStored: before.copiedBytes + p.bytesStored, objects: i, objectsTotal: cmd.restorePointIds.length }),
    });
    points.push({ database: r.database, restorePointId: r.id });
    stats.bytesRead += r.bytes;
    stats.objects += r.objects;
    stats.copiedChunks += r.copiedChunks;
    stats.copiedBytes += r.copiedBytes;
  }
  return { ...(points.length === 1 ? { restorePointId: points[0]!.restorePointId } : {}), restorePoints: points, stats: { durationMs: Date.now() - started, ...stats } };
}

async function runVerify(cmd: CommandOf<'verify'>, ctx: JobContext): Promise<Result> {
  const started = Date.now();
  const repo = await openCommandRepository(cmd.repository, 'repository', ctx.secrets, ctx.signal);
  const res = await verifyRepository(repo, {
    readData: cmd.readData,
    onProgress: (done, total) => ctx.onProgress({ phase: 'verifying', bytes: 0, objects: done, objectsTotal: total }),
  });
  const problems = res.problems.map((p) => `${p.object}: ${p.message}`.slice(0, 1000));
  return {
    problems: problems.slice(0, 100),
    stats: { durationMs: Date.now() - started, objects: res.restorePoints, chunks: res.blobsChecked, bytesRead: res.bytesRead },
  };
}

const EXPORT_FORMATS = { sql: { engine: 'postgres', contentType: 'application/sql' }, mongodump: { engine: 'mongodb', contentType: 'application/gzip' } } as const;

async function runExport(cmd: CommandOf<'export'>, ctx: JobContext): Promise<Result> {
  const started = Date.now();
  const repo = await openCommandRepository(cmd.repository, 'repository', ctx.secrets, ctx.signal);
  const reader = await openRestorePoint(repo, cmd.restorePointId);
  const fmt = EXPORT_FORMATS[cmd.format];
  if (reader.restorePoint.engine !== fmt.engine) {
    throw new CosmosBackupError('INVALID_ARGUMENT', `export format ${cmd.format} is for ${fmt.engine} restore points; ${reader.restorePoint.id.slice(0, 12)} is ${reader.restorePoint.engine}`);
  }
  const dest = cmd.destination;
  let blob: BlockBlobClient;
  if (dest.access === 'sas') {
    const sas = ctx.secrets.get('destination.sas')?.toString('utf8');
    if (!sas) throw new CosmosBackupError('INVALID_ARGUMENT', 'the export destination uses SAS access but the command carries no sealed SAS');
    blob = new BlockBlobClient(`${dest.url}?${sas.replace(/^\?/, '')}`, new AnonymousCredential());
  } else {
    const { DefaultAzureCredential } = await import('@azure/identity');
    blob = new BlockBlobClient(dest.url, new DefaultAzureCredential(dest.clientId ? { managedIdentityClientId: dest.clientId } : {}));
  }
  const hash = createHash('sha256');
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      ctx.onProgress({ phase: 'exporting', bytes: size, objects: 0 });
      cb(null, chunk);
    },
  });
  const body = new PassThrough();
  const upload = blob.uploadStream(counter, 4 * 1024 * 1024, 2, { abortSignal: ctx.signal, blobHTTPHeaders: { blobContentType: fmt.contentType } });
  upload.catch(() => undefined);
  const piping = pipeline(body, counter);
  piping.catch(() => undefined);
  try {
    if (cmd.format === 'sql') await exportPostgresSql(reader, body);
    else await exportMongodumpArchive(reader, body);
    body.end();
    await piping;
    await upload;
  } catch (e) {
    body.destroy();
    throw e;
  }
  return { output: { url: dest.url, sha256: hash.digest('hex'), size }, stats: { durationMs: Date.now() - started, bytesWritten: size } };
}
