// Delta chunks through the whole repository: after 1 % of a table's rows are updated at random
// (each row cut from its place and its new version appended, as PostgreSQL's UPDATE moves it),
// a backup stores the changed chunks as patches against the parent's chunks; every restore point
// reads back byte for byte; verify rebuilds and re-hashes every delta; gc keeps the bases a
// live delta needs after the restore point that first stored them is forgotten; `repo upgrade`
// moves a version 1 repository to version 2 without rewriting what it holds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MemoryStore } from '../../shared/storage/memory.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { startBackup } from '../../shared/repository/backup-writer.ts';
import { openRestorePoint } from '../../shared/repository/reader.ts';
import { forget, gc } from '../../shared/repository/gc.ts';
import { verifyRepository } from '../../shared/repository/verify.ts';
import { upgradeFormat } from '../../shared/repository/upgrade.ts';
import { lockShared } from '../../shared/repository/locks.ts';
import { BLOB_DELTA, decodeIndex, encodeConfig, KEYS } from '../../shared/repository/format.ts';
import type { RestorePoint } from '../../shared/repository/types.ts';
import { CorruptObjectError } from '../../shared/errors.ts';

const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** About 250-byte rows of table-like text, row i's content depending on (i, version). */
function row(i: number, version: number): string {
  const h = createHash('sha256').update(`${i}/${version}`).digest('hex');
  return `${i}\t${version}\tcustomer-${h.slice(0, 10)}\t{"sku": "${h.slice(10, 22)}", "qty": ${i % 17}, "note": "${h.slice(22, 64)}${h.slice(0, 40)}"}\t${(i * 7919) % 100000 / 100}\t${h.slice(40, 64)}${h}\n`;
}

interface Table { order: number[]; version: Map<number, number> }
const text = (t: Table) => Buffer.from(t.order.map((i) => row(i, t.version.get(i) ?? 0)).join(''));

/** Updates every row with i % 100 === k: cut from its place, the new version appended. */
function updateSpread(t: Table, k: number): Table {
  const moved = t.order.filter((i) => i % 100 === k);
  const version = new Map(t.version);
  for (const i of moved) version.set(i, (version.get(i) ?? 0) + 1);
  return { order: [...t.order.filter((i) => i % 100 !== k), ...moved], version };
}

async function backup(repo: Repository, data: Buffer, opts: { parent?: null } = {}): Promise<RestorePoint> {
  const w = await startBackup(repo, { engine: 'test', database: 'db', source: 'unit', ...opts });
  const o = w.createObject('data/t', 'table-data');
  for (let at = 0; at < data.length; at += 65_536) o.write(data.subarray(at, at + 65_536));
  o.end();
  await w.putObject('schema', 'schema', Buffer.from('create table t ()'));
  return w.commit();
}

/** Forgets `ids`, collects garbage at once with eager repacking, and opens the repository again. */
async function forgetAndGc(store: MemoryStore, repo: Repository, ids: string[], password?: string): Promise<{ res: Awaited<ReturnType<typeof gc>>; after: Repository }> {
  await forget(repo, ids);
  const res = await gc(repo, { graceMs: 0, now: Date.now() + 1000, repackBelow: 0.99 });
  return { res, after: await Repository.open(store, { password }) };
}

async function readBack(repo: Repository, id: string): Promise<string> {
  const r = await openRestorePoint(repo, id);
  return sha(await r.readObject(r.restorePoint.objects.find((o) => o.name === 'data/t')!));
}

for (const encrypted of [false, true]) {
  test(`delta chunks (${encrypted ? 'encrypted' : 'plain'}): 1 % of rows updated at random stores a few per cent; all points read back; verify and gc keep them whole`, async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, { password: encrypted ? 'pw' : undefined, scrypt: FAST_SCRYPT, packSize: 1 << 20 });
    let t: Table = { order: Array.from({ length: 24_000 }, (_, i) => i), version: new Map() };
    const v1 = text(t);
    const rp1 = await backup(repo, v1);
    assert.equal(rp1.stats.deltaChunks, 0, 'a first backup has nothing to make deltas against');

    t = updateSpread(t, 7);
    const v2 = text(t);
    const rp2 = await backup(repo, v2);
    assert.ok(rp2.stats.deltaChunks! > rp2.stats.newChunks / 2, `most new chunks are deltas (${rp2.stats.deltaChunks} of ${rp2.stats.newChunks})`);
    assert.ok(rp2.stats.storedBytes < 0.06 * rp1.stats.storedBytes, `1 % spread updates stored ${rp2.stats.storedBytes} B, against ${rp1.stats.storedBytes} B for the full backup`);

    // Without a parent the same change stores whole chunks: what the deltas save is real.
    const whole = await Repository.init(new MemoryStore(), { password: encrypted ? 'pw' : undefined, scrypt: FAST_SCRYPT, packSize: 1 << 20 });
    await backup(whole, v1);
    const rpWhole = await backup(whole, v2, { parent: null });
    assert.equal(rpWhole.stats.deltaChunks, 0);
    assert.ok(rpWhole.stats.storedBytes > 4 * rp2.stats.storedBytes, `whole chunks ${rpWhole.stats.storedBytes} B against deltas ${rp2.stats.storedBytes} B`);

    // A third backup: the parent's chunks are partly deltas; new deltas use their bases (no chains).
    t = updateSpread(t, 53);
    const v3 = text(t);
    const rp3 = await backup(repo, v3);
    assert.ok(rp3.stats.deltaChunks! > 0);

    const again = await Repository.open(store, { password: encrypted ? 'pw' : undefined });
    assert.equal(await readBack(again, rp1.id), sha(v1));
    assert.equal(await readBack(again, rp2.id), sha(v2));
    assert.equal(await readBack(again, rp3.id), sha(v3));

    // Deltas are recorded with their bases, and bases are whole data chunks.
    const index = await again.loadIndex();
    let deltas = 0;
    for (const e of index.entries()) {
      if (e.type !== BLOB_DELTA) continue;
      deltas++;
      assert.ok(e.delta && e.delta.bases.length >= 1);
      for (const b of e.delta.bases) assert.equal(index.get(b)?.type, 0, 'a base is a whole data chunk');
    }
    assert.equal(deltas, rp2.stats.deltaChunks! + rp3.stats.deltaChunks!);

    const checked = await verifyRepository(again, { readData: true });
    assert.deepEqual(checked.problems, []);

    // The first restore point holds the bases; forgotten, gc must keep what rp2 and rp3 use.
    const { res, after: afterGc } = await forgetAndGc(store, again, [rp1.id], encrypted ? 'pw' : undefined);
    assert.ok(res.packsRepacked + res.packsDeleted > 0, 'gc had something to do');
    assert.equal(await readBack(afterGc, rp2.id), sha(v2));
    assert.equal(await readBack(afterGc, rp3.id), sha(v3));
    assert.deepEqual((await verifyRepository(afterGc, { readData: true })).problems, []);
  });
}

test('a damaged delta base is named when a restore point that needs it is read', async () => {
  const store = new MemoryStore();
  const repo = await Repository.init(store, { packSize: 1 << 20 });
  let t: Table = { order: Array.from({ length: 8_000 }, (_, i) => i), version: new Map() };
  await backup(repo, text(t));
  t = updateSpread(t, 3);
  const rp2 = await backup(repo, text(t));
  assert.ok(rp2.stats.deltaChunks! > 0);
  // Damage the frame of one base: every pack's entries are in the index objects.
  const index = await repo.loadIndex();
  const delta = [...index.entries()].find((e) => e.type === BLOB_DELTA)!;
  const base = index.get(delta.delta!.bases[0]!)!;
  const key = KEYS.pack(base.packId);
  const bytes = Buffer.from(await store.get(key));
  bytes[base.offset + 5] ^= 0xff;
  await store.put(key, bytes);
  const fresh = await Repository.open(store);
  await assert.rejects(readBack(fresh, rp2.id), (e: unknown) => e instanceof CorruptObjectError && e.message.includes(base.packId));
  const checked = await verifyRepository(fresh, { readData: true });
  assert.ok(checked.problems.some((p) => p.object === key), 'verify names the damaged pack');
  // Index objects carry the delta records (format version 2).
  let records = 0;
  for await (const o of store.list(KEYS.indexPrefix)) {
    for (const p of decodeIndex(o.key, await fresh.decodeDocument(o.key, await store.get(o.key)))) records += p.entries.filter((e) => e.delta).length;
  }
  assert.equal(records, rp2.stats.deltaChunks);
});

test('a version 1 repository gets no deltas, and its index objects and trailers stay in the version 1 layout', async () => {
  const store = new MemoryStore();
  const v2 = await Repository.init(store, { packSize: 1 << 20 });
  await store.put(KEYS.config, encodeConfig({ ...v2.config, version: 1 })); // as an older agent made it
  const repo = await Repository.open(store);
  assert.equal(repo.config.version, 1);
  let t: Table = { order: Array.from({ length: 8_000 }, (_, i) => i), version: new Map() };
  await backup(repo, text(t));
  t = updateSpread(t, 3);
  const rp2 = await backup(repo, text(t));
  assert.equal(rp2.stats.deltaChunks, 0);
  assert.ok(rp2.stats.newChunks > 10, 'the changed chunks were stored whole');
  assert.equal(await readBack(await Repository.open(store), rp2.id), sha(text(t)));
  for await (const o of store.list(KEYS.indexPrefix)) {
    assert.equal((await repo.decodeDocument(o.key, await store.get(o.key)))[4], 1, 'index version 1');
  }
  for await (const o of store.list(KEYS.dataPrefix)) {
    assert.ok((await repo.readPackTrailer(o.key.slice(o.key.lastIndexOf('/') + 1), await store.get(o.key))).every((e) => e.delta === undefined));
  }
});

test('repo upgrade: a version 1 repository moves to version 2 under the exclusive lock; later backups make deltas; old and new points read back', async () => {
  const store = new MemoryStore();
  const v2 = await Repository.init(store, { packSize: 1 << 20 });
  await store.put(KEYS.config, encodeConfig({ ...v2.config, version: 1 })); // as an older agent made it
  const old = await Repository.open(store);
  let t: Table = { order: Array.from({ length: 8_000 }, (_, i) => i), version: new Map() };
  const rp1 = await backup(old, text(t));
  const v1Text = text(t);

  // A running backup (a shared lock) keeps the format as it is.
  const running = await lockShared(store, 'a backup');
  await assert.rejects(upgradeFormat(old), (e: any) => e.code === 'REPO_LOCKED');
  assert.equal((await Repository.open(store)).config.version, 1);
  await running.release();

  assert.deepEqual(await upgradeFormat(old), { from: 1, to: 2 });
  const repo = await Repository.open(store);
  assert.equal(repo.config.version, 2);
  assert.equal(repo.id, old.id);
  assert.deepEqual(await upgradeFormat(repo), { from: 2, to: 2 }, 'a second upgrade changes nothing');
  assert.deepEqual(await upgradeFormat(old), { from: 2, to: 2 }, 'nor does one from a handle opened before the first');

  t = updateSpread(t, 5);
  const rp2 = await backup(repo, text(t));
  assert.ok(rp2.stats.deltaChunks! > 0, 'the parent, stored in version 1, serves as the base of deltas');
  assert.equal(await readBack(repo, rp1.id), sha(v1Text));
  assert.equal(await readBack(repo, rp2.id), sha(text(t)));
  const res = await verifyRepository(repo, { readData: true });
  assert.deepEqual(res.problems, []);
  assert.ok(res.blobsChecked > 0);
  const versions = new Set<number>();
  for await (const o of store.list(KEYS.indexPrefix)) versions.add((await repo.decodeDocument(o.key, await store.get(o.key)))[4]!);
  assert.deepEqual([...versions].sort(), [1, 2], 'version 1 index objects stay as they were; new ones are version 2');
});

test('two concurrent backups of the same change, one with deltas and one without: every point reads back, before and after gc', async () => {
  const store = new MemoryStore();
  const repo = await Repository.init(store, { packSize: 1 << 20 });
  let t: Table = { order: Array.from({ length: 8_000 }, (_, i) => i), version: new Map() };
  const rp1 = await backup(repo, text(t));
  t = updateSpread(t, 11);
  const v2 = text(t);
  // Both start before either commits, so each stores the changed chunks: one as deltas, one whole.
  const start = (parent?: null) => startBackup(repo, { engine: 'test', database: 'db', source: 'unit', ...(parent === null ? { parent } : {}) });
  const [wa, wb] = await Promise.all([start(), start(null)]);
  const write = async (w: Awaited<ReturnType<typeof start>>) => { await w.putObject('data/t', 'table-data', v2); return w.commit(); };
  const [ra, rb] = await Promise.all([write(wa), write(wb)]);
  assert.ok(ra.stats.deltaChunks! > 0 && rb.stats.deltaChunks === 0);
  const index = await (await Repository.open(store)).loadIndex();
  const delta = [...index.entries()].find((e) => e.type === BLOB_DELTA);
  assert.equal(delta, undefined, 'where a chunk has a whole copy and a delta copy, the index gives the whole one');
  const before = await Repository.open(store);
  assert.equal(await readBack(before, ra.id), sha(v2));
  assert.equal(await readBack(before, rb.id), sha(v2));
  // Forget the first point and the delta one: gc must keep what the whole one needs.
  const { after } = await forgetAndGc(store, repo, [rp1.id, ra.id]);
  assert.equal(await readBack(after, rb.id), sha(v2));
  assert.deepEqual((await verifyRepository(after, { readData: true })).problems, []);
});

test('a damaged manifest of an earlier point does not stop a backup: it is stored with whole chunks', async () => {
  const store = new MemoryStore();
  const repo = await Repository.init(store, { packSize: 1 << 20 });
  let t: Table = { order: Array.from({ length: 4_000 }, (_, i) => i), version: new Map() };
  const rp1 = await backup(repo, text(t));
  const key = KEYS.restorePoint(rp1.id);
  const bytes = Buffer.from(await store.get(key));
  bytes[bytes.length >> 1] ^= 0xff;
  await store.put(key, bytes);
  t = updateSpread(t, 5);
  const fresh = await Repository.open(store);
  const rp2 = await backup(fresh, text(t));
  assert.equal(rp2.stats.deltaChunks, 0);
  assert.equal(await readBack(fresh, rp2.id), sha(text(t)));
});

test('a repository of a format this agent does not know is refused with one line saying to upgrade', async () => {
  const store = new MemoryStore();
  const repo = await Repository.init(store, { packSize: 1 << 20 });
  await store.put(KEYS.config, encodeConfig({ ...repo.config, version: 3 }));
  await assert.rejects(Repository.open(store), /repository format version 3 is not supported by this agent \(it reads versions 1 and 2\); upgrade the agent/);
});
