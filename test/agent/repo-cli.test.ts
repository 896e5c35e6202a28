// The repository commands through the agent's command line: results on stdout, one clear line on
// errors, exit codes, passwords only from files or environment variables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { startBackup } from '../../shared/repository/backup-writer.ts';
import { lockExclusive } from '../../shared/repository/locks.ts';
import { encodeConfig, KEYS } from '../../shared/repository/format.ts';
import { tempDir } from '../support/temp-dir.ts';

const CLI = path.join(import.meta.dirname, '../../agent/cli.ts');

function agent(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = ''; let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d; });
    child.stderr.on('data', (d: Buffer) => { stderr += d; });
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

function setup() {
  const dir = tempDir('cb-cli-');
  const pw = path.join(dir, 'pw');
  writeFileSync(pw, 'correct horse\n', { mode: 0o600 });
  return { dir, repo: path.join(dir, 'repo'), pw };
}

async function addRestorePoint(repo: string, password: string) {
  const r = await Repository.open(await openStore(repo), { password });
  const w = await startBackup(r, { engine: 'test', database: 'db', source: 'unit' });
  await w.putObject('t', 'table-data', randomBytes(300_000));
  return w.commit();
}

test('repo init, info, list, verify, passwd, forget, gc through the CLI', async () => {
  const { dir, repo, pw } = setup();
  const init = await agent(['repo', 'init', '--repo', repo, '--password-file', pw]);
  assert.equal(init.code, 0, init.stderr);
  assert.match(init.stdout.trim(), /^[0-9a-f]{32}$/);
  const again = await agent(['repo', 'init', '--repo', repo, '--password-file', pw]);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /already exists/);

  const rp = await addRestorePoint(repo, 'correct horse');
  const list = await agent(['list', '--repo', repo, '--password-env', 'PW', '--json'], { PW: 'correct horse' });
  assert.equal(list.code, 0, list.stderr);
  const rps = JSON.parse(list.stdout) as { id: string }[];
  assert.deepEqual(rps.map((r) => r.id), [rp.id]);
  const info = await agent(['repo', 'info', '--repo', repo, '--password-file', pw, '--json']);
  assert.equal(JSON.parse(info.stdout).encryption, 'aes-256-gcm');
  assert.equal(JSON.parse(info.stdout).restorePoints, 1);
  const verify = await agent(['verify', '--read-data', '--repo', repo, '--password-file', pw]);
  assert.equal(verify.code, 0, verify.stderr);
  assert.match(verify.stderr, /no problems/);

  const newPw = path.join(dir, 'new-pw');
  writeFileSync(newPw, 'battery staple\n', { mode: 0o600 });
  const passwd = await agent(['repo', 'passwd', '--repo', repo, '--password-file', pw, '--new-password-file', newPw]);
  assert.equal(passwd.code, 0, passwd.stderr);
  const old = await agent(['list', '--repo', repo, '--password-file', pw]);
  assert.equal(old.code, 5);
  assert.equal(old.stderr.trim().split('\n').length, 1);
  assert.match(old.stderr, /^error: wrong repository password/);

  const forget = await agent(['forget', rp.id.slice(0, 8), '--repo', repo, '--password-file', newPw]);
  assert.equal(forget.code, 0, forget.stderr);
  const gc = await agent(['gc', '--grace', '0s', '--repo', repo, '--password-file', newPw, '--json']);
  assert.equal(gc.code, 0, gc.stderr);
  assert.ok(JSON.parse(gc.stdout).bytesFreed > 0);
  assert.equal(readdirSync(path.join(repo, 'data')).flatMap((d) => readdirSync(path.join(repo, 'data', d))).filter((f) => !f.startsWith('.')).length, 0);
});

test('repo upgrade through the CLI: format 1 to 2 once, then nothing to do; repo info shows it', async () => {
  const { repo } = setup();
  assert.equal((await agent(['repo', 'init', '--repo', repo, '--no-encryption'])).code, 0);
  const store = await openStore(repo);
  const made = await Repository.open(store);
  await store.put(KEYS.config, encodeConfig({ ...made.config, version: 1 })); // as an older agent made it
  const before = await agent(['repo', 'info', '--repo', repo]);
  assert.match(before.stdout, /format 1: changed chunks are stored whole/);
  const up = await agent(['repo', 'upgrade', '--repo', repo]);
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stderr.trim(), /^repository [0-9a-f]{32} upgraded from format 1 to 2: later backups store changed chunks as deltas/);
  assert.equal(JSON.parse((await agent(['repo', 'info', '--repo', repo, '--json'])).stdout).format, 2);
  const again = await agent(['repo', 'upgrade', '--repo', repo]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /already at format 2; nothing to do/);
});

test('errors are one clear line: repository not found, no password, locked (by whom, since when), corrupt object', async () => {
  const { dir, repo, pw } = setup();
  const missing = await agent(['list', '--repo', path.join(dir, 'nothing-here')]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr.trim(), /^error: no repository at .*nothing-here.*repo init/);
  assert.equal(missing.stderr.trim().split('\n').length, 1);

  await agent(['repo', 'init', '--repo', repo, '--password-file', pw]);
  const nopw = await agent(['list', '--repo', repo]);
  assert.equal(nopw.code, 5);
  assert.match(nopw.stderr, /encrypted: give its password with --password-file FILE or --password-env VAR/);
  const noArgPassword = await agent(['list', '--repo', repo, '--password', 'x']);
  assert.equal(noArgPassword.code, 2, 'a password on the command line is not an option');

  await addRestorePoint(repo, 'correct horse');
  const lock = await lockExclusive(await openStore(repo), 'garbage collection');
  const locked = await agent(['gc', '--repo', repo, '--password-file', pw]);
  assert.equal(locked.code, 4);
  assert.match(locked.stderr.trim(), /^error: repository is locked \([^)]*\) by garbage collection by \S+@\S+ pid \d+ since \d{4}-\d\d-\d\dT/);
  await lock.release();

  // Flip a byte in a pack: verify names it.
  const packDir = path.join(repo, 'data');
  const sub = readdirSync(packDir)[0]!;
  const pack = readdirSync(path.join(packDir, sub)).find((f) => !f.startsWith('.'))!;
  const file = path.join(packDir, sub, pack);
  const { readFileSync } = await import('node:fs');
  const bytes = readFileSync(file);
  bytes[10] ^= 0xff;
  writeFileSync(file, bytes);
  const verify = await agent(['verify', '--read-data', '--repo', repo, '--password-file', pw]);
  assert.equal(verify.code, 3);
  assert.match(verify.stderr, new RegExp(`data/${sub}/${pack}`));
});
