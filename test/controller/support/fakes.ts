// In-memory stand-ins for the controller's gateways (Azure control plane, workers, repository
// format), for controller tests only. They keep just enough state to check what sessions did.
import { randomUUID, createHash } from 'node:crypto';
import { CosmosBackupError } from '../../../shared/errors.ts';
import type { CloudGateway, Gateways, RepositoryAccess, RepositoryGateway, WorkerGateway, BackupJob, ArchiveJob, ExportJob, RestoreJob } from '../../../controller/sessions/gateways.ts';
import type { CloudAccount } from '../../../controller/policies/scope.ts';
import type { ServiceAccountCredentials } from '../../../controller/db/config-store.ts';

export class InMemoryCloud implements CloudGateway {
  accounts: CloudAccount[] = [];
  tiers = new Map<string, 7 | 30>();
  readonly signIns: ServiceAccountCredentials[] = [];

  addAccount(a: Partial<CloudAccount> & { name: string }): CloudAccount {
    const sub = a.subscriptionId ?? '00000000-0000-0000-0000-000000000001';
    const rg = a.resourceGroup ?? 'rg-data';
    const acc: CloudAccount = {
      id: `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.DocumentDB/databaseAccounts/${a.name}`,
      subscriptionId: sub, resourceGroup: rg, region: 'westeurope', kind: 'PostgreSQL', tags: {}, ...a,
    };
    this.accounts.push(acc);
    return acc;
  }

  async listAccounts(sa: ServiceAccountCredentials): Promise<CloudAccount[]> {
    this.signIns.push(sa);
    return this.accounts.filter((a) => sa.subscriptions.length === 0 || sa.subscriptions.includes(a.subscriptionId));
  }

  /** the allowMigration each call was given, by account id */
  readonly migrationChoices: { accountId: string; allowMigration: boolean | undefined }[] = [];

  async ensureContinuousBackup(_sa: ServiceAccountCredentials, account: CloudAccount, tier: 7 | 30, opts?: { allowMigration?: boolean }) {
    this.migrationChoices.push({ accountId: account.id, allowMigration: opts?.allowMigration });
    const previousTier = this.tiers.get(account.id) ?? null;
    this.tiers.set(account.id, tier);
    return { changed: previousTier !== tier, previousTier, oldestRestorableTime: null };
  }
}

export class InMemoryRepositories implements RepositoryGateway {
  readonly repos = new Map<string, { formatId: string; passwordHash: string | null; points: Set<string> }>();
  readonly forgotten: string[] = [];
  static key(r: RepositoryAccess) { return r.location.kind === 'file' ? `file:${r.location.path}` : `${r.location.storageAccount}/${r.location.container}/${r.location.folder}`; }
  static hash(p: string | null) { return p === null ? null : createHash('sha256').update(p).digest('hex'); }

  async init(r: RepositoryAccess) {
    const k = InMemoryRepositories.key(r);
    if (this.repos.has(k)) throw new CosmosBackupError('REPO_EXISTS', `a repository already exists at ${k}`);
    const formatId = randomUUID();
    this.repos.set(k, { formatId, passwordHash: InMemoryRepositories.hash(r.password), points: new Set() });
    return { formatId };
  }

  async attach(r: RepositoryAccess) {
    const repo = this.repos.get(InMemoryRepositories.key(r));
    if (!repo) throw new CosmosBackupError('REPO_NOT_FOUND', `no repository at ${InMemoryRepositories.key(r)}`);
    if (repo.passwordHash && !r.password) throw new CosmosBackupError('PASSWORD_REQUIRED', 'the repository is encrypted: give its password');
    if (repo.passwordHash !== InMemoryRepositories.hash(r.password)) throw new CosmosBackupError('WRONG_PASSWORD', 'wrong repository password');
    return { formatId: repo.formatId };
  }

  async forget(r: RepositoryAccess, ids: string[]) {
    const repo = this.repos.get(InMemoryRepositories.key(r));
    if (!repo) throw new CosmosBackupError('REPO_NOT_FOUND', 'no repository');
    for (const id of ids) { repo.points.delete(id); this.forgotten.push(id); }
  }

  /** Nothing is tiered in memory: every point is online. */
  async retrieval() { return { state: 'online' as const, packs: 0, archived: 0, rehydrating: 0 }; }
  async rearchive() { return 0; }
}

/** Workers that finish at once, or (mode 'hang') never finish until aborted. */
export class InMemoryWorkers implements WorkerGateway {
  mode: 'finish' | 'hang' | 'fail' = 'finish';
  readonly started: BackupJob[] = [];
  readonly archived: ArchiveJob[] = [];
  readonly restored: RestoreJob[] = [];
  readonly repos: InMemoryRepositories;
  constructor(repos: InMemoryRepositories) { this.repos = repos; }

  async runBackup(job: BackupJob) {
    this.started.push(job);
    job.log('worker started');
    if (this.mode === 'fail') throw new CosmosBackupError('DATABASE_AUTH', 'password authentication failed for user "backup"');
    if (this.mode === 'hang') {
      await new Promise<never>((_, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason), { once: true }));
    }
    const id = randomUUID();
    this.repos.repos.get(InMemoryRepositories.key(job.repository))?.points.add(id);
    return { points: [{ database: job.databases[0] ?? 'citus', formatPointId: id, bytes: 1000 + this.started.length }], bytesRead: 5000, durationMs: 10, worker: 'fake-worker' };
  }

  async runRestore(job: RestoreJob) {
    this.restored.push(job);
    job.log(`restoring into database "${job.target.databaseName}" on ${job.target.account.name}`);
    if (this.mode === 'fail') throw new CosmosBackupError('TARGET_NOT_EMPTY', `database "${job.target.databaseName}" already exists on ${job.target.account.name}`);
    if (this.mode === 'hang') {
      await new Promise<never>((_, reject) => job.signal.addEventListener('abort', () => reject(job.signal.reason), { once: true }));
    }
    return { bytes: 4096, counts: { 'public.orders': 3 }, worker: 'fake-worker' };
  }

  async runArchive(job: ArchiveJob) {
    this.archived.push(job);
    // Copies get ids of their own in the archive.
    const formatPointIds = job.formatPointIds.map(() => randomUUID());
    for (const id of formatPointIds) this.repos.repos.get(InMemoryRepositories.key(job.target))?.points.add(id);
    return { formatPointIds, copiedBytes: 500, copiedChunks: 2, worker: 'fake-worker' };
  }

  async runExport(job: ExportJob) {
    return {
      file: {
        subscriptionId: job.account.subscriptionId, storageAccountId: 'sa', container: 'exports', blob: `${job.sessionId}/${job.fileName}`, fileName: job.fileName,
        format: job.format, size: 10, sha256: '0'.repeat(64), expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
      worker: 'fake-worker',
    };
  }

  async exportLink(_sa: unknown, file: { blob: string }, minutes: number) {
    return { url: `https://example.invalid/exports/${file.blob}`, expiresAt: new Date(Date.now() + minutes * 60_000) };
  }
}

export function fakeGateways(): Gateways & { cloud: InMemoryCloud; workers: InMemoryWorkers; repositories: InMemoryRepositories } {
  const repositories = new InMemoryRepositories();
  return { cloud: new InMemoryCloud(), workers: new InMemoryWorkers(repositories), repositories };
}
