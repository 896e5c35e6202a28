// One small database interface over PGlite (embedded default) and PostgreSQL (DATABASE_URL), so
// the same SQL and migrations run on both. Callers pass JSON values as JSON.stringify'd text and
// read bigint columns through Number(): the two drivers differ there and nowhere else we use.
import { mkdirSync } from 'node:fs';
import { CosmosBackupError } from '../../shared/errors.ts';

export type Row = Record<string, any>;

export interface Queryable {
  query<T extends Row = Row>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface Db extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  transaction<T>(fn: (tx: Queryable & { exec(sql: string): Promise<void> }) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function openPglite(dataDir: string): Promise<Db> {
  const { PGlite } = await import('@electric-sql/pglite');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  let pg;
  try {
    pg = await PGlite.create(dataDir);
  } catch (e) {
    throw new CosmosBackupError('DATABASE_ERROR', `cannot open the embedded database in ${dataDir}: ${(e as Error).message}`, { cause: e });
  }
  const db: Db = {
    kind: 'pglite',
    async query(sql, params) { return (await pg.query<any>(sql, params)).rows; },
    async exec(sql) { await pg.exec(sql); },
    transaction(fn) {
      return pg.transaction((tx) => fn({
        async query(sql, params) { return (await tx.query<any>(sql, params)).rows; },
        async exec(sql) { await tx.exec(sql); },
      }));
    },
    async close() { if (!pg.closed) await pg.close(); },
  };
  return db;
}

export async function openPostgres(url: string): Promise<Db> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  // An idle client losing its connection must not crash the controller; the next query reconnects.
  pool.on('error', () => {});
  try {
    const c = await pool.connect();
    c.release();
  } catch (e) {
    await pool.end();
    const code = (e as { code?: string }).code;
    throw new CosmosBackupError(code === '28P01' ? 'DATABASE_AUTH' : 'DATABASE_UNREACHABLE',
      `cannot connect to the configuration database at DATABASE_URL: ${(e as Error).message}`, { cause: e });
  }
  return {
    kind: 'postgres',
    async query(sql, params) { return (await pool.query(sql, params as unknown[])).rows; },
    async exec(sql) { await pool.query(sql); },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({
          async query(sql, params) { return (await client.query(sql, params as unknown[])).rows; },
          async exec(sql) { await client.query(sql); },
        });
        await client.query('COMMIT');
        return result;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        client.release();
      }
    },
    async close() { await pool.end(); },
  };
}
