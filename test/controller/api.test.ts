// The controller API in memory (app.request), on PGlite, with in-memory Azure/worker/repository layers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTestController, client } from './support/controller.ts';

let ctl: Awaited<ReturnType<typeof startTestController>>;
let api: ReturnType<typeof client>;
const SUB = '00000000-0000-0000-0000-000000000001';

before(async () => {
  ctl = await startTestController();
  assert.ok(ctl.bootstrapToken, 'first start creates a bootstrap token');
  api = client(ctl.app, ctl.bootstrapToken);
});
after(async () => { await ctl?.close(); });

test('health needs no token; every other route in the OpenAPI document answers 401 without one', async () => {
  const anon = client(ctl.app, null);
  const h = await anon.get('/health');
  assert.equal(h.status, 200);
  assert.equal(h.body.database, 'pglite');
  const doc = await api.get('/openapi.json');
  assert.equal(doc.status, 200);
  const paths = Object.entries(doc.body.paths as Record<string, Record<string, unknown>>);
  assert.ok(paths.length >= 12, 'document lists the routes');
  let checked = 0;
  for (const [p, methods] of paths) {
    for (const method of Object.keys(methods)) {
      const url = p.replace('{id}', 'x');
      const r = await ctl.app.request(url, { method: method.toUpperCase() });
      if (p === '/health') { assert.equal(r.status, 200); continue; }
      assert.equal(r.status, 401, `${method} ${p} without token`);
      const body = await r.json() as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'UNAUTHORIZED');
      const bad = await ctl.app.request(url, { method: method.toUpperCase(), headers: { authorization: 'Bearer cbk_wrong' } });
      assert.equal(bad.status, 401, `${method} ${p} with a wrong token`);
      checked++;
    }
  }
  assert.ok(checked >= 25, `checked ${checked} operations`);
  assert.equal((await anon.get('/openapi.json')).status, 401);
});

test('OpenAPI document matches the routes the app serves', async () => {
  const doc = (await api.get('/openapi.json')).body;
  const documented = new Set<string>();
  for (const [p, methods] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const m of Object.keys(methods)) documented.add(`${m.toUpperCase()} ${p.replace(/\{(\w+)\}/g, ':$1')}`);
  }
  const served = new Set(ctl.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path.replace(/\/$/, '') || '/'}`));
  served.delete('GET /openapi.json');
  assert.deepEqual([...served].sort(), [...documented].sort());
  assert.ok(doc.components.schemas.PolicyCreate, 'schemas come from the zod definitions');
  assert.deepEqual(doc.security, [{ bearer: [] }]);
});

test('validation errors are JSON with a code and every problem as "path: message"', async () => {
  const r = await api.post('/service-accounts', { name: '', auth: 'secret', subscriptions: ['nope'] });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, 'VALIDATION_FAILED');
  for (const part of ['name:', 'tenantId:', 'subscriptions.0: expected a GUID']) {
    assert.ok(r.body.error.message.includes(part), `message mentions ${part}: ${r.body.error.message}`);
  }
  const r2 = await api.post('/service-accounts', { name: 'x', tenantId: 't', auth: 'secret' });
  assert.equal(r2.body.error.message, 'clientId: required when auth is "secret"; clientSecret: required when auth is "secret"');
  const bad = await ctl.app.request('/policies', { method: 'POST', headers: { authorization: `Bearer ${ctl.bootstrapToken}`, 'content-type': 'application/json' }, body: '{not json' });
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'BAD_REQUEST');
  const nf = await api.get('/policies/does-not-exist');
  assert.equal(nf.status, 404);
  assert.equal(nf.body.error.code, 'NOT_FOUND');
  const q = await api.get('/sessions?limit=0');
  assert.equal(q.status, 400);
  assert.match(q.body.error.message, /^query\.limit: /);
});

test('service accounts: CRUD, secret write-only', async () => {
  const created = await api.post('/service-accounts', { name: 'prod', tenantId: 'contoso.onmicrosoft.com', auth: 'secret', clientId: '11111111-2222-3333-4444-555555555555', clientSecret: 'sa-secret-value-1', subscriptions: [SUB] });
  assert.equal(created.status, 201);
  assert.equal(created.body.hasSecret, true);
  assert.ok(!JSON.stringify(created.body).includes('sa-secret-value-1'));
  const id = created.body.id;
  assert.equal((await api.get(`/service-accounts/${id}`)).body.name, 'prod');
  assert.equal((await api.get('/service-accounts')).body.length, 1);
  const dup = await api.post('/service-accounts', { name: 'prod', tenantId: 't', auth: 'managedIdentity' });
  assert.equal(dup.status, 409);
  const patched = await api.patch(`/service-accounts/${id}`, { name: 'prod-eu' });
  assert.equal(patched.status, 200);
  assert.equal(patched.body.hasSecret, true, 'a patch without a secret keeps it');
  assert.equal(patched.body.armEndpoint, null, 'the controller\'s default cloud');
  const mi = await api.post('/service-accounts', { name: 'mi', tenantId: 't', auth: 'managedIdentity', armEndpoint: 'https://management.chinacloudapi.cn/', authorityHost: 'https://login.chinacloudapi.cn' });
  assert.equal(mi.body.hasSecret, false);
  assert.equal(mi.body.armEndpoint, 'https://management.chinacloudapi.cn');
  assert.equal((await api.get(`/service-accounts/${mi.body.id}`)).body.authorityHost, 'https://login.chinacloudapi.cn');
  assert.equal((await api.patch(`/service-accounts/${mi.body.id}`, { armEndpoint: 'http://management.example' })).status, 400);
  const cleared = await api.patch(`/service-accounts/${mi.body.id}`, { armEndpoint: null });
  assert.deepEqual([cleared.body.armEndpoint, cleared.body.authorityHost], [null, 'https://login.chinacloudapi.cn'], 'a patch changes only what it names');
  assert.equal((await api.del(`/service-accounts/${mi.body.id}`)).status, 204);
  assert.equal((await api.get(`/service-accounts/${mi.body.id}`)).status, 404);
});

test('repositories: create initialises, a second registration attaches, wrong password refused', async () => {
  const sa = (await api.get('/service-accounts')).body[0];
  const r = await api.post('/repositories', { name: 'main', serviceAccountId: sa.id, storageAccount: 'backupsa', container: 'backups', folder: 'cosmos', password: 'repo-password-1', immutability: true });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.initialised, true);
  assert.equal(r.body.encrypted, true);
  assert.ok(!JSON.stringify(r.body).includes('repo-password-1'));
  assert.equal(ctl.gateways.repositories.repos.size, 1);
  // The same location again is a conflict in the controller, even though the format would attach.
  const again = await api.post('/repositories', { name: 'main2', storageAccount: 'backupsa', container: 'backups', folder: 'cosmos', password: 'repo-password-1' });
  assert.equal(again.status, 409);
  // An existing repository elsewhere (e.g. written by the agent) is attached, with its password checked.
  await ctl.gateways.repositories.init({ location: { storageAccount: 'archivesa', container: 'archive', folder: '' }, serviceAccount: null, password: 'arch-pass-123' });
  const wrong = await api.post('/repositories', { name: 'archive', storageAccount: 'archivesa', container: 'archive', password: 'not-the-one', mode: 'attach' });
  assert.equal(wrong.status, 400);
  assert.equal(wrong.body.error.code, 'WRONG_PASSWORD');
  const att = await api.post('/repositories', { name: 'archive', storageAccount: 'archivesa', container: 'archive', password: 'arch-pass-123', accessTier: 'Cool' });
  assert.equal(att.status, 201);
  assert.equal(att.body.initialised, false);
  const initExisting = await api.post('/repositories', { name: 'x', storageAccount: 'archivesa', container: 'archive', folder: 'other', mode: 'attach' });
  assert.equal(initExisting.status, 404);
  assert.equal(initExisting.body.error.code, 'REPO_NOT_FOUND');
  const badName = await api.post('/repositories', { name: 'x', storageAccount: 'Bad_Name', container: 'a', folder: '/abs/../x' });
  assert.equal(badName.status, 400);
  assert.match(badName.body.error.message, /storageAccount: .*container: .*folder: /);
  const p = await api.patch(`/repositories/${att.body.id}`, { accessTier: 'Archive' });
  assert.equal(p.body.accessTier, 'Archive');
  assert.equal((await api.patch(`/repositories/${att.body.id}`, { password: 'x' })).status, 400, 'password cannot change');
  assert.equal((await api.get('/repositories')).body.length, 2);
});

test('worker configurations: CRUD and network validation', async () => {
  const bad = await api.post('/worker-configurations', { name: 'w', region: 'westeurope', profile: 'small', virtualNetwork: 'vnet1' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /subnet: give both/);
  const w = await api.post('/worker-configurations', { name: 'weu', region: 'westeurope', profile: 'medium', virtualNetwork: 'vnet1', subnet: 'workers', privateNetwork: true, maxWorkers: 3 });
  assert.equal(w.status, 201);
  assert.equal(w.body.privateNetwork, true);
  assert.equal((await api.patch(`/worker-configurations/${w.body.id}`, { subnet: null })).status, 400);
  const w2 = (await api.patch(`/worker-configurations/${w.body.id}`, { maxWorkers: 4 })).body;
  assert.equal(w2.maxWorkers, 4);
  assert.equal(w2.privateNetwork, true, 'fields left out of a patch keep their values');
  assert.equal((await api.get(`/worker-configurations/${w.body.id}`)).body.region, 'westeurope');
  const tmp = await api.post('/worker-configurations', { name: 'tmp', region: 'northeurope', profile: 'small' });
  assert.equal((await api.del(`/worker-configurations/${tmp.body.id}`)).status, 204);
  assert.equal((await api.get('/worker-configurations')).body.length, 1);
});

test('settings: defaults, SMTP password write-only and kept when left out', async () => {
  const s = await api.get('/settings');
  assert.deepEqual(s.body, { sessionRetentionDays: 365, privateNetwork: false, email: null });
  const email = { smtp: { host: 'smtp.example.com', port: 587, username: 'u', password: 'smtp-secret-9' }, from: 'backup@example.com', to: ['ops@example.com'], dailyReport: { enabled: true, time: '07:30' } };
  const put = await api.put('/settings', { sessionRetentionDays: 90, email });
  assert.equal(put.status, 200);
  assert.equal(put.body.email.smtp.hasPassword, true);
  assert.ok(!JSON.stringify(put.body).includes('smtp-secret-9'));
  const { password: _p, ...smtp } = email.smtp;
  const kept = await api.put('/settings', { sessionRetentionDays: 90, email: { ...email, smtp } });
  assert.equal(kept.body.email.smtp.hasPassword, true);
  const bad = await api.put('/settings', { sessionRetentionDays: 0, email: { ...email, from: 'nope', dailyReport: { time: '25:00' } } });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /sessionRetentionDays: .*email\.from: .*email\.dailyReport\.time: expected HH:MM/);
});

test('policies: validation, CRUD, priority order, preview, run', async () => {
  const sa = (await api.get('/service-accounts')).body[0];
  const [archiveRepo, mainRepo] = (await api.get('/repositories')).body;
  const bad = await api.post('/policies', { name: 'p', serviceAccountId: sa.id, scope: {}, continuousTier: 14, backup: { repositoryId: mainRepo.id, schedules: { timeZone: 'Nowhere/City', daily: { hours: [25], keepDays: 0 } } } });
  assert.equal(bad.status, 400);
  for (const part of ['scope: scope selects nothing', 'continuousTier', 'backup.schedules.timeZone: unknown IANA time zone', 'backup.schedules.daily.hours.0', 'backup.schedules.daily.keepDays']) {
    assert.ok(bad.body.error.message.includes(part), `${part} in ${bad.body.error.message}`);
  }
  const missingRepo = await api.post('/policies', { name: 'p', serviceAccountId: sa.id, scope: { tags: [{ name: 'env' }] }, backup: { repositoryId: 'nope', schedules: { daily: { hours: [1], keepDays: 3 } } } });
  assert.equal(missingRepo.status, 404);
  const p = await api.post('/policies', {
    name: 'weekday', serviceAccountId: sa.id, scope: { resourceGroups: [`${SUB}/rg-data`] }, continuousTier: 7,
    backup: { repositoryId: mainRepo.id, schedules: { timeZone: 'Europe/Berlin', daily: { hours: [7], weekdays: ['mon', 'tue', 'wed', 'thu', 'fri'], keepDays: 3 }, weekly: { weekday: 'mon', hour: 7, keepDays: 14 } }, credentials: [{ accountId: 'acc', username: 'backup', password: 'db-password-7' }] },
    archive: { repositoryId: archiveRepo.id, schedule: { monthly: { day: 'last', hour: 22, keepMonths: 12 } } },
  });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  assert.deepEqual(p.body.backup.credentials, [{ accountId: 'acc', username: 'backup', databases: [], sslmode: 'verify-full', hasSecret: true }]);
  assert.ok(!JSON.stringify(p.body).includes('db-password-7'));
  const second = await api.post('/policies', { name: 'second', serviceAccountId: sa.id, scope: { tags: [{ name: 'env', value: 'prod' }] } });
  assert.equal(second.status, 201);
  assert.equal(second.body.priority, p.body.priority + 1, 'new policies go to the bottom');
  assert.equal(second.body.continuousTier, 30);
  await api.patch(`/policies/${second.body.id}`, { priority: 0 });
  assert.equal((await api.patch(`/policies/${second.body.id}`, { priority: 0 })).status, 400);
  await api.patch(`/policies/${second.body.id}`, { priority: 1 });
  assert.deepEqual((await api.get('/policies')).body.map((x: { name: string }) => x.name), ['weekday', 'second'], 'ties go to the older policy');
  // Credentials: leaving the password out keeps it; a new account needs one.
  const keep = await api.patch(`/policies/${p.body.id}`, { backup: { ...p.body.backup, credentials: [{ accountId: 'acc', username: 'backup2' }] } });
  assert.equal(keep.status, 200, JSON.stringify(keep.body));
  assert.equal(keep.body.backup.credentials[0].username, 'backup2');
  const need = await api.patch(`/policies/${p.body.id}`, { backup: { ...p.body.backup, credentials: [{ accountId: 'other', username: 'x' }] } });
  assert.equal(need.status, 400);

  const preview = await api.get(`/policies/${p.body.id}/retention-preview?from=2025-03-03&to=2025-03-17`);
  assert.equal(preview.status, 200);
  assert.equal(preview.body.days.length, 15);
  assert.deepEqual(preview.body.days[0].points[0].flags.map((f: { flag: string }) => f.flag), ['D', 'W']);
  assert.equal((await api.get(`/policies/${p.body.id}/retention-preview?from=2025-03-10&to=2025-03-01`)).status, 400);
  assert.equal((await api.get(`/policies/${p.body.id}/retention-preview?from=2025-13-45`)).status, 400);
  assert.equal((await api.get(`/policies/${second.body.id}/retention-preview`)).status, 409);
  const noBackup = await api.post(`/policies/${second.body.id}/run`);
  assert.equal(noBackup.status, 409);
  assert.equal(noBackup.body.error.code, 'NO_BACKUP');
  // Referenced resources cannot be deleted under a policy.
  assert.equal((await api.del(`/repositories/${mainRepo.id}`)).status, 409);
  assert.equal((await api.del(`/service-accounts/${sa.id}`)).status, 409);
  assert.equal((await api.del(`/policies/${second.body.id}`)).status, 204);
  assert.equal((await api.get(`/policies/${second.body.id}`)).status, 404);
});

test('full flow: create -> run -> session -> restore point -> retention, with priority and continuous tier', async () => {
  const { cloud, workers } = ctl.gateways;
  const pgAcc = cloud.addAccount({ name: 'orders-pg', kind: 'PostgreSQL' });
  cloud.addAccount({ name: 'catalog-nosql', kind: 'NoSql' });
  const mongo = cloud.addAccount({ name: 'events-mongo', kind: 'MongoRU', resourceGroup: 'rg-other', tags: { env: 'prod' } });
  const sa = (await api.get('/service-accounts')).body[0];
  const mainRepo = (await api.get('/repositories')).body.find((r: { name: string }) => r.name === 'main');
  const policy = (await api.get('/policies')).body.find((x: { name: string }) => x.name === 'weekday');
  // Give the PostgreSQL account its credentials, and widen the scope to the Mongo account by tag.
  const upd = await api.patch(`/policies/${policy.id}`, {
    scope: { resourceGroups: [`${SUB}/rg-data`], tags: [{ name: 'env', value: 'prod' }] },
    backup: { ...policy.backup, credentials: [{ accountId: pgAcc.id, username: 'backup', password: 'pg-pass-3' }] },
  });
  assert.equal(upd.status, 200, JSON.stringify(upd.body));
  // A higher-priority policy takes the Mongo account.
  const top = await api.post('/policies', { name: 'mongo-first', priority: 0 + 1, serviceAccountId: sa.id, scope: { accounts: [mongo.id] }, continuousTier: 30 });
  await api.patch(`/policies/${policy.id}`, { priority: 2 });
  assert.equal(top.status, 201);
  await ctl.runner.idle();

  const run = await api.post(`/policies/${policy.id}/run`);
  assert.equal(run.status, 202);
  assert.equal(run.body.state, 'running');
  await ctl.runner.idle();
  const s = await api.get(`/sessions/${run.body.id}`);
  assert.equal(s.body.state, 'success', JSON.stringify(s.body));
  assert.equal(s.body.trigger, 'manual');
  const byName = Object.fromEntries(s.body.accounts.map((a: { accountName: string }) => [a.accountName, a]));
  assert.equal(byName['orders-pg'].state, 'success');
  assert.equal(byName['catalog-nosql'].state, 'skipped');
  assert.equal(byName['events-mongo'], undefined, 'owned by the higher-priority policy');
  assert.ok(s.body.log.some((l: { message: string }) => /events-mongo: skipped, processed by policy "mongo-first"/.test(l.message)));
  assert.equal(s.body.bytes, byName['orders-pg'].bytes);
  assert.equal(workers.started.at(-1)!.credentials!.password, 'pg-pass-3', 'the worker receives the opened credentials');
  assert.equal(workers.started.at(-1)!.workerConfiguration!.name, 'weu', 'the region worker configuration is used');
  assert.equal(workers.started.at(-1)!.repository.password, 'repo-password-1');

  const rp = await api.get(`/restore-points?policyId=${policy.id}&kind=repository`);
  assert.equal(rp.body.length, 1);
  assert.equal(rp.body[0].accountId, pgAcc.id);
  assert.equal(rp.body[0].repositoryId, mainRepo.id);
  assert.deepEqual(rp.body[0].flags.map((f: { flag: string }) => f.flag), ['D'], 'an on-demand run is kept like a daily point');
  assert.equal((await api.get(`/restore-points/${rp.body[0].id}`)).body.size, byName['orders-pg'].bytes);

  // A longer daily retention applies to the existing point too.
  const before = Date.parse(rp.body[0].flags[0].expiresAt);
  const longer = await api.patch(`/policies/${policy.id}`, { backup: { ...upd.body.backup, schedules: { ...upd.body.backup.schedules, daily: { ...upd.body.backup.schedules.daily, keepDays: 10 } } } });
  assert.equal(longer.status, 200, JSON.stringify(longer.body));
  const after7 = Date.parse((await api.get(`/restore-points/${rp.body[0].id}`)).body.flags[0].expiresAt);
  assert.equal(Math.round((after7 - before) / 86_400_000), 7);

  // Retention ran after the backup.
  const ret = (await api.get(`/sessions?policyId=${policy.id}&type=retention`)).body;
  assert.equal(ret.length, 1);
  assert.equal(ret[0].state, 'success');
  // Configuration sessions put every owned account on the policy's tier; the others on theirs.
  const conf = await api.post(`/policies/${policy.id}/run`, { type: 'configuration' });
  assert.equal(conf.status, 202);
  await ctl.runner.idle();
  // a Cosmos DB for PostgreSQL cluster is not a DocumentDB account: continuous backup does not apply
  assert.equal(cloud.tiers.get(pgAcc.id), undefined);
  assert.equal(cloud.tiers.get(mongo.id), 30);
  const confRow = (await api.get(`/sessions/${conf.body.id}`)).body;
  const pgResult = confRow.accounts.find((a: { accountId: string }) => a.accountId === pgAcc.id);
  assert.equal(pgResult.state, 'success');
  assert.match(pgResult.message, /^continuous backup does not apply to Cosmos DB for PostgreSQL clusters/);
  assert.deepEqual((await api.get(`/restore-points?accountId=${encodeURIComponent(pgAcc.id)}&kind=continuous`)).body, []);

  // Expire the point's flags and run again: retention removes it from the repository and the list.
  await ctl.db.query(`UPDATE restore_points SET flags = $1 WHERE id = $2`, [JSON.stringify([{ flag: 'D', expiresAt: '2000-01-01T00:00:00.000Z' }]), rp.body[0].id]);
  workers.mode = 'fail';
  const failing = await api.post(`/policies/${policy.id}/run`);
  await ctl.runner.idle();
  const f = await api.get(`/sessions/${failing.body.id}`);
  assert.equal(f.body.state, 'failed');
  assert.match(f.body.log.map((l: { message: string }) => l.message).join('\n'), /orders-pg: password authentication failed/);
  workers.mode = 'finish';
  await api.post(`/policies/${policy.id}/run`);
  await ctl.runner.idle();
  assert.equal((await api.get(`/restore-points/${rp.body[0].id}`)).status, 404, 'expired point removed');
  assert.ok(ctl.gateways.repositories.forgotten.includes(rp.body[0].formatPointId));
  const last = (await api.get(`/sessions?policyId=${policy.id}&type=retention&limit=1`)).body[0];
  assert.match((await api.get(`/sessions/${last.id}`)).body.log.map((l: { message: string }) => l.message).join('\n'), /removed \(no flag left\)/);
  // Archive: copies the newest restore point to the archive repository with an A flag.
  const arch = await api.post(`/policies/${policy.id}/run`, { type: 'archive' });
  assert.equal(arch.status, 202);
  await ctl.runner.idle();
  const archived = (await api.get(`/restore-points?policyId=${policy.id}&kind=archive`)).body;
  assert.equal(archived.length, 1);
  assert.equal(archived[0].flags[0].flag, 'A');
  // Disabled policies do not run.
  await api.patch(`/policies/${policy.id}`, { enabled: false });
  assert.equal((await api.post(`/policies/${policy.id}/run`)).status, 409);
});

test('configuration session: a Cassandra account in scope gets a warning with the reason, the others still run with the policy\'s allowMigration', async () => {
  const { cloud } = ctl.gateways;
  const cass = cloud.addAccount({ name: 'legacy-cassandra', kind: 'Cassandra', resourceGroup: 'rg-legacy' });
  const sql = cloud.addAccount({ name: 'legacy-sql', kind: 'NoSql', resourceGroup: 'rg-legacy' });
  const sa = (await api.get('/service-accounts')).body[0];
  const p = await api.post('/policies', { name: 'legacy', serviceAccountId: sa.id, scope: { resourceGroups: [`${SUB}/rg-legacy`] }, continuousTier: 7, allowMigration: true });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  assert.equal(p.body.allowMigration, true);
  await ctl.runner.idle();
  const [started] = (await api.get(`/sessions?policyId=${p.body.id}&type=configuration`)).body;
  const s = (await api.get(`/sessions/${started.id}`)).body;
  const byName = Object.fromEntries(s.accounts.map((a: { accountName: string }) => [a.accountName, a]));
  assert.deepEqual(Object.keys(byName).sort(), ['legacy-cassandra', 'legacy-sql']);
  assert.equal(byName['legacy-cassandra'].state, 'warning');
  assert.match(byName['legacy-cassandra'].message, /^Cassandra accounts cannot use continuous backup/);
  assert.equal(byName['legacy-sql'].state, 'warning', 'tier set to 7 days');
  assert.equal(s.state, 'warning');
  assert.match(s.error, /1 account\(s\) cannot use continuous backup/);
  assert.ok(s.log.some((l: { level: string; message: string }) => l.level === 'warning' && /^legacy-cassandra: Cassandra accounts cannot use continuous backup/.test(l.message)));
  // Azure is never asked to protect the Cassandra account; the other gets the policy's migration choice
  assert.equal(cloud.tiers.get(cass.id), undefined);
  assert.deepEqual(cloud.migrationChoices.filter((c) => c.accountId === sql.id).map((c) => c.allowMigration), [true]);
  const off = await api.patch(`/policies/${p.body.id}`, { allowMigration: false });
  assert.equal(off.body.allowMigration, false);
  await api.post(`/policies/${p.body.id}/run`, { type: 'configuration' });
  await ctl.runner.idle();
  assert.deepEqual(cloud.migrationChoices.filter((c) => c.accountId === sql.id).map((c) => c.allowMigration), [true, false]);
  await api.del(`/policies/${p.body.id}`);
});
