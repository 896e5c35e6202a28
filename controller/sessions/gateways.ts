// What sessions need from the outside world. The controller's start-up (controller/start.ts)
// passes real implementations in; sessions never construct them.
import type { CloudAccount } from '../policies/scope.ts';
import type { ServiceAccountCredentials, RepositoryLocation, WorkerConfiguration } from '../db/config-store.ts';
import type { ExportFile, ExportFormat, RetrievalStatus } from '../db/session-store.ts';

export type { ExportFile, ExportFormat, RetrievalStatus };

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
  /** the repository's access tier for data packs (Hot when absent) */
  accessTier?: string | null;
}


/** The repository format (shared/repository), as the controller uses it. */
export interface RepositoryGateway {
  /** Creates a new repository; fails with REPO_EXISTS if one is there. Returns the format's repository id. */
  init(repo: RepositoryAccess): Promise<{ formatId: string }>;
  /** Opens an existing repository; REPO_NOT_FOUND if none, WRONG_PASSWORD/PASSWORD_REQUIRED on a bad password. */
  attach(repo: RepositoryAccess): Promise<{ formatId: string }>;
  /** Removes restore points from the repository (their data becomes garbage for gc). */
  forget(repo: RepositoryAccess, formatPointIds: string[]): Promise<void>;
  /** Reports, and with `start` begins, the rehydration of the archived packs the points need. */
  retrieval(repo: RepositoryAccess, formatPointIds: string[], opts: { start: boolean; priority?: 'Standard' | 'High' }): Promise<RetrievalStatus>;
  /** Puts the packs of the points back into the repository's tier (after a restore); returns how many moved. */
  rearchive(repo: RepositoryAccess, formatPointIds: string[]): Promise<number>;
}

/** A PostgreSQL login (with libpq's sslmode; Azure requires TLS, so verify-full unless set). */
export interface DatabaseLogin { username: string; password: string; sslmode?: 'disable' | 'require' | 'verify-ca' | 'verify-full' }

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
  credentials: DatabaseLogin | null;
  /** databases to dump; empty = the engine's default (PostgreSQL: "citus"; MongoDB: every database) */
  databases: string[];
  /** D/W/M/Y flags the points get, stored in their manifests as tags */
  tags: string[];
  /** an estimate of the data size in bytes, for the worker's size profile; null = unknown */
  sizeHint: number | null;
  /** no earlier point of this account is in the repository (a first full backup gets the large profile) */
  firstBackup: boolean;
}
/** What one account's backup made: a restore point per database. */
export interface BackupResult {
  points: Array<{ database: string; formatPointId: string; bytes: number }>;
  bytesRead: number;
  durationMs: number;
  worker: string | null;
}
export interface ArchiveJob extends JobContext {
  account: CloudAccount;
  serviceAccount: ServiceAccountCredentials;
  source: RepositoryAccess;
  target: RepositoryAccess;
  /** the restore points to copy (the latest backup's points of the account, one per database) */
  formatPointIds: string[];
}
export interface ArchiveResult {
  /** the copies' ids in the archive, in the order of the job's formatPointIds (ids differ per repository) */
  formatPointIds: string[];
  /** bytes the archive received (chunks it lacked), and chunks copied */
  copiedBytes: number;
  copiedChunks: number;
  worker: string | null;
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
  credentials: DatabaseLogin | null;
  /** the database the restore point holds (it is restored under target.databaseName) */
  sourceDatabase: string | null;
}
export interface RestoreResult {
  bytes: number;
  /** rows/documents per table or collection on the target, as the worker counted them */
  counts: Record<string, number>;
  worker: string | null;
}

export interface ExportJob extends JobContext {
  formatPointId: string;
  /** the account the point was taken from: the worker runs in its region */
  account: CloudAccount;
  serviceAccount: ServiceAccountCredentials;
  repository: RepositoryAccess;
  /** sql: a plain SQL script for psql (PostgreSQL); mongodump: a .tar.gz of mongodump's layout (MongoDB) */
  format: ExportFormat;
  /** the file's name (no path) */
  fileName: string;
}
export interface ExportResult { file: ExportFile; worker: string | null }

/** Workers: launch a VM in the account's region, run the agent, deallocate. */
export interface WorkerGateway {
  runBackup(job: BackupJob): Promise<BackupResult>;
  runArchive(job: ArchiveJob): Promise<ArchiveResult>;
  runRestore(job: RestoreJob): Promise<RestoreResult>;
  runExport(job: ExportJob): Promise<ExportResult>;
  /** A read-only link to one export blob, valid `minutes` (at most 60). */
  exportLink(sa: ServiceAccountCredentials, file: ExportFile, minutes: number): Promise<{ url: string; expiresAt: Date }>;
}

export interface Gateways {
  cloud: CloudGateway;
  workers: WorkerGateway;
  repositories: RepositoryGateway;
}
