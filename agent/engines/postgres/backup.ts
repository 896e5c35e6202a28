// PostgreSQL backup: one REPEATABLE READ, READ ONLY snapshot exported by a leader connection and
// shared by N workers (as pg_dump -j does); every table streamed with COPY TO STDOUT straight into
// the repository's chunker; large tables split into ctid ranges so one table does not serialise
// the backup. Memory stays bounded: streams with backpressure end to end.
import type pg from 'pg';
import { CosmosBackupError } from '../../../shared/errors.ts';
import type { Repository } from '../../../shared/repository/repository.ts';
import { startBackup } from '../../../shared/repository/backup-writer.ts';
import type { BackupWriter, ProgressFn, RestorePoint } from '../../../shared/repository/types.ts';
import { lockRelations, readSchema } from './catalog.ts';
import type { SchemaDocument, TableDataMeta, TableInfo } from './schema-types.ts';
import { connect, quoteIdent, type PgTarget } from './connection.ts';
import { CopyOut } from './copy-out.ts';
import { binaryCopyTypes } from './binary-copy.ts';

export const ENGINE = 'postgres';
export const SCHEMA_OBJECT = 'schema.json';
/** Tables larger than this are split into ctid ranges of about this size (PostgreSQL >= 14), so
 * parallel connections share big tables and no single table serialises the tail of a backup.
 * Not smaller: a TID range scan costs the server about a quarter more CPU per row than a plain
 * COPY of the table (PostgreSQL 15, measured in docs/PERFORMANCE.md), which outweighs the
 * parallelism for tables that stream in seconds anyway. */
export const SPLIT_BYTES = 1024 * 1024 * 1024;

export interface PgBackupOptions {
  parallel?: number;
  labels?: Record<string, string>;
  tags?: string[];
  onProgress?: (p: { bytesRead: number; bytesStored: number; totalEstimate: number; tablesDone: number; tables: number }) => void;
  splitBytes?: number;
}

export interface TablePart {
  table: TableInfo;
  object: string;
  /** ctid block range [from, to); to undefined = to the end */
  from?: number;
  to?: number;
}

export function tableObjectName(t: { schema: string; name: string }, part: number): string {
  return `data/${JSON.stringify([t.schema, t.name])}/${part}`;
}

/** Splits big tables into ctid block ranges; largest work first so the tail is short. */
export function planParts(tables: (TableInfo & { blocks?: number })[], splitBytes: number, canSplit: boolean): TablePart[] {
  const parts: (TablePart & { weight: number })[] = [];
  for (const t of tables) {
    if (!t.hasData) continue;
    const blocks = t.blocks ?? 0;
    // Ranges of a fixed number of blocks, a power of two near splitBytes' worth: when the table
    // grows or shrinks a little, every part keeps its range (only the last one grows), so each
    // part lines up with its previous version, which delta chunks follow by object name. Equal
    // shares of the current size moved every boundary at every backup.
    const step = blocks > 0 ? 2 ** Math.round(Math.log2(Math.max(1, (splitBytes * blocks) / Math.max(1, t.estimatedBytes)))) : 0;
    const n = canSplit && blocks > 0 && t.estimatedBytes > splitBytes ? Math.ceil(blocks / step) : 1;
    if (n === 1) { parts.push({ table: t, object: tableObjectName(t, 0), weight: t.estimatedBytes }); continue; }
    for (let i = 0; i < n; i++) {
      parts.push({ table: t, object: tableObjectName(t, i), from: i * step, to: i === n - 1 ? undefined : (i + 1) * step, weight: (t.estimatedBytes * Math.min(step, blocks - i * step)) / blocks });
    }
  }
  return parts.sort((a, b) => b.weight - a.weight).map(({ weight: _w, ...p }) => p);
}

/** The COPY that reads a part: binary when every column's type allows it (binary-copy.ts). */
export function copyOutSql(p: TablePart, binary = false): string {
  const t = p.table;
  const rel = `${quoteIdent(t.schema)}.${quoteIdent(t.name)}`;
  const cols = t.columns.map(quoteIdent).join(', ');
  const format = binary ? ' (FORMAT binary)' : '';
  if (p.from === undefined) return t.columns.length ? `COPY ${rel} (${cols}) TO STDOUT${format}` : `COPY ${rel} TO STDOUT${format}`;
  const where = `ctid >= '(${p.from},0)'::tid${p.to !== undefined ? ` AND ctid < '(${p.to},0)'::tid` : ''}`;
  // ONLY: inheritance children are parts of their own.
  return `COPY (SELECT ${t.columns.length ? cols : '*'} FROM ONLY ${rel} WHERE ${where}) TO STDOUT${format}`;
}

function tableError(t: TableInfo, e: unknown): CosmosBackupError {
  const err = e as { code?: string; message?: string };
  const name = `${t.schema}.${t.name}`;
  if (err instanceof CosmosBackupError) return err;
  if (err.code === '42501') return new CosmosBackupError('DATABASE_PERMISSION', `cannot read table ${name}: ${err.message}; grant SELECT on it to the backup user`, { cause: e });
  if (err.code === '57P01' || err.code === '3D000' || /terminat/i.test(err.message ?? '')) return new CosmosBackupError('DATABASE_ERROR', `the server ended the backup while reading ${name} (was the database dropped or the server restarted?): ${err.message}`, { cause: e });
  return new CosmosBackupError('DATABASE_ERROR', `reading table ${name} failed: ${err.message ?? String(e)}`, { cause: e });
}

/** Output settings every backup session pins, as pg_dump does: COPY text and the constants in
 * catalog definitions then read the same on any target, whatever the source's defaults (a
 * DateStyle of 'SQL, DMY' would otherwise give dates a target reads with days and months swapped,
 * and a low extra_float_digits would round floats). */
const OUTPUT_SETTINGS = `SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3`;

async function beginSnapshot(client: pg.Client, snapshot?: string): Promise<void> {
  // One round trip: the settings are session-wide, set before the transaction starts.
  await client.query(`${OUTPUT_SETTINGS}; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY`);
  if (snapshot) await client.query(`SET TRANSACTION SNAPSHOT '${snapshot.replace(/'/g, "''")}'`);
}

/** Backs up one database into repo; returns the committed restore point. */
export async function backupPostgres(repo: Repository, target: PgTarget, opts: PgBackupOptions = {}): Promise<RestorePoint> {
  const parallel = Math.max(1, Math.min(opts.parallel ?? 2, 32));
  const leader = await connect(target, 'cosmos-backup leader');
  const workers: pg.Client[] = [];
  let writer: BackupWriter | undefined;
  let failed = false;
  try {
    await beginSnapshot(leader);
    const snapshot = (await leader.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0]!.s;
    // As pg_dump: ACCESS SHARE on every table, so no DDL changes what pg_get_*def reads meanwhile.
    await lockRelations(leader);
    const doc: SchemaDocument = await readSchema(leader);
    const blocks = new Map<number, number>();
    const bs = await leader.query<{ oid: number; blocks: string }>(
      `SELECT c.oid::int AS oid, (pg_relation_size(c.oid) / current_setting('block_size')::int)::bigint AS blocks
         FROM pg_class c WHERE c.oid = ANY($1::oid[])`, [doc.tables.map((t) => t.oid)]);
    for (const r of bs.rows) blocks.set(r.oid, Number(r.blocks));
    const canSplit = doc.server.versionNum >= 140000;
    const parts = planParts(doc.tables.map((t) => ({ ...t, blocks: blocks.get(t.oid) })), opts.splitBytes ?? SPLIT_BYTES, canSplit);
    const totalEstimate = doc.tables.reduce((s, t) => s + (t.hasData ? t.estimatedBytes : 0), 0);

    for (let i = 0; i < Math.min(parallel, Math.max(parts.length, 1)); i++) {
      const c = await connect(target, `cosmos-backup worker ${i + 1}`);
      workers.push(c);
      await beginSnapshot(c, snapshot);
    }

    let tablesDone = 0;
    const progress: ProgressFn = (p) => opts.onProgress?.({ ...p, totalEstimate, tablesDone, tables: parts.length });
    writer = await startBackup(repo, {
      engine: ENGINE, database: target.database, source: target.label, labels: opts.labels, tags: opts.tags,
      server: { version: doc.server.version, versionNum: doc.server.versionNum, encoding: doc.server.encoding, collate: doc.server.collate, ctype: doc.server.ctype, extensions: doc.server.extensions, citus: doc.citus ? doc.citus.version : undefined },
      onProgress: progress,
    });
    const w = writer;
    await w.putObject(SCHEMA_OBJECT, 'schema', Buffer.from(JSON.stringify(doc)));

    const queue = [...parts];
    const runWorker = async (client: pg.Client) => {
      for (let p = queue.shift(); p; p = queue.shift()) {
        const types = binaryCopyTypes(p.table.columnTypes, p.table.columns.length);
        const meta: TableDataMeta = {
          schema: p.table.schema, table: p.table.name, columns: p.table.columns, from: p.from, to: p.to,
          ...(types ? { format: 'binary', types } : {}),
        };
        const out = w.createObject(p.object, 'table-data', meta);
        try {
          const copy = new CopyOut(copyOutSql(p, types !== undefined), out);
          client.query(copy);
          await copy.done;
          out.end();
          await out.finish();
        } catch (e) {
          out.destroy();
          throw tableError(p.table, e);
        }
        tablesDone++;
      }
    };
    const loJob = (async () => {
      for (const lo of doc.largeObjects) await backupLargeObject(leader, w, lo.oid);
    })();
    await Promise.all([...workers.map(runWorker), loJob]);
    const rp = await w.commit({ schemaObject: SCHEMA_OBJECT, parts: parts.map((p) => ({ object: p.object, schema: p.table.schema, table: p.table.name, columns: p.table.columns })), largeObjects: doc.largeObjects.map((l) => l.oid) });
    writer = undefined;
    return rp;
  } catch (e) {
    failed = true;
    // A COPY abandoned midway never ends on its own (nobody reads it any more), and a ROLLBACK
    // queued behind it would wait forever: close the sockets; the server ends the transactions.
    for (const c of [leader, ...workers]) destroyConnection(c);
    if (writer) await writer.abort(e).catch(() => undefined);
    throw e;
  } finally {
    if (!failed) await Promise.allSettled([leader, ...workers].map((c) => c.query('ROLLBACK').catch(() => undefined).then(() => c.end())));
  }
}

function destroyConnection(c: pg.Client): void {
  const stream = (c as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
  try { stream?.destroy(); } catch { /* already closed */ }
}

const LO_PIECE = 1024 * 1024;

async function backupLargeObject(client: pg.Client, w: BackupWriter, oid: number): Promise<void> {
  const out = w.createObject(`lo/${oid}`, 'large-object', { oid });
  try {
    const fd = (await client.query<{ fd: number }>('SELECT lo_open($1::oid, 262144) AS fd', [oid])).rows[0]!.fd;
    for (;;) {
      const r = await client.query<{ data: Buffer }>('SELECT loread($1, $2) AS data', [fd, LO_PIECE]);
      const data = r.rows[0]!.data;
      if (data.length === 0) break;
      if (!out.write(data)) await new Promise<void>((res) => out.once('drain', () => res()));
      if (data.length < LO_PIECE) break;
    }
    await client.query('SELECT lo_close($1)', [fd]);
    out.end();
    await out.finish();
  } catch (e) {
    out.destroy();
    throw new CosmosBackupError('DATABASE_ERROR', `reading large object ${oid} failed: ${(e as Error).message}`, { cause: e });
  }
}
