// The ARM simulator, spoken to by the real @azure/identity, @azure/arm-cosmosdb and
// @azure/arm-resources clients: what the controller relies on behaves as Azure documents.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { CosmosDBManagementClient } from '@azure/arm-cosmosdb';
import { ResourceManagementClient } from '@azure/arm-resources';
import { startArmSimulator, simClientOptions, simCredential, type ArmSimulator } from '../support/arm-simulator/index.ts';

const T = '0b6c7a3e-1111-4c4c-9a9a-000000000001';
const S = '5d1f0c2a-2222-4d4d-8b8b-000000000001';
const S2 = '5d1f0c2a-2222-4d4d-8b8b-000000000002';
const C = '7e2d1b4f-3333-4e4e-8c8c-000000000001';
const poll = { updateIntervalInMs: 5 };
let sim: ArmSimulator;
let cosmos: CosmosDBManagementClient;
let resources: ResourceManagementClient;

before(async () => {
  sim = await startArmSimulator();
  sim.setLroPolls(2, 3);
  sim.addSubscription(S, 'prod', T);
  sim.addSubscription(S2, 'dev', T);
  sim.addPrincipal({ tenantId: T, clientId: C, secret: 'right-secret' });
  for (const [name, api] of [['sql1', 'Sql'], ['mongo1', 'MongoDB'], ['table1', 'Table'], ['gremlin1', 'Gremlin'], ['cass1', 'Cassandra']] as const) {
    sim.addAccount({ subscriptionId: S, resourceGroup: 'rg-a', name, api, backup: api === 'Cassandra' ? 'Periodic' : 'Continuous30Days', tags: { env: 'prod' }, databases: [{ name: 'db1', collections: ['c1', 'c2'] }] });
  }
  sim.addAccount({ subscriptionId: S, resourceGroup: 'rg-b', name: 'periodic1', backup: 'Periodic' });
  for (const rg of ['rg-c', 'rg-d', 'rg-e']) sim.state.ensureResourceGroup(S, rg);
  sim.addCluster({ subscriptionId: S, resourceGroup: 'rg-pg', name: 'pg1', workers: 2 });
  const cred = simCredential(sim, T, C, 'right-secret');
  cosmos = new CosmosDBManagementClient(cred, S, simClientOptions(sim));
  resources = new ResourceManagementClient(cred, S, simClientOptions(sim));
});
after(async () => { await sim.stop(); });

test('identity: the real ClientSecretCredential gets a token; a wrong secret is Entra\'s AADSTS7000215', async () => {
  const ok = await simCredential(sim, T, C, 'right-secret').getToken(`${sim.url}/.default`);
  assert.match(ok!.token, /^sim\./);
  await assert.rejects(simCredential(sim, T, C, 'wrong').getToken(`${sim.url}/.default`), (e: Error) => {
    assert.equal(e.name, 'AuthenticationRequiredError');
    assert.match(e.message, /AADSTS7000215: Invalid client secret/);
    return true;
  });
});

test('accounts of every API kind, with kind, capabilities and backup policy', async () => {
  const all = [];
  for await (const a of cosmos.databaseAccounts.list()) all.push(a);
  const by = new Map(all.map((a) => [a.name, a]));
  assert.equal(by.get('mongo1')!.kind, 'MongoDB');
  assert.deepEqual(by.get('cass1')!.capabilities, [{ name: 'EnableCassandra' }]);
  assert.deepEqual(by.get('gremlin1')!.capabilities, [{ name: 'EnableGremlin' }]);
  assert.equal(by.get('sql1')!.backupPolicy!.type, 'Continuous');
  assert.equal(by.get('periodic1')!.backupPolicy!.type, 'Periodic');
  assert.ok(by.get('sql1')!.instanceId);
  const inRg = [];
  for await (const a of cosmos.databaseAccounts.listByResourceGroup('rg-b')) inRg.push(a.name);
  assert.deepEqual(inRg, ['periodic1']);
  await assert.rejects(cosmos.databaseAccounts.get('rg-a', 'nope'), (e: { statusCode?: number; code?: string }) => e.statusCode === 404 && e.code === 'ResourceNotFound');
});

test('paging: resource groups come in pages joined by absolute nextLinks', async () => {
  const names = [];
  for await (const g of resources.resourceGroups.list()) names.push(g.name);
  assert.deepEqual(names.sort(), ['rg-a', 'rg-b', 'rg-c', 'rg-d', 'rg-e', 'rg-pg']);
  const pages = sim.armRequests({ method: 'GET' }).filter((r) => /\/resourcegroups$/i.test(r.path));
  assert.ok(pages.length >= 3, `expected several pages, got ${pages.length}`);
});

test('migration Periodic -> Continuous takes several polls and blocks backup-policy changes meanwhile', async () => {
  const poller = await cosmos.databaseAccounts.beginUpdate('rg-b', 'periodic1', { backupPolicy: { type: 'Continuous', continuousModeProperties: { tier: 'Continuous7Days' } } as any }, poll);
  const during = await cosmos.databaseAccounts.get('rg-b', 'periodic1');
  assert.equal((during.backupPolicy as any).migrationState.status, 'InProgress');
  await assert.rejects(cosmos.databaseAccounts.beginUpdateAndWait('rg-b', 'periodic1', { backupPolicy: { type: 'Continuous', continuousModeProperties: { tier: 'Continuous30Days' } } as any }, poll),
    (e: { statusCode?: number; message: string }) => e.statusCode === 400 && /migration is in progress/.test(e.message));
  const done = await poller.pollUntilDone();
  assert.equal(done.backupPolicy!.type, 'Continuous');
  assert.equal((done.backupPolicy as any).continuousModeProperties.tier, 'Continuous7Days');
  const polls = sim.armRequests({ method: 'GET', pathIncludes: '/operationsStatus/' });
  assert.ok(polls.length >= 3);
});

test('refusals: tier with other properties, Cassandra continuous, Continuous back to Periodic', async () => {
  const tier = { type: 'Continuous', continuousModeProperties: { tier: 'Continuous7Days' } } as any;
  await assert.rejects(cosmos.databaseAccounts.beginUpdateAndWait('rg-a', 'sql1', { tags: { x: 'y' }, backupPolicy: tier }, poll),
    (e: Error) => /Cannot update Continuous Mode Tier and other properties at the same time/.test(e.message));
  await assert.rejects(cosmos.databaseAccounts.beginUpdateAndWait('rg-a', 'cass1', { backupPolicy: tier }, poll), (e: Error) => /not supported for Cassandra/.test(e.message));
  await assert.rejects(cosmos.databaseAccounts.beginUpdateAndWait('rg-a', 'sql1', { backupPolicy: { type: 'Periodic' } as any }, poll), (e: Error) => /Continuous to Periodic/.test(e.message));
  const r = await cosmos.databaseAccounts.beginUpdateAndWait('rg-a', 'sql1', { backupPolicy: tier }, poll);
  assert.equal((r.backupPolicy as any).continuousModeProperties.tier, 'Continuous7Days');
});

test('listConnectionStrings points at a stand-in when told to; listKeys returns keys', async () => {
  sim.setMongoConnectionString('mongo1', 'mongodb://u:p@127.0.0.1:27999/?tls=false');
  const cs = await cosmos.databaseAccounts.listConnectionStrings('rg-a', 'mongo1');
  assert.equal(cs.connectionStrings![0]!.connectionString, 'mongodb://u:p@127.0.0.1:27999/?tls=false');
  const keys = await cosmos.databaseAccounts.listKeys('rg-a', 'sql1');
  assert.ok(keys.primaryMasterKey && keys.secondaryMasterKey && keys.primaryMasterKey !== keys.secondaryMasterKey);
});

test('restorable accounts, their databases, and a restore PUT that initializes then succeeds', async () => {
  const rs = [];
  for await (const r of cosmos.restorableDatabaseAccounts.list()) rs.push(r);
  const src = rs.find((r) => r.accountName === 'mongo1')!;
  assert.equal(src.apiType, 'MongoDB');
  assert.ok(src.oldestRestorableTime! < new Date());
  const loc = src.location!;
  const res = [];
  for await (const r of cosmos.restorableMongodbResources.list(loc, src.name!, { restoreLocation: loc, restoreTimestampInUtc: new Date().toISOString() })) res.push(r);
  assert.deepEqual(res.map((r) => [r.databaseName, r.collectionNames]), [['db1', ['c1', 'c2']]]);
  const dbs = [];
  for await (const d of cosmos.restorableMongodbDatabases.list(loc, src.name!)) dbs.push(d.resource!.ownerId);
  assert.deepEqual(dbs, ['db1']);
  const body = (ts: Date) => ({
    location: loc, kind: 'MongoDB' as const, databaseAccountOfferType: 'Standard' as const, locations: [{ locationName: loc, failoverPriority: 0 }],
    createMode: 'Restore' as const, apiProperties: { serverVersion: '4.2' as const },
    restoreParameters: { restoreMode: 'PointInTime' as const, restoreSource: src.id!, restoreTimestampInUtc: ts, databasesToRestore: [{ databaseName: 'db1', collectionNames: ['c2'] }] },
  });
  await resources.resourceGroups.createOrUpdate('rg-r', { location: loc });
  await assert.rejects(cosmos.databaseAccounts.beginCreateOrUpdateAndWait('rg-r', 'too-early', body(new Date(src.oldestRestorableTime!.getTime() - 60_000)), poll),
    (e: { statusCode?: number; message: string }) => e.statusCode === 400 && /restorable from/.test(e.message));
  const poller = await cosmos.databaseAccounts.beginCreateOrUpdate('rg-r', 'restored1', body(new Date(Date.now() - 3600_000)), poll);
  assert.equal((await cosmos.databaseAccounts.get('rg-r', 'restored1')).provisioningState, 'Initializing');
  const acc = await poller.pollUntilDone();
  assert.equal(acc.provisioningState, 'Succeeded');
  assert.deepEqual(sim.state.findAccount('restored1').databases.map((d) => [d.name, d.collections.map((c) => c.name)]), [['db1', ['c2']]]);
});

test('PostgreSQL clusters through generic resources, with the coordinator FQDN pointable at a local server', async () => {
  sim.pointCoordinator('pg1', '127.0.0.1', 6543);
  const found = [];
  for await (const r of resources.resources.list({ filter: "resourceType eq 'Microsoft.DBforPostgreSQL/serverGroupsv2'" })) found.push(r);
  assert.deepEqual(found.map((r) => r.name), ['pg1']);
  const full = await resources.resources.getById(found[0]!.id!, '2022-11-08');
  const names = (full.properties as any).serverNames as { name: string; fullyQualifiedDomainName: string }[];
  assert.deepEqual(names.map((n) => n.name), ['pg1-c', 'pg1-w0', 'pg1-w1']);
  assert.equal(names[0]!.fullyQualifiedDomainName, '127.0.0.1:6543');
});

test('429 with Retry-After is retried by the SDK; a failed long-running operation surfaces as core-lro\'s error', async () => {
  const before = sim.requests.length;
  sim.setFaults({ throttleNext: 2, retryAfterSeconds: 0, retryAfterMs: 5 });
  const a = await cosmos.databaseAccounts.get('rg-a', 'table1');
  assert.equal(a.name, 'table1');
  assert.deepEqual(sim.requests.slice(before).map((r) => r.status), [429, 429, 200]);
  sim.setFaults({ failNextLro: 1 });
  await assert.rejects(cosmos.databaseAccounts.beginUpdateAndWait('rg-a', 'gremlin1', { backupPolicy: { type: 'Continuous', continuousModeProperties: { tier: 'Continuous7Days' } } as any }, poll),
    /long-running operation has failed/);
  assert.equal((await cosmos.databaseAccounts.get('rg-a', 'gremlin1')).provisioningState, 'Succeeded');
  sim.clearFaults();
});
