// MongoDB backup and restore jobs of the worker: the command's endpoint (password sealed) becomes
// a MongoTarget, then the MongoDB engine does the work, as the CLI's `backup mongodb` / `restore`.
import type { MongoClientOptions } from 'mongodb';
import { CosmosBackupError } from '../../shared/errors.ts';
import type { CommandOf, DatabaseTarget, Result } from '../../shared/protocol/messages.ts';
import type { Repository } from '../../shared/repository/repository.ts';
import { backupMongo, listUserDatabases } from '../engines/mongodb/backup.ts';
import { restoreMongo } from '../engines/mongodb/restore.ts';
import { connectMongo, type MongoTarget } from '../engines/mongodb/connection.ts';
import { selectDatabases } from '../engines/mongodb/selection.ts';
import type { Secrets } from './access.ts';
import type { JobContext } from './jobs.ts';

/** The connection URL (with the opened password: never logged) and TLS options of an endpoint. */
export function mongoTarget(ep: DatabaseTarget, field: string, secrets: Secrets): { target: MongoTarget; extra: MongoClientOptions } {
  const password = secrets.get(`${field}.password`)?.toString('utf8');
  const q = new URLSearchParams(ep.options ?? {});
  const extra: MongoClientOptions = {};
  if (ep.tls.mode !== 'disable') {
    q.set('tls', 'true');
    if (ep.tls.mode === 'require') q.set('tlsAllowInvalidCertificates', 'true');
    if (ep.tls.mode === 'verify-ca') q.set('tlsAllowInvalidHostnames', 'true');
    if (ep.tls.ca) extra.ca = ep.tls.ca;
    if (ep.tls.servername) extra.servername = ep.tls.servername;
  }
  const creds = `${encodeURIComponent(ep.user)}${password !== undefined ? `:${encodeURIComponent(password)}` : ''}@`;
  const hosts = ep.srv ? ep.host : `${ep.host}:${ep.port}`;
  const query = q.toString();
  return {
    target: { url: `mongodb${ep.srv ? '+srv' : ''}://${creds}${hosts}/${query ? `?${query}` : ''}`, label: hosts, user: ep.user },
    extra,
  };
}

export async function runMongoBackup(cmd: CommandOf<'backup'>, repo: Repository, ctx: JobContext): Promise<Result> {
  const started = Date.now();
  const { target, extra } = mongoTarget(cmd.source, 'source', ctx.secrets);
  const client = await connectMongo(target, extra);
  try {
    const dbs = selectDatabases(cmd.source.databases, cmd.source.collections ?? [])
      ?? (await listUserDatabases(client)).map((database) => ({ database, collections: undefined as string[] | undefined }));
    if (!dbs.length) throw new CosmosBackupError('NOT_FOUND', `MongoDB at ${target.label} has no user databases to back up`);
    const points: Array<{ database: string; restorePointId: string; bytesStored: number }> = [];
    const totals = { bytesRead: 0, bytesStored: 0, objects: 0, chunks: 0, newChunks: 0, documents: 0 };
    for (const sel of dbs) {
      if (ctx.signal.aborted) throw new CosmosBackupError('ABORTED', 'the job was aborted', { cause: ctx.signal.reason });
      const before = { ...totals };
      const r = await backupMongo(repo, client, target, {
        database: sel.database, collections: sel.collections, parallel: cmd.parallel, labels: cmd.labels, tags: cmd.tags,
        onProgress: (p) => ctx.onProgress({
          phase: 'data', bytes: before.bytesRead + p.bytesRead, bytesStored: before.bytesStored + p.bytesStored,
          objects: before.objects + p.collectionsDone, objectsTotal: p.collections,
        }),
      });
      const rp = r.restorePoint;
      points.push({ database: sel.database, restorePointId: rp.id, bytesStored: rp.stats.storedBytes });
      totals.bytesRead += rp.stats.bytes;
      totals.bytesStored += rp.stats.storedBytes;
      totals.objects += rp.stats.objects;
      totals.chunks += rp.stats.chunks;
      totals.newChunks += rp.stats.newChunks;
      totals.documents += r.documents;
    }
    return {
      ...(points.length === 1 ? { restorePointId: points[0]!.restorePointId } : {}),
      restorePoints: points,
      stats: { durationMs: Date.now() - started, ...totals },
    };
  } finally {
    await client.close().catch(() => undefined);
  }
}

export async function runMongoRestore(cmd: CommandOf<'restore'>, repo: Repository, database: string, ctx: JobContext): Promise<Result> {
  const started = Date.now();
  const { target, extra } = mongoTarget(cmd.target, 'target', ctx.secrets);
  const client = await connectMongo(target, extra);
  try {
    const subset = cmd.options.subset;
    if (subset?.tables?.length || subset?.schemas?.length) throw new CosmosBackupError('INVALID_ARGUMENT', 'tables and schemas are a PostgreSQL subset; name collections for a MongoDB restore point');
    const r = await restoreMongo(repo, cmd.restorePointId, client, target, {
      database, drop: cmd.options.clean, parallel: cmd.options.parallel, ...(subset?.collections?.length ? { collections: subset.collections } : {}),
      onWarning: (m) => ctx.log('restore warning', { warning: m }),
      onProgress: (p) => ctx.onProgress({ phase: p.phase.toLowerCase().replace(/[^a-z0-9-]+/g, '-').slice(0, 40) || 'data', bytes: p.bytes, bytesTotal: p.totalBytes, objects: 0 }),
    });
    return { restorePointId: cmd.restorePointId, stats: { durationMs: Date.now() - started, bytesWritten: r.bytes, objects: r.collections + r.views, documents: r.documents }, counts: r.counts };
  } finally {
    await client.close().catch(() => undefined);
  }
}
