// `npm run bench:pg [-- --gb 1 --parallel 2 --rounds 3]`: the PostgreSQL engine against the tools
// users would otherwise pick, in one run on the same data in the harness PostgreSQL server:
// raw COPY to /dev/null (the floor), pg_dump -Fc, pg_dump -Fd -j N, the agent's full backup, an
// unchanged second backup, backups after 1% of rows changed (clustered and spread), the agent's
// restore and pg_restore -j N. Prints MB/s (of COPY text), ratios, bytes added, peak RSS.
// The head-to-head pairs (floor, pg_dump -Fc and the agent's full backup; the agent's restore and
// pg_restore) run in several rounds whose order alternates, and the medians are compared: single
// runs on a shared 2-core machine move by 10-15 %, and whichever runs second inherits the first's
// page cache and dirty pages. Before every timed step the server checkpoints and the system
// syncs.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { SPLIT_BYTES } from '../agent/engines/postgres/backup.ts';
import { startPostgres } from '../test/support/postgres.ts';
import { ensurePostgres } from './ensure-postgres.ts';

const arg = (name: string, def: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1]! : (process.env[`BENCH_${name.toUpperCase()}`] ?? def); };
const GB = Number(arg('gb', '1'));
const PAR = Number(arg('parallel', '2'));
const ROUNDS = Math.max(1, Number(arg('rounds', '3')));
const work = mkdtempSync(path.join(tmpdir(), 'bench-pg-'));
const cli = path.resolve(import.meta.dirname, '..', 'agent', 'cli.ts');
const out = (s: string) => process.stdout.write(s + '\n');

ensurePostgres();
const server = await startPostgres({ log: !!process.env.BENCH_PG_LOG });
const env = { ...process.env, PGPASSWORD: server.password };
const pgArgs = ['-h', '127.0.0.1', '-p', String(server.port), '-U', 'postgres'];

function run(cmd: string, args: string[], opts: { stdout?: 'ignore' | 'pipe' } = {}): Promise<{ ms: number; peakRss: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'] });
    let stdout = ''; let stderr = ''; let peak = 0;
    child.stdout?.on('data', (d: Buffer) => { stdout += d; });
    child.stderr?.on('data', (d: Buffer) => { stderr += d; });
    const poll = setInterval(() => {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) * 1024);
      } catch { /* exited */ }
    }, 50);
    child.on('exit', (code) => {
      clearInterval(poll);
      if (code === 0) resolve({ ms: performance.now() - t0, peakRss: peak, stdout });
      else reject(new Error(`${path.basename(cmd)} ${args[0]} failed (${code}): ${stderr.slice(-2000)}`));
    });
  });
}
// The agent as shipped (the single binary, no type stripping at start-up) when it has been built
// with `npm run build:agent`; otherwise the development CLI. The report says which.
const binary = path.resolve(import.meta.dirname, '..', 'dist', 'cosmos-backup-agent-linux-x64');
const useBinary = arg('agent', existsSync(binary) ? 'binary' : 'dev') === 'binary';
const agent = (args: string[]) => (useBinary ? run(binary, args) : run(process.execPath, [cli, ...args]));
const dirSize = (p: string): number => { const s = statSync(p); return s.isDirectory() ? readdirSync(p).reduce((n, f) => n + dirSize(path.join(p, f)), 0) : s.size; };

try {
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE bench');
  await admin.end();
  const db = new pg.Client({ connectionString: server.url('bench') });
  db.on('error', () => { /* reported by the failing query */ });
  await db.connect();
  const orders = Math.round(2_600_000 * GB);
  const events = Math.round(1_300_000 * GB);
  out(`bench:pg — generating ~${GB} GB (orders ${orders}, events ${events}) in PostgreSQL ${(await db.query('SHOW server_version')).rows[0].server_version}…`);
  await db.query(`CREATE EXTENSION IF NOT EXISTS pgcrypto;
    CREATE TABLE orders (id bigint PRIMARY KEY, customer uuid NOT NULL, placed_at timestamptz NOT NULL, status text NOT NULL, total numeric(12,2), note text, items jsonb);
    CREATE TABLE events (id bigint PRIMARY KEY, order_id bigint, kind text, payload bytea, at timestamptz);`);
  const batch = 250_000;
  for (let s = 1; s <= orders; s += batch) {
    await db.query(`INSERT INTO orders SELECT i, gen_random_uuid(), now() - (i || ' seconds')::interval,
        (ARRAY['new','paid','shipped','delivered','returned'])[1 + i % 5], round((random() * 2000)::numeric, 2),
        CASE WHEN i % 3 = 0 THEN NULL ELSE 'customer note ' || md5(i::text) || ' ' || repeat(chr(97 + (i % 26)::int), (i % 40)::int) END,
        jsonb_build_object('sku', 'SKU-' || (i % 4999), 'qty', 1 + i % 7, 'price', round((random() * 100)::numeric, 2), 'tags', jsonb_build_array('t' || (i % 13), 't' || (i % 17)))
      FROM generate_series($1::bigint, $2::bigint) i`, [s, Math.min(orders, s + batch - 1)]);
  }
  for (let s = 1; s <= events; s += batch) {
    await db.query(`INSERT INTO events SELECT i, 1 + (i * 7) % ${orders}, (ARRAY['created','paid','packed','shipped'])[1 + i % 4],
        decode(md5(i::text) || md5((i * 3)::text), 'hex'), now() - (i || ' seconds')::interval
      FROM generate_series($1::bigint, $2::bigint) i`, [s, Math.min(events, s + batch - 1)]);
  }
  await db.query('VACUUM ANALYZE');
  const onDisk = Number((await db.query(`SELECT pg_database_size('bench') AS s`)).rows[0].s);

  // The floor: raw COPY of every table to nowhere, N connections in parallel.
  let copyBytes = 0;
  // The floor is COPY text, as the issue defines it; the binary form (which the agent reads for
  // tables of built-in types) is printed beside it for information.
  const floor = async (binary = false) => {
    const tf = performance.now();
    let bytes = 0;
    await Promise.all(['orders', 'events'].map(async (t) => {
      const c = new pg.Client({ connectionString: server.url('bench') });
      await c.connect();
      const s = c.query(copyTo(`COPY ${t} TO STDOUT${binary ? ' (FORMAT binary)' : ''}`));
      for await (const chunk of s) bytes += (chunk as Buffer).length;
      await c.end();
    }));
    if (!binary) copyBytes = bytes;
    return { ms: performance.now() - tf, bytes };
  };
  const mbps = (ms: number) => `${(copyBytes / 1e6 / (ms / 1000)).toFixed(0).padStart(5)} MB/s`;
  const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
  const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
  const add = (name: string, ms: number, note = '') => out(`${name.padEnd(48)} ${(ms / 1000).toFixed(2).padStart(7)} s ${mbps(ms)}  ${note}`);
  // Before every timed step: the server's dirty buffers and the system's dirty pages written out,
  // so no step pays for the writes of the one before (a restore leaves ~1 GB per GB to write back).
  const settle = async () => {
    const c = new pg.Client({ connectionString: server.url() });
    await c.connect();
    await c.query('CHECKPOINT');
    await c.end();
    await run('sync', []);
  };
  /** Runs steps in `ROUNDS` rounds, reversing their order every other round; the median of each. */
  async function rounds<T extends { ms: number }>(steps: (() => Promise<T>)[]): Promise<{ runs: T[]; ms: number }[]> {
    const runs: T[][] = steps.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      const order = steps.map((_, i) => i);
      if (r % 2) order.reverse();
      for (const i of order) {
        await settle();
        runs[i]!.push(await steps[i]!());
      }
    }
    return runs.map((rs) => ({ runs: rs, ms: median(rs.map((x) => x.ms)) }));
  }
  const spreadOf = (rs: { ms: number }[]) => rs.length > 1 ? `(${rs.map((x) => secs(x.ms)).join(', ')})` : '';

  const fc = path.join(work, 'dump.fc');
  const src = `postgres://postgres@127.0.0.1:${server.port}/bench`;
  let repo = '';
  let fresh = 0;
  // What a backup adds is measured on the repository itself: packs, index objects (delta
  // records included) and the manifest.
  const backup = async (label: string) => {
    const before = dirSize(repo);
    const r = await agent(['backup', 'postgres', '--source', src, '--repo', repo, '--parallel', String(PAR), '--json']);
    const j = JSON.parse(r.stdout) as { id: string; storedBytes: number; bytes: number };
    return { ...r, ...j, label, grew: dirSize(repo) - before };
  };
  // Each round's full backup goes into a new repository (the last one is kept for what follows).
  const fullBackup = async () => {
    if (repo) rmSync(repo, { recursive: true, force: true });
    repo = path.join(work, `repo${fresh++}`);
    await agent(['repo', 'init', '--repo', repo, '--no-encryption']);
    return backup('full');
  };
  out(`rounds: ${ROUNDS} (floor, pg_dump -Fc and the agent's full backup; then the agent's restore and pg_restore), order alternating, medians compared\n`);
  const [floorR, dumpFcR, fullR] = await rounds<{ ms: number; peakRss?: number }>([
    () => floor(),
    () => run(path.join(server.binDir, 'pg_dump'), [...pgArgs, '-Fc', '-f', fc, 'bench']),
    fullBackup,
  ]);
  const floorMs = floorR!.ms;
  out(`database: ${mib(onDisk)} on disk, ${mib(copyBytes)} of COPY text; agent: ${useBinary ? 'the built binary' : 'the development CLI (npm run build:agent for the binary)'}\n`);
  add(`raw COPY of every table to /dev/null (floor)`, floorMs, spreadOf(floorR!.runs));
  await settle();
  const floorBinary = await floor(true);
  add('the same, COPY (FORMAT binary) (one run)', floorBinary.ms, `${mib(floorBinary.bytes)}; for information, the floor stays COPY text`);
  add('pg_dump -Fc', dumpFcR!.ms, `stored ${mib(statSync(fc).size)} ${spreadOf(dumpFcR!.runs)}`);
  const fd = path.join(work, 'dump.fd');
  await settle();
  const dumpFd = await run(path.join(server.binDir, 'pg_dump'), [...pgArgs, '-Fd', '-j', String(PAR), '-f', fd, 'bench']);
  add(`pg_dump -Fd -j ${PAR}`, dumpFd.ms, `stored ${mib(dirSize(fd))}`);
  rmSync(fd, { recursive: true, force: true });

  const fulls = fullR!.runs as Awaited<ReturnType<typeof backup>>[];
  const full = fulls[fulls.length - 1]!;
  const fullPeak = Math.max(...fulls.map((f) => f.peakRss));
  add(`agent backup, full (--parallel ${PAR})`, fullR!.ms, `stored ${mib(full.storedBytes)}, peak RSS ${mib(fullPeak)} ${spreadOf(fulls)}`);
  await settle();
  const same = await backup('unchanged');
  add('agent backup, nothing changed', same.ms, `added ${mib(same.grew)} (${(100 * same.grew / full.grew).toFixed(2)} % of full)`);
  await db.query(`UPDATE orders SET status = 'refunded', total = total + 1 WHERE id > ${orders - Math.round(orders / 100)}`);
  await settle();
  const clustered = await backup('1% clustered');
  add('agent backup, newest 1% of orders updated', clustered.ms, `added ${mib(clustered.grew)} (${(100 * clustered.grew / full.grew).toFixed(2)} % of full)`);
  await db.query(`UPDATE orders SET status = 'audited' WHERE id % 100 = 7`);
  await settle();
  const spread = await backup('1% spread');
  add('agent backup, 1% of orders updated, spread out', spread.ms, `added ${mib(spread.grew)} (${(100 * spread.grew / full.grew).toFixed(2)} % of full; packs ${mib(spread.storedBytes)}, the rest index and manifest)`);
  // Tables over the backup's split size go out in several parts (the backup's own measure,
  // pg_table_size), which `--parallel-parts` loads at once.
  const splitTables = Number((await db.query(`SELECT count(*) AS n FROM pg_class WHERE relname IN ('orders', 'events') AND pg_table_size(oid) > $1`, [SPLIT_BYTES])).rows[0].n);
  await db.end();

  // Both restores start from a database that does not exist: the agent creates its target; for
  // pg_restore createdb runs first and counts (pg_restore -C cannot be used: the dump's own
  // database name exists here).
  const admin2 = new pg.Client({ connectionString: server.url() });
  await admin2.connect();
  const agentRestore = async () => {
    await admin2.query('DROP DATABASE IF EXISTS restored_agent');
    await settle();
    return agent(['restore', full.id, '--target', `postgres://postgres@127.0.0.1:${server.port}/restored_agent`, '--repo', repo, '--parallel', String(PAR)]);
  };
  const peerRestore = async () => {
    await admin2.query('DROP DATABASE IF EXISTS restored_pg');
    await settle();
    const createdb = await run(path.join(server.binDir, 'createdb'), [...pgArgs, 'restored_pg']);
    const restoreOnly = await run(path.join(server.binDir, 'pg_restore'), [...pgArgs, '-j', String(PAR), '-d', 'restored_pg', fc]);
    return { ms: createdb.ms + restoreOnly.ms, createdbMs: createdb.ms };
  };
  const [restoreR, pgrR] = await rounds<{ ms: number; peakRss?: number; createdbMs?: number }>([agentRestore, peerRestore]);
  const restorePeak = Math.max(...restoreR!.runs.map((r) => r.peakRss ?? 0));
  add(`agent restore (--parallel ${PAR})`, restoreR!.ms, `peak RSS ${mib(restorePeak)} ${spreadOf(restoreR!.runs)}`);
  add(`createdb + pg_restore -j ${PAR} (of the -Fc file)`, pgrR!.ms, `createdb ${secs(median(pgrR!.runs.map((r) => r.createdbMs ?? 0)))} ${spreadOf(pgrR!.runs)}`);
  let partsR: { ms: number; peakRss?: number } | undefined;
  if (splitTables > 0) {
    // Opt-in: faster, but the restored rows interleave (docs/PERFORMANCE.md); one run, not a round.
    await admin2.query('DROP DATABASE IF EXISTS restored_agent');
    await settle();
    partsR = await agent(['restore', full.id, '--target', `postgres://postgres@127.0.0.1:${server.port}/restored_agent`, '--repo', repo, '--parallel', String(PAR), '--parallel-parts']);
    add(`agent restore --parallel-parts (one run)`, partsR.ms, `peak RSS ${mib(partsR.peakRss ?? 0)}`);
  }
  // The spread point's changed chunks are deltas: restoring it also reads their bases.
  await admin2.query('DROP DATABASE IF EXISTS restored_agent');
  await settle();
  const spreadRestore = await agent(['restore', spread.id, '--target', `postgres://postgres@127.0.0.1:${server.port}/restored_agent`, '--repo', repo, '--parallel', String(PAR)]);
  add(`agent restore of the 1% spread point (one run)`, spreadRestore.ms, `peak RSS ${mib(spreadRestore.peakRss ?? 0)}`);
  await admin2.end();

  const perRound = (a: { ms: number }[], b: { ms: number }[]) => a.length > 1 ? `  per round ${a.map((x, i) => (x.ms / b[i]!.ms).toFixed(2)).join(', ')}` : '';
  out(`\nratios of medians (lower is better for the agent):`);
  out(`  agent full backup / pg_dump -Fc       ${(fullR!.ms / dumpFcR!.ms).toFixed(2)}   (target <= 0.5)${perRound(fulls, dumpFcR!.runs)}`);
  out(`  agent full backup / raw COPY floor    ${(fullR!.ms / floorMs).toFixed(2)}   (target <= 1.5)${perRound(fulls, floorR!.runs)}`);
  out(`  agent restore / pg_restore -j ${PAR}       ${(restoreR!.ms / pgrR!.ms).toFixed(2)}   (target <= 1.0)${perRound(restoreR!.runs, pgrR!.runs)}`);
  if (partsR) out(`  agent restore --parallel-parts / pg_restore -j ${PAR}  ${(partsR.ms / pgrR!.ms).toFixed(2)}   (opt-in; one run)`);
  out(`  unchanged backup added                ${(100 * same.grew / full.grew).toFixed(2)} % (target <= 1 %)`);
  out(`  1% clustered change added             ${(100 * clustered.grew / full.grew).toFixed(2)} % (target <= 5 %)`);
  out(`  1% spread change added                ${(100 * spread.grew / full.grew).toFixed(2)} % (target <= 5 %)`);
  out(`  restore of the spread point / pg_restore -j ${PAR}  ${(spreadRestore.ms / pgrR!.ms).toFixed(2)}   (one run)`);
  out(`  agent peak RSS (backup / restore)     ${mib(fullPeak)} / ${mib(restorePeak)} (target <= 300 MiB; highest of the rounds)`);
} finally {
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
