// Test helpers for the schema round trip: psql / pg_dump against the harness server, a simple
// table copier (source COPY TO STDOUT piped into target COPY FROM STDIN), and dump comparison.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { PostgresServer } from '../support/postgres.ts';
import type { SchemaDocument, TableInfo } from '../../agent/engines/postgres/schema-types.ts';
import { qualify, quoteIdent } from '../../agent/engines/postgres/schema-util.ts';

const run = promisify(execFile);

function env(server: PostgresServer): NodeJS.ProcessEnv {
  return { ...process.env, PGPASSWORD: server.password, PGCONNECT_TIMEOUT: '10' };
}
const conn = (server: PostgresServer) => ['-h', server.host, '-p', String(server.port), '-U', server.user];

export async function psqlFile(server: PostgresServer, db: string, file: string): Promise<string> {
  const { stdout } = await run(path.join(server.binDir, 'psql'), [...conn(server), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', db, '-f', file],
    { env: env(server), maxBuffer: 64 << 20 });
  return stdout;
}

export async function pgDump(server: PostgresServer, db: string, args: string[]): Promise<string> {
  const { stdout } = await run(path.join(server.binDir, 'pg_dump'), [...conn(server), '-d', db, ...args], { env: env(server), maxBuffer: 64 << 20 });
  return stdout;
}

/** pg_dump text without comment lines, SET lines, psql \restrict keys and blank-line runs. */
export function normalizeDump(text: string): string {
  const lines = text.split('\n').filter((l) => !l.startsWith('--') && !l.startsWith('SET ') && !l.startsWith('SELECT pg_catalog.set_config(')
    && !l.startsWith('\\restrict') && !l.startsWith('\\unrestrict'));
  return lines.join('\n').replace(/\n{2,}/g, '\n\n').trim() + '\n';
}

/** `diff -u` of two texts, for assertion messages. */
export async function textDiff(a: string, b: string): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'schema-diff-'));
  try {
    writeFileSync(path.join(dir, 'source'), a);
    writeFileSync(path.join(dir, 'target'), b);
    try {
      await run('diff', ['-u', 'source', 'target'], { cwd: dir, maxBuffer: 64 << 20 });
      return '';
    } catch (e) {
      return String((e as { stdout?: string }).stdout ?? e);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function connect(server: PostgresServer, db: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: server.url(db) });
  await c.connect();
  return c;
}

export function copyColumns(t: TableInfo): string {
  return t.columns.map(quoteIdent).join(', ');
}

/** Copies every table's rows and every large object from source to target. */
export async function copyData(src: pg.Client, dst: pg.Client, doc: SchemaDocument): Promise<void> {
  for (const t of doc.tables) {
    if (!t.hasData) continue;
    const cols = copyColumns(t);
    const out = src.query(copyTo(`COPY ${qualify(t.schema, t.name)} (${cols}) TO STDOUT`));
    const input = dst.query(copyFrom(`COPY ${qualify(t.schema, t.name)} (${cols}) FROM STDIN`));
    await pipeline(out, input);
  }
  for (const lo of doc.largeObjects) {
    const bytes = (await src.query(`SELECT pg_catalog.lo_get($1::oid) AS b`, [lo.oid])).rows[0].b as Buffer;
    await dst.query(`SELECT pg_catalog.lo_from_bytea($1::oid, $2::bytea)`, [lo.oid, bytes]);
  }
}

/** md5 of each data table's rows, for comparing source and target. */
export async function tableChecksums(client: pg.Client, doc: SchemaDocument): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of doc.tables) {
    if (!t.hasData) continue;
    const r = await client.query(`SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') AS h FROM (SELECT ${copyColumns(t)} FROM ONLY ${qualify(t.schema, t.name)}) x`);
    out[`${t.schema}.${t.name}`] = r.rows[0].h;
  }
  return out;
}
