// Repository commands: repo init | info | passwd | unlock, list, verify, forget, gc.
import type { Command } from 'commander';
import { CosmosBackupError } from '../../shared/errors.ts';
import { openStore, describeLocation } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { verifyRepository } from '../../shared/repository/verify.ts';
import { upgradeFormat } from '../../shared/repository/upgrade.ts';
import { forget, gc, DEFAULT_GRACE_MS } from '../../shared/repository/gc.ts';
import { listLocks, removeLocks } from '../../shared/repository/locks.ts';
import { KEYS } from '../../shared/repository/format.ts';
import { openRepo, repoLocation, type RepoOptions } from '../repo-access.ts';
import { readPassword } from '../secrets.ts';
import { formatBytes, progressBar, say } from '../output.ts';

export function withRepoOptions(cmd: Command): Command {
  return cmd
    .option('--repo <location>', 'repository: a path, file:///path, or azblob://account/container/prefix (env COSMOS_BACKUP_REPO)')
    .option('--password-file <file>', 'file holding the repository password')
    .option('--password-env <var>', 'environment variable holding the repository password');
}

function out(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text + (text.endsWith('\n') ? '' : '\n'));
}

/** "90s", "15m", "24h", "7d" -> ms */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(s.trim());
  if (!m) throw new CosmosBackupError('INVALID_ARGUMENT', `"${s}" is not a duration (examples: 0s, 90s, 15m, 24h, 7d)`);
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
  return Number(m[1]) * mult;
}

export function registerRepoCommands(program: Command): void {
  const repo = program.command('repo').description('create and manage repositories');

  withRepoOptions(repo.command('init').description('create a repository (encrypted when a password is given)'))
    .option('--no-encryption', 'create an unencrypted repository (no password)')
    .action(async (o: RepoOptions & { encryption: boolean }) => {
      const password = readPassword(o);
      if (o.encryption && password === undefined) {
        throw new CosmosBackupError('PASSWORD_REQUIRED', 'give a password for the new repository with --password-file or --password-env, or pass --no-encryption for an unencrypted one');
      }
      const store = await openStore(repoLocation(o), { create: true });
      const r = await Repository.init(store, { password: o.encryption ? password : undefined });
      say(`created ${r.config.encryption === 'none' ? 'unencrypted' : 'encrypted'} repository ${r.id} at ${describeLocation(store.location)}`);
      process.stdout.write(r.id + '\n');
    });

  withRepoOptions(repo.command('info').description('show repository settings and usage'))
    .option('--json', 'machine-readable output')
    .action(async (o: RepoOptions & { json?: boolean }) => {
      const r = await openRepo(o);
      let packs = 0; let packBytes = 0;
      for await (const p of r.store.list(KEYS.dataPrefix)) { packs++; packBytes += p.size; }
      const rps = (await r.listRestorePointIds()).length;
      const info = { id: r.id, format: r.config.version, location: describeLocation(r.location), createdAt: r.config.createdAt, encryption: r.config.encryption, compression: r.config.compression, chunker: { min: r.config.chunker.minSize, avg: r.config.chunker.avgSize, max: r.config.chunker.maxSize }, packSize: r.config.packSize, restorePoints: rps, packs, storedBytes: packBytes };
      out(!!o.json, info, [
        `repository   ${info.id} (format ${info.format}${info.format < 2 ? ': changed chunks are stored whole, not as deltas; `repo upgrade` changes that' : ''})`, `location     ${info.location}`, `created      ${info.createdAt}`,
        `encryption   ${info.encryption}`, `compression  ${info.compression}`,
        `chunks       ${info.chunker.min}/${info.chunker.avg}/${info.chunker.max} bytes (min/avg/max)`,
        `restore pts  ${rps}`, `stored       ${formatBytes(packBytes)} in ${packs} packs`,
      ].join('\n'));
    });

  withRepoOptions(repo.command('passwd').description('change the repository password (data is not rewritten)'))
    .option('--new-password-file <file>', 'file holding the new password')
    .option('--new-password-env <var>', 'environment variable holding the new password')
    .action(async (o: RepoOptions & { newPasswordFile?: string; newPasswordEnv?: string }) => {
      const next = readPassword({ passwordFile: o.newPasswordFile, passwordEnv: o.newPasswordEnv }, 'new repository');
      if (!next) throw new CosmosBackupError('INVALID_ARGUMENT', 'give the new password with --new-password-file or --new-password-env');
      const r = await openRepo(o);
      await r.changePassword(next);
      say('password changed; the old password no longer opens this repository');
    });

  withRepoOptions(repo.command('upgrade').description('raise the repository format to this agent\'s (1 -> 2: later backups store changed chunks as deltas; older agents can no longer open it)'))
    .action(async (o: RepoOptions) => {
      const r = await openRepo(o);
      const { from, to } = await upgradeFormat(r);
      if (from === to) say(`repository ${r.id} is already at format ${to}; nothing to do`);
      else say(`repository ${r.id} upgraded from format ${from} to ${to}: later backups store changed chunks as deltas; nothing stored was rewritten; agents that read only format ${from} can no longer open it`);
    });

  withRepoOptions(repo.command('unlock').description('remove stale locks left by processes that died'))
    .option('--remove-all', 'remove every lock, also live ones (only when you are sure nothing runs)')
    .action(async (o: RepoOptions & { removeAll?: boolean }) => {
      const store = await openStore(repoLocation(o));
      const removed = await removeLocks(store, !!o.removeAll);
      const left = await listLocks(store);
      say(`removed ${removed.length} lock(s)${left.length ? `; ${left.length} live lock(s) remain: ${left.map((l) => l.holder).join('; ')}` : ''}`);
    });

  withRepoOptions(program.command('list').description('list restore points'))
    .option('--json', 'machine-readable output')
    .action(async (o: RepoOptions & { json?: boolean }) => {
      const r = await openRepo(o);
      const rps = await r.listRestorePoints();
      out(!!o.json, rps, rps.length === 0 ? 'no restore points' : [
        'ID        FINISHED                  ENGINE    DATABASE              SIZE        STORED',
        ...rps.map((p) => `${p.id.slice(0, 8)}  ${p.finishedAt.padEnd(24)}  ${p.engine.padEnd(8)}  ${p.database.padEnd(20)}  ${formatBytes(p.stats.bytes).padStart(10)}  ${formatBytes(p.stats.storedBytes).padStart(10)}`),
      ].join('\n'));
    });

  withRepoOptions(program.command('verify').description('check the repository structure (and every byte with --read-data)'))
    .option('--read-data', 'read, decrypt, decompress and re-hash all data')
    .option('--json', 'machine-readable output')
    .action(async (o: RepoOptions & { readData?: boolean; json?: boolean }) => {
      const r = await openRepo(o);
      const bar = progressBar('verifying', 'items');
      const res = await verifyRepository(r, { readData: !!o.readData, onProgress: (d, t) => bar.update(d, t) });
      bar.stop();
      if (o.json) out(true, res, '');
      else {
        for (const p of res.problems) say(`error: ${p.message.startsWith('corrupt object') ? p.message : `${p.object}: ${p.message}`}`);
        say(`${res.restorePoints} restore points, ${res.indexObjects} index objects, ${res.packs} packs${o.readData ? `, ${res.blobsChecked} chunks (${formatBytes(res.bytesRead)}) re-hashed` : ''}: ${res.problems.length ? `${res.problems.length} problem(s)` : 'no problems'}`);
      }
      if (res.problems.length) {
        const first = res.problems[0]!;
        throw new CosmosBackupError('CORRUPT_OBJECT', `verify found ${res.problems.length} problem(s); first: ${first.object}: ${first.message}`);
      }
    });

  withRepoOptions(program.command('forget').description('remove restore points (run gc to free their space)'))
    .argument('<ids...>', 'restore point ids (unique prefixes are fine)')
    .action(async (ids: string[], o: RepoOptions) => {
      const r = await openRepo(o);
      const done = await forget(r, ids);
      for (const id of done) say(`forgot restore point ${id}`);
    });

  withRepoOptions(program.command('gc').description('delete data no restore point uses (after a grace period) and repack'))
    .option('--grace <duration>', 'never touch data younger than this (protects backups that are still running)', '24h')
    .option('--dry-run', 'only report what would be removed')
    .option('--json', 'machine-readable output')
    .action(async (o: RepoOptions & { grace: string; dryRun?: boolean; json?: boolean }) => {
      const r = await openRepo(o);
      const res = await gc(r, { graceMs: o.grace ? parseDuration(o.grace) : DEFAULT_GRACE_MS, dryRun: !!o.dryRun });
      out(!!o.json, res, `${o.dryRun ? 'would free' : 'freed'} ${formatBytes(res.bytesFreed)}: ${res.packsDeleted} packs deleted, ${res.packsRepacked} repacked, ${res.orphanPacksDeleted} orphaned packs deleted, ${res.keptForGrace} kept for the grace period`);
    });
}
