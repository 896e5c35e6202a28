// The controller's Azure control plane against the ARM simulator, through the real
// @azure/identity and @azure/arm-* clients and the controller's own API: service-account checks,
// discovery with every filter, continuous-backup enforcement by configuration sessions,
// restore windows and point-in-time restores, with and without injected throttling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startController, type Controller } from '../../controller/start.ts';
import { AzureCloudGateway } from '../../controller/azure/gateway.ts';
import { insertRestorePoint } from '../../controller/db/session-store.ts';
import { startArmSimulator, type ArmSimulator } from '../support/arm-simulator/index.ts';
import { client, tempDir, testConfig } from '../controller/support/controller.ts';
import { fakeGateways } from '../controller/support/fakes.ts';

const T = '9a1b2c3d-0000-4000-8000-00000000000a';
const S1 = '1c0ffee0-0000-4000-8000-000000000001';
const S2 = '1c0ffee0-0000-4000-8000-000000000002';
const ADMIN = '5eca0000-0000-4000-8000-000000000001';
const READER = '5eca0000-0000-4000-8000-000000000002';
const DAY = 86_400_000;
const TIER7 = { properties: { backupPolicy: { type: 'Continuous', continuousModeProperties: { tier: 'Continuous7Days' } } } };

let sim: ArmSimulator;
let ctl: Controller;
let api: ReturnType<typeof client>;
let cloud: AzureCloudGateway;
let saId: string;

async function waitSession(id: string) {
  for (let i = 0; i < 600; i++) {
    const s = await api.get(`/sessions/${id}`);
    if (s.body.state !== 'running') return s.body;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`session ${id} still running`);
}
const accounts = async (q = '') => (await api.get(`/accounts${q}`)).body as { id: string; name: string; kind: string; instanceId: string; deletedAt: string | null; protectionStatus: string; armId: string; subscriptionId: string; note: string | null }[];
const names = (xs: { name: string }[]) => xs.map((x) => x.name).sort();

before(async () => {
  sim = await startArmSimulator();
  sim.setLroPolls(1, 3);
  sim.addSubscription(S1, 'production', T);
  sim.addSubscription(S2, 'staging', T);
  sim.addPrincipal({ tenantId: T, clientId: ADMIN, secret: 'admin-secret' });
  sim.addPrincipal({ tenantId: T, clientId: READER, secret: 'reader-secret', actions: ['Microsoft.DocumentDB/databaseAccounts/read', 'Microsoft.Resources/subscriptions/resourceGroups/read', 'Microsoft.DocumentDB/locations/restorableDatabaseAccounts/*'] });
  const a = (seed: Parameters<ArmSimulator['addAccount']>[0]) => sim.addAccount({ location: 'westeurope', ...seed });
  a({ subscriptionId: S1, resourceGroup: 'rg-app', name: 'app-sql', backup: 'Continuous30Days', databases: [{ name: 'orders', collections: ['items', 'audit'] }] });
  a({ subscriptionId: S1, resourceGroup: 'rg-app', name: 'app-mongo', api: 'MongoDB', backup: 'Continuous7Days', databases: [{ name: 'shop', collections: ['carts'] }] });
  a({ subscriptionId: S1, resourceGroup: 'rg-app', name: 'app-excluded', backup: 'Continuous30Days' });
  a({ subscriptionId: S1, resourceGroup: 'rg-app', name: 'app-periodic', backup: 'Periodic' });
  a({ subscriptionId: S1, resourceGroup: 'rg-data', name: 'tagged-graph', api: 'Gremlin', backup: 'Continuous30Days', tags: { backup: 'gold' } });
  a({ subscriptionId: S1, resourceGroup: 'rg-data', name: 'untagged-table', api: 'Table', backup: 'Continuous30Days', tags: { backup: 'none' } });
  a({ subscriptionId: S1, resourceGroup: 'rg-data', name: 'legacy-cass', api: 'Cassandra', backup: 'Periodic', tags: { backup: 'gold' } });
  a({ subscriptionId: S2, resourceGroup: 'rg-stage', name: 'stage-sql', location: 'northeurope', backup: 'Continuous30Days' });
  a({ subscriptionId: S2, resourceGroup: 'rg-stage', name: 'migrate-me', location: 'northeurope', backup: 'Periodic' });
  sim.addCluster({ subscriptionId: S2, resourceGroup: 'rg-stage', name: 'pg-orders', location: 'northeurope' });
  // two deleted accounts that shared one name, each with its own instance id
  for (const age of [20, 10]) {
    a({ subscriptionId: S1, resourceGroup: 'rg-old', name: 'shop', backup: 'Continuous30Days', ageDays: age, databases: [{ name: 'db', collections: ['c'] }] });
    sim.deleteAccount('shop');
  }
  cloud = new AzureCloudGateway({ armEndpoint: sim.url, authorityHost: sim.url, caBundle: sim.caCert, pollIntervalMs: 5, maxRetries: 8, allowMigration: false });
  ctl = await startController({ config: testConfig(tempDir()), gateways: { ...fakeGateways(), cloud }, azure: cloud });
  api = client(ctl.app, ctl.bootstrapToken);
  const sa = await api.post('/service-accounts', { name: 'admin', tenantId: T, auth: 'secret', clientId: ADMIN, clientSecret: 'admin-secret' });
  assert.equal(sa.status, 201);
  saId = sa.body.id;
});
after(async () => {
  await ctl?.close();
  await sim?.stop();
});

test('a new service account is checked and scanned by the control plane on its own', async () => {
  assert.equal((await api.get(`/service-accounts/${saId}/check`)).status, 404);
  assert.deepEqual(await ctl.azure!.checkNew(), [saId]);
  const c = await api.get(`/service-accounts/${saId}/check`);
  assert.equal(c.status, 200);
  assert.equal(c.body.subscriptions.length, 2);
  assert.ok(c.body.lastRescanAt);
  assert.ok((await accounts()).length > 0);
  assert.deepEqual(await ctl.azure!.checkNew(), [], 'nothing new: no second check');
});

test('service account check: subscriptions listed, missing actions named, a wrong secret in one line', async () => {
  const ok = await api.post(`/service-accounts/${saId}/check`);
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body.subscriptions.map((s: { name: string }) => s.name).sort(), ['production', 'staging']);
  assert.deepEqual(ok.body.missingActions, { [S1]: [], [S2]: [] });
  assert.equal(ok.body.error, null);

  const reader = await api.post('/service-accounts', { name: 'reader', tenantId: T, auth: 'secret', clientId: READER, clientSecret: 'reader-secret', subscriptions: [S2] });
  const r = await api.post(`/service-accounts/${reader.body.id}/check`);
  assert.deepEqual(Object.keys(r.body.missingActions), [S2]);
  const missing: string[] = r.body.missingActions[S2];
  assert.ok(missing.includes('Microsoft.DocumentDB/databaseAccounts/write'));
  assert.ok(missing.includes('Microsoft.DocumentDB/databaseAccounts/listConnectionStrings/action'));
  assert.ok(!missing.includes('Microsoft.DocumentDB/databaseAccounts/read'));
  assert.ok(!missing.includes('Microsoft.DocumentDB/locations/restorableDatabaseAccounts/restore/action'), 'covered by restorableDatabaseAccounts/*');

  const bad = await api.post('/service-accounts', { name: 'typo', tenantId: T, auth: 'secret', clientId: ADMIN, clientSecret: 'not-the-secret' });
  const b = await api.post(`/service-accounts/${bad.body.id}/check`);
  assert.match(b.body.error, /sign-in failed: AADSTS7000215: Invalid client secret provided\./);
  assert.ok(!b.body.error.includes('\n') && !b.body.error.includes('not-the-secret'));
  await api.del(`/service-accounts/${bad.body.id}`);
  await api.del(`/service-accounts/${reader.body.id}`);
});

test('a service account in another cloud: its own ARM endpoint and authority host', async () => {
  const other = await startArmSimulator();
  try {
    const tenant = '9a1b2c3d-0000-4000-8000-0000000000bb';
    const sub = '1c0ffee0-0000-4000-8000-0000000000bb';
    other.addSubscription(sub, 'sovereign', tenant);
    other.addPrincipal({ tenantId: tenant, clientId: READER, secret: 'sovereign-secret' });
    other.addAccount({ subscriptionId: sub, resourceGroup: 'rg-s', name: 'sovereign-sql' });
    // the controller trusts both CAs (one bundle), as it would a private cloud's
    cloud.settings.caBundle = `${sim.caCert}\n${other.caCert}`;
    // the endpoints come with the service account itself, and are shown (they are not secret)
    assert.equal((await api.post('/service-accounts', { name: 'insecure', tenantId: tenant, auth: 'managedIdentity', armEndpoint: 'http://insecure.example' })).status, 400);
    const sa = await api.post('/service-accounts', { name: 'sovereign', tenantId: tenant, auth: 'secret', clientId: READER, clientSecret: 'sovereign-secret', armEndpoint: `${other.url}/`, authorityHost: other.url });
    assert.equal(sa.status, 201, JSON.stringify(sa.body));
    assert.equal(sa.body.armEndpoint, other.url);
    assert.equal(sa.body.authorityHost, other.url);
    assert.deepEqual((await api.get(`/service-accounts/${sa.body.id}/cloud`)).body, { armEndpoint: other.url, authorityHost: other.url });
    assert.equal((await api.put(`/service-accounts/${sa.body.id}/cloud`, { armEndpoint: 'http://insecure.example', authorityHost: null })).status, 400);
    assert.equal((await api.patch(`/service-accounts/${sa.body.id}`, { authorityHost: 'http://insecure.example' })).status, 400);
    const c = await api.post(`/service-accounts/${sa.body.id}/check`);
    assert.deepEqual(c.body.subscriptions, [{ id: sub, name: 'sovereign' }], c.body.error);
    const scan = await api.post('/accounts/rescan', { serviceAccountId: sa.body.id });
    assert.equal(scan.body[0].added, 1);
    assert.deepEqual(names(await accounts(`?serviceAccountId=${sa.body.id}`)), ['sovereign-sql']);
    assert.equal(other.requests.filter((r) => r.clientId === READER).length > 0, true);
    await api.del(`/service-accounts/${sa.body.id}`);
  } finally {
    cloud.settings.caBundle = sim.caCert;
    await other.stop();
  }
});

test('discovery: every kind and the PostgreSQL cluster, every filter, Cassandra reported, deleted instances kept', async () => {
  const scan = await api.post('/accounts/rescan', { serviceAccountId: saId });
  assert.equal(scan.status, 200);
  assert.equal(scan.body[0].error, null);
  assert.deepEqual(scan.body[0].warnings, ['legacy-cass: Cassandra accounts cannot use continuous backup (Azure supports NoSQL, MongoDB RU, Gremlin and Table); listed, not protected']);
  const all = await accounts();
  assert.deepEqual(names(all), ['app-excluded', 'app-mongo', 'app-periodic', 'app-sql', 'legacy-cass', 'migrate-me', 'pg-orders', 'shop', 'shop', 'stage-sql', 'tagged-graph', 'untagged-table']);
  const pg = all.find((a) => a.name === 'pg-orders') as any;
  assert.equal(pg.kind, 'PostgreSQL');
  assert.match(pg.coordinatorFqdn, /^c-pg-orders\..*postgres\.cosmos\.azure\.com$/);
  assert.deepEqual(names(await accounts(`?subscriptionId=${S2}`)), ['migrate-me', 'pg-orders', 'stage-sql']);
  assert.equal((await accounts(`?serviceAccountId=${saId}`)).length, all.length);
  assert.deepEqual(await accounts('?serviceAccountId=someone-else'), []);
  assert.deepEqual(names(await accounts('?search=app-*')), ['app-excluded', 'app-mongo', 'app-periodic', 'app-sql']);
  assert.deepEqual(names(await accounts('?search=GRAPH')), ['tagged-graph']);
  assert.deepEqual(names(await accounts('?regions=northeurope')), ['migrate-me', 'pg-orders', 'stage-sql']);
  assert.deepEqual(names(await accounts('?accountTypes=MongoRU,Gremlin')), ['app-mongo', 'tagged-graph']);
  assert.equal((await api.get('/accounts?accountTypes=Bogus')).status, 400);
  const deleted = await accounts('?softDeleted=true');
  assert.deepEqual(names(deleted), ['shop', 'shop']);
  assert.notEqual(deleted[0]!.instanceId, deleted[1]!.instanceId);
  assert.equal((await accounts('?softDeleted=false')).length, all.length - 2);
  assert.deepEqual(names(await accounts('?protectionStatus=Unsupported')), ['legacy-cass']);

  // a vanished account is marked deleted, never dropped
  sim.addAccount({ subscriptionId: S2, resourceGroup: 'rg-stage', name: 'short-lived', location: 'northeurope' });
  await api.post('/accounts/rescan', { serviceAccountId: saId });
  sim.deleteAccount('short-lived');
  const again = await api.post('/accounts/rescan', { serviceAccountId: saId });
  assert.equal(again.body[0].deleted, 0, 'still restorable: seen as a deleted instance, not as vanished');
  const gone = (await accounts('?search=short-lived'))[0]!;
  assert.ok(gone.deletedAt);
});

async function policy(name: string, scope: unknown) {
  const p = await api.post('/policies', { name, serviceAccountId: saId, scope, continuousTier: 7 });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  return p.body.id as string;
}

let scopedPolicy: string;
test('configuration session: scope from a tag and a resource group with one exclusion; tier drift fixed by one tier-only PATCH each', async () => {
  const excluded = (await accounts('?search=app-excluded'))[0]!.armId;
  scopedPolicy = await policy('gold', { resourceGroups: [`${S1}/rg-app`], tags: [{ name: 'backup', value: 'gold' }], exclusions: { accounts: [excluded] } });
  assert.deepEqual(names(await accounts('?protectionStatus=Protected')), ['app-mongo', 'app-periodic', 'app-sql', 'tagged-graph']);
  // a new policy gets its configuration session at once
  const started = (await api.get(`/sessions?policyId=${scopedPolicy}&type=configuration`)).body;
  assert.equal(started.length, 1);
  const s = await waitSession(started[0].id);
  const byName = Object.fromEntries(s.accounts.map((a: { accountName: string }) => [a.accountName, a]));
  // legacy-cass carries the gold tag: it is in scope and reported, while the others still run
  assert.deepEqual(Object.keys(byName).sort(), ['app-mongo', 'app-periodic', 'app-sql', 'legacy-cass', 'tagged-graph']);
  assert.equal(byName['legacy-cass'].state, 'warning');
  assert.match(byName['legacy-cass'].message, /^Cassandra accounts cannot use continuous backup/);
  assert.ok(s.log.some((l: { level: string; message: string }) => l.level === 'warning' && /legacy-cass: Cassandra accounts cannot use continuous backup/.test(l.message)));
  assert.equal(byName['app-sql'].state, 'warning');
  assert.equal(byName['tagged-graph'].state, 'warning');
  assert.equal(byName['app-mongo'].state, 'success');
  assert.equal(byName['app-periodic'].state, 'failed');
  assert.match(byName['app-periodic'].message, /periodic backup and this policy does not allow migrating/);
  const patches = sim.requests.filter((r) => r.method === 'PATCH');
  assert.deepEqual(patches.map((p) => p.path.split('/').at(-1)).sort(), ['app-sql', 'tagged-graph']);
  for (const p of patches) { assert.deepEqual(p.body, TIER7); assert.equal(p.status, 200); }
  assert.equal(sim.requests.filter((r) => r.status === 400).length, 0, 'no refusal reached');
  assert.equal((sim.state.findAccount('app-sql').backup as { tier: string }).tier, 'Continuous7Days');
  assert.equal((sim.state.findAccount('app-excluded').backup as { tier: string }).tier, 'Continuous30Days');
  assert.ok(s.log.some((l: { message: string }) => /app-sql: continuous backup tier was 30, set to 7 days/.test(l.message)));
  const points = (await api.get('/restore-points?kind=continuous')).body as { accountName: string; continuousTier: number; windowStart: string }[];
  assert.deepEqual(names(points.map((p) => ({ name: p.accountName }))), ['app-mongo', 'app-sql', 'tagged-graph']);
  assert.ok(points.every((p) => p.continuousTier === 7 && p.windowStart));
});

test('a Cassandra account is reported by the gateway, not skipped silently', async () => {
  const creds = { id: saId, tenantId: T, auth: 'secret' as const, clientId: ADMIN, clientSecret: 'admin-secret', subscriptions: [] };
  const cass = (await accounts('?search=legacy-cass'))[0]!;
  await assert.rejects(cloud.ensureContinuousBackup(creds, { id: cass.armId, name: 'legacy-cass', subscriptionId: S1, resourceGroup: 'rg-data', region: 'westeurope', kind: 'NoSql', tags: {} }, 7),
    /legacy-cass: Cassandra accounts cannot use continuous backup/);
  assert.equal(cass.protectionStatus, 'Unsupported');
  assert.match(cass.note!, /Cassandra accounts cannot use continuous backup/);
});

test('migration from Periodic when allowed: one PATCH with the tier only, followed to the end', async () => {
  const creds = { id: saId, tenantId: T, auth: 'secret' as const, clientId: ADMIN, clientSecret: 'admin-secret', subscriptions: [] };
  const acc = { id: sim.state.findAccount('migrate-me').id, name: 'migrate-me', subscriptionId: S2, resourceGroup: 'rg-stage', region: 'northeurope', kind: 'NoSql' as const, tags: {} };
  const before = sim.requests.length;
  const r = await cloud.ensureContinuousBackup(creds, acc, 30, { allowMigration: true });
  assert.equal(r.migrated, true);
  assert.equal(r.changed, true);
  assert.equal(r.previousTier, null);
  const patches = sim.requests.slice(before).filter((q) => q.method === 'PATCH');
  assert.deepEqual(patches.map((p) => p.body), [{ properties: { backupPolicy: { type: 'Continuous', continuousModeProperties: { tier: 'Continuous30Days' } } } }]);
  assert.ok(sim.requests.slice(before).filter((q) => q.path.includes('/operationsStatus/')).length >= 3, 'the migration took several polls');
  assert.deepEqual(sim.state.findAccount('migrate-me').backup, { type: 'Continuous', tier: 'Continuous30Days' });
  assert.ok(r.oldestRestorableTime, 'restorable from the end of the migration');

  // another operation holding the account (409) is waited out, then the tier change goes through
  sim.setFaults({ conflictNext: 1 });
  const before2 = sim.requests.length;
  const again = await cloud.ensureContinuousBackup(creds, acc, 7);
  assert.equal(again.changed, true);
  assert.deepEqual(sim.requests.slice(before2).filter((q) => q.method === 'PATCH').map((q) => q.status), [409, 200]);
  sim.clearFaults();
});

test('restore window from records; a restore outside it is refused naming the window; inside it reaches Succeeded', async () => {
  const acc = (await accounts('?search=app-sql'))[0]!;
  const w = await api.get(`/accounts/${acc.id}/restore-window`);
  assert.equal(w.status, 200);
  assert.equal(w.body.records, 1);
  assert.equal(w.body.tierDays, 7);
  const start = new Date(w.body.start);
  assert.ok(start.getTime() <= Date.now() - 6 * DAY && start.getTime() >= Date.now() - 8 * DAY, `window start ${w.body.start}`);
  const regions = await api.get(`/accounts/${acc.id}/restore-regions`);
  assert.deepEqual(regions.body, ['westeurope']);
  const dbs = await api.get(`/accounts/${acc.id}/restorable-databases?pointInTime=${new Date(Date.now() - DAY).toISOString()}`);
  assert.deepEqual(dbs.body, [{ name: 'orders', collections: ['items', 'audit'] }]);

  const early = new Date(start.getTime() - 3600_000).toISOString();
  const refused = await api.post(`/accounts/${acc.id}/restore`, { pointInTime: early, targetName: 'app-sql-restored', targetResourceGroup: 'rg-app' });
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.code, 'OUTSIDE_RESTORE_WINDOW');
  // Azure's 7-day reach moves with the clock, so the window named is the one of that moment
  const named = /restore window of app-sql: (\S+) to (\S+)$/.exec(refused.body.error.message);
  assert.ok(named, refused.body.error.message);
  assert.ok(Math.abs(Date.parse(named[1]!) - start.getTime()) < 60_000 && Date.parse(named[2]!) > start.getTime());

  const at = new Date(Date.now() - 2 * DAY).toISOString();
  const started = await api.post(`/accounts/${acc.id}/restore`, { pointInTime: at, targetName: 'app-sql-restored', targetResourceGroup: 'rg-app', databases: [{ name: 'orders', collections: ['items'] }] });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  assert.equal(started.body.type, 'restore');
  const s = await waitSession(started.body.id);
  assert.equal(s.state, 'success', JSON.stringify(s.log));
  const restored = sim.state.findAccount('app-sql-restored');
  assert.equal(restored.provisioningState, 'Succeeded');
  assert.equal(restored.publicNetworkAccess, 'Disabled');
  assert.equal(restored.restoreParameters!.restoreWithTtlDisabled, true);
  assert.match(String(restored.restoreParameters!.restoreSource), new RegExp(`/restorableDatabaseAccounts/${acc.instanceId}$`));
  assert.deepEqual(restored.databases.map((d) => [d.name, d.collections.map((c) => c.name)]), [['orders', ['items']]]);
});

test('a deleted account is restored from its own instance when another deleted account had the same name', async () => {
  const shops = await accounts('?search=shop&softDeleted=true');
  assert.equal(shops.length, 2);
  const older = shops.find((s) => sim.state.deletedAccounts.find((d) => d.instanceId === s.instanceId)!.createdAt.getTime() < Date.now() - 15 * DAY)!;
  const other = shops.find((s) => s !== older)!;
  // the record a configuration session wrote while the older instance was protected
  await insertRestorePoint(ctl.db, { policyId: null, sessionId: null, accountId: older.armId, accountName: 'shop', kind: 'continuous', createdAt: new Date(Date.now() - 5 * DAY), continuousTier: 30, windowStart: new Date(Date.now() - 19 * DAY), windowEnd: new Date(Date.now() - 5 * DAY) } as any);
  const started = await api.post(`/accounts/${older.id}/restore`, { pointInTime: new Date(Date.now() - 12 * DAY).toISOString(), targetName: 'shop-recovered', targetResourceGroup: 'rg-old' });
  assert.equal(started.status, 202, JSON.stringify(started.body));
  const s = await waitSession(started.body.id);
  assert.equal(s.state, 'success', JSON.stringify(s.log));
  const source = String(sim.state.findAccount('shop-recovered').restoreParameters!.restoreSource);
  assert.ok(source.endsWith(`/${older.instanceId}`));
  assert.ok(!source.includes(other.instanceId));
});

test('a deleted database, then a deleted container, come back into the same account', async () => {
  const acc = (await accounts('?search=app-sql'))[0]!;
  const before = new Date(Date.now() - 60_000).toISOString();
  sim.dropDatabase('app-sql', 'orders');
  const early = await api.post(`/accounts/${acc.id}/restore-deleted`, { pointInTime: new Date(Date.now() - 30 * DAY).toISOString(), database: 'orders' });
  assert.equal(early.status, 400);
  assert.match(early.body.error.message, /outside the restore window of app-sql/);
  const r = await api.post(`/accounts/${acc.id}/restore-deleted`, { pointInTime: before, database: 'orders' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal((await waitSession(r.body.id)).state, 'success');
  const live = () => sim.state.findAccount('app-sql').databases.filter((d) => !d.deletedAt).map((d) => [d.name, d.collections.filter((c) => !c.deletedAt).map((c) => c.name)]);
  assert.deepEqual(live(), [['orders', ['items', 'audit']]]);
  const db = sim.state.findAccount('app-sql').databases.find((d) => !d.deletedAt)!;
  db.collections.find((c) => c.name === 'audit')!.deletedAt = new Date();
  const c = await api.post(`/accounts/${acc.id}/restore-deleted`, { pointInTime: before, database: 'orders', collection: 'audit' });
  const s = await waitSession(c.body.id);
  assert.equal(s.state, 'success', JSON.stringify(s.log));
  assert.deepEqual(live(), [['orders', ['items', 'audit']]]);
  const restorePut = sim.requests.filter((q) => q.method === 'PUT' && /\/containers\/audit$/.test(q.path)).at(-1)!;
  assert.equal(restorePut.body.properties.resource.createMode, 'Restore');
  assert.ok(String(restorePut.body.properties.resource.restoreParameters.restoreSource).endsWith(`/${acc.instanceId}`));
  const again = await waitSession((await api.post(`/accounts/${acc.id}/restore-deleted`, { pointInTime: before, database: 'orders' })).body.id);
  assert.equal(again.state, 'failed');
  assert.match(again.error, /Database orders exists; only a deleted database can be restored/);
});

test('throttling on 20% of ARM calls changes no outcome', async () => {
  // drift back to 30 days, then the same configuration session under throttling
  for (const n of ['app-sql', 'tagged-graph']) (sim.state.findAccount(n).backup as { tier: string }).tier = 'Continuous30Days';
  sim.setFaults({ throttleRate: 0.2, retryAfterSeconds: 1, retryAfterMs: 5 });
  const before = sim.requests.length;
  try {
    const scan = await api.post('/accounts/rescan', { serviceAccountId: saId });
    assert.equal(scan.body[0].error, null);
    const s = await waitSession((await api.post(`/policies/${scopedPolicy}/run`, { type: 'configuration' })).body.id);
    const states = Object.fromEntries(s.accounts.map((a: { accountName: string; state: string }) => [a.accountName, a.state]));
    // the account restored earlier landed in rg-app, so it is in scope now (restored at the policy's tier)
    assert.deepEqual(states, { 'app-sql': 'warning', 'app-mongo': 'success', 'app-periodic': 'failed', 'tagged-graph': 'warning', 'legacy-cass': 'warning', 'app-sql-restored': 'success' });
    const patches = sim.requests.slice(before).filter((r) => r.method === 'PATCH' && r.status === 200);
    assert.equal(patches.length, 2);
    for (const p of patches) assert.deepEqual(p.body, TIER7);
    assert.ok(sim.requests.slice(before).filter((r) => r.status === 429).length > 0, 'throttling happened');
  } finally {
    sim.clearFaults();
  }
});

test('a policy that allows migration moves its periodic account to continuous backup', async () => {
  assert.equal((await api.get(`/policies/${scopedPolicy}`)).body.allowMigration, false, 'off by default');
  assert.deepEqual((await api.get(`/policies/${scopedPolicy}/continuous-backup`)).body, { allowMigration: false });
  // the policy field and the continuous-backup route read and write the same setting
  assert.deepEqual((await api.put(`/policies/${scopedPolicy}/continuous-backup`, { allowMigration: true })).body, { allowMigration: true });
  assert.equal((await api.get(`/policies/${scopedPolicy}`)).body.allowMigration, true);
  assert.equal((await api.patch(`/policies/${scopedPolicy}`, { allowMigration: false })).body.allowMigration, false);
  assert.deepEqual((await api.get(`/policies/${scopedPolicy}/continuous-backup`)).body, { allowMigration: false });
  assert.equal((await api.patch(`/policies/${scopedPolicy}`, { allowMigration: true })).body.allowMigration, true);
  const before = sim.requests.length;
  const s = await waitSession((await api.post(`/policies/${scopedPolicy}/run`, { type: 'configuration' })).body.id);
  const periodic = s.accounts.find((a: { accountName: string }) => a.accountName === 'app-periodic');
  assert.equal(periodic.state, 'warning');
  assert.ok(s.log.some((l: { message: string }) => /app-periodic: continuous backup tier was not continuous, set to 7 days/.test(l.message)));
  const patches = sim.requests.slice(before).filter((r) => r.method === 'PATCH');
  assert.deepEqual(patches.map((p) => [p.path.split('/').at(-1), p.body]), [['app-periodic', TIER7]]);
  assert.deepEqual(sim.state.findAccount('app-periodic').backup, { type: 'Continuous', tier: 'Continuous7Days' });
});

test('a Cosmos DB for PostgreSQL cluster in scope: configuration skips it with a result, never asking the DocumentDB API', async () => {
  const pg = (await accounts('?search=pg-orders'))[0]!;
  const stage = (await accounts('?search=stage-sql'))[0]!;
  const id = await policy('clusters', { accounts: [pg.armId, stage.armId] });
  const before = sim.requests.length;
  const s = await waitSession((await api.post(`/policies/${id}/run`, { type: 'configuration' })).body.id);
  assert.equal(s.state, 'success', JSON.stringify(s));
  const byName = Object.fromEntries(s.accounts.map((a: { accountName: string }) => [a.accountName, a]));
  assert.deepEqual(Object.keys(byName).sort(), ['pg-orders', 'stage-sql']);
  assert.equal(byName['pg-orders'].state, 'success');
  assert.match(byName['pg-orders'].message, /^continuous backup does not apply to Cosmos DB for PostgreSQL clusters .*protected by backups to a repository$/);
  assert.equal(byName['pg-orders'].restorePointId, undefined, 'no continuous restore point for a cluster');
  assert.ok(s.log.some((l: { level: string; message: string }) => l.level === 'info' && /^pg-orders: continuous backup does not apply/.test(l.message)));
  const calls = sim.requests.slice(before);
  assert.ok(calls.some((r) => /Microsoft\.DocumentDB\/databaseAccounts\/stage-sql$/i.test(r.path)), 'the account beside it is still processed');
  assert.deepEqual(calls.filter((r) => /Microsoft\.DocumentDB/i.test(r.path) && /pg-orders/i.test(r.path)).map((r) => r.path), [], 'no DocumentDB call about the cluster');
  assert.equal(calls.filter((r) => r.status === 404).length, 0);
  // the gateway refuses it too, before any request
  const creds = { id: saId, tenantId: T, auth: 'secret' as const, clientId: ADMIN, clientSecret: 'admin-secret', subscriptions: [] };
  const n = sim.requests.length;
  await assert.rejects(cloud.ensureContinuousBackup(creds, { id: pg.armId, name: 'pg-orders', subscriptionId: S2, resourceGroup: 'rg-stage', region: 'northeurope', kind: 'PostgreSQL', tags: {} }, 7),
    /pg-orders: continuous backup does not apply/);
  assert.equal(sim.requests.length, n);
  await api.del(`/policies/${id}`);
});

test('a deleted Gremlin database, then a deleted graph, then a deleted table come back into the same account', async () => {
  const old = new Date(Date.now() - 2 * DAY);
  const rid = () => Math.random().toString(36).slice(2, 10);
  const seed = (account: string, db: string, colls: string[]) => sim.state.findAccount(account).databases.push({ name: db, rid: rid(), createdAt: old, collections: colls.map((name) => ({ name, rid: rid(), createdAt: old })) });
  seed('tagged-graph', 'social', ['follows', 'likes']);
  seed('untagged-table', 'tables', ['sessions', 'carts']);
  const live = (n: string) => sim.state.findAccount(n).databases.filter((d) => !d.deletedAt).map((d) => [d.name, d.collections.filter((c) => !c.deletedAt).map((c) => c.name).sort()]);
  const graph = (await accounts('?search=tagged-graph'))[0]!;
  const before = new Date(Date.now() - 60_000).toISOString();
  // graphs offered by name (restorableGremlinResources' graphNames)
  assert.deepEqual((await api.get(`/accounts/${graph.id}/restorable-databases?pointInTime=${before}`)).body, [{ name: 'social', collections: ['follows', 'likes'] }]);

  sim.dropDatabase('tagged-graph', 'social');
  const db = await waitSession((await api.post(`/accounts/${graph.id}/restore-deleted`, { pointInTime: before, database: 'social' })).body.id);
  assert.equal(db.state, 'success', JSON.stringify(db.log));
  assert.deepEqual(live('tagged-graph'), [['social', ['follows', 'likes']]]);
  sim.dropCollection('tagged-graph', 'social', 'likes');
  const g = await waitSession((await api.post(`/accounts/${graph.id}/restore-deleted`, { pointInTime: before, database: 'social', collection: 'likes' })).body.id);
  assert.equal(g.state, 'success', JSON.stringify(g.log));
  assert.deepEqual(live('tagged-graph'), [['social', ['follows', 'likes']]]);
  const dbPut = sim.requests.filter((q) => q.method === 'PUT' && /\/gremlinDatabases\/social$/.test(q.path)).at(-1)!;
  const graphPut = sim.requests.filter((q) => q.method === 'PUT' && /\/gremlinDatabases\/social\/graphs\/likes$/.test(q.path)).at(-1)!;
  for (const put of [dbPut, graphPut]) {
    assert.equal(put.body.properties.resource.createMode, 'Restore');
    assert.ok(String(put.body.properties.resource.restoreParameters.restoreSource).endsWith(`/restorableDatabaseAccounts/${graph.instanceId}`));
    assert.equal(Date.parse(put.body.properties.resource.restoreParameters.restoreTimestampInUtc), Date.parse(before));
  }

  // the Table account has had no configuration session: the record one would have written
  const table = (await accounts('?search=untagged-table'))[0]!;
  await insertRestorePoint(ctl.db, { policyId: null, sessionId: null, accountId: table.armId, accountName: 'untagged-table', kind: 'continuous', createdAt: new Date(Date.now() - DAY), continuousTier: 30, windowStart: new Date(Date.now() - 20 * DAY), windowEnd: new Date(Date.now() - DAY) } as any);
  assert.deepEqual((await api.get(`/accounts/${table.id}/restorable-databases?pointInTime=${before}`)).body, [{ name: '(tables)', collections: ['sessions', 'carts'] }]);
  sim.dropCollection('untagged-table', null, 'carts');
  const t = await waitSession((await api.post(`/accounts/${table.id}/restore-deleted`, { pointInTime: before, database: 'carts' })).body.id);
  assert.equal(t.state, 'success', JSON.stringify(t.log));
  assert.deepEqual(live('untagged-table'), [['tables', ['carts', 'sessions']]]);
  const tablePut = sim.requests.filter((q) => q.method === 'PUT' && /\/tables\/carts$/.test(q.path)).at(-1)!;
  assert.equal(tablePut.body.properties.resource.createMode, 'Restore');
  assert.ok(String(tablePut.body.properties.resource.restoreParameters.restoreSource).endsWith(`/restorableDatabaseAccounts/${table.instanceId}`));
  // the same table named as restorable-databases lists it; it exists now, so Azure refuses
  const again = await waitSession((await api.post(`/accounts/${table.id}/restore-deleted`, { pointInTime: before, database: '(tables)', collection: 'carts' })).body.id);
  assert.equal(again.state, 'failed');
  assert.match(again.error, /Collection carts exists; only a deleted collection can be restored/);
  const wrong = await api.post(`/accounts/${table.id}/restore-deleted`, { pointInTime: before, database: 'tables', collection: 'carts' });
  assert.equal(wrong.status, 400);
  assert.match(wrong.body.error.message, /a Table account has no databases/);
  // Cassandra still has no in-account restore
  const cass = (await accounts('?search=legacy-cass'))[0]!;
  const c = await api.post(`/accounts/${cass.id}/restore-deleted`, { pointInTime: before, database: 'ks' });
  assert.ok(c.status === 400 || c.status === 409, JSON.stringify(c.body));
  assert.match(c.body.error.message, /legacy-cass: Cassandra accounts/);
});
