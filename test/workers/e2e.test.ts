// Workers end to end, through the controller's API only: a policy's session launches a worker VM
// in the ARM simulator (its Run Command really downloads the built agent by SAS, checks the MD5
// and starts it), the worker backs up a PostgreSQL cluster (the harness server) and a MongoDB
// account (the stand-in) over the queue protocol, restore points carry their flags, restores
// into new databases match, and VMs, NICs, disks and queues are gone afterwards. Also: private
// network deployment, a corrupted agent binary, a VM crashed mid-backup, policy priority,
// archive copying only missing chunks into the Archive access tier and the rehydration before a
// restore from it, restores of a subset, exports with a short-lived download link, notification
// mails, and a scan for secrets everywhere.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import pg from 'pg';
import { MongoClient } from 'mongodb';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import { startController, type Controller } from '../../controller/start.ts';
import { AzureCloudGateway } from '../../controller/azure/gateway.ts';
import { StorageRepositories } from '../../controller/sessions/storage-repositories.ts';
import { unwiredGateways } from '../../controller/sessions/unwired.ts';
import { loadWorkerSettings } from '../../controller/workers/settings.ts';
import { AGENT_CONTAINER, loadAgentBinary } from '../../controller/workers/agent-binary.ts';
import { infraClients } from '../../controller/workers/azure-infra.ts';
import type { AzureSettings } from '../../controller/azure/settings.ts';
import { buildAgent } from '../../scripts/build-agent.ts';
import { openStore } from '../../shared/storage/open.ts';
import { Repository } from '../../shared/repository/repository.ts';
import { verifyRepository } from '../../shared/repository/verify.ts';
import { startArmSimulator, simCredential, type ArmSimulator } from '../support/arm-simulator/index.ts';
import { useAzurite, type AzuriteServer } from '../support/azurite.ts';
import { usePostgres, createTestDatabase, type PostgresServer } from '../support/postgres.ts';
import { startMongoServer } from '../support/mongo-server/index.ts';
import { client, tempDir, testConfig } from '../controller/support/controller.ts';
import { psqlFile } from '../postgres-schema/helpers.ts';
import { sleep, until } from '../support/until.ts';

const T = randomUUID();
const S = randomUUID();
const C = randomUUID();
const SECRET = `sa-secret-${randomBytes(12).toString('hex')}`;
const REPO_PW = `repo-pw-${randomBytes(12).toString('hex')}`;
const REGION = 'westeurope';
const REPO_REGION = 'northeurope';

let sim: ArmSimulator;
let az: AzuriteServer;
let pgs: PostgresServer;
let mongo: Awaited<ReturnType<typeof startMongoServer>>;
let ctl: Controller;
let api: ReturnType<typeof client>;
let smtp: SMTPServer;
const mails: ParsedMail[] = [];
const controllerLog: string[] = [];
const apiTexts: string[] = [];
let sourceDb: string;
let pgId: string;
let mongoId: string;
let saId: string;
let repoId: string;
let archiveRepoId: string;
let repoContainer: string;
let mongoPassword: string;
let cloudSettings: AzureSettings;


function settingsBody() {
  const port = (smtp.server.address() as AddressInfo).port;
  return {
    sessionRetentionDays: 30,
    email: { smtp: { host: '127.0.0.1', port, secure: false }, from: 'backup@example.com', to: ['ops@example.com'], notifyOnSuccess: true, notifyOnWarning: true, notifyOnFailure: true },
  };
}

/** API calls whose responses are kept for the secret scan. */
function call() {
  const wrap = <A extends unknown[]>(f: (...a: A) => Promise<{ status: number; body: any }>) => async (...a: A) => {
    const r = await f(...a);
    apiTexts.push(JSON.stringify(r.body));
    return r;
  };
  return { get: wrap(api.get), post: wrap(api.post), put: wrap(api.put), patch: wrap(api.patch) };
}

async function session(id: string): Promise<any> {
  return until(`session ${id} to end`, async () => {
    const s = (await call().get(`/sessions/${id}`)).body;
    return s.state !== 'running' ? s : undefined;
  }, 300_000);
}

async function runPolicy(policyId: string, type?: string): Promise<any> {
  const r = await call().post(`/policies/${policyId}/run`, type ? { type } : undefined);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return session(r.body.id);
}

async function tableHashes(db: string, tables = ['customers', 'orders']): Promise<Record<string, string>> {
  const c = new pg.Client({ connectionString: pgs.url(db) });
  await c.connect();
  try {
    const out: Record<string, string> = {};
    for (const t of tables) {
      out[t] = (await c.query(`SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') AS h FROM ${t} x`)).rows[0].h;
    }
    return out;
  } finally { await c.end(); }
}

async function mongoHashes(db: string, colls = ['products', 'reviews']): Promise<Record<string, string>> {
  const m = new MongoClient(mongo.url(db));
  await m.connect();
  try {
    const out: Record<string, string> = {};
    for (const coll of colls) {
      const docs = await m.db(db).collection(coll).find({}).sort({ _id: 1 }).toArray();
      out[coll] = `${docs.length}:${createHash('sha256').update(JSON.stringify(docs)).digest('hex')}`;
    }
    return out;
  } finally { await m.close(); }
}

/** Tables of the public schema of a database. */
async function pgTables(db: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: pgs.url(db) });
  await c.connect();
  try {
    return (await c.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)).rows.map((r) => r.table_name);
  } finally { await c.end(); }
}

/** Tier of every data pack of a repository container. */
async function packTiers(container: string): Promise<string[]> {
  const cc = new BlobServiceClient(az.blobEndpoint, new StorageSharedKeyCredential(az.account, az.accountKey)).getContainerClient(container);
  const tiers: string[] = [];
  for await (const b of cc.listBlobsFlat({ prefix: 'data/' })) tiers.push(String(b.properties.accessTier));
  return tiers;
}

const ofType = (t: string) => [...sim.infra.resources.values()].filter((r) => r.type === t);
const vms = () => ofType('Microsoft.Compute/virtualMachines');

async function workerQueues(): Promise<string[]> {
  const qs = QueueServiceClient.fromConnectionString(az.connectionString);
  const names: string[] = [];
  for await (const q of qs.listQueues({ prefix: 'cb-w-' })) names.push(q.name);
  return names;
}

before(async () => {
  await buildAgent({ log: () => {} });
  [az, pgs] = await Promise.all([useAzurite(), usePostgres()]);
  sim = await startArmSimulator({ azurite: { blobEndpoint: az.blobEndpoint, queueEndpoint: az.queueEndpoint, accountKey: az.accountKey } });
  sim.setLroPolls(1);
  sim.addSubscription(S, 'prod', T);
  sim.addPrincipal({ tenantId: T, clientId: C, secret: SECRET });
  sim.addCluster({ subscriptionId: S, resourceGroup: 'rg-data', name: 'shop-pg', location: REGION, tags: { app: 'shop' } });
  sim.addAccount({ subscriptionId: S, resourceGroup: 'rg-data', name: 'shop-mongo', api: 'MongoDB', location: REGION, tags: { app: 'shop' }, databases: [{ name: 'catalog', collections: ['products'] }] });
  sim.pointCoordinator('shop-pg', pgs.host, pgs.port);
  mongo = await startMongoServer({ auth: true });
  mongoPassword = mongo.password!;
  sim.setMongoConnectionString('shop-mongo', mongo.url('admin'));

  sourceDb = await createTestDatabase(pgs, 'e2e');
  const c = new pg.Client({ connectionString: pgs.url(sourceDb) });
  await c.connect();
  await c.query(`CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text)`);
  await c.query(`INSERT INTO customers SELECT g, 'customer ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'c' || g || '@example.com' END FROM generate_series(1, 2000) g`);
  await c.query(`CREATE TABLE orders (id bigint PRIMARY KEY, customer int REFERENCES customers, total numeric(12,2), note text)`);
  await c.query(`INSERT INTO orders SELECT g, 1 + g % 2000, (g % 1000) * 1.25, md5(g::text) || md5((g * 3)::text) FROM generate_series(1, 150000) g`);
  await c.end();
  const m = new MongoClient(mongo.url('catalog'));
  await m.connect();
  await m.db('catalog').collection<{ _id: number }>('products').insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: i, name: `product ${i}`, price: i * 1.5, tags: ['a', `t${i % 9}`] })));
  await m.db('catalog').collection<{ _id: string }>('reviews').insertMany(Array.from({ length: 300 }, (_, i) => ({ _id: `r${i}`, product: i % 500, stars: 1 + (i % 5), text: 'x'.repeat(i % 50) })));
  await m.close();

  smtp = new SMTPServer({ disabledCommands: ['STARTTLS'], authOptional: true, logger: false, onData(stream, _s, cb) { simpleParser(stream).then((p) => { mails.push(p); cb(); }, cb); } });
  await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', r));

  cloudSettings = { armEndpoint: sim.url, authorityHost: sim.url, caBundle: sim.caCert, pollIntervalMs: 5, maxRetries: 8, allowMigration: false };
  const cloud = new AzureCloudGateway(cloudSettings);
  const settings = loadWorkerSettings({
    COSMOS_BACKUP_WORKER_IDLE_SECONDS: '8', COSMOS_BACKUP_WORKER_LOST_SECONDS: '6', COSMOS_BACKUP_WORKER_HEARTBEAT_SECONDS: '1',
    COSMOS_BACKUP_WORKER_HELLO_SECONDS: '120', COSMOS_BACKUP_WORKER_RESOURCE_GROUP: 'rg-cb-workers',
  });
  const logger = { info: (m: string, meta?: object) => { controllerLog.push(`${m} ${JSON.stringify(meta ?? {})}`); }, error: (m: string, meta?: object) => { controllerLog.push(`${m} ${JSON.stringify(meta ?? {})}`); } };
  ctl = await startController({
    config: testConfig(tempDir()), logger, azure: cloud,
    gateways: { ...unwiredGateways(), cloud, repositories: new StorageRepositories({ env: {} }) },
    workers: { settings, keepQueueTexts: true },
  });
  api = client(ctl.app, ctl.bootstrapToken);

  assert.equal((await call().put('/settings', settingsBody())).status, 200);
  const sa = await call().post('/service-accounts', { name: 'contoso', tenantId: T, auth: 'secret', clientId: C, clientSecret: SECRET });
  assert.equal(sa.status, 201, JSON.stringify(sa.body));
  saId = sa.body.id;
  repoContainer = `e2e-${randomBytes(4).toString('hex')}`;
  const repo = await call().post('/repositories', { name: 'main', storageAccount: az.account, container: repoContainer, folder: 'cosmos', password: REPO_PW, storageCredential: az.connectionString });
  assert.equal(repo.status, 201, JSON.stringify(repo.body));
  repoId = repo.body.id;
  const arch = await call().post('/repositories', { name: 'archive', storageAccount: az.account, container: `${repoContainer}-arch`, password: REPO_PW, storageCredential: az.connectionString, accessTier: 'Archive' });
  assert.equal(arch.status, 201, JSON.stringify(arch.body));
  archiveRepoId = arch.body.id;
  const accounts = (await call().post('/accounts/rescan')).body;
  assert.ok(accounts);
  const items = (await call().get('/accounts')).body;
  pgId = items.find((a: any) => a.name === 'shop-pg').armId;
  mongoId = items.find((a: any) => a.name === 'shop-mongo').armId;
});

after(async () => {
  await ctl?.close();
  await sim?.stop();
  await mongo?.stop();
  await new Promise<void>((r) => (smtp ? smtp.close(() => r()) : r()));
});

let policyId: string;

test('a policy session launches a worker VM that downloads the agent by SAS with MD5 checked, and backs up the cluster and the MongoDB account', async () => {
  const p = await call().post('/policies', {
    name: 'shop', priority: 1, serviceAccountId: saId, scope: { accounts: [pgId, mongoId] }, continuousTier: 7,
    backup: {
      repositoryId: repoId,
      schedules: { timeZone: 'UTC', daily: { hours: [2], keepDays: 7 }, weekly: { weekday: 'sun', hour: 2, keepWeeks: 4 } },
      credentials: [{ accountId: pgId, username: pgs.user, password: pgs.password, databases: [sourceDb], sslmode: 'disable' }],
    },
    archive: { repositoryId: archiveRepoId, schedule: { timeZone: 'UTC', weekly: { weekday: 'sun', hour: 4, keepWeeks: 8 } } },
    notifications: { onSuccess: true, onWarning: true, onFailure: true, recipients: [] },
  });
  assert.equal(p.status, 201, JSON.stringify(p.body));
  policyId = p.body.id;
  const s = await runPolicy(policyId);

  assert.equal(s.state, 'success', JSON.stringify(s));
  const byName = Object.fromEntries(s.accounts.map((a: any) => [a.accountName, a]));
  assert.equal(byName['shop-pg'].state, 'success');
  assert.equal(byName['shop-mongo'].state, 'success');
  assert.ok(byName['shop-pg'].bytesRead > 1_000_000, 'bytes read from the database are recorded');
  assert.ok(byName['shop-pg'].bytes > 0 && byName['shop-pg'].bytes < byName['shop-pg'].bytesRead, 'stored bytes are recorded (compressed)');
  assert.match(byName['shop-pg'].worker, /^cb-w-[0-9a-f]{10}$/);
  assert.equal(byName['shop-mongo'].worker, byName['shop-pg'].worker, 'the idle worker is reused by the next account of the region');

  // the VM: Ubuntu 22.04 Gen2, no public IP, started with the script that checks the MD5
  const vm = vms()[0]!;
  assert.equal(vm.properties.storageProfile.imageReference.sku, '22_04-lts-gen2');
  const run = sim.runCommandHistory(vm.name).find((r) => r.name === 'cosmos-backup-start')!;
  assert.equal(run.exitCode, 0, run.stderr);
  assert.match(run.script, /md5sum/);
  assert.match(run.script, /curl /);
  assert.deepEqual(run.protectedParameterNames.sort(), ['AGENT_URL', 'COSMOS_BACKUP_QUEUE_SAS', 'COSMOS_BACKUP_WORKER_KEY']);
  const agent = loadAgentBinary(loadWorkerSettings({}).agentDir);
  assert.equal(run.parameters.find((x) => x.name === 'AGENT_MD5')?.value, agent.manifest.md5.hex);
  assert.match(run.stdout, new RegExp(`agent md5 ${agent.manifest.md5.hex}`));
  const agentUrl = sim.armRequests({ method: 'PUT', pathIncludes: '/runCommands/' }).map((r) => r.body?.properties?.protectedParameters?.find((x: any) => x.name === 'AGENT_URL')?.value).find(Boolean)!;
  const sas = new URL(agentUrl).searchParams;
  assert.equal(sas.get('sp'), 'r', 'the agent SAS is read-only');
  assert.ok(new Date(sas.get('se')!).getTime() - Date.now() < 3_600_000, 'the agent SAS expires within the hour');
  // The queue SAS: one token per queue of this worker, each for only what the worker does there.
  const queueSas = JSON.parse(sim.armRequests({ method: 'PUT', pathIncludes: '/runCommands/' }).map((r) => r.body?.properties?.protectedParameters?.find((x: any) => x.name === 'COSMOS_BACKUP_QUEUE_SAS')?.value).find(Boolean)!) as Record<string, string>;
  const wid = (byName['shop-pg'].worker as string).replace(/^cb-/, ''); // the VM is named cb-<worker id>
  assert.deepEqual(Object.keys(queueSas).sort(), [`cb-${wid}-cmd`, `cb-${wid}-cmd-poison`, `cb-${wid}-reply`]);
  assert.deepEqual(Object.fromEntries(Object.entries(queueSas).map(([q, t]) => [q, new URLSearchParams(t).get('sp')])),
    { [`cb-${wid}-cmd`]: 'up', [`cb-${wid}-reply`]: 'a', [`cb-${wid}-cmd-poison`]: 'a' });
  for (const t of Object.values(queueSas)) assert.equal(new URLSearchParams(t).get('srt'), null, 'a queue SAS, not an account SAS');
  const other = QueueServiceClient.fromConnectionString(az.connectionString).getQueueClient(`cb-other-${randomBytes(3).toString('hex')}`);
  await other.create();
  const status = (p: Promise<unknown>) => p.then(() => 200, (e: { statusCode?: number }) => e.statusCode);
  const sasClient = (queue: string, token: string) => new QueueServiceClient(`${az.queueEndpoint}?${token}`).getQueueClient(queue);
  assert.equal(await status(sasClient(other.name, queueSas[`cb-${wid}-cmd`]!).receiveMessages()), 403, 'a token does not open another queue');
  assert.equal(await status(sasClient(other.name, queueSas[`cb-${wid}-reply`]!).sendMessage('x')), 403, 'nor add to one');
  assert.equal(await status(new QueueServiceClient(`${az.queueEndpoint}?${queueSas[`cb-${wid}-reply`]!}`).listQueues().next()), 403, 'nor list the account\'s queues');
  await other.delete();
  // the uploaded blob carries the MD5 the service reports
  const blobs = new BlobServiceClient(az.blobEndpoint, new StorageSharedKeyCredential(az.account, az.accountKey)).getContainerClient(AGENT_CONTAINER);
  for await (const b of blobs.listBlobsFlat()) assert.equal(Buffer.from(b.properties.contentMD5!).toString('hex'), agent.manifest.md5.hex);

  // restore points with their flags
  const items = (await call().get(`/restore-points?policyId=${policyId}&kind=repository`)).body;
  assert.equal(items.length, 2);
  for (const pt of items) assert.deepEqual(pt.flags.map((f: any) => f.flag).sort(), ['D']);
  assert.deepEqual(items.map((x: any) => x.databaseName).sort(), ['catalog', sourceDb].sort());
});

test('restores into new databases match the sources; afterwards VMs, NICs, disks and queues are gone', async () => {
  const items = (await call().get(`/restore-points?policyId=${policyId}&kind=repository`)).body;
  const pgPoint = items.find((x: any) => x.accountName === 'shop-pg');
  const mongoPoint = items.find((x: any) => x.accountName === 'shop-mongo');
  const target = `${sourceDb}_restored`;
  const r1 = await call().post(`/restore-points/${pgPoint.id}/restore`, { databaseName: target });
  assert.equal(r1.status, 202, JSON.stringify(r1.body));
  const s1 = await session(r1.body.id);
  assert.equal(s1.state, 'success', JSON.stringify(s1));
  assert.equal(s1.accounts[0].counts['public.orders'], 150000, 'the fidelity check counts the rows on the target');
  assert.deepEqual(await tableHashes(target), await tableHashes(sourceDb));
  const r2 = await call().post(`/restore-points/${mongoPoint.id}/restore`, { databaseName: 'catalog_restored' });
  const s2 = await session(r2.body.id);
  assert.equal(s2.state, 'success', JSON.stringify(s2));
  assert.equal(s2.accounts[0].counts.products, 500);
  assert.deepEqual(await mongoHashes('catalog_restored'), await mongoHashes('catalog'));

  await until('idle workers to be deleted', () => vms().length === 0 && ctl.workers!.pool.list().length === 0, 60_000);
  assert.deepEqual(ofType('Microsoft.Network/networkInterfaces').filter((n) => n.name.startsWith('cb-w-')), []);
  assert.deepEqual(ofType('Microsoft.Compute/disks'), []);
  assert.deepEqual(await workerQueues(), []);
});

test('two policies on the same account: only the higher-priority one backs it up', async () => {
  const low = await call().post('/policies', {
    name: 'low-priority', priority: 5, serviceAccountId: saId, scope: { accounts: [pgId] }, continuousTier: 7,
    backup: { repositoryId: repoId, schedules: { timeZone: 'UTC', daily: { hours: [3], keepDays: 3 } }, credentials: [{ accountId: pgId, username: pgs.user, password: pgs.password, databases: [sourceDb], sslmode: 'disable' }] },
  });
  assert.equal(low.status, 201, JSON.stringify(low.body));
  const before = vms().length + sim.infra.retired.length;
  const s = await runPolicy(low.body.id);
  assert.equal(s.state, 'success');
  assert.deepEqual(s.accounts, []);
  assert.ok(s.log.some((l: any) => /skipped, processed by policy "shop" \(higher priority\)/.test(l.message)), JSON.stringify(s.log));
  assert.equal(vms().length + sim.infra.retired.length, before, 'no worker was launched');
  assert.equal((await call().get(`/restore-points?policyId=${low.body.id}`)).body.length, 0);
});

test('archive runs beside the source repository and copies only the chunks the archive lacks', async () => {
  // The repository's storage account (Azurite's) as ARM sees it: in another region than the databases.
  const infra = infraClients(simCredential(sim, T, C, SECRET), S, cloudSettings);
  await infra.storage.storageAccounts.create('rg-data', az.account, { location: REPO_REGION, sku: { name: 'Standard_LRS' }, kind: 'StorageV2' });
  const launchedBefore = new Set(sim.armRequests({ method: 'PUT' }).filter((r) => /virtualMachines\/[^/]+$/.test(r.path)).map((r) => r.path));
  const a1 = await runPolicy(policyId, 'archive');
  assert.equal(a1.state, 'success', JSON.stringify(a1));
  const archiveVms = sim.armRequests({ method: 'PUT' }).filter((r) => /virtualMachines\/[^/]+$/.test(r.path) && !launchedBefore.has(r.path));
  assert.ok(archiveVms.length >= 1 && archiveVms.every((r) => r.body.location === REPO_REGION), `archive workers run in ${REPO_REGION}: ${JSON.stringify(archiveVms.map((r) => r.body.location))}`);
  const first = a1.accounts.find((x: any) => x.accountName === 'shop-pg').bytes;
  assert.ok(first > 1_000_000, `first archive copies the data (${first})`);
  const b = await runPolicy(policyId);
  assert.equal(b.state, 'success', JSON.stringify(b));
  const a2 = await runPolicy(policyId, 'archive');
  assert.equal(a2.state, 'success', JSON.stringify(a2));
  const second = a2.accounts.find((x: any) => x.accountName === 'shop-pg').bytes;
  assert.ok(second < first * 0.05, `the second archive copies only what is new (${second} of ${first} bytes)`);
  // The MongoDB account now also holds the database restored above, so its backups include it.
  const archived = (await call().get(`/restore-points?policyId=${policyId}&kind=archive`)).body.filter((p: any) => p.databaseName !== 'catalog_restored');
  assert.equal(archived.length, 4, JSON.stringify(archived.map((p: any) => [p.accountName, p.databaseName, p.sessionId, p.createdAt])));
});

test('archive packs sit in the Archive tier; a restore from an archived point rehydrates them first, then they go back', async () => {
  const tiers = await packTiers(`${repoContainer}-arch`);
  assert.ok(tiers.length > 0 && tiers.every((t) => t === 'Archive'), `every archive pack is in the Archive tier: ${tiers.join(',')}`);
  const point = (await call().get(`/restore-points?policyId=${policyId}&kind=archive`)).body.find((p: any) => p.accountName === 'shop-pg');
  assert.equal(point.accessTier, 'Archive');
  const status = (await call().get(`/restore-points/${point.id}/retrieval`)).body;
  assert.equal(status.state, 'archived', JSON.stringify(status));
  assert.ok(status.archived > 0 && status.packs >= status.archived, JSON.stringify(status));
  const target = `${sourceDb}_from_archive`;
  const r = await call().post(`/restore-points/${point.id}/restore`, { databaseName: target, rehydratePriority: 'High' });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const s = await session(r.body.id);
  assert.equal(s.state, 'success', JSON.stringify(s));
  const lines = s.log.map((l: any) => l.message).join('\n');
  assert.match(lines, /data retrieval: .*rehydrating from the Archive tier \(High priority\)|data retrieval: all \d+ pack\(s\) of the restore point are readable/);
  assert.match(lines, /pack\(s\) of the restore point moved back to the Archive tier/);
  assert.deepEqual(await tableHashes(target), await tableHashes(sourceDb));
  const again = (await call().get(`/restore-points/${point.id}/retrieval`)).body;
  assert.equal(again.state, 'archived', 'after the restore the packs are back in the Archive tier');
  assert.ok((await packTiers(`${repoContainer}-arch`)).every((t) => t === 'Archive'));
});

test('restores of a subset: only the named tables or collections, matching their sources', async () => {
  const items = (await call().get(`/restore-points?policyId=${policyId}&kind=repository`)).body;
  const pgPoint = items.find((x: any) => x.accountName === 'shop-pg');
  const mongoPoint = items.find((x: any) => x.accountName === 'shop-mongo' && x.databaseName === 'catalog');
  const target = `${sourceDb}_customers`;
  const s1 = await session((await call().post(`/restore-points/${pgPoint.id}/restore`, { databaseName: target, subset: ['public.customers'] })).body.id);
  assert.equal(s1.state, 'success', JSON.stringify(s1));
  assert.deepEqual(Object.keys(s1.accounts[0].counts), ['public.customers']);
  assert.deepEqual(await pgTables(target), ['customers']);
  assert.deepEqual(await tableHashes(target, ['customers']), await tableHashes(sourceDb, ['customers']));
  const s2 = await session((await call().post(`/restore-points/${mongoPoint.id}/restore`, { databaseName: 'catalog_reviews', subset: ['reviews'] })).body.id);
  assert.equal(s2.state, 'success', JSON.stringify(s2));
  assert.deepEqual(Object.keys(s2.accounts[0].counts), ['reviews']);
  assert.deepEqual(await mongoHashes('catalog_reviews', ['reviews']), await mongoHashes('catalog', ['reviews']));
  assert.equal((await mongoHashes('catalog_reviews', ['products'])).products, `0:${createHash('sha256').update('[]').digest('hex')}`, 'products were not restored');
  const bad = await session((await call().post(`/restore-points/${pgPoint.id}/restore`, { databaseName: `${sourceDb}_none`, subset: ['public.no_such_table'] })).body.id);
  assert.equal(bad.state, 'failed');
  assert.match(bad.error, /no_such_table/);
});

const downloadSigs: string[] = [];
test('exports: a SQL script psql loads and a mongodump archive, each behind a short-lived read-only download link', async () => {
  const items = (await call().get(`/restore-points?policyId=${policyId}&kind=repository`)).body;
  const pgPoint = items.find((x: any) => x.accountName === 'shop-pg');
  const mongoPoint = items.find((x: any) => x.accountName === 'shop-mongo' && x.databaseName === 'catalog');
  const e1 = await call().post(`/restore-points/${pgPoint.id}/export`, {});
  assert.equal(e1.status, 202, JSON.stringify(e1.body));
  const s1 = await session(e1.body.id);
  assert.equal(s1.state, 'success', JSON.stringify(s1));
  const file = s1.accounts[0].export;
  assert.equal(file.format, 'sql');
  assert.match(file.fileName, /\.sql$/);
  // The link is a credential handed to the user on request: it is kept out of apiTexts (the scan
  // below then proves it was never logged or stored anywhere else).
  const link = await api.post(`/sessions/${s1.id}/download-link`, { minutes: 10 });
  assert.equal(link.status, 200, JSON.stringify(link.body));
  const u = new URL(link.body.url);
  downloadSigs.push(u.searchParams.get('sig')!);
  assert.equal(u.searchParams.get('sp'), 'r', 'read-only');
  assert.equal(u.searchParams.get('sr'), 'b', 'for this one blob');
  assert.ok(Date.parse(u.searchParams.get('se')!) - Date.now() <= 10 * 60_000 + 1000, 'expires as asked');
  const body = Buffer.from(await (await fetch(link.body.url)).arrayBuffer());
  assert.equal(body.length, file.size);
  assert.equal(createHash('sha256').update(body).digest('hex'), file.sha256);
  const put = await fetch(link.body.url, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'overwrite' });
  assert.equal(put.status, 403, 'the link cannot write');
  const sql = path.join(tempDir(), 'export.sql');
  writeFileSync(sql, body);
  const loaded = await createTestDatabase(pgs, 'exported');
  await psqlFile(pgs, loaded, sql);
  assert.deepEqual(await tableHashes(loaded), await tableHashes(sourceDb), 'the script loads with psql alone and holds the same data');
  assert.equal((await api.post(`/sessions/${s1.id}/download-link`, { minutes: 61 })).status, 400, 'links live at most an hour');
  const restoreSession = (await call().get('/sessions?type=restore&limit=1')).body[0].id;
  assert.equal((await call().post(`/sessions/${restoreSession}/download-link`, {})).status, 409, 'only export sessions have files');

  const s2 = await session((await call().post(`/restore-points/${mongoPoint.id}/export`, {})).body.id);
  assert.equal(s2.state, 'success', JSON.stringify(s2));
  assert.equal(s2.accounts[0].export.format, 'mongodump');
  const link2 = await api.post(`/sessions/${s2.id}/download-link`, {});
  downloadSigs.push(new URL(link2.body.url).searchParams.get('sig')!);
  const tar = gunzipSync(Buffer.from(await (await fetch(link2.body.url)).arrayBuffer()));
  const names: string[] = [];
  for (let o = 0; o + 512 <= tar.length; ) {
    const name = tar.subarray(o, o + 100).toString('utf8').replace(/\0.*$/s, '');
    if (!name) break;
    names.push(name);
    o += 512 + Math.ceil(parseInt(tar.subarray(o + 124, o + 136).toString('utf8').trim() || '0', 8) / 512) * 512;
  }
  assert.ok(names.some((n) => /catalog\/products\.bson$/.test(n)) && names.some((n) => /catalog\/reviews\.metadata\.json$/.test(n)), names.join(', '));
});

test('a VM crashed mid-backup: the session completes on a new worker with exactly one new restore point, and verify is clean', async () => {
  const pgPoints = async () => (await call().get(`/restore-points?policyId=${policyId}&kind=repository`)).body.filter((p: any) => p.accountName === 'shop-pg');
  const before = (await pgPoints()).length;
  const run = await call().post(`/policies/${policyId}/run`);
  const watcher = new pg.Client({ connectionString: pgs.url('postgres') });
  await watcher.connect();
  try {
    // A COPY lasts well under a second here: look every few milliseconds, not at until()'s pace.
    const end = Date.now() + 240_000;
    for (let n = 0; ; n++) {
      if ((await watcher.query(`SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'COPY %TO STDOUT%'`, [sourceDb])).rowCount! > 0) break;
      if (n % 50 === 49 && (await call().get(`/sessions/${run.body.id}`)).body.state !== 'running') assert.fail('the backup ended before the test saw its COPY');
      assert.ok(Date.now() < end, 'timed out waiting for the worker to be copying a table');
      await sleep(5);
    }
  } finally { await watcher.end(); }
  // The worker doing the PostgreSQL backup (an idle one of an earlier test may still exist).
  const log = (await call().get(`/sessions/${run.body.id}`)).body.log as Array<{ message: string }>;
  const busy = log.map((l) => /shop-pg: (?:reusing idle worker|launching worker) (cb-w-[0-9a-f]+)/.exec(l.message)?.[1]).filter(Boolean).at(-1)!;
  const crashed = vms().find((v) => v.name === busy)!;
  assert.ok(crashed, `the busy worker ${busy} is a VM`);
  sim.crashVm(crashed.name);
  const s = await session(run.body.id);
  assert.equal(s.state, 'success', JSON.stringify(s));
  assert.ok(s.log.some((l: any) => /was lost .*replacing it and sending the task again/.test(l.message)), JSON.stringify(s.log));
  const pgResult = s.accounts.find((x: any) => x.accountName === 'shop-pg');
  assert.notEqual(pgResult.worker, crashed.name, 'a new worker finished the task');
  const all = await pgPoints();
  const after = all.length;
  assert.equal(after, before + 1, `exactly one new point: ${JSON.stringify(all.map((p: any) => [p.databaseName, p.sessionId, p.createdAt]))}`);
  const repo = await Repository.open(await openStore(`azblob://${az.account}/${repoContainer}/cosmos`, { env: { AZURE_STORAGE_CONNECTION_STRING: az.connectionString } }), { password: REPO_PW });
  const manifests = await repo.listRestorePoints();
  const mine = manifests.filter((m) => m.database === sourceDb);
  assert.equal(mine.length, after, 'the repository holds one point per recorded backup, none from the crashed attempt');
  const v = await verifyRepository(repo, { readData: true });
  assert.deepEqual(v.problems, []);
});

test('private network deployment: tagged storage account with blob and queue private endpoints, nothing created twice', async () => {
  assert.equal((await call().put('/settings', { ...settingsBody(), privateNetwork: true })).status, 200);
  const s1 = await runPolicy(policyId);
  assert.equal(s1.state, 'success', JSON.stringify(s1));
  // The private deployment's own account, with public network access disabled: not the account
  // the public workers of the tests before used.
  const tagged = () => ofType('Microsoft.Storage/storageAccounts').filter((a) => a.location === REGION && a.tags?.['cosmos-backup-controller'] && a.properties.publicNetworkAccess === 'Disabled');
  const accounts = tagged();
  assert.equal(accounts.length, 1);
  assert.equal(accounts[0]!.tags['cosmos-backup-controller'], ctl.workers!.controllerId);
  const pes = ofType('Microsoft.Network/privateEndpoints');
  assert.deepEqual(pes.map((p) => p.properties.privateLinkServiceConnections[0].properties.groupIds[0]).sort(), ['blob', 'queue']);
  assert.ok(pes.every((p) => p.properties.privateLinkServiceConnections[0].properties.privateLinkServiceId.toLowerCase() === accounts[0]!.id.toLowerCase()), 'the private endpoints lead to the private account');
  const count = () => sim.armRequests({ method: 'PUT' }).filter((r) => /privateEndpoints|storageAccounts|virtualNetworks\/[^/]+$|privateDnsZones/.test(r.path)).length;
  const puts = count();
  const s2 = await runPolicy(policyId);
  assert.equal(s2.state, 'success', JSON.stringify(s2));
  assert.equal(count(), puts, 'the second run reused everything');
  assert.equal(ofType('Microsoft.Network/privateEndpoints').length, 2);
  assert.equal(tagged().length, 1);
  assert.equal((await call().put('/settings', { ...settingsBody(), privateNetwork: false })).status, 200);
});

test('a corrupted agent binary in storage is caught by the MD5 check before it runs, and the session fails with that reason', async () => {
  await until('idle workers to be deleted', () => vms().length === 0, 60_000);
  const agent = loadAgentBinary(loadWorkerSettings({}).agentDir);
  const container = new BlobServiceClient(az.blobEndpoint, new StorageSharedKeyCredential(az.account, az.accountKey)).getContainerClient(AGENT_CONTAINER);
  let name = '';
  for await (const b of container.listBlobsFlat()) name = b.name;
  const bad = readFileSync(agent.file);
  bad[bad.length >> 1] ^= 0xff;
  // Bit rot: the stored bytes change, the recorded Content-MD5 does not.
  await container.getBlockBlobClient(name).uploadData(bad, { maxSingleShotSize: 4 * 1024 * 1024, blockSize: 8 * 1024 * 1024, blobHTTPHeaders: { blobContentMD5: Buffer.from(agent.manifest.md5.base64, 'base64') } });
  const s = await runPolicy(policyId);
  assert.equal(s.state, 'failed', JSON.stringify(s));
  const pgResult = s.accounts.find((x: any) => x.accountName === 'shop-pg');
  assert.match(pgResult.message, /MD5 check/);
  const runs = sim.infra.retired.flatMap((r) => r.runs).filter((r) => r.name === 'cosmos-backup-start' && r.exitCode === 3);
  assert.ok(runs.length >= 1);
  assert.ok(runs.every((r) => !/cosmos-backup-agent worker/.test(r.stdout)), 'the worker was never started');
  await container.getBlockBlobClient(name).delete();
  await until('workers to be deleted', () => vms().length === 0, 60_000);
});

test('notification mails arrived for success and for failure', async () => {
  // Mails go out after their session ends; other failures (a subset naming no table) mail too.
  const failedBackup = (m: ParsedMail) => /fail/i.test(m.subject ?? '') && /MD5/.test(m.text ?? '');
  await until('mails', () => mails.some(failedBackup) && mails.some((m) => /success/i.test(m.subject ?? '')), 30_000);
  const ok = mails.find((m) => /success/i.test(m.subject ?? ''))!;
  assert.match(ok.subject!, /shop/);
  assert.match(ok.text ?? '', /shop-pg/);
  assert.match(mails.find(failedBackup)!.subject!, /shop/, 'the failed backup\'s mail names the policy and says why');
});

test('no secret appears in a queue message, Run Command script or output, log line, repository object or API response', async () => {
  await until('workers to be deleted', () => vms().length === 0 && ctl.workers!.pool.list().length === 0, 60_000);
  const protectedValues = sim.armRequests({ method: 'PUT', pathIncludes: '/runCommands/' })
    .flatMap((r) => (r.body?.properties?.protectedParameters ?? []).map((x: any) => String(x.value)));
  const sigs = protectedValues.flatMap((v) => [...v.matchAll(/sig=([^&]+)/g)].map((m) => decodeURIComponent(m[1]!)));
  const keys = protectedValues.filter((v) => /^[A-Za-z0-9+/]{43}=$/.test(v));
  assert.ok(sigs.length >= 2 && keys.length >= 1, 'the scan knows the SAS signatures and worker keys that were handed out');
  const secrets: Record<string, string> = { saSecret: SECRET, dbPassword: pgs.password, mongoPassword, repoPassword: REPO_PW, azuriteKey: az.accountKey };
  sigs.forEach((s, i) => { secrets[`sas${i}`] = s; });
  keys.forEach((k, i) => { secrets[`workerKey${i}`] = k; });
  assert.equal(downloadSigs.length, 2, 'the scan knows the download links handed out');
  downloadSigs.forEach((s, i) => { secrets[`downloadLink${i}`] = s; });
  const runTexts = sim.infra.retired.flatMap((v) => [...v.runs.flatMap((r) => [r.script, r.stdout, r.stderr, JSON.stringify(r.parameters)]), ...Object.values(v.logs)]);
  assert.ok(runTexts.some((t) => /started|md5/.test(t)), 'the scripts and worker logs are in the scan');
  const queueTexts = ctl.workers!.pool.queueTexts();
  assert.ok(queueTexts.length > 10, 'the queue messages are in the scan');
  const decoded = queueTexts.map((t) => Buffer.from(t, 'base64').toString('utf8'));
  const sessionLogs: string[] = [];
  for (const s of (await call().get('/sessions?limit=100')).body) sessionLogs.push(JSON.stringify((await call().get(`/sessions/${s.id}`)).body));
  const repoBlobs: Buffer[] = [];
  for (const c of [repoContainer, `${repoContainer}-arch`]) {
    const cc = new BlobServiceClient(az.blobEndpoint, new StorageSharedKeyCredential(az.account, az.accountKey)).getContainerClient(c);
    for await (const b of cc.listBlobsFlat()) {
      // Archived packs are readable only after a rehydration (instant on Azurite).
      if (b.properties.accessTier === 'Archive') await cc.getBlobClient(b.name).setAccessTier('Hot');
      repoBlobs.push(await cc.getBlobClient(b.name).downloadToBuffer());
    }
  }
  assert.ok(repoBlobs.length > 5);
  const texts = [...queueTexts, ...decoded, ...runTexts, ...controllerLog, ...sessionLogs, ...apiTexts, ...mails.map((m) => `${m.subject}\n${m.text}`)];
  const found: string[] = [];
  for (const [name, value] of Object.entries(secrets)) {
    if (texts.some((t) => t.includes(value)) || repoBlobs.some((b) => b.includes(value))) found.push(name);
  }
  assert.deepEqual(found, []);
  assert.ok(!texts.some((t) => /[?&]sig=[A-Za-z0-9%]{20,}/.test(t)), 'no SAS signature anywhere');
});
