// Queries for what administrators configure: service accounts, repositories, worker
// configurations, policies and global settings. Secrets are sealed on the way in and only
// opened for the session runner (never for API responses).
import { randomUUID } from 'node:crypto';
import { CosmosBackupError } from '../../shared/errors.ts';
import type { Queryable } from './db.ts';
import type { SecretBox } from './secrets.ts';
import { ConflictError, notFound, uniqueViolation } from './errors.ts';
import type { Schedules, ArchiveSchedule } from '../policies/model.ts';
import type { Scope } from '../policies/scope.ts';

const iso = (d: unknown) => new Date(d as string).toISOString();
const json = (v: unknown) => JSON.stringify(v ?? null);

// ---- service accounts ----

export interface ServiceAccountInput {
  name: string;
  tenantId: string;
  auth: 'secret' | 'managedIdentity';
  clientId?: string | null;
  clientSecret?: string | null;
  subscriptions: string[];
  /** the cloud's endpoints; null or absent = the controller default */
  armEndpoint?: string | null;
  authorityHost?: string | null;
}
export interface ServiceAccount {
  id: string; name: string; tenantId: string; auth: 'secret' | 'managedIdentity'; clientId: string | null;
  hasSecret: boolean; subscriptions: string[]; armEndpoint: string | null; authorityHost: string | null; createdAt: string; updatedAt: string;
}
/** What the Azure layer needs to sign in; only built for sessions. */
export interface ServiceAccountCredentials {
  id: string; tenantId: string; auth: 'secret' | 'managedIdentity'; clientId: string | null; clientSecret: string | null; subscriptions: string[];
}

const saRow = (r: any): ServiceAccount => ({
  id: r.id, name: r.name, tenantId: r.tenant_id, auth: r.auth, clientId: r.client_id, hasSecret: r.secret_sealed !== null,
  subscriptions: r.subscriptions, armEndpoint: r.arm_endpoint ?? null, authorityHost: r.authority_host ?? null, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at),
});

export async function createServiceAccount(db: Queryable, box: SecretBox, input: ServiceAccountInput): Promise<ServiceAccount> {
  const id = randomUUID();
  const sealed = input.clientSecret ? box.seal(input.clientSecret, `service_accounts.secret:${id}`) : null;
  try {
    const rows = await db.query(
      `INSERT INTO service_accounts (id, name, tenant_id, client_id, auth, secret_sealed, subscriptions, arm_endpoint, authority_host) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9) RETURNING *`,
      [id, input.name, input.tenantId, input.clientId ?? null, input.auth, sealed, json(input.subscriptions), input.armEndpoint ?? null, input.authorityHost ?? null]);
    return saRow(rows[0]);
  } catch (e) { throw uniqueViolation(e, `service account "${input.name}"`); }
}

export async function listServiceAccounts(db: Queryable): Promise<ServiceAccount[]> {
  return (await db.query('SELECT * FROM service_accounts ORDER BY name')).map(saRow);
}

export async function getServiceAccount(db: Queryable, id: string): Promise<ServiceAccount> {
  const r = (await db.query('SELECT * FROM service_accounts WHERE id = $1', [id]))[0];
  if (!r) throw notFound('service account', id);
  return saRow(r);
}

export async function updateServiceAccount(db: Queryable, box: SecretBox, id: string, patch: Partial<ServiceAccountInput>): Promise<ServiceAccount> {
  const cur = await getServiceAccount(db, id);
  const next = { ...cur, ...patch };
  const sealed = patch.clientSecret ? box.seal(patch.clientSecret, `service_accounts.secret:${id}`) : undefined;
  try {
    const rows = await db.query(
      `UPDATE service_accounts SET name=$2, tenant_id=$3, client_id=$4, auth=$5, subscriptions=$6,
         secret_sealed = CASE WHEN $5 = 'managedIdentity' THEN NULL WHEN $7::text IS NULL THEN secret_sealed ELSE $7::text END,
         arm_endpoint=$8, authority_host=$9, updated_at=now() WHERE id=$1 RETURNING *`,
      [id, next.name, next.tenantId, next.clientId ?? null, next.auth, json(next.subscriptions), sealed ?? null, next.armEndpoint ?? null, next.authorityHost ?? null]);
    return saRow(rows[0]);
  } catch (e) { throw uniqueViolation(e, `service account "${next.name}"`); }
}

export async function deleteServiceAccount(db: Queryable, id: string): Promise<void> {
  await getServiceAccount(db, id);
  const users = await db.query(`SELECT name FROM policies WHERE service_account_id = $1 UNION ALL SELECT name FROM repositories WHERE service_account_id = $1`, [id]);
  if (users.length) throw new ConflictError(`service account ${id} is used by ${users.map((u) => `"${u.name}"`).join(', ')}; change those first`);
  await db.query('DELETE FROM service_accounts WHERE id = $1', [id]);
}

export async function serviceAccountCredentials(db: Queryable, box: SecretBox, id: string): Promise<ServiceAccountCredentials> {
  const r = (await db.query('SELECT * FROM service_accounts WHERE id = $1', [id]))[0];
  if (!r) throw notFound('service account', id);
  return {
    id, tenantId: r.tenant_id, auth: r.auth, clientId: r.client_id, subscriptions: r.subscriptions,
    clientSecret: r.secret_sealed ? box.open(r.secret_sealed, `service_accounts.secret:${id}`) : null,
  };
}

// ---- repositories ----

export type AccessTier = 'Hot' | 'Cool' | 'Cold' | 'Archive';
export type LocationKind = 'azblob' | 'file';
export interface RepositoryInput {
  name: string;
  serviceAccountId?: string | null;
  /** 'azblob' (default): storageAccount/container/folder; 'file': an absolute path on the controller's machine */
  kind?: LocationKind;
  storageAccount: string;
  container: string;
  folder: string;
  path?: string | null;
  accessTier: AccessTier;
  password?: string | null;
  /** a storage connection string or SAS token for this repository (sealed; write-only) */
  storageCredential?: string | null;
  immutability: boolean;
}
export interface Repository {
  id: string; name: string; serviceAccountId: string | null; kind: LocationKind; storageAccount: string; container: string; folder: string;
  path: string | null; accessTier: AccessTier; encrypted: boolean; hasStorageCredential: boolean; immutability: boolean; formatId: string | null;
  createdAt: string; updatedAt: string;
}
/** Where a repository is. kind absent = 'azblob'; for 'file', path is set and the Azure fields are empty. */
export interface RepositoryLocation { storageAccount: string; container: string; folder: string; kind?: LocationKind; path?: string | null }

const repoRow = (r: any): Repository => ({
  id: r.id, name: r.name, serviceAccountId: r.service_account_id, kind: r.location_kind ?? 'azblob', storageAccount: r.storage_account, container: r.container,
  folder: r.folder, path: r.path ?? null, accessTier: r.access_tier, encrypted: r.password_sealed !== null, hasStorageCredential: Boolean(r.storage_credential_sealed),
  immutability: r.immutability, formatId: r.format_id, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at),
});

/** The location of a stored repository, as gateways take it. */
export function repositoryLocation(r: Pick<Repository, 'storageAccount' | 'container' | 'folder' | 'path'> & { kind?: LocationKind }): RepositoryLocation {
  return { kind: r.kind, storageAccount: r.storageAccount, container: r.container, folder: r.folder, path: r.path };
}

export async function insertRepository(db: Queryable, box: SecretBox, id: string, input: RepositoryInput, formatId: string): Promise<Repository> {
  const sealed = input.password ? box.seal(input.password, `repositories.password:${id}`) : null;
  const credential = input.storageCredential ? box.seal(input.storageCredential, `repositories.storage_credential:${id}`) : null;
  const file = input.kind === 'file';
  try {
    const rows = await db.query(
      `INSERT INTO repositories (id, name, service_account_id, storage_account, container, folder, access_tier, password_sealed, immutability, format_id, location_kind, path, storage_credential_sealed)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13) RETURNING *`,
      [id, input.name, input.serviceAccountId ?? null, file ? '' : input.storageAccount, file ? '' : input.container, file ? '' : input.folder,
        input.accessTier, sealed, input.immutability, formatId, file ? 'file' : 'azblob', file ? input.path : null, credential]);
    return repoRow(rows[0]);
  } catch (e) { throw uniqueViolation(e, `repository "${input.name}" or its location`); }
}

export async function listRepositories(db: Queryable): Promise<Repository[]> {
  return (await db.query('SELECT * FROM repositories ORDER BY name')).map(repoRow);
}

export async function getRepository(db: Queryable, id: string): Promise<Repository> {
  const r = (await db.query('SELECT * FROM repositories WHERE id = $1', [id]))[0];
  if (!r) throw notFound('repository', id);
  return repoRow(r);
}

/** Name, tier and immutability can change; location and password are fixed by the repository format. */
export async function updateRepository(db: Queryable, id: string, patch: { name?: string; accessTier?: AccessTier; immutability?: boolean }): Promise<Repository> {
  const cur = await getRepository(db, id);
  try {
    const rows = await db.query('UPDATE repositories SET name=$2, access_tier=$3, immutability=$4, updated_at=now() WHERE id=$1 RETURNING *',
      [id, patch.name ?? cur.name, patch.accessTier ?? cur.accessTier, patch.immutability ?? cur.immutability]);
    return repoRow(rows[0]);
  } catch (e) { throw uniqueViolation(e, `repository "${patch.name}"`); }
}

export async function deleteRepository(db: Queryable, id: string): Promise<void> {
  await getRepository(db, id);
  const users = await db.query(`SELECT name FROM policies WHERE backup->>'repositoryId' = $1 OR archive->>'repositoryId' = $1`, [id]);
  if (users.length) throw new ConflictError(`repository ${id} is used by policy ${users.map((u) => `"${u.name}"`).join(', ')}; change those first`);
  const points = await db.query('SELECT count(*) AS n FROM restore_points WHERE repository_id = $1', [id]);
  if (Number(points[0]!.n) > 0) throw new ConflictError(`repository ${id} still holds ${points[0]!.n} restore points; they stay restorable while it is registered`);
  await db.query('DELETE FROM repositories WHERE id = $1', [id]);
}

export async function repositoryPassword(db: Queryable, box: SecretBox, id: string): Promise<string | null> {
  const r = (await db.query('SELECT password_sealed FROM repositories WHERE id = $1', [id]))[0];
  if (!r) throw notFound('repository', id);
  return r.password_sealed ? box.open(r.password_sealed, `repositories.password:${id}`) : null;
}

export async function repositoryStorageCredential(db: Queryable, box: SecretBox, id: string): Promise<string | null> {
  const r = (await db.query('SELECT storage_credential_sealed FROM repositories WHERE id = $1', [id]))[0];
  if (!r) throw notFound('repository', id);
  return r.storage_credential_sealed ? box.open(r.storage_credential_sealed, `repositories.storage_credential:${id}`) : null;
}

// ---- worker configurations ----

export type WorkerProfile = 'small' | 'medium' | 'large' | 'archive';
export interface WorkerConfigurationInput {
  name: string; region: string; profile: WorkerProfile; virtualNetwork?: string | null; subnet?: string | null;
  privateNetwork: boolean; maxWorkers: number;
}
export interface WorkerConfiguration extends Required<WorkerConfigurationInput> { id: string; createdAt: string; updatedAt: string }

const wcRow = (r: any): WorkerConfiguration => ({
  id: r.id, name: r.name, region: r.region, profile: r.profile, virtualNetwork: r.virtual_network, subnet: r.subnet,
  privateNetwork: r.private_network, maxWorkers: r.max_workers, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at),
});

export async function createWorkerConfiguration(db: Queryable, input: WorkerConfigurationInput): Promise<WorkerConfiguration> {
  try {
    const rows = await db.query(
      `INSERT INTO worker_configurations (id, name, region, profile, virtual_network, subnet, private_network, max_workers) VALUES ($1,$2,$3,$4,$5,$6,$7,$8) RETURNING *`,
      [randomUUID(), input.name, input.region, input.profile, input.virtualNetwork ?? null, input.subnet ?? null, input.privateNetwork, input.maxWorkers]);
    return wcRow(rows[0]);
  } catch (e) { throw uniqueViolation(e, `worker configuration "${input.name}"`); }
}
export async function listWorkerConfigurations(db: Queryable): Promise<WorkerConfiguration[]> {
  return (await db.query('SELECT * FROM worker_configurations ORDER BY name')).map(wcRow);
}
export async function getWorkerConfiguration(db: Queryable, id: string): Promise<WorkerConfiguration> {
  const r = (await db.query('SELECT * FROM worker_configurations WHERE id = $1', [id]))[0];
  if (!r) throw notFound('worker configuration', id);
  return wcRow(r);
}
export async function updateWorkerConfiguration(db: Queryable, id: string, patch: Partial<WorkerConfigurationInput>): Promise<WorkerConfiguration> {
  const n = { ...(await getWorkerConfiguration(db, id)), ...patch };
  try {
    const rows = await db.query(
      `UPDATE worker_configurations SET name=$2, region=$3, profile=$4, virtual_network=$5, subnet=$6, private_network=$7, max_workers=$8, updated_at=now() WHERE id=$1 RETURNING *`,
      [id, n.name, n.region, n.profile, n.virtualNetwork ?? null, n.subnet ?? null, n.privateNetwork, n.maxWorkers]);
    return wcRow(rows[0]);
  } catch (e) { throw uniqueViolation(e, `worker configuration "${n.name}"`); }
}
export async function deleteWorkerConfiguration(db: Queryable, id: string): Promise<void> {
  await getWorkerConfiguration(db, id);
  await db.query('DELETE FROM worker_configurations WHERE id = $1', [id]);
}
/** The configuration for a region, if administrators added one (otherwise workers use automatic networking). */
export async function workerConfigurationFor(db: Queryable, region: string): Promise<WorkerConfiguration | undefined> {
  const r = (await db.query('SELECT * FROM worker_configurations WHERE lower(region) = lower($1) ORDER BY created_at LIMIT 1', [region]))[0];
  return r ? wcRow(r) : undefined;
}

// ---- policies ----

export type SslMode = 'disable' | 'require' | 'verify-ca' | 'verify-full';
export interface CredentialInput { accountId: string; username: string; password?: string; databases?: string[]; sslmode?: SslMode }
export interface BackupSettings { repositoryId: string; schedules: Schedules; credentials: CredentialInput[] }
export interface ArchiveSettings { repositoryId: string; schedule: ArchiveSchedule }
export interface NotificationSettings { onSuccess: boolean; onWarning: boolean; onFailure: boolean; recipients: string[] }
export interface PolicyInput {
  name: string; enabled: boolean; priority?: number; serviceAccountId: string; scope: Scope; continuousTier: 7 | 30;
  /** may configuration sessions migrate periodic-backup accounts to continuous backup (one-way); default false */
  allowMigration?: boolean;
  backup?: BackupSettings | null; archive?: ArchiveSettings | null; notifications: NotificationSettings;
}
export interface Policy {
  id: string; name: string; enabled: boolean; priority: number; serviceAccountId: string; scope: Scope; continuousTier: 7 | 30; allowMigration: boolean;
  backup: (Omit<BackupSettings, 'credentials'> & { credentials: { accountId: string; username: string; databases: string[]; sslmode: SslMode; hasSecret: true }[] }) | null;
  archive: ArchiveSettings | null; notifications: NotificationSettings; createdAt: string; updatedAt: string;
}

async function policyRow(db: Queryable, r: any): Promise<Policy> {
  const creds = r.backup ? await db.query('SELECT account_id, username, databases, sslmode FROM policy_credentials WHERE policy_id = $1 ORDER BY account_id', [r.id]) : [];
  return {
    id: r.id, name: r.name, enabled: r.enabled, priority: r.priority, serviceAccountId: r.service_account_id, scope: r.scope,
    continuousTier: r.continuous_tier, allowMigration: r.allow_migration,
    backup: r.backup ? { ...r.backup, credentials: creds.map((c) => ({ accountId: c.account_id, username: c.username, databases: c.databases ?? [], sslmode: c.sslmode, hasSecret: true as const })) } : null,
    archive: r.archive, notifications: r.notifications, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at),
  };
}

async function checkReferences(db: Queryable, p: PolicyInput): Promise<void> {
  await getServiceAccount(db, p.serviceAccountId);
  if (p.backup) await getRepository(db, p.backup.repositoryId);
  if (p.archive) await getRepository(db, p.archive.repositoryId);
}

async function writeCredentials(db: Queryable, box: SecretBox, policyId: string, creds: CredentialInput[] | undefined): Promise<void> {
  const existing = new Set((await db.query('SELECT account_id FROM policy_credentials WHERE policy_id = $1', [policyId])).map((r) => r.account_id as string));
  const keep = new Set((creds ?? []).map((c) => c.accountId));
  for (const id of existing) if (!keep.has(id)) await db.query('DELETE FROM policy_credentials WHERE policy_id=$1 AND account_id=$2', [policyId, id]);
  for (const c of creds ?? []) {
    if (c.password !== undefined) {
      const sealed = box.seal(c.password, `policy_credentials.password:${policyId}:${c.accountId}`);
      await db.query(`INSERT INTO policy_credentials (policy_id, account_id, username, password_sealed, databases, sslmode) VALUES ($1,$2,$3,$4,$5,$6)
        ON CONFLICT (policy_id, account_id) DO UPDATE SET username = EXCLUDED.username, password_sealed = EXCLUDED.password_sealed, databases = EXCLUDED.databases, sslmode = EXCLUDED.sslmode`,
      [policyId, c.accountId, c.username, sealed, JSON.stringify(c.databases ?? []), c.sslmode ?? 'verify-full']);
    } else if (existing.has(c.accountId)) {
      await db.query('UPDATE policy_credentials SET username=$3, databases=$4, sslmode=$5 WHERE policy_id=$1 AND account_id=$2', [policyId, c.accountId, c.username, JSON.stringify(c.databases ?? []), c.sslmode ?? 'verify-full']);
    } else {
      throw new CosmosBackupError('INVALID_ARGUMENT', `backup.credentials: account ${c.accountId} has no stored password; give one`);
    }
  }
}

const backupJson = (b: BackupSettings | null | undefined) => (b ? json({ repositoryId: b.repositoryId, schedules: b.schedules }) : null);

export async function createPolicy(db: Queryable, box: SecretBox, input: PolicyInput): Promise<Policy> {
  await checkReferences(db, input);
  const id = randomUUID();
  const priority = input.priority ?? Number((await db.query('SELECT coalesce(max(priority), 0) + 1 AS p FROM policies'))[0]!.p);
  try {
    await db.query(
      `INSERT INTO policies (id, name, enabled, priority, service_account_id, scope, continuous_tier, backup, archive, notifications, allow_migration)
       VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
      [id, input.name, input.enabled, priority, input.serviceAccountId, json(input.scope), input.continuousTier, backupJson(input.backup),
        input.archive ? json(input.archive) : null, json(input.notifications), input.allowMigration ?? false]);
  } catch (e) { throw uniqueViolation(e, `policy "${input.name}"`); }
  if (input.backup) await writeCredentials(db, box, id, input.backup.credentials);
  return getPolicy(db, id);
}

export async function listPolicies(db: Queryable): Promise<Policy[]> {
  const rows = await db.query('SELECT * FROM policies ORDER BY priority, created_at');
  return Promise.all(rows.map((r) => policyRow(db, r)));
}

export async function getPolicy(db: Queryable, id: string): Promise<Policy> {
  const r = (await db.query('SELECT * FROM policies WHERE id = $1', [id]))[0];
  if (!r) throw notFound('policy', id);
  return policyRow(db, r);
}

export async function updatePolicy(db: Queryable, box: SecretBox, id: string, patch: Partial<PolicyInput>): Promise<Policy> {
  const cur = await getPolicy(db, id);
  const next: PolicyInput = {
    ...cur, ...patch,
    backup: patch.backup === undefined ? (cur.backup ? { ...cur.backup, credentials: cur.backup.credentials.map((c) => ({ accountId: c.accountId, username: c.username, databases: c.databases, sslmode: c.sslmode })) } : null) : patch.backup,
  };
  await checkReferences(db, next);
  try {
    await db.query(
      `UPDATE policies SET name=$2, enabled=$3, priority=$4, service_account_id=$5, scope=$6, continuous_tier=$7, backup=$8, archive=$9, notifications=$10,
         allow_migration=$11, updated_at=now() WHERE id=$1`,
      [id, next.name, next.enabled, next.priority ?? cur.priority, next.serviceAccountId, json(next.scope), next.continuousTier, backupJson(next.backup),
        next.archive ? json(next.archive) : null, json(next.notifications), next.allowMigration ?? cur.allowMigration]);
  } catch (e) { throw uniqueViolation(e, `policy "${next.name}"`); }
  await writeCredentials(db, box, id, next.backup ? next.backup.credentials : []);
  return getPolicy(db, id);
}

export async function deletePolicy(db: Queryable, id: string): Promise<void> {
  await getPolicy(db, id);
  await db.query('DELETE FROM policies WHERE id = $1', [id]);
}

export async function policyCredential(db: Queryable, box: SecretBox, policyId: string, accountId: string): Promise<{ username: string; password: string; databases: string[]; sslmode: SslMode } | undefined> {
  const r = (await db.query('SELECT * FROM policy_credentials WHERE policy_id = $1 AND lower(account_id) = lower($2)', [policyId, accountId]))[0];
  return r ? { username: r.username, password: box.open(r.password_sealed, `policy_credentials.password:${policyId}:${r.account_id}`), databases: r.databases ?? [], sslmode: r.sslmode } : undefined;
}

// ---- global settings ----

export interface EmailSettings {
  enabled: boolean;
  smtp: { host: string; port: number; secure: boolean; username: string | null; password?: string | null };
  from: string; to: string[];
  notifyOnSuccess: boolean; notifyOnWarning: boolean; notifyOnFailure: boolean;
  /** time HH:MM in timeZone (default UTC) */
  dailyReport: { enabled: boolean; time: string; timeZone?: string };
}
export interface Settings {
  sessionRetentionDays: number;
  /** private network deployment for workers in every region (a worker configuration can ask for it in its own) */
  privateNetwork: boolean;
  email: EmailSettings | null;
}
export type PublicSettings = Omit<Settings, 'email'> & {
  email: (Omit<EmailSettings, 'smtp' | 'dailyReport'> & { dailyReport: Required<EmailSettings['dailyReport']>; smtp: Omit<EmailSettings['smtp'], 'password'> & { hasPassword: boolean } }) | null;
};

export const DEFAULT_SETTINGS: Settings = { sessionRetentionDays: 365, privateNetwork: false, email: null };

async function rawSettings(db: Queryable): Promise<{ sessionRetentionDays: number; privateNetwork: boolean; email: (EmailSettings & { smtp: { passwordSealed?: string | null } }) | null }> {
  const r = (await db.query(`SELECT value FROM settings WHERE key = 'global'`))[0];
  return { ...DEFAULT_SETTINGS, ...(r?.value ?? {}) };
}

export async function getSettings(db: Queryable): Promise<PublicSettings> {
  const s = await rawSettings(db);
  if (!s.email) return { sessionRetentionDays: s.sessionRetentionDays, privateNetwork: s.privateNetwork, email: null };
  const { passwordSealed, password: _p, ...smtp } = s.email.smtp;
  return { sessionRetentionDays: s.sessionRetentionDays, privateNetwork: s.privateNetwork, email: { ...s.email, dailyReport: { timeZone: 'UTC', ...s.email.dailyReport }, smtp: { ...smtp, hasPassword: Boolean(passwordSealed) } } };
}

/** Settings with the SMTP password opened, for the notifier. */
export async function settingsWithSecrets(db: Queryable, box: SecretBox): Promise<Settings> {
  const s = await rawSettings(db);
  if (!s.email) return { sessionRetentionDays: s.sessionRetentionDays, privateNetwork: s.privateNetwork, email: null };
  const { passwordSealed, ...smtp } = s.email.smtp;
  return { ...s, email: { ...s.email, smtp: { ...smtp, password: passwordSealed ? box.open(passwordSealed, 'settings.smtp.password') : null } } };
}

/** Replaces the settings; an SMTP password left out keeps the stored one, null clears it. */
export async function putSettings(db: Queryable, box: SecretBox, s: Settings): Promise<PublicSettings> {
  const prev = await rawSettings(db);
  let stored: unknown = { sessionRetentionDays: s.sessionRetentionDays, privateNetwork: s.privateNetwork ?? false, email: null };
  if (s.email) {
    const { password, ...smtp } = s.email.smtp;
    const passwordSealed = password === undefined ? (prev.email?.smtp.passwordSealed ?? null) : password === null ? null : box.seal(password, 'settings.smtp.password');
    stored = { sessionRetentionDays: s.sessionRetentionDays, privateNetwork: s.privateNetwork ?? false, email: { ...s.email, smtp: { ...smtp, passwordSealed } } };
  }
  await db.query(`INSERT INTO settings (key, value) VALUES ('global', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`, [json(stored)]);
  return getSettings(db);
}

// ---- controller meta (master key check) ----

const KEY_CHECK = 'cosmos-backup master key check';

/** Proves the master key is the one the secrets were sealed with; a new key on old data refuses to start. */
export async function verifyMasterKey(db: Queryable, box: SecretBox): Promise<void> {
  const r = (await db.query(`SELECT value FROM controller_meta WHERE key = 'key_check'`))[0];
  if (!r) {
    await db.query(`INSERT INTO controller_meta (key, value) VALUES ('key_check', $1) ON CONFLICT (key) DO NOTHING`, [box.seal(KEY_CHECK, 'controller_meta.key_check')]);
    return;
  }
  try {
    box.open(r.value, 'controller_meta.key_check');
  } catch {
    throw new ConflictError('the master key does not match this configuration database (secrets were sealed with another key); restore the original key file or COSMOS_BACKUP_MASTER_KEY');
  }
}

/** This controller's id: the value of the tag on everything it creates in Azure. Made on first use. */
export async function controllerId(db: Queryable): Promise<string> {
  await db.query(`INSERT INTO controller_meta (key, value) VALUES ('controller_id', $1) ON CONFLICT (key) DO NOTHING`, [`cb-${randomUUID().slice(0, 8)}`]);
  return (await db.query(`SELECT value FROM controller_meta WHERE key = 'controller_id'`))[0].value as string;
}
