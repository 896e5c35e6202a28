// A controller killed mid-session and started again on the same data directory: the session is
// failed (not running forever) with a log line saying why, and the missed scheduled run runs once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { openPglite } from '../../controller/db/db.ts';
import { startTestController, tempDir, client } from './support/controller.ts';
import { fakeGateways } from './support/fakes.ts';

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), 'support', 'child-controller.ts');

test('restart after a kill: interrupted session is failed, missed run runs once', async () => {
  const dataDir = tempDir();
  const child = spawn(process.execPath, [CHILD, dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  try {
    const [line] = await once(createInterface({ input: child.stdout! }), 'line') as [string];
    const { url, token } = JSON.parse(line) as { url: string; token: string };
    const call = async (method: string, p: string, body?: unknown) => {
      const r = await fetch(url + p, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: r.status, body: await r.json() as any };
    };
    const sa = (await call('POST', '/service-accounts', { name: 'sa', tenantId: 't', auth: 'managedIdentity' })).body;
    const repo = (await call('POST', '/repositories', { name: 'r', storageAccount: 'sa1', container: 'backups' })).body;
    const accountId = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-data/providers/Microsoft.DocumentDB/databaseAccounts/orders-pg';
    const policy = await call('POST', '/policies', {
      name: 'hourly', serviceAccountId: sa.id, scope: { accounts: [accountId] },
      backup: { repositoryId: repo.id, schedules: { daily: { hours: Array.from({ length: 24 }, (_, h) => h), keepDays: 2 } }, credentials: [{ accountId, username: 'u', password: 'pw-1' }] },
    });
    assert.equal(policy.status, 201, JSON.stringify(policy.body));
    const run = await call('POST', `/policies/${policy.body.id}/run`);
    assert.equal(run.status, 202);
    // Wait until the worker has the job (its log line is in the session), then kill the process hard.
    for (let i = 0; ; i++) {
      const s = (await call('GET', `/sessions/${run.body.id}`)).body;
      if (s.log.some((l: { message: string }) => l.message.includes('worker started'))) break;
      assert.ok(i < 200, 'worker never started');
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    await exited;

    // The policy has existed for a day, so this hour's scheduled run counts as missed.
    const raw = await openPglite(path.join(dataDir, 'controller'));
    assert.equal((await raw.query('SELECT state FROM sessions WHERE id = $1', [run.body.id]))[0]!.state, 'running', 'the killed process left it running');
    await raw.query(`UPDATE policies SET created_at = now() - interval '1 day'`);
    await raw.close();

    const gateways = fakeGateways();
    gateways.cloud.addAccount({ name: 'orders-pg', kind: 'PostgreSQL' });
    const second = await startTestController({ dataDir, gateways });
    assert.equal(second.bootstrapToken, null, 'the bootstrap token is created only on the first start');
    assert.ok(second.recovered.interrupted.includes(run.body.id));
    assert.equal(second.recovered.missed.length, 1);
    await second.runner.idle();
    const api = client(second.app, token);
    const s = (await api.get(`/sessions/${run.body.id}`)).body;
    assert.equal(s.state, 'failed');
    assert.equal(s.interrupted, true);
    assert.ok(s.finishedAt);
    assert.match(s.log.at(-1).message, /Controller restarted: this session was still running when the previous controller process stopped/);
    assert.equal((await api.get('/sessions?state=running')).body.length, 0);
    const missed = (await api.get(`/sessions?policyId=${policy.body.id}&type=backup`)).body.filter((x: { trigger: string }) => x.trigger === 'missed');
    assert.equal(missed.length, 1);
    assert.equal(missed[0].state, 'success');
    assert.deepEqual(missed[0].flags, ['D']);
    assert.equal((await api.get(`/restore-points?policyId=${policy.body.id}&kind=repository`)).body.length, 1);
    await second.close();

    // Another restart does not run that schedule time again.
    const third = await startTestController({ dataDir, gateways });
    assert.equal(third.recovered.missed.length, 0);
    assert.deepEqual(third.recovered.interrupted, []);
    await third.close();
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('graceful stop: running sessions are aborted and recorded failed, never left running', async () => {
  const gateways = fakeGateways();
  gateways.cloud.addAccount({ name: 'orders-pg', kind: 'PostgreSQL' });
  const c = await startTestController({ gateways });
  const api = client(c.app, c.bootstrapToken);
  const sa = (await api.post('/service-accounts', { name: 'sa', tenantId: 't', auth: 'managedIdentity' })).body;
  const repo = (await api.post('/repositories', { name: 'r', storageAccount: 'sa1', container: 'backups' })).body;
  const accountId = gateways.cloud.accounts[0]!.id;
  const p = (await api.post('/policies', { name: 'p', serviceAccountId: sa.id, scope: { accounts: [accountId] }, backup: { repositoryId: repo.id, schedules: { daily: { hours: [3], keepDays: 2 } }, credentials: [{ accountId, username: 'u', password: 'x' }] } })).body;
  gateways.workers.mode = 'hang';
  const run = (await api.post(`/policies/${p.id}/run`)).body;
  while (gateways.workers.started.length === 0) await new Promise((r) => setTimeout(r, 20));
  await c.close();
  const again = await startTestController({ dataDir: c.dataDir, gateways });
  const s = (await client(again.app, null).get('/health')).status;
  assert.equal(s, 200);
  const row = (await again.db.query('SELECT state, error FROM sessions WHERE id = $1', [run.id]))[0]!;
  assert.equal(row.state, 'failed');
  assert.match(row.error, /the controller is stopping/);
  assert.deepEqual(again.recovered.interrupted, [], 'nothing was left running');
  await again.close();
});
