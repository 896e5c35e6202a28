// PostgreSQL restore, in pg_restore's order: create the database (if missing), pre-data schema,
// large objects, table data in parallel (COPY FROM STDIN streamed from the repository) with each
// table's indexes and keys built as soon as its data is in, the rest of post-data (foreign keys,
// triggers, matview refreshes…), then sequence values.
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { CosmosBackupError } from '../../../shared/errors.ts';
import type { Repository } from '../../../shared/repository/repository.ts';
import { openRestorePoint } from '../../../shared/repository/reader.ts';
import type { ManifestObject, RestorePoint, RestorePointReader } from '../../../shared/repository/types.ts';
import { applyItems, prepareSession, sequenceValuesSql } from './apply.ts';
import { ENGINE, SCHEMA_OBJECT } from './backup.ts';
import { connect, quoteIdent, withDatabase, type PgTarget } from './connection.ts';
import type { DdlItem, SchemaDocument, TableDataMeta } from './schema-types.ts';
import { relationKey, selectSubset, type PgSubset } from './subset.ts';

export interface PgRestoreOptions {
  parallel?: number;
  clean?: boolean;
  noOwner?: boolean;
  noPrivileges?: boolean;
  /**
   * Restore only these: `tables` as "schema.table" (raw names), `schemas` for every table of
   * each. Objects the tables may need come along; see subset.ts.
   */
  subset?: PgSubset;
  /**
   * Load the parts of a table backed up in several ctid ranges (tables over 1 GiB) on several
   * connections at once, instead of in order on one. Faster when one big table is most of the
   * data (the server parses each part on its own backend), but the restored heap interleaves the
   * parts: row order, index correlation and BRIN ranges are no longer the source's, and the rows
   * are not loaded frozen.
   */
  parallelParts?: boolean;
  onWarning?: (m: string) => void;
  onProgress?: (p: { phase: string; bytes: number; totalBytes: number }) => void;
}

export interface PgRestoreResult {
  database: string;
  tables: number;
  bytes: number;
  /** rows loaded per "schema.table", as the target's COPY reported them */
  counts: Record<string, number>;
  warnings: string[];
}

function checkEngine(rp: RestorePoint): void {
  if (rp.engine !== ENGINE) throw new CosmosBackupError('INVALID_ARGUMENT', `restore point ${rp.id.slice(0, 12)} is a ${rp.engine} backup, not a PostgreSQL one`);
}

export async function loadSchema(reader: RestorePointReader): Promise<SchemaDocument> {
  const rp = reader.restorePoint;
  checkEngine(rp);
  const obj = rp.objects.find((o) => o.name === SCHEMA_OBJECT);
  if (!obj) throw new CosmosBackupError('CORRUPT_OBJECT', `restore point ${rp.id.slice(0, 12)} has no schema object`);
  return JSON.parse((await reader.readObject(obj)).toString('utf8')) as SchemaDocument;
}

/** True when the database holds user objects (tables, functions, types, schemas besides public). */
async function isEmpty(client: pg.Client): Promise<boolean> {
  const r = await client.query<{ n: string }>(`
    SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%')
         + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema'))
         + (SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'public') AND nspname NOT LIKE 'pg_toast%' AND nspname NOT LIKE 'pg_temp%')
         + (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')
         + (SELECT count(*) FROM pg_largeobject_metadata) AS n`);
  return Number(r.rows[0]!.n) === 0;
}

/** What CREATE DATABASE takes from the source: the manifest and the schema document both record it. */
interface DatabaseFacts { encoding: string; collate: string; ctype: string }

function databaseFacts(server: Record<string, unknown> | undefined): DatabaseFacts | undefined {
  const { encoding, collate, ctype } = server ?? {};
  return typeof encoding === 'string' && typeof collate === 'string' && typeof ctype === 'string' ? { encoding, collate, ctype } : undefined;
}

/** A connection to the server's maintenance database (postgres, else template1). */
async function adminConnection(target: PgTarget): Promise<pg.Client> {
  return connect(withDatabase(target, 'postgres'), 'cosmos-backup restore').catch(async (e: unknown) => {
    if ((e as CosmosBackupError).code === 'DATABASE_ERROR') return connect(withDatabase(target, 'template1'), 'cosmos-backup restore');
    throw e;
  });
}

/**
 * Creates the target database if it does not exist (or drops and re-creates it with `clean`);
 * returns whether it created one. `onWaiting` is called once CREATE DATABASE is sent, when
 * nothing is left but to wait for the server.
 */
async function prepareDatabase(target: PgTarget, facts: DatabaseFacts, clean: boolean, warn: (m: string) => void, onWaiting?: () => void): Promise<boolean> {
  const admin = await adminConnection(target);
  try {
    const exists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [target.database])).rowCount! > 0;
    if (exists && clean) {
      await admin.query(`DROP DATABASE ${quoteIdent(target.database)} WITH (FORCE)`);
    } else if (exists) {
      const c = await connect(target, 'cosmos-backup restore');
      try {
        if (!(await isEmpty(c))) {
          throw new CosmosBackupError('TARGET_NOT_EMPTY', `target database "${target.database}" on ${target.label} is not empty: restore into a new database name (--database NEW) or pass --clean to drop and re-create it`);
        }
      } finally { await c.end(); }
      return false;
    }
    const enc = facts.encoding;
    try {
      const creating = admin.query(`CREATE DATABASE ${quoteIdent(target.database)} TEMPLATE template0 ENCODING '${enc}' LC_COLLATE '${facts.collate.replace(/'/g, "''")}' LC_CTYPE '${facts.ctype.replace(/'/g, "''")}'`);
      onWaiting?.();
      await creating;
    } catch (e) {
      if ((e as { code?: string }).code !== '22023' && (e as { code?: string }).code !== '42809') throw e;
      warn(`the target server lacks collation ${facts.collate}; database created with its default locale`);
      await admin.query(`CREATE DATABASE ${quoteIdent(target.database)} TEMPLATE template0 ENCODING '${enc}'`);
    }
    return true;
  } catch (e) {
    if (e instanceof CosmosBackupError) throw e;
    throw new CosmosBackupError('DATABASE_ERROR', `preparing target database "${target.database}" on ${target.label} failed: ${(e as Error).message}`, { cause: e });
  } finally {
    await admin.end();
  }
}

/** Drops a database this restore created and has not written to; best effort (the caller reports why it stopped). */
async function dropCreated(target: PgTarget): Promise<void> {
  const admin = await adminConnection(target).catch(() => undefined);
  if (!admin) return;
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(target.database)}`);
  } catch { /* left empty: the user can drop it */ } finally {
    await admin.end();
  }
}

/** n connections to the target, opened at once; the extra ones ready for COPY. All or none. */
async function openConnections(target: PgTarget, n: number): Promise<pg.Client[]> {
  const opened = await Promise.allSettled(Array.from({ length: n }, async (_, i) => {
    const c = await connect(target, i === 0 ? 'cosmos-backup restore' : `cosmos-backup restore ${i + 1}`);
    if (i > 0) await prepareSession(c).catch(async (e: unknown) => { await c.end(); throw e; });
    return c;
  }));
  const failed = opened.find((r) => r.status === 'rejected');
  const conns = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (failed) {
    await Promise.allSettled(conns.map((c) => c.end()));
    throw failed.reason;
  }
  return conns;
}

export async function restorePostgres(repo: Repository, restorePointId: string, target: PgTarget, opts: PgRestoreOptions = {}): Promise<PgRestoreResult> {
  const reader = await openRestorePoint(repo, restorePointId);
  checkEngine(reader.restorePoint);
  const warnings: string[] = [];
  const warn = (m: string) => { warnings.push(m); opts.onWarning?.(m); };
  const parallel = Math.max(1, Math.min(opts.parallel ?? 2, 32));
  const isData = (o: ManifestObject) => o.kind === 'table-data';
  const connections = (dataObjects: number) => Math.max(1, Math.min(parallel, dataObjects));

  // Without a subset or --clean, nothing done to the target depends on the schema document: the
  // database is created from the facts the manifest records while the index and the schema
  // load (most of a restore's start-up), and the connections are opened. If the
  // schema then cannot be read, the database this created is dropped again, as if never made.
  // A subset is chosen first so that a wrong name changes nothing; --clean drops the old
  // database only once the restore point has been read.
  const facts = opts.subset || opts.clean ? undefined : databaseFacts(reader.restorePoint.server);
  let waiting = () => {};
  const sent = new Promise<void>((resolve) => { waiting = resolve; });
  const prepared = facts && prepareDatabase(target, facts, false, warn, waiting);
  const early = prepared && prepared.then(async (created) => ({ created, conns: await openConnections(target, connections(reader.restorePoint.objects.filter(isData).length)) }));
  early?.catch(() => undefined);
  // Loading the index keeps this thread busy: the server gets CREATE DATABASE first. A target
  // refused before that (not empty, unreachable) is reported at once, not after the index loads.
  if (prepared) await Promise.race([sent, prepared]);
  let whole: SchemaDocument;
  try {
    whole = await loadSchema(reader);
  } catch (e) {
    const set = await early?.catch(() => undefined);
    if (set) {
      await Promise.allSettled(set.conns.map((c) => c.end()));
      if (set.created) await dropCreated(target);
    }
    throw e;
  }
  // Chosen before the target is touched, so that a wrong name changes nothing.
  const subset = opts.subset ? selectSubset(whole, opts.subset, warn, reader.restorePoint.id.slice(0, 12)) : undefined;
  const doc = subset?.doc ?? whole;
  const dataObjects = reader.restorePoint.objects.filter((o) => isData(o)
    && (!subset || subset.tables.has(relationKey((o.meta as TableDataMeta).schema, (o.meta as TableDataMeta).table))));
  const conns = early ? (await early).conns : await (async () => {
    await prepareDatabase(target, doc.server, !!opts.clean, warn);
    return openConnections(target, connections(dataObjects.length));
  })();
  const main = conns[0]!;

  const loObjects = reader.restorePoint.objects.filter((o) => o.kind === 'large-object');
  const totalBytes = dataObjects.reduce((s, o) => s + o.size, 0);
  let bytes = 0;
  const counts: Record<string, number> = {};
  const report = (phase: string) => opts.onProgress?.({ phase, bytes, totalBytes });

  try {
    report('schema');
    await applyItems(main, doc.items, { section: 'pre-data', noOwner: opts.noOwner, noPrivileges: opts.noPrivileges, onWarning: warn });

    // Large objects: create with their recorded OIDs, then write their bytes.
    for (const lo of doc.largeObjects) {
      await main.query('SELECT pg_catalog.lo_create($1::oid)', [lo.oid]);
      if (!opts.noOwner && lo.owner) {
        const has = (await main.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [lo.owner])).rowCount! > 0;
        if (has) await main.query(`ALTER LARGE OBJECT ${lo.oid} OWNER TO ${quoteIdent(lo.owner)}`);
        else warn(`skipped owner of large object ${lo.oid}: role "${lo.owner}" does not exist on the target`);
      }
      const obj = loObjects.find((o) => o.name === `lo/${lo.oid}`);
      if (!obj) continue;
      let offset = 0;
      for await (const piece of reader.openObject(obj)) {
        await main.query('SELECT pg_catalog.lo_put($1::oid, $2, $3)', [lo.oid, offset, piece]);
        offset += (piece as Buffer).length;
      }
    }

    report('data');
    // One job per table, biggest first; a table's parts load in order on one connection, so
    // the restored heap keeps the source's row order (index correlation, BRIN ranges). With
    // parallelParts a split table's parts are jobs of their own (speed over row order).
    // As pg_restore -j: indexes and primary/unique/exclusion keys depend only on their table's
    // data and pre-data objects, so each is built as soon as its table is loaded, on whichever
    // connection is free: a connection that has no table left to load builds the indexes of
    // tables already in while the biggest table is still loading. Everything else follows.
    const post = doc.items.filter((i) => i.section === 'post-data');
    const plan = planLoad(dataObjects, post, { parallelParts: opts.parallelParts });
    let loading = plan.jobs.length;
    /** jobs still to load per table id: a table is in once its count reaches 0 */
    const partsLeft = new Map<string, number>();
    for (const j of plan.jobs) partsLeft.set(j.id, (partsLeft.get(j.id) ?? 0) + 1);
    let wake: () => void = () => {};
    let changed = new Promise<void>((r) => { wake = r; });
    const jobDone = (id: string) => {
      partsLeft.set(id, partsLeft.get(id)! - 1);
      if (--loading === 0) report('post-data');
      wake();
      changed = new Promise<void>((r) => { wake = r; });
    };
    const ready = (w: WaveItem) => (w.after === undefined ? loading === 0 : w.after.every((t) => partsLeft.get(t) === 0));
    const work = async (client: pg.Client) => {
      for (;;) {
        const job = plan.jobs.shift();
        if (job) {
          const rows = await loadJob(reader, client, job, (n) => { bytes += n; report('data'); });
          counts[job.key] = (counts[job.key] ?? 0) + rows;
          jobDone(job.id);
          continue;
        }
        const next = plan.wave.findIndex(ready);
        if (next >= 0) {
          const [w] = plan.wave.splice(next, 1);
          await applyItems(client, [w!.item], { noOwner: opts.noOwner, noPrivileges: opts.noPrivileges, onWarning: warn });
          continue;
        }
        if (!plan.wave.length) return;
        await changed; // the rest waits on tables other connections are loading
      }
    };
    if (loading === 0) report('post-data');
    await Promise.all(conns.map(work));
    await applyItems(main, post.filter((i) => !PARALLEL_KINDS.has(i.kind)), { noOwner: opts.noOwner, noPrivileges: opts.noPrivileges, onWarning: warn });
    const seq = sequenceValuesSql(doc);
    if (seq) await main.query(seq);
    report('done');
    return { database: target.database, tables: dataObjects.length, bytes, counts, warnings };
  } catch (e) {
    const why = e instanceof CosmosBackupError ? e.message : (e as Error).message;
    throw new CosmosBackupError(e instanceof CosmosBackupError ? e.code : 'DATABASE_ERROR',
      `${why} — database "${target.database}" on ${target.label} is left partly restored; drop it (DROP DATABASE ${quoteIdent(target.database)}) or restore again with --clean`, { cause: e });
  } finally {
    await Promise.allSettled(conns.map((c) => c.end()));
  }
}

/**
 * Data to load on one connection: all parts of a table in order, or with parallelParts one part
 * of a table whose other parts load beside it (`shared`: the table is not this job's alone).
 */
interface TableJob { id: string; key: string; schema: string; table: string; parts: ManifestObject[]; size: number; shared?: boolean }

/** The data objects grouped by table (parts in their backup order), biggest table first. */
export function tableJobs(objects: ManifestObject[]): TableJob[] {
  const jobs = new Map<string, TableJob>();
  for (const o of objects) {
    const m = o.meta as TableDataMeta;
    const id = relationKey(m.schema, m.table); // unambiguous, unlike "schema.table"
    const job = jobs.get(id) ?? { id, key: `${m.schema}.${m.table}`, schema: m.schema, table: m.table, parts: [], size: 0 };
    job.parts.push(o);
    job.size += o.size;
    jobs.set(id, job);
  }
  const partNo = (o: ManifestObject) => Number(o.name.slice(o.name.lastIndexOf('/') + 1));
  for (const j of jobs.values()) j.parts.sort((a, b) => partNo(a) - partNo(b));
  return [...jobs.values()].sort((a, b) => b.size - a.size);
}

/** Post-data kinds built in parallel, each once the data of its table is loaded. */
const PARALLEL_KINDS = new Set(['index', 'constraint']);

/** A parallel post-data item and the tables (job ids) whose data it waits for; undefined = all data. */
export interface WaveItem { item: DdlItem; after: string[] | undefined }

/**
 * The data jobs (tableJobs) and the post-data items that may run beside them: indexes and
 * primary/unique/exclusion keys, in document order, each waiting for the data of its own table and
 * of any relation it needs. Items of restore points that do not record their table wait for all
 * data, as every item did before.
 */
export function planLoad(objects: ManifestObject[], postData: DdlItem[], opts: { parallelParts?: boolean } = {}): { jobs: TableJob[]; wave: WaveItem[] } {
  const tables = tableJobs(objects);
  const jobs = opts.parallelParts
    ? tables.flatMap((t) => (t.parts.length > 1 ? t.parts.map((p) => ({ ...t, parts: [p], size: p.size, shared: true })) : [t])).sort((a, b) => b.size - a.size)
    : tables;
  const withData = new Set(tables.map((j) => j.id));
  const wave = postData.filter((i) => PARALLEL_KINDS.has(i.kind)).map((item): WaveItem => ({
    item,
    after: item.table
      ? [item.table, ...(item.needs ?? [])].map((t) => JSON.stringify([t.schema, t.name])).filter((id) => withData.has(id))
      : undefined,
  }));
  return { jobs, wave };
}

/**
 * Loads a table's parts. As PostgreSQL's "Populating a Database" advises, the table (created by
 * this restore, still empty) is truncated in the loading transaction so that COPY can write its
 * rows already frozen: no hint-bit writes when indexes are built, no freeze vacuum later. Where
 * the target refuses TRUNCATE (a role without the privilege), or other connections load parts of
 * the same table at the same time (a TRUNCATE would lock them out), the parts load plainly.
 */
async function loadJob(reader: RestorePointReader, client: pg.Client, job: TableJob, onBytes: (n: number) => void): Promise<number> {
  const rel = `${quoteIdent(job.schema)}.${quoteIdent(job.table)}`;
  let freeze = !job.shared;
  if (freeze) {
    await client.query('BEGIN');
    try {
      await client.query(`TRUNCATE ONLY ${rel}`);
    } catch {
      await client.query('ROLLBACK');
      freeze = false;
    }
  }
  let rows = 0;
  for (const part of job.parts) rows += await loadTable(reader, client, part, onBytes, freeze);
  if (freeze) await client.query('COMMIT');
  return rows;
}

/** Loads one data object; returns the rows the server's COPY took. */
async function loadTable(reader: RestorePointReader, client: pg.Client, obj: ManifestObject, onBytes: (n: number) => void, freeze: boolean): Promise<number> {
  const m = obj.meta as TableDataMeta;
  const rel = `${quoteIdent(m.schema)}.${quoteIdent(m.table)}`;
  const options = [m.format === 'binary' ? 'FORMAT binary' : '', freeze ? 'FREEZE' : ''].filter(Boolean);
  const sql = `COPY ${rel}${m.columns.length ? ` (${m.columns.map(quoteIdent).join(', ')})` : ''} FROM STDIN${options.length ? ` (${options.join(', ')})` : ''}`;
  const src = reader.openObject(obj);
  src.on('data', (c: Buffer) => onBytes(c.length));
  try {
    const copy = client.query(copyFrom(sql));
    await pipeline(src, copy);
    return copy.rowCount;
  } catch (e) {
    if (e instanceof CosmosBackupError) throw e;
    const err = e as { message?: string; code?: string };
    const hint = err.code === '53100' ? ' (the target disk is full: free space or restore elsewhere)' : '';
    throw new CosmosBackupError(err.code === '53100' ? 'STORAGE_FULL' : 'DATABASE_ERROR', `loading table ${m.schema}.${m.table} failed: ${err.message ?? String(e)}${hint}`, { cause: e });
  }
}
