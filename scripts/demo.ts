// `npm run demo`: the product's main job on embedded defaults, no cloud account needed.
// Starts a throwaway PostgreSQL server, fills a demo shop database, and runs the agent exactly as
// a user would: create an encrypted repository, back up, change 1% of the rows, back up again
// (deduplicated), restore into a new database, check that every table matches, verify the
// repository byte by byte. The throwaway server is removed on exit; the repository under
// ./.cosmos-backup/demo (and its password file) stays, to explore with `npm run agent -- list --repo …`.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startPostgres } from '../test/support/postgres.ts';
import { ensurePostgres } from './ensure-postgres.ts';

const root = path.resolve('.cosmos-backup', 'demo');
const repo = path.join(root, 'repository');
const pwFile = path.join(root, 'repository.password');
const cli = path.resolve(import.meta.dirname, '..', 'agent', 'cli.ts');
const say = (s: string) => process.stdout.write(s + '\n');

function agent(args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d; });
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`agent ${args[0]} exited with ${code}`))));
  });
}

async function checksums(url: string): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const out: Record<string, string> = {};
    for (const t of ['customers', 'orders', 'events']) {
      out[t] = (await c.query(`SELECT count(*) || ':' || md5(string_agg(x::text, '|' ORDER BY x::text)) AS h FROM shop.${t} x`)).rows[0].h;
    }
    return out;
  } finally { await c.end(); }
}

ensurePostgres();
mkdirSync(root, { recursive: true });
if (!existsSync(pwFile)) writeFileSync(pwFile, randomBytes(18).toString('base64url') + '\n', { mode: 0o600 });
say('Starting a throwaway PostgreSQL server for the demo…');
const server = await startPostgres();
const env = { PGPASSWORD: server.password };
try {
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE shop');
  await admin.end();
  const db = new pg.Client({ connectionString: server.url('shop') });
  await db.connect();
  say('Filling the demo database "shop" (customers, orders with jsonb, events with bytea)…');
  await db.query(`
    CREATE SCHEMA shop;
    CREATE TABLE shop.customers (id bigserial PRIMARY KEY, name text NOT NULL, email text UNIQUE, country char(2), created_at timestamptz DEFAULT now());
    CREATE TABLE shop.orders (id bigserial PRIMARY KEY, customer_id bigint REFERENCES shop.customers, total numeric(12,2), items jsonb, placed_at timestamptz, ref uuid DEFAULT gen_random_uuid());
    CREATE TABLE shop.events (id bigserial PRIMARY KEY, order_id bigint REFERENCES shop.orders, kind text, payload bytea);
    CREATE INDEX ON shop.orders (customer_id, placed_at DESC);
    CREATE VIEW shop.big_orders AS SELECT * FROM shop.orders WHERE total > 500;
    INSERT INTO shop.customers (name, email, country) SELECT 'Customer ' || i, 'c' || i || '@example.org', (ARRAY['FR','DE','US','JP','BR'])[1 + i % 5] FROM generate_series(1, 20000) i;
    INSERT INTO shop.orders (customer_id, total, items, placed_at)
      SELECT 1 + i % 20000, round((random() * 1000)::numeric, 2), jsonb_build_array(jsonb_build_object('sku', 'SKU-' || (i % 997), 'qty', 1 + i % 5)), now() - (i || ' minutes')::interval FROM generate_series(1, 200000) i;
    INSERT INTO shop.events (order_id, kind, payload) SELECT 1 + i % 200000, (ARRAY['paid','shipped','returned'])[1 + i % 3], decode(md5(i::text), 'hex') FROM generate_series(1, 100000) i;
  `);
  const src = server.url('shop');
  const repoEnv = { ...env };
  say(`\nCreating an encrypted repository in ${repo}`);
  if (!existsSync(path.join(repo, 'config'))) await agent(['repo', 'init', '--repo', repo, '--password-file', pwFile], repoEnv);
  const common = ['--repo', repo, '--repo-password-file', pwFile];
  say('Backup 1 (full)…');
  const first = JSON.parse(await agent(['backup', 'postgres', '--source', src, ...common, '--label', 'demo=first', '--json'], repoEnv));
  say('Changing 1% of the orders, then backup 2 (only the changed chunks are stored)…');
  await db.query(`UPDATE shop.orders SET total = total + 1 WHERE id > 198000`);
  await db.end();
  const second = JSON.parse(await agent(['backup', 'postgres', '--source', src, ...common, '--label', 'demo=second', '--json'], repoEnv));
  say(`Restoring backup 2 into a new database "shop_restored"…`);
  await agent(['restore', second.id, '--target', server.url('shop_restored'), ...common], repoEnv);
  const [a, b] = await Promise.all([checksums(src), checksums(server.url('shop_restored'))]);
  say('Verifying the repository (every byte re-read and re-hashed)…');
  await agent(['verify', '--read-data', '--repo', repo, '--password-file', pwFile], repoEnv);
  const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  say('\n  restore point   read        stored      time');
  for (const r of [first, second]) say(`  ${r.id.slice(0, 12)}    ${mb(r.bytes).padEnd(10)}  ${mb(r.storedBytes).padEnd(10)}  ${r.seconds.toFixed(1)} s`);
  say(`\n  deduplication + compression: ${((first.bytes + second.bytes) / (first.storedBytes + second.storedBytes)).toFixed(1)}x smaller than the data read`);
  for (const t of Object.keys(a)) say(`  table shop.${t.padEnd(10)} ${a[t] === b[t] ? 'identical after restore' : 'DIFFERS'}`);
  if (Object.keys(a).some((t) => a[t] !== b[t])) throw new Error('restored data differs from the source');
  say(`\nDone. The repository stays in ${repo} (password in ${pwFile}). Try:\n  npm run agent -- list --repo ${repo} --password-file ${pwFile}\nThe controller (HTTP API, policies, schedules): npm start`);
} finally {
  await server.stop();
}
