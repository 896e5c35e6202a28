import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { MemoryStore } from '../../shared/storage/memory.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { startBackup } from '../../shared/repository/backup-writer.ts';
import { openRestorePoint } from '../../shared/repository/reader.ts';

const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Data that compresses like table text: random words with repetition. */
function tableLike(bytes: number, seed = 1): Buffer {
  const words = Array.from({ length: 500 }, (_, i) => createHash('md5').update(`${seed}-${i}`).digest('hex').slice(0, 3 + (i % 9)));
  const out: string[] = [];
  let n = 0; let x = seed;
  while (n < bytes) {
    x = (x * 1103515245 + 12345) >>> 0;
    const line = `${x}\t${words[x % 500]} ${words[(x >> 8) % 500]}\t${(x % 100000) / 100}\n`;
    out.push(line); n += line.length;
  }
  return Buffer.from(out.join('')).subarray(0, bytes);
}

for (const encrypted of [false, true]) {
  test(`round trip (${encrypted ? 'encrypted' : 'plain'}): byte-identical, and a second backup stores almost nothing`, async () => {
    const store = new MemoryStore();
    const repo = await Repository.init(store, { password: encrypted ? 'pw' : undefined, scrypt: FAST_SCRYPT, packSize: 1 << 20 });
    const a = tableLike(3_000_000, 1);
    const b = randomBytes(1_500_000);
    const w = await startBackup(repo, { engine: 'test', database: 'db', source: 'unit' });
    const oa = w.createObject('data/a', 'table-data');
    // write in irregular pieces
    for (let o = 0; o < a.length; o += 77_777) oa.write(a.subarray(o, o + 77_777));
    oa.end();
    await w.putObject('data/b', 'table-data', b);
    await w.putObject('empty', 'schema', Buffer.alloc(0));
    const rp = await w.commit({ note: 'x' });
    assert.equal(rp.objects.length, 3);

    const repo2 = await Repository.open(store, { password: encrypted ? 'pw' : undefined });
    const r = await openRestorePoint(repo2, rp.id.slice(0, 10));
    const byName = new Map(r.restorePoint.objects.map((o) => [o.name, o]));
    assert.equal(sha(await r.readObject(byName.get('data/a')!)), sha(a));
    assert.equal(sha(await r.readObject(byName.get('data/b')!)), sha(b));
    assert.equal((await r.readObject(byName.get('empty')!)).length, 0);
    const streamed: Buffer[] = [];
    for await (const c of r.openObject(byName.get('data/a')!)) streamed.push(c as Buffer);
    assert.equal(sha(Buffer.concat(streamed)), sha(a));
    assert.ok(rp.stats.storedBytes < a.length + b.length, 'table-like data was compressed');

    // Unchanged second backup adds (almost) nothing.
    const w2 = await startBackup(repo2, { engine: 'test', database: 'db', source: 'unit' });
    await w2.putObject('data/a', 'table-data', a);
    await w2.putObject('data/b', 'table-data', b);
    const rp2 = await w2.commit();
    assert.equal(rp2.stats.newChunks, 0);
    assert.equal(rp2.stats.storedBytes, 0);
    const list = await repo2.listRestorePoints();
    assert.equal(list.length, 2);
  });
}

test('an insert in the middle of a large stream re-stores only a few chunks', async () => {
  const store = new MemoryStore();
  const repo = await Repository.init(store, {});
  const data = tableLike(6_000_000, 7);
  const w = await startBackup(repo, { engine: 'test', database: 'db', source: 'unit' });
  await w.putObject('t', 'table-data', data);
  await w.commit();
  const mid = 3_000_017;
  const changed = Buffer.concat([data.subarray(0, mid), Buffer.from('424242\tinserted row\t1.00\n'), data.subarray(mid)]);
  const w2 = await startBackup(repo, { engine: 'test', database: 'db', source: 'unit' });
  await w2.putObject('t', 'table-data', changed);
  const rp2 = await w2.commit();
  assert.ok(rp2.stats.newChunks >= 1 && rp2.stats.newChunks <= 4, `new chunks: ${rp2.stats.newChunks}`);
  const r = await openRestorePoint(repo, rp2.id);
  assert.equal(sha(await r.readObject(r.restorePoint.objects[0]!)), sha(changed));
});

test('wrong password is refused before anything is read', async () => {
  const store = new MemoryStore();
  await Repository.init(store, { password: 'right', scrypt: FAST_SCRYPT });
  await assert.rejects(Repository.open(store, { password: 'wrong' }), (e: any) => e.code === 'WRONG_PASSWORD' && /wrong repository password/.test(e.message));
  await assert.rejects(Repository.open(store, {}), (e: any) => e.code === 'PASSWORD_REQUIRED');
});

test('password change rewraps the key without rewriting data', async () => {
  const store = new MemoryStore();
  const repo = await Repository.init(store, { password: 'old', scrypt: FAST_SCRYPT });
  const w = await startBackup(repo, { engine: 'test', database: 'db', source: 'unit' });
  await w.putObject('x', 'k', tableLike(100_000));
  const rp = await w.commit();
  const before: string[] = [];
  for await (const o of store.list('data/')) before.push(o.key);
  await repo.changePassword('new', FAST_SCRYPT);
  await assert.rejects(Repository.open(store, { password: 'old' }), (e: any) => e.code === 'WRONG_PASSWORD');
  const repo2 = await Repository.open(store, { password: 'new' });
  const r = await openRestorePoint(repo2, rp.id);
  assert.equal(sha(await r.readObject(r.restorePoint.objects[0]!)), sha(tableLike(100_000)));
  const after: string[] = [];
  for await (const o of store.list('data/')) after.push(o.key);
  assert.deepEqual(after.sort(), before.sort());
});
