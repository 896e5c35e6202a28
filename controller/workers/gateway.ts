// The real WorkerGateway: each backup, archive copy and restore runs on a worker VM in the
// database's region, driven over its queues. A worker that goes silent is replaced and the same
// command (same id: commands are idempotent) is sent to the replacement.
import { randomUUID } from 'node:crypto';
import { CosmosBackupError, humanMessage } from '../../shared/errors.ts';
import { sealField } from '../../shared/protocol/auth.ts';
import { BlobSASPermissions, BlobServiceClient, SASProtocol, StorageSharedKeyCredential, generateBlobSASQueryParameters } from '@azure/storage-blob';
import type { CommandBody, Repository as RepoRef, RestoreOptions } from '../../shared/protocol/messages.ts';
import type { Queryable } from '../db/db.ts';
import * as cfg from '../db/config-store.ts';
import type { AzureCloudGateway } from '../azure/gateway.ts';
import type { AzureClients } from '../azure/clients.ts';
import { databaseEndpoint, type DatabaseEndpoint } from '../azure/endpoints.ts';
import type {
  ArchiveJob, ArchiveResult, BackupJob, BackupResult, ExportFile, ExportJob, ExportResult, JobContext, RepositoryAccess, RestoreJob, RestoreResult, WorkerGateway,
} from '../sessions/gateways.ts';
import type { ServiceAccountCredentials } from '../db/config-store.ts';
import type { CloudAccount } from '../policies/scope.ts';
import { WorkerLostError, type CompletedResult, type JobProgress } from './channel.ts';
import { grantRepository, type RepositoryGrant } from './repository-grant.ts';
import { chooseProfile, type WorkPurpose } from './profiles.ts';
import type { Worker, WorkerPool } from './pool.ts';
import type { WorkerSettings } from './settings.ts';
import { infraClients, storageAccess, type RegionalStorage } from './azure-infra.ts';

/** A task is sent to at most this many workers (the first plus replacements of lost ones). */
const MAX_WORKERS_PER_TASK = 3;
const PROGRESS_LOG_MS = 30_000;
export const EXPORT_CONTAINER = 'cosmos-backup-exports';
const TIERS = ['Cool', 'Cold', 'Archive'] as const;

function sealRepo(id: string, field: string, g: RepositoryGrant, pub: string, access?: RepositoryAccess): RepoRef {
  if (!g.sas) throw new CosmosBackupError('INVALID_ARGUMENT', `repository ${g.location} is on this machine's disk: a worker VM cannot reach it; use an Azure Blob repository`);
  const tier = TIERS.find((t) => t === access?.accessTier);
  return {
    location: g.location, ...(g.endpoint ? { endpoint: g.endpoint } : {}), access: 'sas', ...(tier ? { accessTier: tier } : {}),
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

/**
 * The controller API's subset ("schema.table", "schema.*" or a bare table name in public for
 * PostgreSQL; collection names for MongoDB) in the protocol's shape.
 */
export function restoreSubset(engine: 'postgres' | 'mongodb', subset: string[]): NonNullable<RestoreOptions['subset']> {
  if (engine === 'mongodb') return { collections: subset };
  const schemas = subset.filter((s) => s.endsWith('.*')).map((s) => s.slice(0, -2));
  const tables = subset.filter((s) => !s.endsWith('.*')).map((s) => (s.includes('.') ? s : `public.${s}`));
  return { ...(schemas.length ? { schemas } : {}), ...(tables.length ? { tables } : {}) };
}

type StorageKeys = Pick<RegionalStorage, 'blobEndpoint' | 'sharedKeyAccountName' | 'accountKey'>;
function service(s: StorageKeys): BlobServiceClient {
  return new BlobServiceClient(s.blobEndpoint, new StorageSharedKeyCredential(s.sharedKeyAccountName, s.accountKey));
}
function exportBlob(s: StorageKeys, blob: string) {
  return service(s).getContainerClient(EXPORT_CONTAINER).getBlockBlobClient(blob);
}
/** A SAS for one export blob: 'cw' for the worker writing it, 'r' for a download link. */
function blobSas(s: StorageKeys, blob: string, permissions: 'cw' | 'r', expiresOn: Date): string {
  return generateBlobSASQueryParameters({
    containerName: EXPORT_CONTAINER, blobName: blob, permissions: BlobSASPermissions.parse(permissions),
    startsOn: new Date(Date.now() - 5 * 60_000), expiresOn,
    protocol: s.blobEndpoint.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
  }, new StorageSharedKeyCredential(s.sharedKeyAccountName, s.accountKey)).toString();
}

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
      repository: sealRepo(id, 'repository', grant, pub, job.repository),
      labels: { 'cosmos.account': job.account.name, 'cosmos.session': job.sessionId },
      tags: job.tags, parallel: 2,
    }));
    const made: Array<{ database: string; restorePointId: string; bytesStored?: number }> = result.restorePoints
      ?? (result.restorePointId ? [{ database: databases[0] ?? '', restorePointId: result.restorePointId, bytesStored: result.stats.bytesStored }] : []);
    if (!made.length) throw new CosmosBackupError('INTERNAL', `worker ${worker} reported a finished backup without a restore point`);
    return {
      points: made.map((m) => ({ database: m.database, formatPointId: m.restorePointId, bytes: m.bytesStored ?? 0 })),
      bytesRead: result.stats.bytesRead ?? 0, durationMs: result.stats.durationMs, worker,
    };
  }

  async runArchive(job: ArchiveJob): Promise<ArchiveResult> {
    const clients = await this.#cloud.clients(job.serviceAccount);
    const hours = this.#settings.maxLifetimeMs / 3_600_000;
    const from = await grantRepository(job.source, { hours, credential: clients.credential });
    const to = await grantRepository(job.target, { hours, credential: clients.credential });
    // The copy runs beside the source repository: its reads are the bulk of the traffic.
    const region = await this.#repositoryRegion(clients, job.account.subscriptionId, job.source, job.log) ?? job.account.region;
    // The worker configuration is the one of the region the worker runs in.
    const workerConfiguration = region === job.account.region ? job.workerConfiguration : (await cfg.workerConfigurationFor(this.#db, region)) ?? null;
    const { result, worker } = await this.#run({ ...job, workerConfiguration }, job.serviceAccount, clients, { ...job.account, region }, 'archive', 'archive', (id, pub) => ({
      kind: 'copy', jobId: `${job.sessionId}/${job.account.name}`.slice(0, 128), restorePointIds: job.formatPointIds,
      from: sealRepo(id, 'from', from, pub), to: sealRepo(id, 'to', to, pub, job.target),
    }));
    const copies = result.restorePoints?.map((p) => p.restorePointId) ?? (result.restorePointId ? [result.restorePointId] : []);
    if (copies.length !== job.formatPointIds.length) {
      throw new CosmosBackupError('INTERNAL', `worker ${worker} reported ${copies.length} copied restore point(s) for ${job.formatPointIds.length} sent`);
    }
    return { formatPointIds: copies, copiedBytes: result.stats.copiedBytes ?? 0, copiedChunks: result.stats.copiedChunks ?? 0, worker };
  }

  async runRestore(job: RestoreJob): Promise<RestoreResult> {
    const clients = await this.#cloud.clients(job.serviceAccount);
    const ep = await databaseEndpoint(clients, job.target.account, job.credentials);
    const grant = await grantRepository(job.repository, { hours: this.#settings.maxLifetimeMs / 3_600_000, credential: clients.credential });
    const profile = chooseProfile({ purpose: 'restore', sizeBytes: null, configured: job.workerConfiguration?.profile });
    const source = job.sourceDatabase;
    const { result, worker } = await this.#run(job, job.serviceAccount, clients, job.target.account, 'restore', profile, (id, pub) => ({
      kind: 'restore', jobId: `${job.sessionId}/${job.target.account.name}`.slice(0, 128), engine: ep.engine, restorePointId: job.formatPointId,
      repository: sealRepo(id, 'repository', grant, pub), target: endpointField(id, 'target', ep, pub),
      options: {
        ...(source ? { databaseMap: { [source]: job.target.databaseName } } : {}), parallel: 2,
        ...(job.target.subset.length ? { subset: restoreSubset(ep.engine, job.target.subset) } : {}),
      },
    }));
    return { bytes: result.stats.bytesWritten ?? result.stats.bytesRead ?? 0, counts: result.counts ?? {}, worker };
  }

  async runExport(job: ExportJob): Promise<ExportResult> {
    const clients = await this.#cloud.clients(job.serviceAccount);
    const grant = await grantRepository(job.repository, { hours: this.#settings.maxLifetimeMs / 3_600_000, credential: clients.credential });
    const profile = chooseProfile({ purpose: 'restore', sizeBytes: null, configured: job.workerConfiguration?.profile });
    const blob = `${job.sessionId}/${job.fileName}`;
    let storage: RegionalStorage | undefined;
    const prepare = async (w: Worker) => { await service(w.storage).getContainerClient(EXPORT_CONTAINER).createIfNotExists(); };
    const { result, worker } = await this.#run(job, job.serviceAccount, clients, job.account, 'export', profile, (id, pub, w) => {
      storage = w.storage;
      const dest = exportBlob(w.storage, blob);
      // The worker may only create and write this one blob, for as long as a job may run.
      const sas = blobSas(w.storage, blob, 'cw', new Date(Date.now() + this.#settings.maxLifetimeMs));
      return {
        kind: 'export', jobId: `${job.sessionId}/${job.account.name}`.slice(0, 128), restorePointId: job.formatPointId, format: job.format,
        repository: sealRepo(id, 'repository', grant, pub), destination: { url: dest.url, access: 'sas', sas: sealField(id, 'destination.sas', sas, pub) },
      };
    }, prepare);
    const out = result.output;
    if (!out || !storage) throw new CosmosBackupError('INTERNAL', `worker ${worker} reported a finished export without its file`);
    await this.#pruneExports(storage, job.log);
    return {
      file: {
        subscriptionId: job.account.subscriptionId, storageAccountId: storage.id, container: EXPORT_CONTAINER, blob, fileName: job.fileName,
        format: job.format, size: out.size, sha256: out.sha256, expiresAt: new Date(Date.now() + this.#settings.exportKeepMs).toISOString(),
      },
      worker,
    };
  }

  async exportLink(sa: ServiceAccountCredentials, file: ExportFile, minutes: number): Promise<{ url: string; expiresAt: Date }> {
    const clients = await this.#cloud.clients(sa);
    const storage = await storageAccess(infraClients(clients.credential, file.subscriptionId, this.#cloud.settings), file.storageAccountId);
    const expiresAt = new Date(Date.now() + Math.min(60, Math.max(1, minutes)) * 60_000);
    const blob = exportBlob(storage, file.blob);
    if (!(await blob.exists())) throw new CosmosBackupError('NOT_FOUND', `the export ${file.fileName} is no longer stored (exports are kept ${this.#settings.exportKeepMs / 3_600_000} hours): export the restore point again`);
    return { url: `${blob.url}?${blobSas(storage, file.blob, 'r', expiresAt)}`, expiresAt };
  }

  /** The region of a repository's storage account, when the service account can see it in the subscription. */
  async #repositoryRegion(clients: AzureClients, subscriptionId: string, repo: RepositoryAccess, log: (m: string) => void): Promise<string | null> {
    if (repo.location.kind === 'file') return null;
    const name = repo.location.storageAccount.toLowerCase();
    try {
      for await (const a of infraClients(clients.credential, subscriptionId, this.#cloud.settings).storage.storageAccounts.list()) {
        if (a.name?.toLowerCase() === name && a.location) return a.location;
      }
      log(`storage account ${repo.location.storageAccount} is not in subscription ${subscriptionId}: the archive worker runs in the account's region`);
    } catch (e) {
      log(`cannot find the region of storage account ${repo.location.storageAccount} (${humanMessage(e)}): the archive worker runs in the account's region`);
    }
    return null;
  }

  /** Exports older than their keep time are deleted from the regional account. */
  async #pruneExports(storage: Omit<RegionalStorage, 'created'>, log: (m: string) => void): Promise<void> {
    const container = service(storage).getContainerClient(EXPORT_CONTAINER);
    const before = Date.now() - this.#settings.exportKeepMs;
    let removed = 0;
    try {
      for await (const b of container.listBlobsFlat()) {
        if ((b.properties.createdOn ?? b.properties.lastModified).getTime() < before) {
          await container.deleteBlob(b.name, { deleteSnapshots: 'include' }).catch(() => undefined);
          removed++;
        }
      }
    } catch (e) {
      log(`could not delete expired exports in ${storage.name}: ${humanMessage(e)}`);
    }
    if (removed) log(`deleted ${removed} expired export(s) in ${storage.name}`);
  }

  /** Runs one command on a worker of the account's region; replaces a lost worker and re-sends. */
  async #run(job: JobContext, sa: ServiceAccountCredentials, clients: AzureClients, account: CloudAccount, purpose: WorkPurpose | 'export', profile: cfg.WorkerProfile,
    build: (id: string, publicKey: string, worker: Worker) => CommandBody, prepare?: (worker: Worker) => Promise<void>): Promise<{ result: CompletedResult; worker: string }> {
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
        await prepare?.(worker);
        const result = await worker.channel.run((id, pub) => build(id, pub, worker), { commandId, onProgress, signal: job.signal });
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
