// Worker VMs: launched on demand in a database's region, reused by the next task in that region
// while idle, deleted (with NIC, disk and queues) when their idle time is up. At most maxWorkers
// per region run at once; further tasks wait in line. Every worker is recorded in the
// configuration database until it is gone, so a controller that crashed removes its leftovers on
// the next start.
import { randomBytes } from 'node:crypto';
import { QueueServiceClient, StorageSharedKeyCredential as QueueKeyCredential, QueueSASPermissions, SASProtocol, generateQueueSASQueryParameters } from '@azure/storage-queue';
import type { TokenCredential } from '@azure/identity';
import { CosmosBackupError, humanMessage } from '../../shared/errors.ts';
import { generateMacKey } from '../../shared/protocol/auth.ts';
import type { Queryable } from '../db/db.ts';
import type { WorkerConfiguration, WorkerProfile } from '../db/config-store.ts';
import type { AzureSettings } from '../azure/settings.ts';
import {
  CONTROLLER_TAG, createWorkerVm, deleteWorkerVm, ensurePrivateEndpoints, ensureRegionalStorage, ensureResourceGroup, ensureWorkerNetwork,
  infraClients, runScript, runScriptOutput, storageAccess, type InfraClients, type Placement, type RegionalStorage,
} from './azure-infra.ts';
import { agentDownloadUrl, ensureAgentBlob, loadAgentBinary, type AgentBinary } from './agent-binary.ts';
import { WorkerChannel } from './channel.ts';
import { PROFILE_VM_SIZES } from './profiles.ts';
import { MD5_MISMATCH_MARK, SCRIPT_EXIT, workerStartScript } from './start-script.ts';
import type { WorkerSettings } from './settings.ts';

export const WORKER_TAG = 'cosmos-backup-worker';
const START_COMMAND = 'cosmos-backup-start';

export interface LaunchRequest {
  serviceAccountId: string;
  credential: TokenCredential;
  subscriptionId: string;
  region: string;
  profile: WorkerProfile;
  configuration: WorkerConfiguration | null;
  privateNetwork: boolean;
  log(line: string): void;
  signal: AbortSignal;
}

export interface Worker {
  id: string;
  vmName: string;
  region: string;
  subscriptionId: string;
  profile: WorkerProfile;
  /** launched behind private endpoints (reused only for tasks that ask the same) */
  privateNetwork: boolean;
  channel: WorkerChannel;
  createdAt: number;
  readonly placement: Placement;
  readonly clients: InfraClients;
  /** the regional storage account of the worker's region (agent blob, exports); its key stays in memory */
  readonly storage: RegionalStorage;
  state: 'busy' | 'idle' | 'removing';
  idleTimer?: NodeJS.Timeout;
}

export interface PoolOptions {
  db: Queryable;
  controllerId: string;
  settings: WorkerSettings;
  azure: AzureSettings;
  /** one line per event for the controller's log (never secrets) */
  log?: (line: string) => void;
  /** keep every queue text for inspection (channel keepTexts) */
  keepQueueTexts?: boolean;
}

const regionKey = (subscriptionId: string, region: string) => `${subscriptionId.toLowerCase()}/${region.toLowerCase().replace(/\s+/g, '')}`;

export class WorkerPool {
  readonly #o: PoolOptions;
  readonly #workers = new Set<Worker>();
  /** launches under way per region, counted against maxWorkers */
  readonly #launching = new Map<string, number>();
  readonly #waiting = new Map<string, Array<() => void>>();
  readonly #removals = new Set<Promise<void>>();
  readonly #texts: string[] = [];
  #agent: AgentBinary | undefined;

  constructor(o: PoolOptions) {
    this.#o = o;
  }

  #log(line: string): void {
    this.#o.log?.(line);
  }

  /** Every queue message text sent or received so far (only with keepQueueTexts). */
  queueTexts(): string[] {
    return [...this.#texts, ...[...this.#workers].flatMap((w) => w.channel.texts())];
  }

  /** Workers alive now (busy or idle). */
  list(): Array<Pick<Worker, 'id' | 'vmName' | 'region' | 'profile' | 'state'>> {
    return [...this.#workers].map(({ id, vmName, region, profile, state }) => ({ id, vmName, region, profile, state }));
  }

  /**
   * A worker for one task: an idle one of the same region, subscription and profile, else a new
   * one once the region is below its maximum (waiting in line otherwise).
   */
  async acquire(req: LaunchRequest): Promise<Worker> {
    const key = regionKey(req.subscriptionId, req.region);
    const max = req.configuration?.maxWorkers ?? this.#o.settings.defaultMaxWorkers;
    let woken = false;
    for (;;) {
      if (req.signal.aborted) {
        // A wake-up this task can no longer use goes to the next in line.
        if (woken) this.#wake(key);
        throw req.signal.reason;
      }
      const idle = [...this.#workers].find((w) => w.state === 'idle' && regionKey(w.subscriptionId, w.region) === key && w.profile === req.profile
        && w.privateNetwork === req.privateNetwork && Date.now() - w.createdAt < this.#o.settings.maxLifetimeMs * 0.75);
      if (idle) {
        clearTimeout(idle.idleTimer);
        idle.state = 'busy';
        req.log(`reusing idle worker ${idle.vmName}`);
        return idle;
      }
      const inRegion = [...this.#workers].filter((w) => w.state !== 'removing' && regionKey(w.subscriptionId, w.region) === key).length + (this.#launching.get(key) ?? 0);
      if (inRegion < max) break;
      // Room is made by removing an idle worker of another profile; otherwise wait for a release.
      const other = [...this.#workers].find((w) => w.state === 'idle' && regionKey(w.subscriptionId, w.region) === key);
      if (other) {
        await this.#remove(other, 'making room for a worker of another size');
        continue;
      }
      req.log(`waiting: ${max} worker(s) already at work in ${req.region} (the region's maximum)`);
      await new Promise<void>((resolve, reject) => {
        const list = this.#waiting.get(key) ?? [];
        const wake = () => { req.signal.removeEventListener('abort', onAbort); resolve(); };
        const onAbort = () => { this.#waiting.set(key, (this.#waiting.get(key) ?? []).filter((f) => f !== wake)); reject(req.signal.reason); };
        // Woken but still without room: keep this task's place at the front of the line.
        if (woken) list.unshift(wake);
        else list.push(wake);
        this.#waiting.set(key, list);
        req.signal.addEventListener('abort', onAbort, { once: true });
      });
      woken = true;
    }
    // A launch counts against the maximum until its worker is recorded (then it counts as a worker).
    this.#launching.set(key, (this.#launching.get(key) ?? 0) + 1);
    let counted = true;
    const recorded = () => {
      if (!counted) return;
      counted = false;
      this.#launching.set(key, (this.#launching.get(key) ?? 1) - 1);
    };
    try {
      return await this.#launch(req, recorded);
    } catch (e) {
      // A launch that failed before its worker was recorded frees its place here (#remove does it otherwise).
      if (counted) {
        recorded();
        this.#wake(key);
      }
      throw e;
    }
  }

  /** A task ended: a healthy worker waits idle for the next one; a broken one is removed now. */
  release(w: Worker, healthy: boolean): void {
    if (w.state === 'removing') return;
    if (!healthy || this.#o.settings.idleMs === 0) {
      void this.#remove(w, healthy ? 'no idle time configured' : 'it failed');
      return;
    }
    w.state = 'idle';
    w.idleTimer = setTimeout(() => void this.#remove(w, 'idle time over'), this.#o.settings.idleMs);
    w.idleTimer.unref?.();
    this.#wake(regionKey(w.subscriptionId, w.region));
  }

  /** Removes a worker at once (VM, NIC, disk, queues). */
  discard(w: Worker, why: string): Promise<void> {
    return this.#remove(w, why);
  }

  #wake(key: string): void {
    const next = this.#waiting.get(key)?.shift();
    next?.();
  }

  #agentBinary(): AgentBinary {
    this.#agent ??= loadAgentBinary(this.#o.settings.agentDir);
    return this.#agent;
  }

  async #launch(req: LaunchRequest, recorded: () => void): Promise<Worker> {
    const s = this.#o.settings;
    const agent = this.#agentBinary();
    const c = infraClients(req.credential, req.subscriptionId, this.#o.azure);
    const p: Placement = { subscriptionId: req.subscriptionId, resourceGroup: s.resourceGroup, region: req.region, controllerId: this.#o.controllerId };
    await ensureResourceGroup(c, p);
    const cfg = req.configuration;
    const net = await ensureWorkerNetwork(c, p, cfg?.virtualNetwork ? { virtualNetwork: cfg.virtualNetwork, subnet: cfg.subnet } : undefined);
    if (net.created.length) req.log(`created the worker network in ${req.region} (${net.created.length} resource(s))`);
    const storage = await ensureRegionalStorage(c, p, { privateNetwork: req.privateNetwork });
    if (storage.created) req.log(`created storage account ${storage.name} in ${req.region}`);
    let queues: RegionalStorage = storage;
    if (s.controllerRegion && s.controllerRegion.toLowerCase() !== req.region.toLowerCase()) {
      queues = await ensureRegionalStorage(c, { ...p, region: s.controllerRegion }, { privateNetwork: req.privateNetwork });
    }
    if (req.privateNetwork) {
      const made = await ensurePrivateEndpoints(c, p, storage, net);
      if (queues !== storage) made.push(...await ensurePrivateEndpoints(c, p, queues, net));
      if (made.length) req.log(`private network: created ${made.length} private endpoint/DNS resource(s) for ${storage.name}`);
    }
    const upload = await ensureAgentBlob(storage, agent, req.log);
    if (upload.uploaded) req.log(`agent ${agent.manifest.version} uploaded to ${storage.name} (md5 ${agent.manifest.md5.hex} checked)`);

    const id = `w-${randomBytes(5).toString('hex')}`;
    const vmName = `cb-${id}`;
    const macKey = generateMacKey();
    const queueService = new QueueServiceClient(queues.queueEndpoint, new QueueKeyCredential(queues.sharedKeyAccountName, queues.accountKey));
    const channel = new WorkerChannel({
      queues: queueService, workerId: id, macKey, expected: { version: agent.manifest.version, commit: agent.manifest.commit },
      timings: { helloTimeoutMs: s.helloTimeoutMs, lostAfterMs: s.lostAfterMs }, keepTexts: this.#o.keepQueueTexts,
      log: (l) => this.#log(l),
    });
    const worker: Worker = {
      id, vmName, region: req.region, subscriptionId: req.subscriptionId, profile: req.profile, privateNetwork: req.privateNetwork, channel, createdAt: Date.now(),
      placement: p, clients: c, storage, state: 'busy',
    };
    await this.#o.db.query(
      `INSERT INTO workers (id, service_account_id, subscription_id, resource_group, region, vm_name, queue_storage_id) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
      [id, req.serviceAccountId, req.subscriptionId, s.resourceGroup, req.region, vmName, queues.id]);
    this.#workers.add(worker);
    recorded();
    try {
      await channel.createQueues();
      req.log(`launching worker ${vmName} (${req.profile}, ${PROFILE_VM_SIZES[req.profile]}) in ${req.region}`);
      await createWorkerVm(c, p, {
        name: vmName, vmSize: PROFILE_VM_SIZES[req.profile], subnetId: net.subnetId, nsgId: net.nsgId,
        userAssignedIdentityId: s.userAssignedIdentityId, tags: { [CONTROLLER_TAG]: this.#o.controllerId, [WORKER_TAG]: id },
      });
      if (req.signal.aborted) throw req.signal.reason;
      const download = agentDownloadUrl(storage, agent);
      // One token per queue, each for only what the worker does there: take, hide and delete its
      // commands; add replies; set a command aside. Nothing else in the account, and nothing
      // after the worker's lifetime (its queues are deleted with it).
      const key = new QueueKeyCredential(queues.sharedKeyAccountName, queues.accountKey);
      const sasFor = (queueName: string, permissions: string) => generateQueueSASQueryParameters({
        queueName, permissions: QueueSASPermissions.parse(permissions), startsOn: new Date(Date.now() - 5 * 60_000), expiresOn: new Date(Date.now() + s.maxLifetimeMs),
        protocol: queues.queueEndpoint.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
      }, key).toString();
      const queueSas = JSON.stringify({
        [channel.names.commands]: sasFor(channel.names.commands, 'up'),
        [channel.names.replies]: sasFor(channel.names.replies, 'a'),
        [channel.names.commandsPoison]: sasFor(channel.names.commandsPoison, 'a'),
      });
      const args = [
        `--heartbeat-every ${s.heartbeatSeconds}s`,
        `--idle-timeout ${Math.ceil((s.idleMs + s.maxLifetimeMs) / 1000)}s`,
        '--log-level info',
      ].join(' ');
      const run = await runScript(c, p, vmName, {
        name: START_COMMAND, script: workerStartScript(), timeoutSeconds: 900,
        parameters: { WORKER_ID: id, AGENT_MD5: agent.manifest.md5.hex, QUEUE_SERVICE: queues.queueEndpoint, WORKER_ARGS: args },
        protectedParameters: { AGENT_URL: download.url, COSMOS_BACKUP_QUEUE_SAS: queueSas, COSMOS_BACKUP_WORKER_KEY: macKey },
      });
      if (run.exitCode !== 0) {
        const said = (run.error || run.output).trim().split('\n').filter(Boolean).slice(-3).join(' / ');
        if (run.exitCode === SCRIPT_EXIT.md5 || said.includes(MD5_MISMATCH_MARK)) {
          throw new CosmosBackupError('CORRUPT_OBJECT', `worker ${vmName}: the agent binary it downloaded failed the MD5 check, so it was not started (${said})`);
        }
        throw new CosmosBackupError('INTERNAL', `worker ${vmName}: its start script failed (exit ${run.exitCode ?? 'none'}): ${said || 'no output'}`);
      }
      try {
        const hello = await channel.waitForHello(req.signal);
        req.log(`worker ${vmName} is ready (agent ${hello.version})`);
      } catch (e) {
        if (req.signal.aborted) throw e;
        const out = await runScriptOutput(c, p, vmName, START_COMMAND).catch(() => null);
        const said = out ? (out.error || out.output).trim().split('\n').filter(Boolean).slice(-3).join(' / ') : '';
        throw new CosmosBackupError('INTERNAL', `worker ${vmName} did not say hello: ${humanMessage(e)}${said ? `; start script said: ${said}` : ''}`, { cause: e });
      }
      return worker;
    } catch (e) {
      await this.#remove(worker, 'its launch failed');
      throw e;
    }
  }

  #remove(w: Worker, why: string): Promise<void> {
    if (w.state === 'removing') return Promise.resolve();
    w.state = 'removing';
    clearTimeout(w.idleTimer);
    const p = (async () => {
      this.#log(`removing worker ${w.vmName} (${why})`);
      await w.channel.shutdown(why, { abortRunning: true, waitMs: 2000 }).catch(() => {});
      if (this.#o.keepQueueTexts) this.#texts.push(...w.channel.texts());
      try {
        await deleteWorkerVm(w.clients, w.placement, w.vmName);
        await w.channel.deleteQueues();
        await this.#o.db.query('DELETE FROM workers WHERE id = $1', [w.id]);
      } catch (e) {
        // The row stays: the next start tries again.
        this.#log(`cannot remove worker ${w.vmName} yet: ${humanMessage(e)}`);
      }
      this.#workers.delete(w);
      this.#wake(regionKey(w.subscriptionId, w.region));
    })();
    this.#removals.add(p);
    void p.finally(() => this.#removals.delete(p));
    return p;
  }

  /**
   * After a crash: removes every worker a previous run of this controller left (recorded in the
   * configuration database), with its queues. `credentialFor` gives the service account's credential.
   */
  async cleanupLeftovers(credentialFor: (serviceAccountId: string) => Promise<TokenCredential>): Promise<number> {
    const rows = await this.#o.db.query('SELECT * FROM workers ORDER BY created_at');
    let removed = 0;
    for (const r of rows) {
      if ([...this.#workers].some((w) => w.id === r.id)) continue;
      try {
        const c = infraClients(await credentialFor(r.service_account_id), r.subscription_id, this.#o.azure);
        const p: Placement = { subscriptionId: r.subscription_id, resourceGroup: r.resource_group, region: r.region, controllerId: this.#o.controllerId };
        await deleteWorkerVm(c, p, r.vm_name);
        const q = await storageAccess(c, String(r.queue_storage_id));
        const qs = new QueueServiceClient(q.queueEndpoint, new QueueKeyCredential(q.sharedKeyAccountName, q.accountKey));
        await new WorkerChannel({ queues: qs, workerId: r.id, macKey: generateMacKey() }).deleteQueues();
        await this.#o.db.query('DELETE FROM workers WHERE id = $1', [r.id]);
        this.#log(`removed worker ${r.vm_name} left by an earlier run`);
        removed++;
      } catch (e) {
        this.#log(`cannot remove leftover worker ${r.vm_name}: ${humanMessage(e)}`);
      }
    }
    return removed;
  }

  /** Removes every worker (controller stop). */
  async close(): Promise<void> {
    for (const w of [...this.#workers]) void this.#remove(w, 'the controller is stopping');
    while (this.#removals.size) await Promise.allSettled([...this.#removals]);
  }
}
