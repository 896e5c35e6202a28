// The real WorkerGateway: each backup, archive copy and restore runs on a worker VM in the
// database's region, driven over its queues. A worker that goes silent is replaced and the same
// command (same id: commands are idempotent) is sent to the replacement.
import { randomUUID } from 'node:crypto';
import { CosmosBackupError, humanMessage } from '../../shared/errors.ts';
import { sealField } from '../../shared/protocol/auth.ts';
import { ACCESS_TIERS, type CommandBody, type Repository as RepoRef } from '../../shared/protocol/messages.ts';
import type { Queryable } from '../db/db.ts';
import * as cfg from '../db/config-store.ts';
import type { AzureCloudGateway } from '../azure/gateway.ts';
import type { AzureClients } from '../azure/clients.ts';
import { databaseEndpoint, type DatabaseEndpoint } from '../azure/endpoints.ts';
import type { ArchiveJob, ArchiveResult, BackupJob, BackupResult, JobContext, RestoreJob, RestoreResult, WorkerGateway } from '../sessions/gateways.ts';
import type { ServiceAccountCredentials } from '../db/config-store.ts';
import type { CloudAccount } from '../policies/scope.ts';
import { WorkerLostError, type CompletedResult, type JobProgress } from './channel.ts';
import { grantRepository, type RepositoryGrant } from './repository-grant.ts';
import { chooseProfile, type WorkPurpose } from './profiles.ts';
import type { Worker, WorkerPool } from './pool.ts';
import type { WorkerSettings } from './settings.ts';

/** A task is sent to at most this many workers (the first plus replacements of lost ones). */
const MAX_WORKERS_PER_TASK = 3;
const PROGRESS_LOG_MS = 30_000;

function sealRepo(id: string, field: string, g: RepositoryGrant, pub: string): RepoRef {
  if (!g.sas) throw new CosmosBackupError('INVALID_ARGUMENT', `repository ${g.location} is on this machine's disk: a worker VM cannot reach it; use an Azure Blob repository`);
  return {
    location: g.location, ...(g.endpoint ? { endpoint: g.endpoint } : {}), access: 'sas',
    sas: sealField(id, `${field}.sas`, g.sas, pub),
    ...(g.password ? { password: sealField(id, `${field}.password`, g.password, pub) } : {}),
  };
}

function endpointField(id: string, field: string, ep: DatabaseEndpoint, pub: string) {
  return {
    host: ep.host, port: ep.port, user: ep.user, password: sealField(id, `${field}.password`, ep.password, pub),
    tls: { mode: ep.tls }, ...(ep.srv ? { srv: true } : {}), ...(Object.keys(ep.options).length ? { options: ep.options } : {}),
  };
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export class AzureWorkers implements WorkerGateway {
  readonly #pool: WorkerPool;
  readonly #cloud: AzureCloudGateway;
  readonly #db: Queryable;
  readonly #settings: WorkerSettings;

  constructor(o: { pool: WorkerPool; cloud: AzureCloudGateway; db: Queryable; settings: WorkerSettings }) {
    this.#pool = o.pool;
    this.#cloud = o.cloud;
    this.#db = o.db;
    this.#settings = o.settings;
  }

  async runBackup(job: BackupJob): Promise<BackupResult> {
    const clients = await this.#cloud.clients(job.serviceAccount);
    const ep = await databaseEndpoint(clients, job.account, job.credentials);
    const grant = await grantRepository(job.repository, { hours: this.#settings.maxLifetimeMs / 3_600_000, credential: clients.credential });
    const databases = job.databases.length ? job.databases : ep.engine === 'postgres' ? ['citus'] : [];
    const profile = chooseProfile({ purpose: 'backup', sizeBytes: job.sizeHint, firstBackup: job.firstBackup, configured: job.workerConfiguration?.profile });
    const { result, worker } = await this.#run(job, job.serviceAccount, clients, job.account, 'backup', profile, (id, pub) => ({
      kind: 'backup', jobId: `${job.sessionId}/${job.account.name}`.slice(0, 128), engine: ep.engine,
      source: { ...endpointField(id, 'source', ep, pub), databases },
      repository: sealRepo(id, 'repository', grant, pub),
      labels: { 'cosmos.account': job.account.name, 'cosmos.session': job.sessionId },
      tags: job.tags, parallel: 2,
    }));
    const made = result.restorePoints ?? (result.restorePointId ? [{ database: databases[0] ?? '', restorePointId: result.restorePointId }] : []);
    if (!made.length) throw new CosmosBackupError('INTERNAL', `worker ${worker} reported a finished backup without a restore point`);
    // Stats are for the whole job; a point's share of the stored bytes is even when it made several.
    const stored = result.stats.bytesStored ?? 0;
    return {
      points: made.map((m, i) => ({ database: m.database, formatPointId: m.restorePointId, bytes: Math.floor(stored / made.length) + (i === 0 ? stored % made.length : 0) })),
      bytesRead: result.stats.bytesRead ?? 0, durationMs: result.stats.durationMs, worker,
    };
  }

  async runArchive(job: ArchiveJob): Promise<ArchiveResult> {
    const clients = await this.#cloud.clients(job.serviceAccount);
    const hours = this.#settings.maxLifetimeMs / 3_600_000;
    const from = await grantRepository(job.source, { hours, credential: clients.credential });
    const to = await grantRepository(job.target, { hours, credential: clients.credential });
    const tier = ACCESS_TIERS.find((t) => t === job.accessTier);
    const { result, worker } = await this.#run(job, job.serviceAccount, clients, job.account, 'archive', 'archive', (id, pub) => ({
      kind: 'copy', jobId: `${job.sessionId}/${job.account.name}`.slice(0, 128), restorePointIds: job.formatPointIds,
      from: sealRepo(id, 'from', from, pub), to: sealRepo(id, 'to', to, pub), ...(tier ? { accessTier: tier } : {}),
    }));
    return { copiedBytes: result.stats.copiedBytes ?? 0, copiedChunks: result.stats.copiedChunks ?? 0, worker };
  }

  async runRestore(job: RestoreJob): Promise<RestoreResult> {
    if (job.target.subset.length) {
      throw new CosmosBackupError('INVALID_ARGUMENT', 'restoring only some tables or collections is not supported by workers yet; restore the whole database');
    }
    const clients = await this.#cloud.clients(job.serviceAccount);
    const ep = await databaseEndpoint(clients, job.target.account, job.credentials);
    const grant = await grantRepository(job.repository, { hours: this.#settings.maxLifetimeMs / 3_600_000, credential: clients.credential });
    const profile = chooseProfile({ purpose: 'restore', sizeBytes: null, configured: job.workerConfiguration?.profile });
    const source = job.sourceDatabase;
    const { result, worker } = await this.#run(job, job.serviceAccount, clients, job.target.account, 'restore', profile, (id, pub) => ({
      kind: 'restore', jobId: `${job.sessionId}/${job.target.account.name}`.slice(0, 128), engine: ep.engine, restorePointId: job.formatPointId,
      repository: sealRepo(id, 'repository', grant, pub), target: endpointField(id, 'target', ep, pub),
      options: { ...(source ? { databaseMap: { [source]: job.target.databaseName } } : {}), parallel: 2 },
    }));
    return { bytes: result.stats.bytesWritten ?? result.stats.bytesRead ?? 0, counts: result.counts ?? {}, worker };
  }

  /** Runs one command on a worker of the account's region; replaces a lost worker and re-sends. */
  async #run(job: JobContext, sa: ServiceAccountCredentials, clients: AzureClients, account: CloudAccount, purpose: WorkPurpose, profile: cfg.WorkerProfile,
    build: (id: string, publicKey: string) => CommandBody): Promise<{ result: CompletedResult; worker: string }> {
    const settings = await cfg.getSettings(this.#db);
    const privateNetwork = settings.privateNetwork || Boolean(job.workerConfiguration?.privateNetwork);
    const commandId = randomUUID();
    let lastProgress = Date.now();
    const onProgress = (p: JobProgress) => {
      if (Date.now() - lastProgress < PROGRESS_LOG_MS) return;
      lastProgress = Date.now();
      job.log(`${purpose}: ${p.phase}, ${mib(p.bytes)} read, ${p.objects} object(s)${p.objectsTotal ? ` of ${p.objectsTotal}` : ''}, ${mib(p.rate)}/s`);
    };
    for (let attempt = 1; ; attempt++) {
      const worker: Worker = await this.#pool.acquire({
        serviceAccountId: sa.id, credential: clients.credential, subscriptionId: account.subscriptionId, region: account.region, profile,
        configuration: job.workerConfiguration, privateNetwork, log: job.log, signal: job.signal,
      });
      try {
        const result = await worker.channel.run(build, { commandId, onProgress, signal: job.signal });
        this.#pool.release(worker, true);
        return { result, worker: worker.vmName };
      } catch (e) {
        if (e instanceof WorkerLostError && !job.signal.aborted && attempt < MAX_WORKERS_PER_TASK) {
          job.log(`worker ${worker.vmName} was lost (${humanMessage(e)}); replacing it and sending the task again`);
          await this.#pool.discard(worker, 'it stopped answering');
          continue;
        }
        // A failed job leaves a healthy worker; a lost or aborted one is removed.
        this.#pool.release(worker, !(e instanceof WorkerLostError) && !job.signal.aborted);
        throw e;
      }
    }
  }
}
