// Restore and export sessions through the worker interface (in-memory workers), API tokens over
// the API, and the retention preview with the restore points a policy already has.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestController, client } from './support/controller.ts';
import { addLocal, localDate } from '../../controller/policies/zoned.ts';

let ctl: Awaited<ReturnType<typeof startTestController>>;
let api: ReturnType<typeof client>;
let policyId: string;
let pointId: string;
const DB_PASSWORD = 'db-password-PLAIN-1';
const RESTORE_PASSWORD = 'restore-password-PLAIN-2';

before(async () => {
  ctl = await startTestController();
  api = client(ctl.app, ctl.bootstrapToken);
  const acc = ctl.gateways.cloud.addAccount({ name: 'orders-pg', kind: 'PostgreSQL' });
  const sa = (await api.post('/service-accounts', { name: 'sa', tenantId: 't', auth: 'managedIdentity' })).body;
  const repo = (await api.post('/repositories', { name: 'main', storageAccount: 'backupsa', container: 'backups', password: 'repo-password-1' })).body;
  const p = await api.post('/policies', {
    name: 'nightly', serviceAccountId: sa.id, scope: { accounts: [acc.id] },
    backup: { repositoryId: repo.id, schedules: { daily: { hours: [1], keepDays: 7 } }, credentials: [{ accountId: acc.id, username: 'backup', password: DB_PASSWORD }] },
  });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  policyId = p.body.id;
  await api.post(`/policies/${policyId}/run`);
  await ctl.runner.idle();
  pointId = (await api.get(`/restore-points?policyId=${policyId}&kind=repository`)).body[0].id;
});
after(async () => { await ctl?.close(); });

const follow = async (id: string) => {
  await ctl.runner.idle();
  return (await api.get(`/sessions/${id}`)).body;
};

test('restore: a restore point goes into a new database on its own account, with the policy login', async () => {
  const point = (await api.get(`/restore-points/${pointId}`)).body;
  const r = await api.post(`/restore-points/${pointId}/restore`, { databaseName: 'orders_restored', subset: ['public.orders', 'public.customers'] });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.type, 'restore');
  assert.equal(r.body.state, 'running');
  assert.equal(r.body.policyId, policyId);
  assert.deepEqual(r.body.params, { restorePointId: pointId, serviceAccountId: r.body.params.serviceAccountId, targetAccountId: point.accountId, databaseName: 'orders_restored', subset: ['public.orders', 'public.customers'], rehydratePriority: 'Standard' });
  const s = await follow(r.body.id);
  assert.equal(s.state, 'success', JSON.stringify(s));
  assert.equal(s.bytes, 4096);
  assert.equal(s.accounts[0].accountName, 'orders-pg');
  assert.equal(s.accounts[0].restorePointId, pointId);
  assert.match(s.log.map((l: { message: string }) => l.message).join('\n'), /restoring orders-pg as of .* into database "orders_restored" on orders-pg \(only public\.orders, public\.customers\)/);
  const job = ctl.gateways.workers.restored.at(-1)!;
  assert.equal(job.formatPointId, point.formatPointId);
  assert.equal(job.target.databaseName, 'orders_restored');
  assert.deepEqual(job.target.subset, ['public.orders', 'public.customers']);
  assert.deepEqual(job.credentials, { username: 'backup', password: DB_PASSWORD, databases: [], sslmode: 'verify-full' });
  assert.equal(job.repository.password, 'repo-password-1');
});

test('export: a session writes the file; a download link is made on request for successful exports only', async () => {
  const r = await api.post(`/restore-points/${pointId}/export`, {});
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal(r.body.type, 'export');
  const s = await follow(r.body.id);
  assert.equal(s.state, 'success', JSON.stringify(s));
  const file = s.accounts[0].export;
  assert.equal(file.format, 'sql', 'a PostgreSQL point exports as SQL by default');
  assert.match(file.fileName, /^orders-pg-.*\.sql$/);
  assert.match(s.log.map((l: { message: string }) => l.message).join('\n'), /POST \/sessions\/.*\/download-link/);
  const link = await api.post(`/sessions/${s.id}/download-link`, { minutes: 5 });
  assert.equal(link.status, 200, JSON.stringify(link.body));
  assert.equal(link.body.fileName, file.fileName);
  assert.ok(Date.parse(link.body.expiresAt) - Date.now() <= 5 * 60_000 + 1000);
  assert.equal((await api.post(`/sessions/${s.id}/download-link`, { minutes: 0 })).status, 400);
  const restore = (await api.get('/sessions?type=restore&limit=1')).body[0];
  const notExport = await api.post(`/sessions/${restore.id}/download-link`, {});
  assert.equal(notExport.status, 409);
  assert.equal(notExport.body.error.code, 'NO_EXPORT');
  assert.equal((await api.post(`/restore-points/${pointId}/export`, { format: 'xml' })).status, 400);
  assert.equal((await api.get(`/restore-points/${pointId}/retrieval`)).body.state, 'online', 'a Hot repository needs no retrieval');
});

test('restore: another account with a login given for this restore only; failures are clear', async () => {
  const copy = ctl.gateways.cloud.addAccount({ name: 'orders-pg-copy', kind: 'PostgreSQL' });
  const r = await api.post(`/restore-points/${pointId}/restore`, { targetAccountId: copy.id, databaseName: 'orders', credentials: { username: 'admin', password: RESTORE_PASSWORD } });
  assert.equal(r.status, 202);
  assert.ok(!JSON.stringify(r.body).includes(RESTORE_PASSWORD));
  assert.equal((await follow(r.body.id)).state, 'success');
  assert.deepEqual(ctl.gateways.workers.restored.at(-1)!.credentials, { username: 'admin', password: RESTORE_PASSWORD });
  assert.equal(ctl.gateways.workers.restored.at(-1)!.target.account.id, copy.id);
  assert.ok(!JSON.stringify(await ctl.db.query('SELECT * FROM sessions')).includes(RESTORE_PASSWORD), 'the login is never stored');

  const noLogin = await follow((await api.post(`/restore-points/${pointId}/restore`, { targetAccountId: copy.id, databaseName: 'orders2' })).body.id);
  assert.equal(noLogin.state, 'failed');
  assert.equal(noLogin.error, 'no database login for orders-pg-copy: give credentials with the restore request');
  const unknown = await follow((await api.post(`/restore-points/${pointId}/restore`, { targetAccountId: '/subscriptions/x/nothing', databaseName: 'orders3' })).body.id);
  assert.equal(unknown.error, 'target account /subscriptions/x/nothing is not visible to the service account');
  ctl.gateways.workers.mode = 'fail';
  const exists = await follow((await api.post(`/restore-points/${pointId}/restore`, { databaseName: 'orders_restored' })).body.id);
  ctl.gateways.workers.mode = 'finish';
  assert.equal(exists.state, 'failed');
  assert.equal(exists.accounts[0].state, 'failed');
  assert.match(exists.error, /database "orders_restored" already exists on orders-pg/);

  const bad = await api.post(`/restore-points/${pointId}/restore`, { databaseName: '1-bad name' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /^databaseName: a new database name/);
  assert.equal((await api.post('/restore-points/nope/restore', { databaseName: 'x' })).status, 404);
  // a continuous point of a Cosmos DB account (a cluster's configuration session writes none)
  const nosql = ctl.gateways.cloud.addAccount({ name: 'orders-sql', kind: 'NoSql' });
  await api.patch(`/policies/${policyId}`, { scope: { accounts: [nosql.id, ...(await api.get(`/policies/${policyId}`)).body.scope.accounts] } });
  await ctl.runner.idle();
  await api.post(`/policies/${policyId}/run`, { type: 'configuration' });
  await ctl.runner.idle();
  const cont = (await api.get(`/restore-points?policyId=${policyId}&kind=continuous`)).body[0];
  assert.equal(cont.accountName, 'orders-sql');
  const c = await api.post(`/restore-points/${cont.id}/restore`, { databaseName: 'x' });
  assert.equal(c.status, 409);
  assert.equal(c.body.error.code, 'CONTINUOUS_POINT');
});

test('tokens: create over the API (shown once), list without secrets, revoke, never the last one', async () => {
  const created = await api.post('/tokens', { name: 'ci-pipeline' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.match(created.body.token, /^cbk_[A-Za-z0-9_-]{40,}$/);
  const ci = client(ctl.app, created.body.token);
  assert.equal((await ci.get('/policies')).status, 200, 'the new token works');
  const list = await api.get('/tokens');
  assert.deepEqual(list.body.map((t: { name: string }) => t.name), ['bootstrap', 'ci-pipeline']);
  assert.ok(!JSON.stringify(list.body).includes(created.body.token));
  assert.ok(list.body.every((t: Record<string, unknown>) => !('token' in t)));
  assert.equal((await api.post('/tokens', { name: 'ci-pipeline' })).status, 409);
  const bad = await api.post('/tokens', { name: 'has space' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /^name: use 1-64 letters/);
  assert.equal((await api.del(`/tokens/${created.body.id}`)).status, 204);
  assert.equal((await ci.get('/policies')).status, 401, 'revoked at once');
  assert.equal((await api.del(`/tokens/${created.body.id}`)).status, 404);
  const boot = (await api.get('/tokens')).body[0];
  const last = await api.del(`/tokens/${boot.id}`);
  assert.equal(last.status, 409);
  assert.match(last.body.error.message, /last API token/);
});

test('retention preview includes the restore points the policy already has', async () => {
  const point = (await api.get(`/restore-points/${pointId}`)).body;
  const created = new Date(point.createdAt);
  const from = localDate(addLocal(created, 'UTC', { days: 1 }), 'UTC');
  const to = localDate(addLocal(created, 'UTC', { days: 10 }), 'UTC');
  const p = await api.get(`/policies/${policyId}/retention-preview?from=${from}&to=${to}`);
  assert.equal(p.status, 200, JSON.stringify(p.body));
  assert.equal(p.body.existing, 1);
  const has = (day: { points: { id: string; existing: boolean }[] }) => day.points.some((x) => x.id === pointId && x.existing);
  assert.ok(has(p.body.days[0]), 'the existing point is there on the first day');
  // Its D flag expires 7 days after creation; the retention after the first backup (01:00 UTC) from then on removes it.
  const expires = new Date(point.flags[0].expiresAt);
  let firstRetention = new Date(`${localDate(expires, 'UTC')}T01:00:00Z`);
  if (firstRetention < expires) firstRetention = addLocal(firstRetention, 'UTC', { days: 1 });
  const goneDay = p.body.days.findIndex((d: { points: { id: string }[] }) => !d.points.some((x) => x.id === pointId));
  assert.equal(p.body.days[goneDay].date, localDate(firstRetention, 'UTC'));
  assert.ok(p.body.days[goneDay].removed.includes(pointId));
  assert.ok(p.body.days.at(-1).points.every((x: { existing: boolean }) => !x.existing));
  // A preview starting before the point was taken simulates from scratch.
  const early = await api.get(`/policies/${policyId}/retention-preview?from=${localDate(addLocal(created, 'UTC', { days: -3 }), 'UTC')}&to=${from}`);
  assert.equal(early.body.existing, 0);
});
