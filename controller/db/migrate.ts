// Versioned migrations: controller/db/migrations/NNN_name.sql, applied in order, each in its own
// transaction, recorded in schema_migrations. An advisory lock keeps two controllers starting at
// once on one PostgreSQL from applying the same file twice.
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { CosmosBackupError } from '../../shared/errors.ts';
import type { Db } from './db.ts';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
const LOCK_ID = 640_117_001;

export interface Migration { version: number; name: string; sql: string }

export function loadMigrations(dir = DIR): Migration[] {
  return readdirSync(dir).filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f)).sort().map((f) => ({
    version: Number(f.slice(0, 3)), name: f.slice(4, -4), sql: readFileSync(path.join(dir, f), 'utf8'),
  }));
}

/** Applies pending migrations; returns the versions applied now. */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<number[]> {
  await db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  const applied: number[] = [];
  for (const m of migrations) {
    await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_ID]);
      const done = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (done.length) return;
      try {
        await tx.exec(m.sql);
      } catch (e) {
        throw new CosmosBackupError('DATABASE_ERROR', `migration ${m.version}_${m.name} failed: ${(e as Error).message}`, { cause: e });
      }
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    });
  }
  const newest = await db.query<{ v: number }>('SELECT max(version) AS v FROM schema_migrations');
  const known = migrations.at(-1)?.version ?? 0;
  if ((newest[0]?.v ?? 0) > known) {
    throw new CosmosBackupError('UNSUPPORTED_FORMAT', `the configuration database has schema version ${newest[0]!.v}, newer than this controller knows (${known}); upgrade the controller`);
  }
  return applied;
}
