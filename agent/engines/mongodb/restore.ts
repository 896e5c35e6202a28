// MongoDB restore, in mongorestore's order: check the target, create collections with their
// options, load documents in unordered insert batches (shrinking when throttled, retrying only
// the documents that failed), then build indexes, then create views.
import type { Db, Document, MongoClient } from 'mongodb';
import { CosmosBackupError } from '../../../shared/errors.ts';
import { openRestorePoint } from '../../../shared/repository/reader.ts';
import type { Repository } from '../../../shared/repository/repository.ts';
import type { ManifestObject, RestorePointReader } from '../../../shared/repository/types.ts';
import { insertable, readId, splitDocuments } from './bson-raw.ts';
import type { MongoTarget } from './connection.ts';
import { ENGINE, METADATA_OBJECT, decodeMetadata, indexSpecs, viewOrder, type CollectionMeta, type MongoMetadata } from './metadata.ts';
import { Retrier, classifyError, type FailureKind, type RetryPolicy } from './retry.ts';

export interface MongoRestoreProgress { phase: string; bytes: number; totalBytes: number; documents: number }

export interface MongoRestoreOptions {
  /** target database name; default the backed-up one */
  database?: string;
  /** drop target collections and views that exist (otherwise non-empty ones are refused) */
  drop?: boolean;
  /**
   * Restore only these collections (documents, options, indexes) and views, by name; views come
   * only when named. The target checks and `drop` then consider only them.
   */
  collections?: string[];
  /** collections loaded at once */
  parallel?: number;
  /** upper limits of one insert batch; halved on throttling, grown back after successes */
  maxBatchBytes?: number;
  maxBatchDocs?: number;
  retry?: Partial<RetryPolicy>;
  onWarning?: (m: string) => void;
  onProgress?: (p: MongoRestoreProgress) => void;
  onRetry?: (what: string, kind: FailureKind, delayMs: number, e: unknown) => void;
}

export interface MongoRestoreResult {
  database: string;
  collections: number;
  views: number;
  indexes: number;
  documents: number;
  /** documents inserted per collection on the target */
  counts: Record<string, number>;
  bytes: number;
  retries: number;
  throttled: number;
  warnings: string[];
}

export async function loadMetadata(reader: RestorePointReader): Promise<MongoMetadata> {
  const rp = reader.restorePoint;
  if (rp.engine !== ENGINE) throw new CosmosBackupError('INVALID_ARGUMENT', `restore point ${rp.id.slice(0, 12)} is a ${rp.engine} backup, not a MongoDB one`);
  const obj = rp.objects.find((o) => o.name === METADATA_OBJECT);
  if (!obj) throw new CosmosBackupError('CORRUPT_OBJECT', `restore point ${rp.id.slice(0, 12)} has no metadata object`);
  return decodeMetadata(await reader.readObject(obj), `restore point ${rp.id.slice(0, 12)}`);
}

/** Adaptive batch limits: halved when the server throttles, grown slowly while it does not. */
export class BatchLimits {
  docs: number;
  bytes: number;
  private readonly maxDocs: number;
  private readonly maxBytes: number;
  constructor(maxDocs: number, maxBytes: number) {
    this.maxDocs = this.docs = maxDocs;
    this.maxBytes = this.bytes = maxBytes;
  }
  shrink(): void {
    this.docs = Math.max(1, Math.floor(this.docs / 2));
    this.bytes = Math.max(64 * 1024, Math.floor(this.bytes / 2));
  }
  grow(): void {
    this.docs = Math.min(this.maxDocs, Math.ceil(this.docs * 1.25));
    this.bytes = Math.min(this.maxBytes, Math.ceil(this.bytes * 1.25));
  }
  /** How many of `sizes` (from the start) go into the next request: at least one. */
  take(sizes: number[]): number {
    let n = 0;
    let bytes = 0;
    while (n < sizes.length && n < this.docs && (n === 0 || bytes + sizes[n]! <= this.bytes)) bytes += sizes[n++]!;
    return n;
  }
}

interface WriteError { index: number; code: number; errmsg?: string }

function isIdDuplicate(we: WriteError): boolean {
  return we.code === 11000 && /index: _id_ /.test(we.errmsg ?? '');
}

function idText(raw: Buffer): string {
  try {
    const v = readId(raw).value as { toString?: () => string };
    return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  } catch { return '?'; }
}

/**
 * Inserts one batch of raw documents, unordered. Throttled or failed requests are retried with
 * only the documents that did not go in; a duplicate `_id` on a retry means an earlier attempt
 * stored the document (its answer was lost), which counts as done.
 */
export async function insertBatch(db: Db, coll: string, raws: Buffer[], limits: BatchLimits, retrier: Retrier): Promise<void> {
  const what = `inserting into ${db.databaseName}.${coll}`;
  const values = raws.map(insertable);
  let todo = raws.map((_, i) => i);
  const retried = new Set<number>();
  let attempt = 1;
  while (todo.length) {
    const n = limits.take(todo.map((i) => raws[i]!.length));
    const slice = todo.slice(0, n);
    let res: { writeErrors?: WriteError[]; n?: number };
    try {
      res = await db.command({ insert: coll, documents: slice.map((i) => values[i]), ordered: false, bypassDocumentValidation: true }) as typeof res;
    } catch (e) {
      // The whole request failed: none, some or all went in. Retry the slice, smaller if throttled.
      const kind = classifyError(e);
      if (kind === 'fatal') throw new CosmosBackupError('DATABASE_ERROR', `${what} failed: ${(e as Error).message}`, { cause: e });
      for (const i of slice) retried.add(i);
      if (kind === 'throttle') limits.shrink();
      await retrier.handle(what, e, attempt++);
      continue;
    }
    const again: number[] = [];
    let retryable: WriteError | undefined;
    for (const we of res.writeErrors ?? []) {
      const i = slice[we.index]!;
      if (retried.has(i) && isIdDuplicate(we)) continue;
      const kind = classifyError({ code: we.code, message: we.errmsg });
      if (kind === 'fatal') {
        throw new CosmosBackupError('DATABASE_ERROR', `${what} failed for the document with _id ${idText(raws[i]!)}: ${we.errmsg ?? 'error'} (code ${we.code})`);
      }
      again.push(i);
      retryable ??= we;
    }
    todo = [...again, ...todo.slice(n)];
    if (again.length) {
      for (const i of again) retried.add(i);
      if (classifyError({ code: retryable!.code, message: retryable!.errmsg }) === 'throttle') limits.shrink();
      await retrier.handle(what, Object.assign(new Error(retryable!.errmsg ?? 'write error'), { code: retryable!.code }), attempt++);
    } else {
      attempt = 1;
      limits.grow();
    }
  }
}

async function loadCollection(reader: RestorePointReader, db: Db, c: CollectionMeta, obj: ManifestObject, retrier: Retrier, opts: { maxBatchDocs: number; maxBatchBytes: number; onDocs: (n: number, bytes: number) => void }): Promise<number> {
  const limits = new BatchLimits(opts.maxBatchDocs, opts.maxBatchBytes);
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let docs = 0;
  const flush = async () => {
    if (!batch.length) return;
    await insertBatch(db, c.name, batch, limits, retrier);
    docs += batch.length;
    opts.onDocs(batch.length, batchBytes);
    batch = [];
    batchBytes = 0;
  };
  for await (const raw of splitDocuments(reader.openObject(obj), obj.name)) {
    if (batch.length && (batch.length >= opts.maxBatchDocs || batchBytes + raw.length > opts.maxBatchBytes)) await flush();
    batch.push(raw);
    batchBytes += raw.length;
  }
  await flush();
  return docs;
}

function alreadyExists(e: unknown): boolean {
  return (e as { code?: number }).code === 48;
}

/** Runs a create command; on a retry, "already exists" means an earlier attempt succeeded. */
async function createOnce(db: Db, cmd: Document, what: string, retrier: Retrier): Promise<void> {
  await retrier.run(what, async (attempt) => {
    try {
      await db.command(cmd);
    } catch (e) {
      if (attempt > 1 && alreadyExists(e)) return;
      throw e;
    }
  });
}

/**
 * The collections and views named, in metadata order. A name may also carry the backed-up
 * database as a prefix ("shop.orders"), as `backup --collection` takes it.
 */
export function chooseCollections(meta: MongoMetadata, names: string[], point: string, warn: (m: string) => void): CollectionMeta[] {
  if (names.length === 0) throw new CosmosBackupError('INVALID_ARGUMENT', 'a subset restore needs at least one collection');
  const byName = new Map(meta.collections.map((c) => [c.name, c]));
  const wanted = new Set<string>();
  const missing: string[] = [];
  for (const n of names) {
    const prefixed = n.startsWith(`${meta.database}.`) ? n.slice(meta.database.length + 1) : undefined;
    const found = byName.has(n) ? n : prefixed !== undefined && byName.has(prefixed) ? prefixed : undefined;
    if (found === undefined) missing.push(n);
    else wanted.add(found);
  }
  if (missing.length) {
    const all = meta.collections.map((c) => c.name).sort();
    const shown = all.length > 8 ? `${all.slice(0, 8).join(', ')} and ${all.length - 8} more` : all.join(', ') || 'none';
    throw new CosmosBackupError('NOT_FOUND', `restore point ${point} (database ${meta.database}) has no collection or view ${missing.join(', ')} (it holds: ${shown}; list them all with \`export ${point} --format mongodump -o DIR\`)`);
  }
  const chosen = meta.collections.filter((c) => wanted.has(c.name));
  for (const v of chosen) {
    const on = v.type === 'view' ? v.options.viewOn as string | undefined : undefined;
    if (on !== undefined && !wanted.has(on)) warn(`view ${v.name} reads from ${on}, which is not restored`);
  }
  return chosen;
}

export async function restoreMongo(repo: Repository, restorePointId: string, client: MongoClient, target: MongoTarget, opts: MongoRestoreOptions = {}): Promise<MongoRestoreResult> {
  const reader = await openRestorePoint(repo, restorePointId);
  const meta = await loadMetadata(reader);
  const dbName = opts.database ?? meta.database;
  const db = client.db(dbName);
  const retrier = new Retrier(opts.retry, opts.onRetry);
  const warnings: string[] = [];
  const warn = (m: string) => { warnings.push(m); opts.onWarning?.(m); };
  const objects = new Map(reader.restorePoint.objects.map((o) => [o.name, o]));
  const chosen = opts.collections ? chooseCollections(meta, opts.collections, reader.restorePoint.id.slice(0, 12), warn) : meta.collections;
  const data = chosen.filter((c) => c.type !== 'view');
  const views = chosen.filter((c) => c.type === 'view');
  const totalBytes = data.reduce((s, c) => s + (objects.get(c.object ?? '')?.size ?? 0), 0);
  let bytes = 0;
  let documents = 0;
  const report = (phase: string) => opts.onProgress?.({ phase, bytes, totalBytes, documents });
  const where = `database ${dbName} on ${target.label}`;

  // 1. The target: refuse to mix restored documents into existing ones.
  report('checking target');
  const existing = new Map((await retrier.run(`listing collections of ${dbName}`, () => db.listCollections({}, { nameOnly: true }).toArray()) as Document[]).map((i) => [String(i.name), String(i.type ?? 'collection')]));
  const busy: string[] = [];
  const keep = new Set<string>();
  for (const c of chosen) {
    const type = existing.get(c.name);
    if (type === undefined) continue;
    if (opts.drop) continue;
    const empty = type !== 'view' && c.type !== 'view' && !(await retrier.run(`checking ${dbName}.${c.name}`, () => db.collection(c.name).findOne({}, { projection: { _id: 1 } })));
    if (empty) keep.add(c.name);
    else busy.push(`${dbName}.${c.name}`);
  }
  if (busy.length) {
    throw new CosmosBackupError('TARGET_NOT_EMPTY', `target ${busy.length === 1 ? 'collection' : 'collections'} ${busy.slice(0, 5).join(', ')}${busy.length > 5 ? ` and ${busy.length - 5} more` : ''} on ${target.label} ${busy.length === 1 ? 'is' : 'are'} not empty: restore into another database (--database-map ${meta.database}:NEW) or pass --drop to replace ${busy.length === 1 ? 'it' : 'them'}`);
  }
  try {
    if (opts.drop) {
      for (const c of chosen) {
        if (existing.has(c.name)) await retrier.run(`dropping ${dbName}.${c.name}`, () => db.command({ drop: c.name }).catch((e: unknown) => { if ((e as { code?: number }).code !== 26) throw e; }));
      }
    }

    // 2. Collections with their options.
    report('collections');
    for (const c of data) {
      if (keep.has(c.name)) {
        warn(`collection ${dbName}.${c.name} existed (empty) and was kept as it is: its options were not re-applied`);
        continue;
      }
      await createOnce(db, { create: c.name, ...c.options }, `creating ${dbName}.${c.name}`, retrier);
    }

    // 3. Documents, several collections at once, largest first.
    report('documents');
    const counts: Record<string, number> = {};
    const parallel = Math.max(1, Math.min(opts.parallel ?? 2, 32));
    const queue = [...data].sort((a, b) => (objects.get(b.object ?? '')?.size ?? 0) - (objects.get(a.object ?? '')?.size ?? 0));
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        const obj = objects.get(c.object ?? '');
        if (!obj) throw new CosmosBackupError('CORRUPT_OBJECT', `restore point ${reader.restorePoint.id.slice(0, 12)} lacks the documents of ${c.name}`);
        await loadCollection(reader, db, c, obj, retrier, {
          maxBatchDocs: opts.maxBatchDocs ?? 1000, maxBatchBytes: opts.maxBatchBytes ?? 4 * 1024 * 1024,
          onDocs: (n, b) => { documents += n; counts[c.name] = (counts[c.name] ?? 0) + n; bytes += b; report('documents'); },
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, Math.max(queue.length, 1)) }, worker));

    // 4. Indexes, once the data is in (building them afterwards is much faster).
    report('indexes');
    let indexes = 0;
    for (const c of data) {
      const specs = indexSpecs(c.indexes);
      if (!specs.length) continue;
      await retrier.run(`creating indexes of ${dbName}.${c.name}`, () => db.command({ createIndexes: c.name, indexes: specs }));
      indexes += specs.length;
    }

    // 5. Views last: they read from the collections (and from each other).
    report('views');
    for (const v of viewOrder(views)) {
      await createOnce(db, { create: v.name, ...v.options }, `creating view ${dbName}.${v.name}`, retrier);
    }
    report('done');
    return { database: dbName, collections: data.length, views: views.length, indexes, documents, counts, bytes, retries: retrier.counts.retries, throttled: retrier.counts.throttled, warnings };
  } catch (e) {
    const err = e instanceof CosmosBackupError ? e : new CosmosBackupError('DATABASE_ERROR', (e as Error).message, { cause: e });
    throw new CosmosBackupError(err.code, `${err.message} — ${where} is left partly restored; restore again with --drop`, { cause: e });
  }
}
