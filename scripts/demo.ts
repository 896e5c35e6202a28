// `npm run demo`: the product's signature path on embedded defaults, no cloud account needed.
// In this one process: the local cloud of `npm run dev:cloud` (PostgreSQL, Azurite, the MongoDB
// stand-in and the ARM simulator, a test stand-in for Azure whose VMs really run their scripts),
// and the controller on PGlite in ./.cosmos-backup/demo-controller (fresh each run). Through the
// controller's own API it creates a service account, a repository in Azurite and a policy for one
// PostgreSQL cluster and one MongoDB account (daily + weekly), runs it twice (the second run
// stores little: only what changed), restores both into new databases through worker VMs,
// compares each restored database with its source itself, prints a table, and leaves the
// controller running with its URL and token until Ctrl-C, which stops and deletes everything.
//   --exit-after-check   exit after the table (0 when both restores match their source)
//   --verbose            also print the controller's own log lines
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { humanMessage } from '../shared/errors.ts';
import { loadConfig } from '../controller/config.ts';
import { startController, type Controller } from '../controller/start.ts';
import { unwiredGateways } from '../controller/sessions/unwired.ts';
import { StorageRepositories } from '../controller/sessions/storage-repositories.ts';
import { AzureCloudGateway } from '../controller/azure/gateway.ts';
import type { AzureSettings } from '../controller/azure/settings.ts';
import { loadWorkerSettings } from '../controller/workers/settings.ts';
import { startServices, type RunServices } from '../test/support/services.ts';
import { startMongoServer, type MongoStandIn } from '../test/support/mongo-server/index.ts';
import { startArmSimulator, type ArmSimulator } from '../test/support/arm-simulator/index.ts';
import { ensurePostgres } from './ensure-postgres.ts';
import { buildAgent } from './build-agent.ts';
import { ControllerApi, type RestorePoint, type Session } from './demo/api.ts';
import { changeMongo, changePostgres, compareDigests, mongoDigest, postgresDigest, seedMongo, seedPostgres, type Fidelity } from './demo/data.ts';

const { values: flags } = parseArgs({ options: { 'exit-after-check': { type: 'boolean' }, verbose: { type: 'boolean' } } });
const dataDir = path.resolve('.cosmos-backup', 'demo-controller');
const say = (s: string) => process.stdout.write(s + '\n');
const step = (s: string) => say(`• ${s}`);
const detail = (s: string) => say(`    ${s}`);

// ---- everything this process started, stopped in reverse on exit ----
let services: RunServices | undefined;
let mongo: MongoStandIn | undefined;
let sim: ArmSimulator | undefined;
let controller: Controller | undefined;
let stopped: Promise<void> | undefined;
/** the exit code a Ctrl-C asked for; set means the work is being interrupted, not failing */
let interrupted: number | undefined;
let ready = false;

/** Stops everything once (later callers wait for the same stop), then exits. */
async function shutdown(code: number): Promise<never> {
  stopped ??= (async () => {
    // The controller first: it deletes its worker VMs through the simulator.
    await controller?.close().catch((e: unknown) => process.stderr.write(`demo: stopping the controller: ${humanMessage(e)}\n`));
    await Promise.allSettled([sim?.stop(), mongo?.stop(), services?.stop()]);
  })();
  await stopped;
  process.exit(code);
}
// Last resort (an exit before the stop finished): a VM's agent must not outlive the demo.
process.on('exit', () => sim?.infra.stopAll());
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (interrupted !== undefined) process.exit(130);
    interrupted = ready ? 0 : 130;
    say(`\n${ready ? '' : 'Interrupted. '}Stopping: controller, worker VMs, simulator, MongoDB stand-in, PostgreSQL, Azurite…`);
    void shutdown(interrupted);
  });
}

/** A second demo on the same data directory would have it removed under its feet. */
function refuseIfInUse(dir: string): void {
  const pidFile = path.join(dir, 'controller.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!pid || pid === process.pid) return;
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as { code?: string }).code !== 'EPERM') return;
  }
  throw new Error(`another demo (process ${pid}) is using ${dir}; stop it with Ctrl-C first`);
}

const size = (n: number) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => '  ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
}

async function main(): Promise<void> {
  refuseIfInUse(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
  ensurePostgres();
  step('Agent binary (what worker VMs download and run)');
  await buildAgent({ log: detail });

  step('Starting the local cloud: PostgreSQL, Azurite, the MongoDB stand-in, the ARM simulator (a test stand-in for Azure)');
  [services, mongo] = await Promise.all([startServices(), startMongoServer({ auth: true })]);
  const az = services.azurite;
  sim = await startArmSimulator({ azurite: { blobEndpoint: az.blobEndpoint, queueEndpoint: az.queueEndpoint, accountKey: az.accountKey } });
  sim.setLroPolls(1);
  const tenantId = randomUUID();
  const subscriptionId = randomUUID();
  const clientId = randomUUID();
  const clientSecret = randomBytes(18).toString('base64url');
  sim.addSubscription(subscriptionId, 'Contoso Demo', tenantId);
  sim.addPrincipal({ tenantId, clientId, secret: clientSecret });
  const cluster = sim.addCluster({ subscriptionId, resourceGroup: 'rg-shop', name: 'shop-analytics', location: 'westeurope', tags: { app: 'shop' } });
  const mongoAccount = sim.addAccount({
    subscriptionId, resourceGroup: 'rg-shop', name: 'shop-catalog', api: 'MongoDB', location: 'westeurope', tags: { app: 'shop' },
    databases: [{ name: 'catalog', collections: ['products', 'reviews'] }],
  });
  const pg = services.pg;
  sim.pointCoordinator(cluster.name, pg.host, pg.port);
  sim.setMongoConnectionString(mongoAccount.name, mongo.url('catalog'));

  step('Filling PostgreSQL database "shop" (customers, orders, events) and MongoDB database "catalog" (products, reviews)');
  await Promise.all([seedPostgres(pg.url('postgres'), pg.url('shop')), seedMongo(mongo.url())]);

  step(`Starting the controller (PGlite in ${path.relative(process.cwd(), dataDir) || dataDir})`);
  const config = loadConfig({ COSMOS_BACKUP_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' });
  const azure: AzureSettings = { armEndpoint: sim.url, authorityHost: sim.url, caBundle: sim.caCert, pollIntervalMs: 200, maxRetries: 8, allowMigration: false };
  const cloud = new AzureCloudGateway(azure);
  const quiet = (line: string) => { if (flags.verbose) detail(`[controller] ${line}`); };
  controller = await startController({
    config, listen: true, azure: cloud,
    gateways: { ...unwiredGateways(), repositories: new StorageRepositories(), cloud },
    logger: { info: (m, meta) => quiet(meta ? `${m} ${JSON.stringify(meta)}` : m), error: (m, meta) => process.stderr.write(`[controller] ${m} ${meta ? JSON.stringify(meta) : ''}\n`) },
    workers: { settings: loadWorkerSettings({ COSMOS_BACKUP_WORKER_IDLE_SECONDS: '5', COSMOS_BACKUP_WORKER_HELLO_SECONDS: '120' }) },
  });
  if (!controller.url || !controller.bootstrapToken) throw new Error('the controller started without a URL or a first token');
  const api = new ControllerApi(controller.url, controller.bootstrapToken);

  step('Through the API: a service account, a repository (Azurite), a policy (2 accounts, daily + weekly)');
  const sa = await api.call<{ id: string }>('POST', '/service-accounts', { name: 'contoso-demo', tenantId, auth: 'secret', clientId, clientSecret });
  const repo = await api.call<{ id: string }>('POST', '/repositories', {
    name: 'demo-repository', storageAccount: az.account, container: 'cosmos-backup-demo', folder: 'shop',
    password: randomBytes(18).toString('base64url'), storageCredential: az.connectionString,
  });
  const policy = await api.call<{ id: string }>('POST', '/policies', {
    name: 'shop', serviceAccountId: sa.id, scope: { accounts: [cluster.id, mongoAccount.id] }, continuousTier: 7,
    backup: {
      repositoryId: repo.id,
      schedules: { timeZone: 'UTC', daily: { hours: [2], keepDays: 7 }, weekly: { weekday: 'sun', hour: 2, keepWeeks: 4 } },
      credentials: [{ accountId: cluster.id, username: pg.user, password: pg.password, databases: ['shop'], sslmode: 'disable' }],
    },
    notifications: { onSuccess: false, onWarning: false, onFailure: false, recipients: [] },
  });

  const run = async (n: number): Promise<Session> => {
    step(`Backup run ${n}${n === 1 ? ' (full; worker VMs are launched and the agent downloaded)' : ' (only changed data is stored)'}`);
    const s = await api.call<Session>('POST', `/policies/${policy.id}/run`, { type: 'backup' });
    return api.follow(s.id, `backup run ${n}`, detail);
  };
  const first = await run(1);
  step('Changing 1% of the orders and a few MongoDB documents');
  await Promise.all([changePostgres(pg.url('shop')), changeMongo(mongo.url())]);
  const second = await run(2);

  const points = await api.call<RestorePoint[]>('GET', `/restore-points?policyId=${policy.id}&kind=repository`);
  const latest = (accountId: string) => {
    const p = points.find((x) => x.accountId.toLowerCase() === accountId.toLowerCase());
    if (!p) throw new Error(`no restore point was recorded for ${accountId}`);
    return p;
  };
  const restores: Array<{ account: string; engine: string; point: RestorePoint; target: string; check: () => Promise<Fidelity> }> = [
    {
      account: cluster.id, engine: 'PostgreSQL', point: latest(cluster.id), target: 'shop_restored',
      check: async () => compareDigests(await postgresDigest(pg.url('shop')), await postgresDigest(pg.url('shop_restored'))),
    },
    {
      account: mongoAccount.id, engine: 'MongoDB', point: latest(mongoAccount.id), target: 'catalog_restored',
      check: async () => compareDigests(await mongoDigest(mongo!.url(), 'catalog'), await mongoDigest(mongo!.url(), 'catalog_restored')),
    },
  ];
  const verdicts: Fidelity[] = [];
  for (const r of restores) {
    step(`Restoring ${r.point.accountName} (database "${r.point.databaseName}") into a new database "${r.target}"`);
    const s = await api.call<Session>('POST', `/restore-points/${r.point.id}/restore`, { databaseName: r.target });
    await api.follow(s.id, `restore of ${r.point.accountName}`, detail);
    verdicts.push(await r.check());
  }

  // ---- the table ----
  const runs = [first, second];
  const rows = [['account', 'engine', 'restore points', 'read', 'stored', 'dedup', 'fidelity (restored vs source)']];
  restores.forEach((r, i) => {
    const results = runs.flatMap((s) => s.accounts.filter((a) => a.accountId.toLowerCase() === r.account.toLowerCase()));
    const read = sum(results.map((a) => a.bytesRead ?? 0));
    const stored = sum(results.map((a) => a.bytes));
    const count = points.filter((p) => p.accountId.toLowerCase() === r.account.toLowerCase()).length;
    const v = verdicts[i]!;
    const unit = r.engine === 'PostgreSQL' ? ['tables', 'rows'] : ['collections', 'documents'];
    const verdict = v.identical
      ? `identical: ${v.objects} ${unit[0]}, ${v.items.toLocaleString('en-US')} ${unit[1]} (${r.point.databaseName} -> ${r.target})`
      : `DIFFERS: ${v.differing.join(', ')}`;
    rows.push([r.point.accountName, r.engine, String(count), size(read), size(stored), stored ? `${(read / stored).toFixed(1)}x` : '-', verdict]);
  });
  say('');
  for (const l of table(rows)) say(l);
  const runStored = runs.map((s) => sum(s.accounts.map((a) => a.bytes)));
  say(`\n  stored per run: run 1 ${size(runStored[0]!)}, run 2 ${size(runStored[1]!)} (dedup = bytes read / bytes stored, after deduplication and compression)`);
  if (verdicts.some((v) => !v.identical)) throw new Error('a restored database differs from its source (see the table)');

  if (flags['exit-after-check']) await shutdown(0);
  ready = true;
  const url = controller.url;
  const auth = `-H "Authorization: Bearer $TOKEN"`;
  const pgPoint = restores[0]!.point.id;
  say([
    '',
    `The controller keeps running at ${url} (Ctrl-C stops and deletes everything).`,
    `  export TOKEN=${controller.bootstrapToken}`,
    `  curl -s ${auth} ${url}/policies`,
    `  curl -s ${auth} "${url}/restore-points?policyId=${policy.id}"`,
    `  curl -s ${auth} "${url}/sessions?limit=5"`,
    `  curl -s ${auth} -H 'content-type: application/json' -d '{"databaseName":"shop_copy"}' ${url}/restore-points/${pgPoint}/restore`,
    `  curl -s ${auth} ${url}/openapi.json`,
    `The databases: psql '${pg.url('shop_restored')}'   and   ${mongo.url('catalog_restored')}`,
  ].join('\n'));
}

try {
  await main();
} catch (e) {
  // After a Ctrl-C, whatever the stop broke under main is no failure to report.
  if (interrupted !== undefined) await shutdown(interrupted);
  process.stderr.write(`demo failed: ${humanMessage(e)}\n`);
  await shutdown(1);
}
