import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, statSync, writeFileSync, cpSync } from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { startBackup } from '../../shared/repository/backup-writer.ts';
import { openRestorePoint } from '../../shared/repository/reader.ts';
import { verifyRepository } from '../../shared/repository/verify.ts';
import { gc, forget } from '../../shared/repository/gc.ts';
import { decodeIndex } from '../../shared/repository/format.ts';
import { tempDir } from '../support/temp-dir.ts';

const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };
const MARKER = 'PLAINTEXT-MARKER-7f3a9c';

function files(root: string, dir = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...files(root, rel));
    else if (!e.name.startsWith('.tmp-')) out.push(rel);
  }
  return out;
}

async function makeRepo(encrypted: boolean) {
  const dir = tempDir('cb-integrity-');
  const store = await openStore(dir, { create: true });
  const repo = await Repository.init(store, { password: encrypted ? 'secret' : undefined, scrypt: FAST_SCRYPT, packSize: 256 * 1024 });
  const w = await startBackup(repo, { engine: 'test', database: 'db', source: 'unit' });
  const text = Buffer.from(Array.from({ length: 20000 }, (_, i) => `${i}\t${MARKER}\t${i * 7}\n`).join(''));
  await w.putObject('text', 'table-data', text);
  await w.putObject('random', 'table-data', randomBytes(600_000));
  const rp = await w.commit();
  return { dir, store, repo, rp, text };
}

for (const encrypted of [false, true]) {
  test(`flipping one byte in any stored object is detected and named (${encrypted ? 'encrypted' : 'plain'})`, async () => {
    const { dir, rp } = await makeRepo(encrypted);
    const objects = files(dir).filter((f) => !f.startsWith('locks/'));
    assert.ok(objects.some((f) => f.startsWith('data/')) && objects.some((f) => f.startsWith('index/')) && objects.some((f) => f.startsWith('restore-points/')));
    for (const obj of objects) {
      const copy = tempDir('cb-tamper-');
      cpSync(dir, copy, { recursive: true });
      const file = path.join(copy, obj);
      const bytes = readFileSync(file);
      const at = Math.floor(bytes.length / 2);
      bytes[at] = bytes[at]! ^ 0x01;
      writeFileSync(file, bytes);
      const store = await openStore(copy);
      let named: boolean;
      try {
        const repo = await Repository.open(store, { password: encrypted ? 'secret' : undefined });
        const res = await verifyRepository(repo, { readData: true });
        named = res.problems.some((p) => p.object === obj || p.message.includes(obj));
      } catch (e) {
        named = (e as Error).message.includes(obj);
      }
      assert.ok(named, `a flipped byte in ${obj} was not reported by name`);
      rmSync(copy, { recursive: true, force: true });
    }
    // A restore reading a damaged blob fails loudly instead of returning wrong bytes.
    const store = await openStore(dir);
    const repo = await Repository.open(store, { password: encrypted ? 'secret' : undefined });
    const idxName = files(dir).find((f) => f.startsWith('index/'))!;
    const packs = decodeIndex(idxName, await repo.decodeDocument(idxName, readFileSync(path.join(dir, idxName))));
    const dataBlob = packs.flatMap((p) => p.entries.map((e) => ({ ...e, packId: p.packId }))).find((e) => e.type === 0)!;
    const packFile = path.join(dir, 'data', dataBlob.packId.slice(0, 2), dataBlob.packId);
    const bytes = readFileSync(packFile);
    bytes[dataBlob.offset + Math.floor(dataBlob.length / 2)] ^= 0x80;
    writeFileSync(packFile, bytes);
    const reader = await openRestorePoint(repo, rp.id);
    const results = await Promise.allSettled(reader.restorePoint.objects.map((o) => reader.readObject(o)));
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    assert.equal(failed.length, 1, 'exactly the object touching the damaged blob fails');
    assert.equal(failed[0]!.reason.code, 'CORRUPT_OBJECT');
    assert.match(failed[0]!.reason.message, new RegExp(dataBlob.packId));
    rmSync(dir, { recursive: true, force: true });
  });
}

test('no plaintext of a known marker appears in any stored object of an encrypted repository', async () => {
  const { dir } = await makeRepo(true);
  for (const f of files(dir)) {
    const b = readFileSync(path.join(dir, f));
    assert.ok(!b.includes(MARKER), `${f} contains the marker in plaintext`);
  }
  const plain = await makeRepo(false);
  assert.ok(files(plain.dir).some((f) => f.startsWith('data/')));
  rmSync(dir, { recursive: true, force: true });
  rmSync(plain.dir, { recursive: true, force: true });
});

test('objects carry no whole-object SHA-256; one recorded by an older restore point is still checked', async () => {
  const { dir, repo, rp, text } = await makeRepo(false);
  const obj = rp.objects.find((o) => o.name === 'text')!;
  assert.equal(obj.sha256, undefined, 'new objects rely on chunk ids and the size');
  const reader = await openRestorePoint(repo, rp.id);
  assert.ok((await reader.readObject(obj)).equals(text));
  const sum = createHash('sha256').update(text).digest('hex');
  assert.ok((await reader.readObject({ ...obj, sha256: sum })).equals(text), 'a matching older checksum passes');
  await assert.rejects(reader.readObject({ ...obj, sha256: sum.replace(/^./, (c) => (c === '0' ? '1' : '0')) }), (e: Error & { code?: string }) => e.code === 'CORRUPT_OBJECT' && /checksum/.test(e.message));
  await assert.rejects(reader.readObject({ ...obj, size: obj.size + 1 }), (e: Error & { code?: string }) => e.code === 'CORRUPT_OBJECT' && /size/.test(e.message));
  rmSync(dir, { recursive: true, force: true });
});

test('a wrong password is refused before anything is read or written', async () => {
  const { dir } = await makeRepo(true);
  const before = files(dir).map((f) => `${f}:${statSync(path.join(dir, f)).mtimeMs}`).sort();
  await assert.rejects(Repository.open(await openStore(dir), { password: 'nope' }), (e: any) => e.code === 'WRONG_PASSWORD');
  const after = files(dir).map((f) => `${f}:${statSync(path.join(dir, f)).mtimeMs}`).sort();
  assert.deepEqual(after, before);
  rmSync(dir, { recursive: true, force: true });
});

test('a backup killed with SIGKILL leaves no restore point; verify passes; gc reclaims its data after the grace period', async () => {
  const { dir, rp } = await makeRepo(false);
  const packsBefore = files(dir).filter((f) => f.startsWith('data/')).length;
  const child = spawn(process.execPath, [path.join(import.meta.dirname, '../support/backup-forever.ts'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('writing')) resolve(); });
    child.once('exit', (c) => reject(new Error(`helper exited early with ${c}`)));
  });
  // Wait until it has stored packs of its own, then kill it mid-write.
  for (let i = 0; i < 200 && files(dir).filter((f) => f.startsWith('data/')).length <= packsBefore + 2; i++) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const packsAfterCrash = files(dir).filter((f) => f.startsWith('data/')).length;
  assert.ok(packsAfterCrash > packsBefore + 2, 'the killed backup had stored packs');

  const repo = await Repository.open(await openStore(dir));
  assert.deepEqual(await repo.listRestorePointIds(), [rp.id], 'no restore point from the killed backup');
  const v = await verifyRepository(repo, { readData: true });
  assert.deepEqual(v.problems, []);

  // Within the grace period nothing of it is deleted...
  const early = await gc(repo, { graceMs: 3600_000 });
  assert.equal(early.orphanPacksDeleted + early.packsDeleted, 0);
  assert.equal(files(dir).filter((f) => f.startsWith('data/')).length, packsAfterCrash);
  // ...after it, the orphaned packs go (the killed process's lock is stale: same host, dead pid).
  const late = await gc(repo, { graceMs: 0, now: Date.now() + 1000 });
  assert.ok(late.orphanPacksDeleted + late.packsDeleted > 0, JSON.stringify(late));
  assert.equal(files(dir).filter((f) => f.startsWith('data/')).length, packsBefore);
  const v2 = await verifyRepository(repo, { readData: true });
  assert.deepEqual(v2.problems, []);
  const r = await openRestorePoint(repo, rp.id);
  for (const o of r.restorePoint.objects) await r.readObject(o);
  rmSync(dir, { recursive: true, force: true });
});

test('forget then gc frees the data of the forgotten restore point only', async () => {
  const { dir, repo, rp, text } = await makeRepo(false);
  const w = await startBackup(repo, { engine: 'test', database: 'db2', source: 'unit' });
  await w.putObject('text', 'table-data', text); // shared with the first restore point
  await w.putObject('own', 'table-data', randomBytes(400_000));
  const rp2 = await w.commit();
  await forget(repo, [rp.id.slice(0, 8)]);
  const res = await gc(repo, { graceMs: 0, now: Date.now() + 1000 });
  assert.ok(res.bytesFreed > 500_000, `freed ${res.bytesFreed}`);
  const v = await verifyRepository(repo, { readData: true });
  assert.deepEqual(v.problems, []);
  const r = await openRestorePoint(repo, rp2.id);
  const t = r.restorePoint.objects.find((o) => o.name === 'text')!;
  assert.ok((await r.readObject(t)).equals(text));
  rmSync(dir, { recursive: true, force: true });
});

test('gc repacks packs that became mostly garbage, keeping every live chunk readable', async () => {
  const dir = tempDir('cb-repack-');
  const store = await openStore(dir, { create: true });
  const repo = await Repository.init(store, { packSize: 4 * 1024 * 1024 });
  // One backup holding a small object and a large one in the same pack(s).
  const small = randomBytes(200_000);
  const w = await startBackup(repo, { engine: 'test', database: 'db', source: 'unit' });
  await w.putObject('small', 'table-data', small);
  await w.putObject('large', 'table-data', randomBytes(3_000_000));
  const rp1 = await w.commit();
  // A second restore point keeps only the small object alive.
  const w2 = await startBackup(repo, { engine: 'test', database: 'db', source: 'unit' });
  await w2.putObject('small', 'table-data', small);
  const rp2 = await w2.commit();
  await forget(repo, [rp1.id]);
  const res = await gc(repo, { graceMs: 0, now: Date.now() + 1000 });
  assert.ok(res.packsRepacked >= 1, JSON.stringify(res));
  const packs = files(dir).filter((f) => f.startsWith('data/'));
  const total = packs.reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
  assert.ok(total < 1_000_000, `after repack ${total} bytes of packs remain`);
  const v = await verifyRepository(repo, { readData: true });
  assert.deepEqual(v.problems, []);
  const r = await openRestorePoint(repo, rp2.id);
  assert.ok((await r.readObject(r.restorePoint.objects[0]!)).equals(small));
  rmSync(dir, { recursive: true, force: true });
});
