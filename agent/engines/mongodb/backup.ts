// MongoDB backup: one restore point per database. Each collection is read in `_id` order as raw
// BSON (the driver's raw mode: the server's bytes, never decoded) and streamed into its own
// repository object with backpressure; options, indexes and views go into a metadata object.
// Throttling and dropped connections are retried, and the scan resumes after the last `_id`
// written, so no document is read twice or skipped.
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Db, Document, MongoClient } from 'mongodb';
import { CosmosBackupError } from '../../../shared/errors.ts';
import { startBackup } from '../../../shared/repository/backup-writer.ts';
import type { Repository } from '../../../shared/repository/repository.ts';
import type { BackupWriter, RestorePoint } from '../../../shared/repository/types.ts';
import { readId, resumeFilters, type RawId } from './bson-raw.ts';
import type { MongoTarget } from './connection.ts';
import { DATA_KIND, ENGINE, FORMAT_VERSION, METADATA_OBJECT, encodeMetadata, type CollectionMeta, type CollectionType } from './metadata.ts';
import { Retrier, type FailureKind, type RetryPolicy } from './retry.ts';

/**
 * Documents per cursor batch. Small enough that a throttled or lost getMore costs little (each
 * Cosmos DB request is charged by its size), large enough that round trips do not dominate.
 */
export const DEFAULT_BATCH_SIZE = 1000;

/** Raw documents gathered into one write to the object (fewer, larger writes). */
const WRITE_BYTES = 1024 * 1024;

export interface MongoBackupProgress {
  bytesRead: number;
  bytesStored: number;
  documents: number;
  collectionsDone: number;
  collections: number;
  /** estimated documents of all collections when the backup started */
  documentsEstimate: number;
}

export interface MongoBackupOptions {
  database: string;
  /** collection names of this database to back up (views included); default: all */
  collections?: string[];
  /** collections read at once */
  parallel?: number;
  /** documents per cursor batch (the server caps a batch at 16 MiB); default DEFAULT_BATCH_SIZE */
  batchSize?: number;
  labels?: Record<string, string>;
  tags?: string[];
  retry?: Partial<RetryPolicy>;
  onProgress?: (p: MongoBackupProgress) => void;
  onRetry?: (what: string, kind: FailureKind, delayMs: number, e: unknown) => void;
}

export interface MongoBackupResult {
  restorePoint: RestorePoint;
  database: string;
  collections: number;
  views: number;
  documents: number;
  bytes: number;
  /** retried requests, of which throttled (16500) */
  retries: number;
  throttled: number;
}

/** Collections a backup skips: the server's own (views, profiler, buckets of time series). */
export function isSystemCollection(name: string): boolean {
  return name.startsWith('system.') && name !== 'system.js';
}

export function objectName(collection: string): string {
  return `data/${collection}`;
}

async function writeTo(out: Writable, data: Buffer): Promise<void> {
  if (out.errored) throw out.errored;
  if (!out.write(data)) await once(out, 'drain');
}

function dbError(what: string, e: unknown): CosmosBackupError {
  if (e instanceof CosmosBackupError) return e;
  const err = e as { code?: number; message?: string };
  if (err.code === 13) return new CosmosBackupError('DATABASE_PERMISSION', `${what}: not authorized (${err.message}); grant the backup user read access`, { cause: e });
  return new CosmosBackupError('DATABASE_ERROR', `${what} failed: ${err.message ?? String(e)}`, { cause: e });
}

/** Lists collections, views and indexes of a database (each request retried on throttling). */
export async function readCatalog(db: Db, retrier: Retrier, only?: string[]): Promise<CollectionMeta[]> {
  const infos = await retrier.run(`listing collections of ${db.databaseName}`, () => db.listCollections({}, { nameOnly: false }).toArray()) as Document[];
  let selected = infos.filter((i) => !isSystemCollection(String(i.name)));
  if (only) {
    const names = new Set(selected.map((i) => String(i.name)));
    const missing = only.filter((n) => !names.has(n));
    if (missing.length) throw new CosmosBackupError('INVALID_ARGUMENT', `collection ${missing.map((n) => `${db.databaseName}.${n}`).join(', ')} does not exist`);
    selected = selected.filter((i) => only.includes(String(i.name)));
  }
  const out: CollectionMeta[] = [];
  for (const info of selected.sort((a, b) => String(a.name).localeCompare(String(b.name)))) {
    const name = String(info.name);
    const type = (info.type === 'view' || info.type === 'timeseries' ? info.type : 'collection') as CollectionType;
    const meta: CollectionMeta = { name, type, options: (info.options as Document | undefined) ?? {}, indexes: [] };
    const uuid = (info.info as Document | undefined)?.uuid;
    if (uuid) meta.uuid = uuid;
    if (info.idIndex) meta.idIndex = info.idIndex as Document;
    if (type !== 'view') {
      meta.indexes = await retrier.run(`listing indexes of ${db.databaseName}.${name}`, () => db.collection(name).listIndexes().toArray());
      const count = await retrier.run(`counting ${db.databaseName}.${name}`, () => db.command({ count: name })) as { n?: number };
      meta.countAtStart = Number(count.n ?? 0);
      meta.object = objectName(name);
    }
    out.push(meta);
  }
  return out;
}

interface CopyStats { documents: number; bytes: number }

/**
 * Streams one collection's raw documents into `out`, in `_id` order. On a retryable failure the
 * cursor is replaced by one starting after the last `_id` already written.
 */
export async function copyCollection(db: Db, name: string, out: Writable, retrier: Retrier, opts: { batchSize?: number; onBatch?: (docs: number, bytes: number) => void } = {}): Promise<CopyStats> {
  const coll = db.collection(name);
  const what = `reading ${db.databaseName}.${name}`;
  // Scans to run in order: the whole collection, or after a failure the rest of it by _id ranges.
  let scans: Document[] = [{}];
  let resumed = false;
  let documents = 0;
  let bytes = 0;
  for (let attempt = 1; scans.length;) {
    const cursor = coll.find(scans[0]!, { raw: true, sort: { _id: 1 }, batchSize: opts.batchSize ?? DEFAULT_BATCH_SIZE });
    let writing = false;
    let last: RawId | undefined;
    try {
      while (await cursor.hasNext()) {
        const batch = cursor.readBufferedDocuments() as unknown as Uint8Array[];
        if (!batch.length) continue;
        let parts: Buffer[] = [];
        let partBytes = 0;
        for (const d of batch) {
          const b = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
          parts.push(b);
          partBytes += b.length;
          if (partBytes >= WRITE_BYTES) {
            writing = true;
            await writeTo(out, Buffer.concat(parts, partBytes));
            writing = false;
            parts = [];
            partBytes = 0;
          }
        }
        if (parts.length) {
          writing = true;
          await writeTo(out, Buffer.concat(parts, partBytes));
          writing = false;
        }
        const tail = batch[batch.length - 1]!;
        last = readId(Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength));
        const n = batch.reduce((s, d) => s + d.byteLength, 0);
        documents += batch.length;
        bytes += n;
        opts.onBatch?.(batch.length, n);
        attempt = 1; // progress: the next failure starts a fresh count
      }
      await cursor.close().catch(() => undefined);
      scans.shift();
    } catch (e) {
      await cursor.close().catch(() => undefined);
      if (writing) throw e;
      await retrier.handle(what, e, attempt++);
      if (!last) continue; // nothing of this scan written yet: run it again
      if (!resumed) {
        // `$gt` stays in one type bracket: find out up to which bracket the _ids go.
        const top = await retrier.run(`${what} (largest _id)`, () => coll.find({}, { raw: true, sort: { _id: -1 }, limit: 1, projection: { _id: 1 } }).toArray()) as unknown as Uint8Array[];
        const maxType = top[0] ? readId(Buffer.from(top[0].buffer, top[0].byteOffset, top[0].byteLength)).type : last.type;
        scans = [...resumeFilters(last, maxType), ...scans.slice(1)];
        resumed = true;
      } else {
        // A bracket scan: continue it after `last`; later brackets are already queued.
        scans = [...resumeFilters(last, last.type), ...scans.slice(1)];
      }
    }
  }
  return { documents, bytes };
}

async function serverInfo(client: MongoClient, retrier: Retrier, t: MongoTarget): Promise<Document> {
  const admin = client.db('admin');
  const build = await retrier.run('reading server information', () => admin.command({ buildInfo: 1 })).catch(() => ({} as Document));
  const hello = await retrier.run('reading server information', () => admin.command({ hello: 1 })).catch(() => ({} as Document));
  return {
    version: build.version, maxWireVersion: hello.maxWireVersion,
    cosmos: /\.cosmos\.azure\.com|\.documents\.azure\.com/i.test(t.label) || undefined,
  };
}

/** Backs up one database into repo; returns the committed restore point and counts. */
export async function backupMongo(repo: Repository, client: MongoClient, target: MongoTarget, opts: MongoBackupOptions): Promise<MongoBackupResult> {
  const parallel = Math.max(1, Math.min(opts.parallel ?? 2, 32));
  const retrier = new Retrier(opts.retry, opts.onRetry);
  const db = client.db(opts.database);
  let writer: BackupWriter | undefined;
  try {
    const server = await serverInfo(client, retrier, target);
    const catalog = await readCatalog(db, retrier, opts.collections);
    const data = catalog.filter((c) => c.type !== 'view');
    const documentsEstimate = data.reduce((s, c) => s + (c.countAtStart ?? 0), 0);
    let documents = 0;
    let collectionsDone = 0;
    let stored = { bytesRead: 0, bytesStored: 0 };
    const progress = () => opts.onProgress?.({ ...stored, documents, collectionsDone, collections: data.length, documentsEstimate });
    writer = await startBackup(repo, {
      engine: ENGINE, database: opts.database, source: target.label, labels: opts.labels, tags: opts.tags, server,
      onProgress: (p) => { stored = { bytesRead: p.bytesRead, bytesStored: p.bytesStored }; progress(); },
    });
    const w = writer;
    // Largest first, so one big collection does not start last.
    const queue = [...data].sort((a, b) => (b.countAtStart ?? 0) - (a.countAtStart ?? 0));
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const out = w.createObject(c.object!, DATA_KIND, { collection: c.name });
        c.startedAt = new Date().toISOString();
        try {
          const st = await copyCollection(db, c.name, out, retrier, {
            batchSize: opts.batchSize,
            onBatch: (n) => { documents += n; progress(); },
          });
          out.end();
          await out.finish();
          c.documents = st.documents;
          c.bytes = st.bytes;
          c.finishedAt = new Date().toISOString();
        } catch (e) {
          out.destroy();
          throw dbError(`reading collection ${opts.database}.${c.name}`, e);
        }
        collectionsDone++;
        progress();
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, Math.max(queue.length, 1)) }, worker));
    await w.putObject(METADATA_OBJECT, 'mongodb-metadata', encodeMetadata({ format: FORMAT_VERSION, database: opts.database, server, collections: catalog }));
    const restorePoint = await w.commit({
      metadataObject: METADATA_OBJECT,
      collections: catalog.map((c) => ({ name: c.name, type: c.type, object: c.object, documents: c.documents })),
      retries: retrier.counts.retries, throttled: retrier.counts.throttled,
    });
    writer = undefined;
    return {
      restorePoint, database: opts.database, collections: data.length, views: catalog.length - data.length,
      documents: data.reduce((s, c) => s + (c.documents ?? 0), 0), bytes: data.reduce((s, c) => s + (c.bytes ?? 0), 0),
      retries: retrier.counts.retries, throttled: retrier.counts.throttled,
    };
  } catch (e) {
    if (writer) await writer.abort(e).catch(() => undefined);
    throw dbError(`backup of MongoDB database ${opts.database} on ${target.label}`, e);
  }
}

/** Database names to back up when none is given: every user database. */
export async function listUserDatabases(client: MongoClient, retrier = new Retrier()): Promise<string[]> {
  const r = await retrier.run('listing databases', () => client.db('admin').command({ listDatabases: 1, nameOnly: true })) as { databases: { name: string }[] };
  return r.databases.map((d) => d.name).filter((n) => !['admin', 'local', 'config'].includes(n)).sort();
}
