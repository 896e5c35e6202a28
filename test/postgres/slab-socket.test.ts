// COPY TO STDOUT written straight into a Writable (copy-out.ts): over a plain connection the
// socket reads into reused slabs (slab-socket.ts), over TLS pg's own socket is taken over. Either
// way the sink gets exactly the bytes pg-copy-streams gets, even when it holds each buffer until
// its write's callback (a slab reused too early would corrupt them); the slabs in use stay few;
// pg gets the connection back afterwards; a server error or a failing sink rejects `done`.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { startPostgres, usePostgres, createTestDatabase, type PostgresServer } from '../support/postgres.ts';
import { connect, resolveTarget } from '../../agent/engines/postgres/connection.ts';
import { CopyOut } from '../../agent/engines/postgres/copy-out.ts';
import { slabReaderOf } from '../../agent/engines/postgres/slab-socket.ts';

const plain = await usePostgres();
const tls = await startPostgres({ ssl: true });
after(() => Promise.all([tls.stop(), plain.stop()])); // plain's stop is the runner's under npm test

const ROWS = 60_000; // ~9 MB of COPY text: about 140 socket reads of 64 KiB

async function fixture(server: PostgresServer): Promise<string> {
  const db = await createTestDatabase(server, 'slab');
  const c = new pg.Client({ connectionString: server.url(db) });
  await c.connect();
  await c.query(`CREATE TABLE t (id int, body text, raw bytea);
    INSERT INTO t SELECT i, repeat(md5(i::text), 1 + i % 7) || E'\\t\\\\ é\\n' || i, decode(md5((i * 3)::text), 'hex') FROM generate_series(1, ${ROWS}) i`);
  await c.end();
  return db;
}

const pgClient = (server: PostgresServer, db: string) => new pg.Client({ connectionString: server.url(db), ...(server === tls ? { ssl: { rejectUnauthorized: false } } : {}) });

/** SHA-256 of the COPY text, `passes` times over, as pg-copy-streams reads it on clients of pg's own. */
async function reference(server: PostgresServer, db: string, passes: number): Promise<{ sha: string; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  for (let i = 0; i < passes; i++) {
    const c = pgClient(server, db);
    await c.connect();
    for await (const b of c.query(copyTo('COPY t TO STDOUT'))) { h.update(b as Buffer); bytes += (b as Buffer).length; }
    await c.end();
  }
  return { sha: h.digest('hex'), bytes };
}

/** A slow sink that reads each buffer only when its write completes, as the backup writer may. */
function slowSink(h: ReturnType<typeof createHash>, failAfter?: number): Writable & { bytes: number } {
  const w = new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _enc, cb) {
      setTimeout(() => {
        if (failAfter !== undefined && w.bytes > failAfter) { cb(new Error('the repository is full')); return; }
        h.update(chunk);
        w.bytes += chunk.length;
        cb();
      }, 1);
    },
  }) as Writable & { bytes: number };
  w.bytes = 0;
  return w;
}

for (const [name, server, query] of [['plain (slabs)', plain, ''], ['TLS', tls, '?sslmode=require']] as const) {
  test(`${name}: the sink gets pg-copy-streams' bytes exactly; pg has the connection back after`, async () => {
    const db = await fixture(server);
    const url = server.url(db) + query;
    const want = await reference(server, db, 2); // the sink gets the table twice
    const client = await connect(resolveTarget(url));
    try {
      const reader = slabReaderOf((client as unknown as { connection: { stream: object } }).connection.stream);
      assert.equal(reader !== undefined, name.startsWith('plain'), 'slab sockets exactly when there is no TLS');
      const h = createHash('sha256');
      const sink = slowSink(h);
      for (let round = 0; round < 2; round++) {
        const copy = new CopyOut('COPY t TO STDOUT', sink);
        client.query(copy);
        await copy.done;
        // the same connection goes on working: pg parsed CommandComplete and ReadyForQuery
        assert.equal((await client.query('SELECT count(*)::int AS n FROM t')).rows[0].n, ROWS);
      }
      await new Promise<void>((res, rej) => sink.end((e?: Error | null) => (e ? rej(e) : res())));
      assert.equal(sink.bytes, want.bytes);
      assert.equal(h.digest('hex'), want.sha, 'byte for byte');
      if (reader) {
        // hundreds of reads went through; at most 16 slabs are out at once, plus one spare
        assert.ok(reader.slabs.allocated > 1 && reader.slabs.allocated <= 17, `slabs allocated: ${reader.slabs.allocated}`);
      }
    } finally {
      await client.end();
    }
  });

  test(`${name}: a server error or a failing sink rejects done, with its message`, async () => {
    const db = await fixture(server);
    const url = server.url(db) + query;
    const client = await connect(resolveTarget(url));
    try {
      const missing = new CopyOut('COPY no_such_table TO STDOUT', slowSink(createHash('sha256')));
      client.query(missing);
      await assert.rejects(missing.done, /relation "no_such_table" does not exist/);
      assert.equal((await client.query('SELECT 1 AS one')).rows[0].one, 1, 'the connection survives a refused COPY');
      const full = new CopyOut('COPY t TO STDOUT', slowSink(createHash('sha256'), 1 << 20));
      client.query(full);
      await assert.rejects(full.done, /the repository is full/);
    } finally {
      // a COPY abandoned midway never ends: the backup closes such connections, as here
      (client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    }
  });
}

test('a query on a slab socket is unaffected by what the slab held before', async () => {
  const db = await fixture(plain);
  const client = await connect(resolveTarget(plain.url(db)));
  try {
    // results bigger than one read, then small ones: pg's parser keeps partial messages
    const big = await client.query('SELECT string_agg(body, \',\') AS s FROM t WHERE id <= 5000');
    const check = new pg.Client({ connectionString: plain.url(db) });
    await check.connect();
    const want = await check.query('SELECT string_agg(body, \',\') AS s FROM t WHERE id <= 5000');
    await check.end();
    assert.equal(big.rows[0].s, want.rows[0].s);
    assert.ok(big.rows[0].s.length > 200_000);
    for (let i = 0; i < 50; i++) assert.equal((await client.query('SELECT $1::int + 1 AS n', [i])).rows[0].n, i + 1);
  } finally {
    await client.end();
  }
});
