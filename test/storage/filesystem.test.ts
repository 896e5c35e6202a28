import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, writeFile, mkdir, utimes } from 'node:fs/promises';
import { tmpdir, hostname } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { FilesystemStore, isAbandonedTemp, mapFsError } from '../../shared/storage/filesystem.ts';
import { CosmosBackupError, RepoLockedError, isCode } from '../../shared/errors.ts';
import { storeConformance } from './conformance.ts';

const base = mkdtempSync(path.join(tmpdir(), 'cosmos-backup-fs-store-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const fresh = () => new FilesystemStore(path.join(base, `s${++n}`, 'repo'));

storeConformance('FilesystemStore', async () => fresh());

test('FilesystemStore: location is a file URL and a missing root reads as empty', async () => {
  const s = fresh();
  assert.match(s.location, /^file:\/\/\//);
  assert.equal(await s.stat('x'), undefined);
  const keys = [];
  for await (const o of s.list('')) keys.push(o.key);
  assert.deepEqual(keys, []);
});

test('FilesystemStore: leftover temp files are invisible to list and get', async () => {
  const s = fresh();
  await s.put('data/aa/obj', new Uint8Array([1, 2, 3]));
  await writeFile(path.join(s.root, 'data', 'aa', '.tmp-deadbeef'), 'partial');
  await mkdir(path.join(s.root, '.tmp-dir'), { recursive: true });
  const keys = [];
  for await (const o of s.list('')) keys.push(o.key);
  assert.deepEqual(keys, ['data/aa/obj']);
  assert.deepEqual(await readdir(path.join(s.root, 'data', 'aa')).then((x) => x.sort()), ['.tmp-deadbeef', 'obj']);
});

test('FilesystemStore: list sweeps temp files of crashed writers (dead pid here, or older than a day) and keeps live ones', async () => {
  const s = fresh();
  await s.put('data/aa/obj', new Uint8Array([1]));
  const dir = path.join(s.root, 'data', 'aa');
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const tag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8); // the store's host tag
  await writeFile(path.join(dir, `.tmp-${dead}-${tag}-aaaaaa`), 'crashed writer');
  await writeFile(path.join(dir, `.tmp-${process.pid}-${tag}-bbbbbb`), 'live writer (us)');
  await writeFile(path.join(dir, `.tmp-${dead}-00000000-cccccc`), 'other host, recent');
  await writeFile(path.join(dir, `.tmp-${dead}-00000000-dddddd`), 'other host, old');
  const old = new Date(Date.now() - 2 * 24 * 3600_000);
  await utimes(path.join(dir, `.tmp-${dead}-00000000-dddddd`), old, old);
  const keys = [];
  for await (const o of s.list('data/')) keys.push(o.key);
  assert.deepEqual(keys, ['data/aa/obj']);
  assert.deepEqual((await readdir(dir)).sort(), [`.tmp-${dead}-00000000-cccccc`, `.tmp-${process.pid}-${tag}-bbbbbb`, 'obj'].sort());
  assert.equal(isAbandonedTemp('.tmp-whatever', Date.now(), Date.now()), false);
});

test('FilesystemStore: a lock held by a dead process on this host is stale', async () => {
  const s = fresh();
  // a pid that surely existed and is now gone: a child that has exited
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  await s.put('locks/x', Buffer.from(JSON.stringify({ holder: 'gone', since: new Date().toISOString(), expires: new Date(Date.now() + 3_600_000).toISOString(), host: hostname(), pid: dead, token: 't' })));
  assert.equal((await s.readLease('locks/x'))?.stale, true);
  await assert.rejects(s.acquireLease('locks/x', 'me', 60_000), RepoLockedError);
  // the same record from another host is not provably dead
  await s.put('locks/y', Buffer.from(JSON.stringify({ holder: 'remote', since: new Date().toISOString(), expires: new Date(Date.now() + 3_600_000).toISOString(), host: 'some-other-host', pid: dead, token: 't' })));
  assert.equal((await s.readLease('locks/y'))?.stale, false);
  // and a live pid on this host is not stale
  const mine = await s.acquireLease('locks/z', 'me', 60_000);
  assert.equal((await s.readLease('locks/z'))?.stale, false);
  await mine.release();
});

test('FilesystemStore: ENOSPC/EDQUOT map to STORAGE_FULL, EACCES/EROFS to STORAGE_AUTH, EIO to transient STORAGE_UNAVAILABLE', () => {
  const sys = (code: string) => Object.assign(new Error(`${code}: boom`), { code });
  const full = mapFsError(sys('ENOSPC'), 'writing', '/backups/repo/data/ab/x');
  assert.ok(full instanceof CosmosBackupError && full.code === 'STORAGE_FULL');
  assert.match(full.message, /\/backups\/repo\/data\/ab\/x/);
  assert.match(full.message, /free space/);
  assert.doesNotMatch(full.message, /\n/);
  assert.ok(isCode(mapFsError(sys('EDQUOT'), 'writing', '/p'), 'STORAGE_FULL'));
  const denied = mapFsError(sys('EACCES'), 'writing', '/backups/repo');
  assert.ok(isCode(denied, 'STORAGE_AUTH'));
  assert.match((denied as Error).message, /permission denied writing \/backups\/repo/);
  assert.ok(isCode(mapFsError(sys('EROFS'), 'writing', '/p'), 'STORAGE_AUTH'));
  const io = mapFsError(sys('EIO'), 'reading', '/p');
  assert.ok(isCode(io, 'STORAGE_UNAVAILABLE'));
  assert.equal((io as CosmosBackupError).details.transient, true);
  const other = sys('EWHATEVER');
  assert.equal(mapFsError(other, 'reading', '/p'), other);
});

test('FilesystemStore: a read-only directory gives a STORAGE_AUTH error (skipped as root)', { skip: process.getuid?.() === 0 ? 'root ignores file modes' : false }, async () => {
  const s = fresh();
  await s.ensureRoot();
  const { chmod } = await import('node:fs/promises');
  await chmod(s.root, 0o500);
  try {
    await assert.rejects(s.put('x', new Uint8Array(1)), (e) => isCode(e, 'STORAGE_AUTH'));
  } finally {
    await chmod(s.root, 0o700);
  }
});
