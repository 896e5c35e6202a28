// backup | restore | export: the database engines, wired to the repository named on the command line.
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { Command } from 'commander';
import { CosmosBackupError } from '../../shared/errors.ts';
import { openRestorePoint } from '../../shared/repository/reader.ts';
import { openRepo, type RepoOptions } from '../repo-access.ts';
import { formatBytes, progressBar, say } from '../output.ts';
import { backupPostgres } from '../engines/postgres/backup.ts';
import { restorePostgres } from '../engines/postgres/restore.ts';
import { exportPostgresSql } from '../engines/postgres/export.ts';
import { resolveTarget, withDatabase } from '../engines/postgres/connection.ts';

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
      const base = resolveTarget(o.source, { passwordEnv: o.passwordEnv });
      const dbs = o.database?.length ? o.database : [base.database];
      const results = [];
      for (const db of dbs) {
        const target = withDatabase(base, db);
        const bar = progressBar(`backup ${db}`);
        const started = Date.now();
        const rp = await backupPostgres(repo, target, {
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

  withCommon(program.command('restore').description('restore a restore point into a database'))
    .argument('<restore-point>', 'restore point id (a unique prefix is fine)')
    .requiredOption('--target <conn>', 'target server (URL or libpq keywords)')
    .option('--database <name>', 'target database name (default: the one in --target)')
    .option('--clean', 'drop and re-create the target database if it exists and is not empty')
    .option('--no-owner', 'do not restore object owners')
    .option('--no-privileges', 'do not restore grants')
    .action(async (id: string, o: CommonOpts & { target: string; database?: string; clean?: boolean; owner: boolean; privileges: boolean }) => {
      const repo = await openRepo(repoOpts(o));
      const rp = await repo.loadRestorePoint(id);
      if (rp.engine !== 'postgres') throw new CosmosBackupError('INVALID_ARGUMENT', `restore point ${rp.id.slice(0, 12)} is a ${rp.engine} backup; this agent restores it with a ${rp.engine} --target`);
      const base = resolveTarget(o.target, { passwordEnv: o.passwordEnv });
      const target = o.database ? withDatabase(base, o.database) : base;
      const bar = progressBar(`restore ${target.database}`);
      const started = Date.now();
      const res = await restorePostgres(repo, rp.id, target, {
        parallel: parallelOf(o), clean: !!o.clean, noOwner: !o.owner, noPrivileges: !o.privileges,
        onWarning: (m) => say(`warning: ${m}`),
        onProgress: (p) => bar.update(p.bytes, p.totalBytes, p.phase),
      }).finally(() => bar.stop());
      const secs = (Date.now() - started) / 1000;
      if (o.json) process.stdout.write(JSON.stringify({ restorePoint: rp.id, ...res, seconds: secs }, null, 2) + '\n');
      else say(`restored ${rp.id.slice(0, 12)} into ${target.database} on ${target.label}: ${res.tables} table parts, ${formatBytes(res.bytes)} in ${secs.toFixed(1)} s${res.warnings.length ? `, ${res.warnings.length} warning(s)` : ''}`);
    });

  withCommon(program.command('export').description('write a restore point in a standard format (no lock-in)'))
    .argument('<restore-point>', 'restore point id (a unique prefix is fine)')
    .requiredOption('--format <format>', 'sql (PostgreSQL, loads with psql) or mongodump')
    .option('-o, --output <file>', 'output file, or - for stdout', '-')
    .option('--no-owner', 'leave out object owners')
    .option('--no-privileges', 'leave out grants')
    .action(async (id: string, o: CommonOpts & { format: string; output: string; owner: boolean; privileges: boolean }) => {
      const repo = await openRepo(repoOpts(o));
      const reader = await openRestorePoint(repo, id);
      if (o.format !== 'sql') throw new CosmosBackupError('INVALID_ARGUMENT', `format "${o.format}" is not available for ${reader.restorePoint.engine} restore points (use sql)`);
      if (reader.restorePoint.engine !== 'postgres') throw new CosmosBackupError('INVALID_ARGUMENT', `--format sql exports PostgreSQL restore points; ${reader.restorePoint.id.slice(0, 12)} is ${reader.restorePoint.engine}`);
      const out: Writable = o.output === '-' ? process.stdout : createWriteStream(o.output, { mode: 0o600 });
      await exportPostgresSql(reader, out, { noOwner: !o.owner, noPrivileges: !o.privileges });
      if (out !== process.stdout) { out.end(); await finished(out); say(`exported ${reader.restorePoint.id.slice(0, 12)} to ${o.output}`); }
    });
}
