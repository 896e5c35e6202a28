// TLS is honoured as libpq users expect: sslmode=require encrypts, verify-full checks the
// certificate (and fails with one clear line on an untrusted one), disable does not use TLS.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startPostgres } from '../support/postgres.ts';
import { connect, resolveTarget } from '../../agent/engines/postgres/connection.ts';

const server = await startPostgres({ ssl: true });
after(() => server.stop());
const url = (mode: string) => `postgres://postgres:${encodeURIComponent(server.password)}@127.0.0.1:${server.port}/postgres?sslmode=${mode}`;

test('sslmode=require connects over TLS', async () => {
  const c = await connect(resolveTarget(url('require')));
  const r = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
  assert.equal(r.rows[0].ssl, true);
  await c.end();
});

test('sslmode=disable connects without TLS', async () => {
  const c = await connect(resolveTarget(url('disable')));
  const r = await c.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
  assert.equal(r.rows[0].ssl, false);
  await c.end();
});

test('sslmode=verify-full refuses an untrusted certificate with one clear line', async () => {
  await assert.rejects(connect(resolveTarget(url('verify-full'))), (e: any) => e.code === 'DATABASE_UNREACHABLE' && /^TLS to 127\.0\.0\.1:\d+ failed: /.test(e.message) && !e.message.includes('\n'));
});
