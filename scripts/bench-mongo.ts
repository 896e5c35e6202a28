// `npm run bench:mongo [-- --docs 250000 --parallel 2]`: the MongoDB engine against the floor,
// in one run on the same data in the wire-protocol stand-in (test/support/mongo-server):
// a plain driver read of every collection with raw:true (the floor: nothing can back up faster
// than the server sends), the engine's backup into an encrypted repository on disk, and the
// engine's restore into another database. Prints documents/s, MB/s (of BSON) and ratios.
// Everything runs in this process (stand-in included), so all three share the same CPU budget.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Binary, Decimal128, Double, Int32, Long, ObjectId, UUID, type Document } from 'bson';
import { MongoClient } from 'mongodb';
import { startMongoServer } from '../test/support/mongo-server/index.ts';
import { openStore } from '../shared/storage/open.ts';
import { Repository } from '../shared/repository/repository.ts';
import { backupMongo, DEFAULT_BATCH_SIZE } from '../agent/engines/mongodb/backup.ts';
import { restoreMongo } from '../agent/engines/mongodb/restore.ts';
import { resolveMongoTarget } from '../agent/engines/mongodb/connection.ts';

const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : (process.env[`BENCH_${name.toUpperCase()}`] ?? def); };
const DOCS = Number(arg('docs', '250000'));
const PAR = Number(arg('parallel', '2'));
const out = (s: string) => process.stdout.write(s + '\n');
const MB = 1024 * 1024;

/** A small deterministic generator, so every run measures the same data. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => { a = (a + 0x6d2b79f5) >>> 0; let t = Math.imul(a ^ (a >>> 15), a | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
const WORDS = 'order shipped pending paid refund customer item price quantity warehouse express standard gift note zürich 東京 delivery return'.split(' ');

function order(i: number, r: () => number): Document {
  const items = Array.from({ length: 1 + Math.floor(r() * 6) }, (_, k) => ({
    sku: `SKU-${Math.floor(r() * 100000)}`, qty: new Int32(1 + Math.floor(r() * 5)), price: new Double(Math.round(r() * 10000) / 100),
    name: `${WORDS[Math.floor(r() * WORDS.length)]} ${WORDS[Math.floor(r() * WORDS.length)]} ${k}`,
  }));
  return {
    _id: new ObjectId(Buffer.from(i.toString(16).padStart(24, '0'), 'hex')),
    customer: { id: Long.fromNumber(Math.floor(r() * 1e9)), email: `user${Math.floor(r() * 1e6)}@example.com`, tags: [WORDS[i % WORDS.length], 'vip'] },
    status: WORDS[Math.floor(r() * 4)], total: Decimal128.fromString((r() * 1000).toFixed(2)),
    created: new Date(1.6e12 + Math.floor(r() * 1e11)), items,
    note: r() < 0.3 ? WORDS.slice(0, Math.floor(r() * WORDS.length)).join(' ') : null,
  };
}

function event(i: number, r: () => number): Document {
  return {
    _id: Long.fromNumber(i), at: new Date(1.7e12 + i * 1000), kind: WORDS[Math.floor(r() * WORDS.length)],
    session: new UUID(), payload: new Binary(Buffer.from(Array.from({ length: 64 + Math.floor(r() * 128) }, () => Math.floor(r() * 256)))),
    metrics: { a: new Int32(Math.floor(r() * 1000)), b: r(), c: r() > 0.5 },
  };
}

function profile(i: number, r: () => number): Document {
  return {
    _id: `user-${String(i).padStart(8, '0')}`, name: `${WORDS[i % WORDS.length]} ${WORDS[(i * 7) % WORDS.length]}`,
    bio: Array.from({ length: 20 + Math.floor(r() * 60) }, () => WORDS[Math.floor(r() * WORDS.length)]).join(' '),
    scores: Array.from({ length: 10 }, () => new Int32(Math.floor(r() * 100))), active: r() > 0.2,
    address: { street: `${Math.floor(r() * 999)} Main St`, city: WORDS[Math.floor(r() * WORDS.length)], zip: String(Math.floor(r() * 99999)) },
  };
}

function rate(n: number, bytes: number, ms: number) {
  return { docsPerSec: n / (ms / 1000), mbPerSec: bytes / MB / (ms / 1000) };
}

const server = await startMongoServer();
const work = mkdtempSync(path.join(tmpdir(), 'bench-mongo-'));
const target = resolveMongoTarget(server.url());
const client = new MongoClient(target.url);
let peakRss = 0;
const rssTimer = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 100);
try {
  await client.connect();
  const db = client.db('bench');
  const plan: [string, (i: number, r: () => number) => Document, number][] = [
    ['orders', order, Math.floor(DOCS * 0.5)], ['events', event, Math.floor(DOCS * 0.3)], ['profiles', profile, DOCS - Math.floor(DOCS * 0.5) - Math.floor(DOCS * 0.3)],
  ];
  let t0 = performance.now();
  for (const [name, gen, n] of plan) {
    const r = rng(name.length);
    for (let i = 0; i < n; i += 1000) {
      await db.collection(name).insertMany(Array.from({ length: Math.min(1000, n - i) }, (_, k) => gen(i + k, r)));
    }
    await db.collection(name).createIndex({ [name === 'orders' ? 'customer.id' : name === 'events' ? 'at' : 'name']: 1 });
  }
  const totalBytes = plan.reduce((s, [name]) => s + server.documents('bench', name).reduce((n, d) => n + d.length, 0), 0);
  out(`dataset: ${DOCS} documents in ${plan.length} collections, ${(totalBytes / MB).toFixed(1)} MB of BSON (generated in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

  // Floor: the plain driver reading every collection as raw BSON, nothing else.
  t0 = performance.now();
  let floorDocs = 0;
  let floorBytes = 0;
  for (const [name] of plan) {
    // The engine's batch size, so both make the same number of round trips.
    const cursor = db.collection(name).find({}, { raw: true, sort: { _id: 1 }, batchSize: DEFAULT_BATCH_SIZE });
    while (await cursor.hasNext()) {
      for (const d of cursor.readBufferedDocuments() as unknown as Uint8Array[]) { floorDocs++; floorBytes += d.byteLength; }
    }
  }
  const floorMs = performance.now() - t0;

  const repo = await Repository.init(await openStore(path.join(work, 'repo'), { create: true }), { password: 'bench' });
  t0 = performance.now();
  const b = await backupMongo(repo, client, target, { database: 'bench', parallel: PAR });
  const backupMs = performance.now() - t0;

  t0 = performance.now();
  const b2 = await backupMongo(repo, client, target, { database: 'bench', parallel: PAR });
  const backup2Ms = performance.now() - t0;

  t0 = performance.now();
  const r = await restoreMongo(repo, b.restorePoint.id, client, target, { database: 'bench_restored', parallel: PAR });
  const restoreMs = performance.now() - t0;
  if (r.documents !== DOCS || floorDocs !== DOCS || b.documents !== DOCS) throw new Error(`document counts differ: floor ${floorDocs}, backup ${b.documents}, restore ${r.documents}, expected ${DOCS}`);

  const rows: [string, number, number, number, string][] = [
    ['driver read, raw (floor)', floorDocs, floorBytes, floorMs, ''],
    ['engine backup', b.documents, b.bytes, backupMs, `${(b.restorePoint.stats.storedBytes / MB).toFixed(1)} MB stored`],
    ['engine backup, unchanged', b2.documents, b2.bytes, backup2Ms, `${(b2.restorePoint.stats.storedBytes / MB).toFixed(2)} MB stored`],
    ['engine restore', r.documents, r.bytes, restoreMs, `${r.indexes} indexes`],
  ];
  out('');
  out(`${'phase'.padEnd(28)}${'docs'.padStart(9)}${'MB'.padStart(9)}${'s'.padStart(8)}${'docs/s'.padStart(11)}${'MB/s'.padStart(9)}${'vs floor'.padStart(10)}  note`);
  for (const [label, n, bytes, ms, note] of rows) {
    const { docsPerSec, mbPerSec } = rate(n, bytes, ms);
    out(`${label.padEnd(28)}${String(n).padStart(9)}${(bytes / MB).toFixed(1).padStart(9)}${(ms / 1000).toFixed(2).padStart(8)}${Math.round(docsPerSec).toString().padStart(11)}${mbPerSec.toFixed(1).padStart(9)}${(floorMs / ms).toFixed(2).padStart(10)}  ${note}`);
  }
  out('');
  out(`parallel ${PAR}; peak RSS of this process (stand-in included) ${(peakRss / MB).toFixed(0)} MB; "vs floor" = floor time / phase time`);
} finally {
  clearInterval(rssTimer);
  await client.close().catch(() => undefined);
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
