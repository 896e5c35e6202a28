// WorkerPool (controller/workers/pool.ts) against the ARM simulator, whose VMs really run the
// built agent, Azurite and a configuration database on the run's PostgreSQL: the region's
// waiting line and reuse, abort while waiting, separate VMs per region and profile, removal on
// close, crash cleanup from the `workers` table, and idle deletion. Also the waiting line while a
// worker is launching: a launch counts once, and tasks are served in the order they came.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { QueueServiceClient } from '@azure/storage-queue';
import { CosmosBackupError, isCode } from '../../shared/errors.ts';
import { generateMacKey } from '../../shared/protocol/auth.ts';
import { openPostgres, type Db } from '../../controller/db/db.ts';
import { migrate } from '../../controller/db/migrate.ts';
import { controllerId, createWorkerConfiguration, type WorkerConfiguration, type WorkerProfile } from '../../controller/db/config-store.ts';
import type { AzureSettings } from '../../controller/azure/settings.ts';
import { CONTROLLER_TAG, createWorkerVm, ensureWorkerNetwork, infraClients } from '../../controller/workers/azure-infra.ts';
import { WorkerChannel } from '../../controller/workers/channel.ts';
import { WORKER_TAG, WorkerPool, type LaunchRequest, type Worker } from '../../controller/workers/pool.ts';
import { PROFILE_VM_SIZES } from '../../controller/workers/profiles.ts';
import { loadWorkerSettings, type WorkerSettings } from '../../controller/workers/settings.ts';
import { startArmSimulator, simCredential, type ArmSimulator } from '../support/arm-simulator/index.ts';
import { startAzurite, type AzuriteServer } from '../support/azurite.ts';
import { createTestDatabase, usePostgres, type PostgresServer } from '../support/postgres.ts';
import { createTestRepo, type TestRepo } from '../worker/support.ts';
import { until } from '../support/until.ts';

const T = '0b6c7a3e-1111-4c4c-9a9a-0000000000c7';
const S = '5d1f0c2a-2222-4d4d-8b8b-0000000000c7';
const C = '7e2d1b4f-3333-4e4e-8c8c-0000000000c7';
const SECRET = `sa-secret-${randomBytes(8).toString('hex')}`;
const SA = 'sa-pool-test';
const RG = 'rg-cb-pool';

let sim: ArmSimulator;
// An Azurite of this file's own: e2e.test.ts asserts that the run's Azurite holds no `cb-w-`
// queues and corrupts the shared agent blob for a while, which would race with the workers here.
let az: AzuriteServer;
let pgs: PostgresServer;
let azure: AzureSettings;
let repo: TestRepo;
const dbs: Db[] = [];
const pools: WorkerPool[] = [];


/** 'pending' unless the promise has settled by the time already-queued callbacks have run. */
function promiseState(p: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  return Promise.race([
    p.then(() => 'resolved' as const, () => 'rejected' as const),
    new Promise<'pending'>((r) => setImmediate(() => r('pending'))),
  ]);
}

const ofType = (t: string) => [...sim.infra.resources.values()].filter((r) => r.type === t);
const vmNames = () => ofType('Microsoft.Compute/virtualMachines').map((v) => v.name).sort();
const nicNames = () => ofType('Microsoft.Network/networkInterfaces').map((v) => v.name).sort();
const diskNames = () => ofType('Microsoft.Compute/disks').map((v) => v.name).sort();
/** Every VM ever created in the simulator (alive or deleted). */
const vmsEver = () => vmNames().length + sim.infra.retired.length;
const vmOf = (name: string) => ofType('Microsoft.Compute/virtualMachines').find((v) => v.name === name);

async function queuesOf(workerId: string): Promise<string[]> {
  const names: string[] = [];
  for await (const q of QueueServiceClient.fromConnectionString(az.connectionString).listQueues({ prefix: `cb-${workerId}-` })) names.push(q.name);
  return names.sort();
}

/** A fresh configuration database (all migrations, so the `workers` table of 005). */
async function freshDb(): Promise<{ db: Db; url: string }> {
  const url = pgs.url(await createTestDatabase(pgs, 'pool'));
  const db = await openPostgres(url);
  dbs.push(db);
  await migrate(db);
  return { db, url };
}

async function workerRows(db: Db): Promise<Array<{ id: string; vm_name: string; region: string }>> {
  return (await db.query('SELECT id, vm_name, region FROM workers ORDER BY id')).map((r) => ({ id: r.id, vm_name: r.vm_name, region: r.region }));
}

function settingsWith(env: Record<string, string>): WorkerSettings {
  return loadWorkerSettings({
    COSMOS_BACKUP_WORKER_RESOURCE_GROUP: RG, COSMOS_BACKUP_WORKER_HELLO_SECONDS: '120',
    COSMOS_BACKUP_WORKER_LOST_SECONDS: '30', COSMOS_BACKUP_WORKER_HEARTBEAT_SECONDS: '5', ...env,
  });
}

function newPool(db: Db, id: string, settings: WorkerSettings, log: string[] = []): WorkerPool {
  const pool = new WorkerPool({ db, controllerId: id, settings, azure, log: (l) => log.push(l) });
  pools.push(pool);
  return pool;
}

interface Request { req: LaunchRequest; lines: string[]; abort: AbortController }
function request(region: string, o: { profile?: WorkerProfile; configuration?: WorkerConfiguration | null } = {}): Request {
  const lines: string[] = [];
  const abort = new AbortController();
  return {
    lines, abort,
    req: {
      serviceAccountId: SA, credential: simCredential(sim, T, C, SECRET), subscriptionId: S, region, profile: o.profile ?? 'small',
      configuration: o.configuration ?? null, privateNetwork: false, log: (l) => lines.push(l), signal: abort.signal,
    },
  };
}

/** A real job on the worker: verify of a small repository in Azurite. */
async function verifyOn(w: Worker): Promise<void> {
  const result = await w.channel.run((id, pub) => ({ kind: 'verify', jobId: `pool-test/${w.id}`, repository: repo.ref(id, 'repository', pub), readData: true }));
  assert.deepEqual(result.problems ?? [], [], `the verify on ${w.vmName} found no problem`);
}

before(async () => {
  [az, pgs] = await Promise.all([startAzurite(), usePostgres()]);
  sim = await startArmSimulator({ azurite: { blobEndpoint: az.blobEndpoint, queueEndpoint: az.queueEndpoint, accountKey: az.accountKey } });
  sim.setLroPolls(1);
  sim.addSubscription(S, 'prod', T);
  sim.addPrincipal({ tenantId: T, clientId: C, secret: SECRET });
  azure = { armEndpoint: sim.url, authorityHost: sim.url, caBundle: sim.caCert, pollIntervalMs: 5, maxRetries: 8, allowMigration: false };
  repo = await createTestRepo(az);
});

after(async () => {
  // Whatever a failed test left: remove it before the simulator goes (its VMs run agents).
  await Promise.allSettled(pools.map((p) => p.close()));
  await sim?.stop();
  await Promise.allSettled(dbs.map((d) => d.close()));
  await az?.stop();
});

let line: { db: Db; pool: WorkerPool; west: WorkerConfiguration; held: Worker } | undefined;

test('maxWorkers 1: a second acquire waits in line while the first worker is busy, an aborted waiter launches nothing, release hands over the same VM', async () => {
  const { db } = await freshDb();
  const pool = newPool(db, await controllerId(db), settingsWith({ COSMOS_BACKUP_WORKER_IDLE_SECONDS: '600', COSMOS_BACKUP_MAX_WORKERS: '4' }));
  const west = await createWorkerConfiguration(db, { name: 'west', region: 'westeurope', profile: 'small', privateNetwork: false, maxWorkers: 1 });

  const a = request('westeurope', { configuration: west });
  const first = await pool.acquire(a.req);
  assert.ok(a.lines.some((l) => l === `launching worker ${first.vmName} (small, ${PROFILE_VM_SIZES.small}) in westeurope`), a.lines.join('\n'));
  assert.equal(first.state, 'busy');
  assert.deepEqual(vmNames(), [first.vmName]);

  const b = request('westeurope', { configuration: west });
  const second = pool.acquire(b.req);
  assert.deepEqual(b.lines, ['waiting: 1 worker(s) already at work in westeurope (the region\'s maximum)']);
  const c = request('westeurope', { configuration: west });
  const third = pool.acquire(c.req);
  void third.catch(() => {});
  assert.equal(c.lines.length, 1);

  // The first worker does real work meanwhile; nobody else gets it, nothing else is launched.
  await verifyOn(first);
  assert.equal(await promiseState(second), 'pending');
  assert.equal(await promiseState(third), 'pending');
  assert.deepEqual(vmNames(), [first.vmName]);
  assert.equal(vmsEver(), 1);
  assert.deepEqual((await workerRows(db)).map((r) => r.vm_name), [first.vmName]);

  const reason = new CosmosBackupError('ABORTED', 'the session was cancelled');
  c.abort.abort(reason);
  await assert.rejects(third, (e: unknown) => e === reason && isCode(e, 'ABORTED'));
  assert.deepEqual(c.lines, ['waiting: 1 worker(s) already at work in westeurope (the region\'s maximum)'], 'the aborted request launched nothing');
  assert.equal(await promiseState(second), 'pending', 'the abort of another waiter does not let this one in');

  pool.release(first, true);
  const reused = await second;
  assert.equal(reused, first, 'the waiter gets the released worker');
  assert.equal(reused.state, 'busy');
  assert.deepEqual(b.lines.slice(1), [`reusing idle worker ${first.vmName}`]);
  assert.deepEqual(vmNames(), [first.vmName]);
  assert.equal(vmsEver(), 1, 'no VM was launched for the waiter nor for the aborted request');
  assert.deepEqual(pool.list().map((w) => [w.vmName, w.state]), [[first.vmName, 'busy']]);
  await verifyOn(reused);
  line = { db, pool, west, held: reused };
});

test('another region, or another profile in the same region, gets a VM of its own; close removes every VM, NIC, disk, queue and row', async () => {
  assert.ok(line, 'the first test left its pool');
  const { db, pool, west, held } = line;
  const launched = vmsEver();

  // westeurope is at its maximum (1, busy); northeurope has its own limit (defaultMaxWorkers 4).
  const n = request('northeurope');
  const north = await pool.acquire(n.req);
  assert.ok(!n.lines.some((l) => l.startsWith('waiting')), n.lines.join('\n'));
  assert.notEqual(north.vmName, held.vmName);
  assert.equal(vmOf(north.vmName)?.location, 'northeurope');
  assert.equal(vmsEver(), launched + 1);

  // An idle small worker is not used for a medium task: it is removed to make room (maximum 1).
  pool.release(held, true);
  const m = request('westeurope', { profile: 'medium', configuration: west });
  const medium = await pool.acquire(m.req);
  assert.notEqual(medium.vmName, held.vmName);
  assert.equal(vmOf(medium.vmName)?.properties.hardwareProfile.vmSize, PROFILE_VM_SIZES.medium);
  assert.ok(!vmNames().includes(held.vmName), 'the idle small worker was removed');
  assert.deepEqual(vmNames(), [medium.vmName, north.vmName].sort());
  assert.deepEqual((await workerRows(db)).map((r) => r.vm_name).sort(), [medium.vmName, north.vmName].sort());
  assert.deepEqual(await queuesOf(held.id), []);
  await verifyOn(medium);

  await pool.close();
  assert.deepEqual(pool.list(), []);
  assert.deepEqual(vmNames(), []);
  assert.deepEqual(nicNames().filter((x) => x.startsWith('cb-w-')), []);
  assert.deepEqual(diskNames(), []);
  assert.deepEqual(await workerRows(db), []);
  for (const w of [north, medium]) assert.deepEqual(await queuesOf(w.id), []);
});

test('cleanupLeftovers after a crash: the VM, NIC, OS disk, queues and rows a previous run left are removed, once; another controller\'s VM is left alone', async () => {
  const { db, url } = await freshDb();
  const id = await controllerId(db);
  const settings = settingsWith({ COSMOS_BACKUP_WORKER_IDLE_SECONDS: '600' });

  // The run that crashed: a busy worker has no timer and no queue polling under way, so dropping
  // the pool without close() leaves exactly what a killed controller leaves.
  const crashed = await newPool(db, id, settings).acquire(request('westeurope').req);
  pools.pop();
  const [row] = await db.query('SELECT * FROM workers WHERE id = $1', [crashed.id]);
  assert.ok(row, 'the launched worker is recorded');
  // ...and a worker recorded just before the crash whose VM was never made (its queues were).
  const unborn = `w-${randomBytes(5).toString('hex')}`;
  await db.query('INSERT INTO workers (id, service_account_id, subscription_id, resource_group, region, vm_name, queue_storage_id) VALUES ($1,$2,$3,$4,$5,$6,$7)',
    [unborn, SA, S, RG, 'westeurope', `cb-${unborn}`, row.queue_storage_id]);
  const queues = QueueServiceClient.fromConnectionString(az.connectionString);
  await new WorkerChannel({ queues, workerId: unborn, macKey: generateMacKey() }).createQueues();

  // Another controller's worker in the same resource group and network.
  const c = infraClients(simCredential(sim, T, C, SECRET), S, azure);
  const placement = { subscriptionId: S, resourceGroup: RG, region: 'westeurope', controllerId: 'cb-othr0000' };
  const net = await ensureWorkerNetwork(c, placement);
  const other = `w-${randomBytes(5).toString('hex')}`;
  await createWorkerVm(c, placement, { name: `cb-${other}`, vmSize: PROFILE_VM_SIZES.small, subnetId: net.subnetId, nsgId: net.nsgId, tags: { [CONTROLLER_TAG]: 'cb-othr0000', [WORKER_TAG]: other } });
  await new WorkerChannel({ queues, workerId: other, macKey: generateMacKey() }).createQueues();

  assert.deepEqual(vmNames(), [crashed.vmName, `cb-${other}`].sort());
  assert.ok(nicNames().includes(`${crashed.vmName}-nic`) && diskNames().includes(`${crashed.vmName}-osdisk`));
  assert.equal((await queuesOf(crashed.id)).length, 3, 'commands, replies and the command poison queue');
  assert.ok(sim.vmProcesses(crashed.vmName).some((p) => /worker/.test(p.command)), 'the abandoned worker still runs');

  // The restarted controller: a new pool on the same database (a new connection to it).
  const restarted = await openPostgres(url);
  dbs.push(restarted);
  const log: string[] = [];
  const asked: string[] = [];
  const pool = newPool(restarted, await controllerId(restarted), settings, log);
  const removed = await pool.cleanupLeftovers(async (sa) => { asked.push(sa); return simCredential(sim, T, C, SECRET); });
  assert.equal(removed, 2, log.join('\n'));
  assert.deepEqual([...new Set(asked)], [SA]);
  assert.deepEqual(vmNames(), [`cb-${other}`]);
  assert.deepEqual(nicNames().filter((x) => x.startsWith('cb-w-')), [`cb-${other}-nic`]);
  assert.deepEqual(diskNames(), [`cb-${other}-osdisk`]);
  assert.deepEqual(await queuesOf(crashed.id), []);
  assert.deepEqual(await queuesOf(unborn), []);
  assert.deepEqual(await workerRows(restarted), []);
  assert.ok(sim.infra.retired.some((r) => r.name === crashed.vmName), 'the crashed run\'s VM was deleted');
  assert.ok(log.includes(`removed worker ${crashed.vmName} left by an earlier run`), log.join('\n'));

  assert.equal(await pool.cleanupLeftovers(async () => simCredential(sim, T, C, SECRET)), 0, 'nothing is left for a second call');
  assert.deepEqual(vmNames(), [`cb-${other}`]);
  assert.equal(vmOf(`cb-${other}`)?.tags[CONTROLLER_TAG], 'cb-othr0000');
  assert.equal((await queuesOf(other)).length, 3, 'the other controller\'s queues are kept');
  await c.compute.virtualMachines.delete(RG, `cb-${other}`, c.pollOptions);
});

test('a released worker is deleted with its NIC, disk, queues and row once its idle time is over', async () => {
  const { db } = await freshDb();
  const log: string[] = [];
  const pool = newPool(db, await controllerId(db), settingsWith({ COSMOS_BACKUP_WORKER_IDLE_SECONDS: '1' }), log);
  const w = await pool.acquire(request('westeurope').req);
  assert.deepEqual(vmNames(), [w.vmName]);
  pool.release(w, true);
  assert.equal(w.state, 'idle');
  await until('the idle worker to be deleted', () => !vmNames().includes(w.vmName) && pool.list().length === 0);
  assert.deepEqual(nicNames().filter((x) => x.startsWith('cb-w-')), []);
  assert.deepEqual(diskNames(), []);
  assert.deepEqual(await queuesOf(w.id), []);
  assert.deepEqual(await workerRows(db), []);
  assert.ok(log.includes(`removing worker ${w.vmName} (idle time over)`), log.join('\n'));
});

// The waiting line while a launch is under way (both were faults of pool.ts once).
test('the waiting line while a worker is launching', async (t) => {
  const { db } = await freshDb();
  const pool = newPool(db, await controllerId(db), settingsWith({ COSMOS_BACKUP_WORKER_IDLE_SECONDS: '600', COSMOS_BACKUP_MAX_WORKERS: '1' }));
  const two = await createWorkerConfiguration(db, { name: 'two', region: 'westeurope', profile: 'small', privateNetwork: false, maxWorkers: 2 });
  const launching = pool.acquire(request('westeurope').req);
  const waiters: Request[] = [];
  const pending: Array<Promise<unknown>> = [];
  try {
    // The launch has recorded its worker (its VM is being made) and has not finished.
    await until('the first worker to be recorded', () => pool.list().length === 1);
    assert.equal(await promiseState(launching), 'pending');

    await t.test('with a maximum of 2, a second task is not held back by the one launch under way', async () => {
      const b = request('westeurope', { configuration: two });
      waiters.push(b);
      const second = pool.acquire(b.req);
      pending.push(second.catch(() => {}));
      assert.deepEqual(b.lines.filter((l) => l.startsWith('waiting')), [], 'one worker in the region, the maximum is 2');
    });
    // Whatever it did, that request is not needed any more (a launch it started is removed).
    for (const w of waiters.splice(0)) w.abort.abort(new CosmosBackupError('ABORTED', 'not needed'));

    const first = request('westeurope');
    const second = request('westeurope');
    const firstP = pool.acquire(first.req);
    const secondP = pool.acquire(second.req);
    waiters.push(first, second);
    pending.push(firstP.catch(() => {}), secondP.catch(() => {}));
    assert.ok(first.lines[0]?.startsWith('waiting') && second.lines[0]?.startsWith('waiting'));
    const worker = await launching;

    await t.test('tasks that queued during a launch are served in the order they came', async () => {
      pool.release(worker, true);
      const states = { first: await promiseState(firstP), second: await promiseState(secondP) };
      assert.deepEqual(states, { first: 'resolved', second: 'pending' }, 'the first in line gets the released worker');
      assert.equal(await firstP, worker);
    });
  } finally {
    for (const w of waiters) w.abort.abort(new CosmosBackupError('ABORTED', 'test over'));
    await Promise.all([launching.catch(() => {}), ...pending]);
    await pool.close();
  }
});
