// `npm run bench:repo`: where the time of a backup goes. Measures, on the same realistic data,
// the throughput of each stage of the write path (chunking, hashing, compression, encryption)
// and of a whole backup to a filesystem and to Azurite, plus a restore read. MB/s = 10^6 bytes/s.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Chunker, DEFAULT_CHUNKER, gearTable } from '../shared/repository/chunker.ts';
import { compress } from '../shared/repository/codec.ts';
import { seal } from '../shared/repository/crypto.ts';
import { Repository } from '../shared/repository/repository.ts';
import { startBackup } from '../shared/repository/backup-writer.ts';
import { openRestorePoint } from '../shared/repository/reader.ts';
import { openStore } from '../shared/storage/open.ts';
import { startAzurite } from '../test/support/azurite.ts';
import { tableText } from './bench/data.ts';

const MB = Number(process.env.BENCH_MB ?? 256);
const data = tableText(MB * 1_000_000);
const rate = (bytes: number, ms: number) => `${(bytes / 1e6 / (ms / 1000)).toFixed(0).padStart(6)} MB/s`;
const row = (name: string, bytes: number, ms: number, extra = '') => process.stdout.write(`${name.padEnd(44)} ${rate(bytes, ms)}  ${(ms / 1000).toFixed(2).padStart(6)} s  ${extra}\n`);

process.stdout.write(`bench:repo on ${MB} MB of table-like text (node ${process.version})\n\n`);

let t = performance.now();
const chunks: Buffer[] = [];
// A chunk is valid only during the callback (views of the input or the carry buffer): keep copies.
const ck = new Chunker(DEFAULT_CHUNKER, gearTable(randomBytes(32)), (c) => chunks.push(Buffer.from(c)));
for (let o = 0; o < data.length; o += 65536) ck.push(data.subarray(o, o + 65536));
ck.finish();
row('chunking (FastCDC, avg 8 KiB)', data.length, performance.now() - t, `${chunks.length} chunks`);

t = performance.now();
for (const c of chunks) createHash('sha256').update(c).digest();
row('hashing (SHA-256 per chunk)', data.length, performance.now() - t);
const macKey = randomBytes(32);
t = performance.now();
for (const c of chunks) createHmac('sha256', macKey).update(c).digest();
row('hashing (HMAC-SHA-256 per chunk)', data.length, performance.now() - t);

const frames: Buffer[] = [];
for (let o = 0; o < data.length; o += 65536) frames.push(data.subarray(o, o + 65536));
t = performance.now();
let packed = 0;
for (const f of frames) packed += (await compress(f)).data.length;
row('compression (zstd 1, 64 KiB frames, serial)', data.length, performance.now() - t, `ratio ${(data.length / packed).toFixed(2)}`);
t = performance.now();
let inflight: Promise<unknown>[] = [];
for (const f of frames) {
  inflight.push(compress(f));
  if (inflight.length >= 8) { await Promise.all(inflight); inflight = []; }
}
await Promise.all(inflight);
row('compression (same, 8 in flight on the pool)', data.length, performance.now() - t);
const key = randomBytes(32);
t = performance.now();
for (const f of frames) seal(key, f);
row('encryption (AES-256-GCM, 64 KiB frames)', data.length, performance.now() - t);

async function backupTo(name: string, location: string, env?: NodeJS.ProcessEnv, password?: string) {
  const repo = await Repository.init(await openStore(location, { env, create: true }), { password, scrypt: { N: 1 << 14, r: 8, p: 1 } });
  let t0 = performance.now();
  const w = await startBackup(repo, { engine: 'bench', database: 'bench', source: 'bench' });
  const o = w.createObject('data', 'table-data');
  for (let i = 0; i < data.length; i += 65536) if (!o.write(data.subarray(i, i + 65536))) await new Promise((r) => o.once('drain', r));
  o.end();
  const rp = await w.commit();
  row(`backup to ${name}`, data.length, performance.now() - t0, `stored ${(rp.stats.storedBytes / 1e6).toFixed(1)} MB`);
  t0 = performance.now();
  const again = await Repository.open(await openStore(location, { env }), { password });
  const r = await openRestorePoint(again, rp.id);
  let n = 0;
  for await (const c of r.openObject(r.restorePoint.objects[0]!)) n += (c as Buffer).length;
  row(`restore read from ${name}`, n, performance.now() - t0);
}

process.stdout.write('\n');
const dir = mkdtempSync(path.join(tmpdir(), 'bench-repo-'));
await backupTo('filesystem (plain)', path.join(dir, 'plain'));
await backupTo('filesystem (encrypted)', path.join(dir, 'enc'), undefined, 'bench');
const az = await startAzurite();
try {
  const env = { ...process.env, AZURE_STORAGE_CONNECTION_STRING: az.connectionString };
  await backupTo('Azurite blob (encrypted)', `azblob://${az.account}/bench-${randomBytes(3).toString('hex')}`, env, 'bench');
  const store = await openStore(`azblob://${az.account}/bench-raw`, { env, create: true });
  const blob = randomBytes(8 * 1024 * 1024);
  const t0 = performance.now();
  const n = Math.max(4, Math.round(MB / 16));
  await Promise.all(Array.from({ length: n }, (_, i) => store.put(`raw/${i}`, blob)));
  row(`upload to Azurite (${n} x 8 MiB, 16 in flight)`, n * blob.length, performance.now() - t0);
} finally {
  await az.stop();
  rmSync(dir, { recursive: true, force: true });
}
