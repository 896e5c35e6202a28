// backup | restore | export: the database engines, wired to the repository named on the command line.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
// Engines are imported when a command runs: the mongodb driver, pg and the Azure SDK are large,
// and `--version` or a PostgreSQL backup should not pay for loading the others.
import { CosmosBackupError } from '../../shared/errors.ts';
import { openRestorePoint } from '../../shared/repository/reader.ts';
import { openRepo, type RepoOptions } from '../repo-access.ts';
import { formatBytes, progressBar, say } from '../output.ts';
import type { RestorePoint, RestorePointReader } from '../../shared/repository/types.ts';
import type { Repository } from '../../shared/repository/repository.ts';

interface CommonOpts {
  repo?: string;
  repoPasswordFile?: string;
  repoPasswordEnv?: string;
  passwordEnv?: string;
  parallel?: string;
  json?: boolean;
}

function repoOpts(o: CommonOpts): RepoOptions {
  return { repo: o.repo, passwordFile: o.repoPasswordFile, passwordEnv: o.repoPasswordEnv };
}

function withCommon(cmd: Command): Command {
  return cmd
    .option('--repo <location>', 'repository: a path, file:///path, or azblob://account/container/prefix (env COSMOS_BACKUP_REPO)')
    .option('--repo-password-file <file>', 'file holding the repository password')
    .option('--repo-password-env <var>', 'environment variable holding the repository password')
    .option('--password-env <var>', 'environment variable holding the database password')
    .option('--parallel <n>', 'parallel connections', '2')
    .option('--json', 'print a machine-readable summary');
}

function collect(v: string, prev: string[] = []): string[] { return [...prev, v]; }

function parseLabels(list: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    if (i <= 0) throw new CosmosBackupError('INVALID_ARGUMENT', `label "${l}" is not key=value`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

function parallelOf(o: CommonOpts): number {
  const n = Number(o.parallel ?? 2);
  if (!Number.isInteger(n) || n < 1 || n > 32) throw new CosmosBackupError('INVALID_ARGUMENT', `--parallel must be a whole number from 1 to 32, not "${o.parallel}"`);
  return n;
}

export function registerDatabaseCommands(program: Command): void {
  const backup = program.command('backup').description('back up a database into the repository');

  withCommon(backup.command('postgres').description('back up PostgreSQL databases (one consistent snapshot each)'))
    .requiredOption('--source <conn>', 'postgres://user@host:port/db URL or libpq keywords ("host=… dbname=… sslmode=require")')
    .option('--database <name>', 'database to back up (repeatable; default: the one in --source)', collect)
    .option('--label <k=v>', 'label recorded in the restore point (repeatable)', collect)
    .option('--tag <tag>', 'tag recorded in the restore point (repeatable)', collect)
    .action(async (o: CommonOpts & { source: string; database?: string[]; label?: string[]; tag?: string[] }) => {
      const repo = await openRepo(repoOpts(o));
      const base = (await import('../engines/postgres/connection.ts')).resolveTarget(o.source, { passwordEnv: o.passwordEnv });
      const dbs = o.database?.length ? o.database : [base.database];
      const results = [];
      for (const db of dbs) {
        const target = (await import('../engines/postgres/connection.ts')).withDatabase(base, db);
        const bar = progressBar(`backup ${db}`);
        const started = Date.now();
        const rp = await (await import('../engines/postgres/backup.ts')).backupPostgres(repo, target, {
          parallel: parallelOf(o), labels: parseLabels(o.label), tags: o.tag,
          onProgress: (p) => bar.update(p.bytesRead, Math.max(p.totalEstimate, p.bytesRead), `${p.tablesDone}/${p.tables} tables`),
        }).finally(() => bar.stop());
        const secs = (Date.now() - started) / 1000;
        results.push({ id: rp.id, database: db, ...rp.stats, seconds: secs });
        if (!o.json) say(`backed up ${db}: ${rp.stats.objects} objects, ${formatBytes(rp.stats.bytes)} read, ${formatBytes(rp.stats.storedBytes)} added to the repository in ${secs.toFixed(1)} s`);
      }
      if (o.json) process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results, null, 2) + '\n');
      else for (const r of results) process.stdout.write(r.id + '\n');
    });

  withCommon(backup.command('mongodb').description('back up MongoDB / Cosmos DB for MongoDB databases (one restore point per database)'))
    .requiredOption('--source <url>', 'mongodb:// or mongodb+srv:// URL; the password in it or in --password-env')
    .option('--database <name>', 'database to back up (repeatable; default: the one in --source, else every user database)', collect)
    .option('--collection <db.coll>', 'back up only this collection (repeatable)', collect)
    .option('--label <k=v>', 'label recorded in the restore point (repeatable)', collect)
    .option('--tag <tag>', 'tag recorded in the restore point (repeatable)', collect)
    .action(async (o: CommonOpts & { source: string; database?: string[]; collection?: string[]; label?: string[]; tag?: string[] }) => {
      const parallel = parallelOf(o);
      const labels = parseLabels(o.label);
      const target = (await import('../engines/mongodb/connection.ts')).resolveMongoTarget(o.source, { passwordEnv: o.passwordEnv });
      const selected = (await import('../engines/mongodb/selection.ts')).selectDatabases(o.database, o.collection, target.database);
      const repo = await openRepo(repoOpts(o));
      const client = await (await import('../engines/mongodb/connection.ts')).connectMongo(target);
      try {
        const dbs = selected ?? (await (await import('../engines/mongodb/backup.ts')).listUserDatabases(client)).map((database) => ({ database, collections: undefined }));
        if (!dbs.length) throw new CosmosBackupError('INVALID_ARGUMENT', `MongoDB at ${target.label} has no user databases to back up`);
        const results = [];
        for (const sel of dbs) {
          const bar = progressBar(`backup ${sel.database}`, 'items');
          const started = Date.now();
          const r = await (await import('../engines/mongodb/backup.ts')).backupMongo(repo, client, target, {
            database: sel.database, collections: sel.collections, parallel, labels, tags: o.tag,
            onProgress: (p) => bar.update(p.documents, Math.max(p.documentsEstimate, p.documents), `${p.collectionsDone}/${p.collections} collections`),
          }).finally(() => bar.stop());
          const secs = (Date.now() - started) / 1000;
          const rp = r.restorePoint;
          results.push({ id: rp.id, database: sel.database, collections: r.collections, views: r.views, documents: r.documents, retries: r.retries, throttled: r.throttled, ...rp.stats, seconds: secs });
          if (!o.json) say(`backed up ${sel.database}: ${r.collections} collections, ${r.views} views, ${r.documents} documents, ${formatBytes(rp.stats.bytes)} read, ${formatBytes(rp.stats.storedBytes)} added to the repository in ${secs.toFixed(1)} s${r.retries ? ` (${r.retries} retries, ${r.throttled} throttled)` : ''}`);
        }
        if (o.json) process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results, null, 2) + '\n');
        else for (const r of results) process.stdout.write(r.id + '\n');
      } finally {
        await client.close().catch(() => undefined);
      }
    });

  withCommon(program.command('restore').description('restore a restore point into a database'))
    .argument('<restore-point>', 'restore point id (a unique prefix is fine)')
    .requiredOption('--target <conn>', 'target server: PostgreSQL URL or libpq keywords, or a mongodb:// URL for MongoDB restore points')
    .option('--database <name>', 'target database name (default: the one in --target, for MongoDB the backed-up one)')
    .option('--clean', 'PostgreSQL: drop and re-create the target database if it exists and is not empty')
    .option('--drop', 'MongoDB: drop target collections and views that exist (otherwise non-empty ones are refused)')
    .option('--database-map <old:new>', 'MongoDB: restore database OLD under the name NEW (repeatable)', collect)
    .option('--table <schema.table>', 'PostgreSQL: restore only this table, view or materialized view (repeatable; with what it needs)', collect)
    .option('--schema <name>', 'PostgreSQL: restore only the tables of this schema (repeatable; with what they need)', collect)
    .option('--collection <name>', 'MongoDB: restore only this collection or view (repeatable)', collect)
    .option('--parallel-parts', 'PostgreSQL: load the parts of tables backed up in several ranges (over 1 GiB) on several connections at once: faster, but the restored rows are no longer in the source\'s physical order')
    .option('--no-owner', 'do not restore object owners')
    .option('--no-privileges', 'do not restore grants')
    .action(async (id: string, o: CommonOpts & { target: string; database?: string; clean?: boolean; parallelParts?: boolean; drop?: boolean; databaseMap?: string[]; table?: string[]; schema?: string[]; collection?: string[]; owner: boolean; privileges: boolean }) => {
      const repo = await openRepo(repoOpts(o));
      const rp = await repo.loadRestorePoint(id);
      if (rp.engine === 'mongodb') {
        if (o.clean) throw new CosmosBackupError('INVALID_ARGUMENT', '--clean is for PostgreSQL restore points; for MongoDB use --drop');
        if (o.parallelParts) throw new CosmosBackupError('INVALID_ARGUMENT', '--parallel-parts is for PostgreSQL restore points');
        if (o.table?.length || o.schema?.length) throw new CosmosBackupError('INVALID_ARGUMENT', '--table and --schema are for PostgreSQL restore points; for MongoDB use --collection NAME');
        await restoreMongoCommand(repo, rp, o);
        return;
      }
      if (rp.engine !== 'postgres') throw new CosmosBackupError('INVALID_ARGUMENT', `restore point ${rp.id.slice(0, 12)} is a ${rp.engine} backup, which this agent cannot restore`);
      if (o.drop || o.databaseMap?.length) throw new CosmosBackupError('INVALID_ARGUMENT', '--drop and --database-map are for MongoDB restore points; for PostgreSQL use --clean and --database');
      if (o.collection?.length) throw new CosmosBackupError('INVALID_ARGUMENT', '--collection is for MongoDB restore points; for PostgreSQL use --table SCHEMA.TABLE or --schema NAME');
      const subset = o.table?.length || o.schema?.length ? { tables: o.table ?? [], schemas: o.schema ?? [] } : undefined;
      const base = (await import('../engines/postgres/connection.ts')).resolveTarget(o.target, { passwordEnv: o.passwordEnv });
      const target = o.database ? (await import('../engines/postgres/connection.ts')).withDatabase(base, o.database) : base;
      const bar = progressBar(`restore ${target.database}`);
      const started = Date.now();
      const res = await (await import('../engines/postgres/restore.ts')).restorePostgres(repo, rp.id, target, {
        parallel: parallelOf(o), clean: !!o.clean, parallelParts: !!o.parallelParts, noOwner: !o.owner, noPrivileges: !o.privileges, subset,
        onWarning: (m) => say(`warning: ${m}`),
        onProgress: (p) => bar.update(p.bytes, p.totalBytes, p.phase),
      }).finally(() => bar.stop());
      const secs = (Date.now() - started) / 1000;
      if (o.json) process.stdout.write(JSON.stringify({ restorePoint: rp.id, ...res, seconds: secs }, null, 2) + '\n');
      else say(`restored ${rp.id.slice(0, 12)} into ${target.database} on ${target.label}: ${res.tables} table parts, ${formatBytes(res.bytes)} in ${secs.toFixed(1)} s${res.warnings.length ? `, ${res.warnings.length} warning(s)` : ''}`);
    });

  withCommon(program.command('export').description('write a restore point in a standard format (no lock-in)'))
    .argument('<restore-point>', 'restore point id (a unique prefix is fine)')
    .requiredOption('--format <format>', 'sql (PostgreSQL, loads with psql) or mongodump (MongoDB, loads with mongorestore)')
    .option('-o, --output <path>', 'sql: output file; mongodump: output directory; - for stdout (mongodump: a tar.gz)', '-')
    .option('--archive <file>', 'write one tar.gz archive holding the export (- for stdout)')
    .option('--no-owner', 'leave out object owners')
    .option('--no-privileges', 'leave out grants')
    .action(async (id: string, o: CommonOpts & { format: string; output: string; archive?: string; owner: boolean; privileges: boolean }) => {
      const repo = await openRepo(repoOpts(o));
      const reader = await openRestorePoint(repo, id);
      const rp = reader.restorePoint;
      const formats: Record<string, string> = { postgres: 'sql', mongodb: 'mongodump' };
      const expected = formats[rp.engine];
      if (!expected) throw new CosmosBackupError('INVALID_ARGUMENT', `restore point ${rp.id.slice(0, 12)} is a ${rp.engine} backup, which this agent cannot export`);
      if (o.format !== expected) throw new CosmosBackupError('INVALID_ARGUMENT', `format "${o.format}" is not available for ${rp.engine} restore points (use --format ${expected})`);
      const archive = o.archive ?? (rp.engine === 'mongodb' && o.output === '-' ? '-' : undefined);
      if (archive === '-' && process.stdout.isTTY) throw new CosmosBackupError('INVALID_ARGUMENT', 'refusing to write a binary archive to a terminal: give --archive FILE.tar.gz, or -o DIR for mongodump');
      if (archive !== undefined) {
        const out: Writable = archive === '-' ? process.stdout : createWriteStream(archive, { mode: 0o600 });
        if (rp.engine === 'mongodb') await (await import('../engines/mongodb/export.ts')).exportMongodumpArchive(reader, out);
        else await exportPostgresArchive(reader, out, { noOwner: !o.owner, noPrivileges: !o.privileges });
        if (archive !== '-') say(`exported ${rp.id.slice(0, 12)} to ${archive}`);
        return;
      }
      if (rp.engine === 'mongodb') {
        const files = await (await import('../engines/mongodb/export.ts')).exportMongodumpDir(reader, o.output);
        say(`exported ${rp.id.slice(0, 12)} to ${o.output}: ${files.length} files (load with mongorestore --dir ${o.output})`);
        return;
      }
      const out: Writable = o.output === '-' ? process.stdout : createWriteStream(o.output, { mode: 0o600 });
      await (await import('../engines/postgres/export.ts')).exportPostgresSql(reader, out, { noOwner: !o.owner, noPrivileges: !o.privileges });
      if (out !== process.stdout) { out.end(); await finished(out); say(`exported ${rp.id.slice(0, 12)} to ${o.output}`); }
    });
}

async function restoreMongoCommand(repo: Repository, rp: RestorePoint, o: CommonOpts & { target: string; database?: string; drop?: boolean; databaseMap?: string[]; collection?: string[] }): Promise<void> {
  const parallel = parallelOf(o);
  const dbName = (await import('../engines/mongodb/selection.ts')).targetDatabase(rp.database, (await import('../engines/mongodb/selection.ts')).parseDatabaseMap(o.databaseMap), o.database);
  const target = (await import('../engines/mongodb/connection.ts')).resolveMongoTarget(o.target, { passwordEnv: o.passwordEnv });
  const client = await (await import('../engines/mongodb/connection.ts')).connectMongo(target);
  try {
    const bar = progressBar(`restore ${dbName}`);
    const started = Date.now();
    const res = await (await import('../engines/mongodb/restore.ts')).restoreMongo(repo, rp.id, client, target, {
      database: dbName, drop: !!o.drop, parallel, collections: o.collection?.length ? o.collection : undefined,
      onWarning: (m) => say(`warning: ${m}`),
      onProgress: (p) => bar.update(p.bytes, p.totalBytes, p.phase),
    }).finally(() => bar.stop());
    const secs = (Date.now() - started) / 1000;
    if (o.json) process.stdout.write(JSON.stringify({ restorePoint: rp.id, ...res, seconds: secs }, null, 2) + '\n');
    else say(`restored ${rp.id.slice(0, 12)} into ${dbName} on ${target.label}: ${res.collections} collections, ${res.views} views, ${res.indexes} indexes, ${res.documents} documents (${formatBytes(res.bytes)}) in ${secs.toFixed(1)} s${res.retries ? `, ${res.retries} retries (${res.throttled} throttled)` : ''}${res.warnings.length ? `, ${res.warnings.length} warning(s)` : ''}`);
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** The SQL script as the one file of a tar.gz (written to a private temporary file first: tar needs sizes). */
async function exportPostgresArchive(reader: RestorePointReader, out: Writable, opts: { noOwner?: boolean; noPrivileges?: boolean }): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cosmos-backup-export-'));
  try {
    const file = path.join(dir, 'export.sql');
    const sql = createWriteStream(file, { mode: 0o600 });
    await (await import('../engines/postgres/export.ts')).exportPostgresSql(reader, sql, opts);
    sql.end();
    await finished(sql);
    const size = (await stat(file)).size;
    await (await import('../archive.ts')).writeTarGz([{ name: `${reader.restorePoint.database}.sql`, size, open: () => createReadStream(file) }], out);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
