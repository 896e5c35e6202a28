import pg from 'pg';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPostgres } from './support/postgres.ts';
import { openStore } from '../shared/storage/open.ts';
import { Repository } from '../shared/repository/repository.ts';
import { backupPostgres } from '../agent/engines/postgres/backup.ts';
import { resolveTarget } from '../agent/engines/postgres/connection.ts';
const s = await startPostgres();
const db = new pg.Client({ connectionString: s.url() }); await db.connect();
await db.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer uuid NOT NULL, placed_at timestamptz NOT NULL, status text NOT NULL, total numeric(12,2), note text, items jsonb);
INSERT INTO orders SELECT i, gen_random_uuid(), now() - (i || ' seconds')::interval, (ARRAY['new','paid','shipped','delivered','returned'])[1 + i % 5], round((random() * 2000)::numeric, 2),
        CASE WHEN i % 3 = 0 THEN NULL ELSE 'customer note ' || md5(i::text) END,
        jsonb_build_object('sku', 'SKU-' || (i % 4999), 'qty', 1 + i % 7, 'tags', jsonb_build_array('t' || (i % 13), 't' || (i % 17)))
      FROM generate_series(1, 800000) i`);
await db.end();
const repo = await Repository.init(await openStore(mkdtempSync(path.join(tmpdir(), 'prof-')), { create: true }), {});
const t0 = performance.now();
const rp = await backupPostgres(repo, resolveTarget(s.url()), { parallel: 2 });
console.log('backup', performance.now() - t0, rp.stats.bytes, 'maxRSS MB', process.resourceUsage().maxRSS / 1024);
const t1 = performance.now();
await backupPostgres(repo, resolveTarget(s.url()), { parallel: 2 });
console.log('backup2', performance.now() - t1, 'maxRSS MB', process.resourceUsage().maxRSS / 1024);
await s.stop();
