// What sessions need from the outside world. The controller's start-up (controller/start.ts)
// passes real implementations in; sessions never construct them.
import type { CloudAccount } from '../policies/scope.ts';
import type { ServiceAccountCredentials, RepositoryLocation, WorkerConfiguration } from '../db/config-store.ts';

/** The Azure control plane, as seen by sessions. */
export interface CloudGateway {
  /** Cosmos DB accounts the service account can see in its subscriptions. */
  listAccounts(sa: ServiceAccountCredentials): Promise<CloudAccount[]>;
  /**
   * Makes the account's continuous backup use `tier` days (one PATCH of its own: ARM refuses a
   * tier change together with other properties) and reports what Azure can restore. An account
   * on periodic backup is migrated (one-way) only when `allowMigration` says so.
   */
  ensureContinuousBackup(sa: ServiceAccountCredentials, account: CloudAccount, tier: 7 | 30, opts?: { allowMigration?: boolean }): Promise<{ changed: boolean; previousTier: 7 | 30 | null; oldestRestorableTime: Date | null }>;
}

export interface RepositoryAccess {
  location: RepositoryLocation;
  serviceAccount: ServiceAccountCredentials | null;
  password: string | null;
  /** a storage connection string or SAS token registered with the repository, if any */
  storageCredential?: string | null;
}

/** The repository format (shared/repository), as the controller uses it. */
export interface RepositoryGateway {
  /** Creates a new repository; fails with REPO_EXISTS if one is there. Returns the format's repository id. */
  init(repo: RepositoryAccess): Promise<{ formatId: string }>;
  /** Opens an existing repository; REPO_NOT_FOUND if none, WRONG_PASSWORD/PASSWORD_REQUIRED on a bad password. */
  attach(repo: RepositoryAccess): Promise<{ formatId: string }>;
  /** Removes restore points from the repository (their data becomes garbage for gc). */
  forget(repo: RepositoryAccess, formatPointIds: string[]): Promise<void>;
}

/** What every job handed to a worker carries: its session, where to run, cancellation, a log. */
export interface JobContext {
  sessionId: string;
  workerConfiguration: WorkerConfiguration | null;
  signal: AbortSignal;
  log(message: string): void;
}

export interface BackupJob extends JobContext {
  account: CloudAccount;
  serviceAccount: ServiceAccountCredentials;
  repository: RepositoryAccess;
  /** database login for PostgreSQL; MongoDB RU accounts use the keys ARM returns */
  credentials: { username: string; password: string } | null;
}
export interface ArchiveJob extends JobContext {
  account: CloudAccount;
  serviceAccount: ServiceAccountCredentials;
  source: RepositoryAccess;
  target: RepositoryAccess;
  formatPointId: string;
}

/** What a restore writes where: a new database on the target account (never over an existing one). */
export interface RestoreTarget {
  account: CloudAccount;
  /** name of the database to create */
  databaseName: string;
  /** only these tables/collections ("schema.table" or "collection"); empty = everything */
  subset: string[];
}
export interface RestoreJob extends JobContext {
  /** the restore point inside the repository format */
  formatPointId: string;
  /** the account the restore point was taken from */
  sourceAccountId: string;
  sourceAccountName: string;
  pointCreatedAt: Date;
  target: RestoreTarget;
  serviceAccount: ServiceAccountCredentials;
  repository: RepositoryAccess;
  /** database login on the target (PostgreSQL); MongoDB RU accounts use the keys ARM returns */
  credentials: { username: string; password: string } | null;
}

/** Workers: launch a VM in the account's region, run the agent, deallocate. */
export interface WorkerGateway {
  runBackup(job: BackupJob): Promise<{ formatPointId: string; bytes: number }>;
  runArchive(job: ArchiveJob): Promise<{ formatPointId: string; bytes: number }>;
  runRestore(job: RestoreJob): Promise<{ bytes: number }>;
}

export interface Gateways {
  cloud: CloudGateway;
  workers: WorkerGateway;
  repositories: RepositoryGateway;
}
