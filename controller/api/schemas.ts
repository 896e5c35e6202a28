// Request and response schemas: the one source of validation and of the OpenAPI document.
import { z } from '@hono/zod-openapi';
import { ArchiveSchedule, Schedules, TimeZone } from '../policies/model.ts';
import { Scope } from '../policies/scope.ts';

export const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) }).openapi('Error');
export const IdParam = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' } }) });

const Name = z.string().trim().min(1).max(100);
const Guid = z.string().regex(/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/, 'expected a GUID');
const Timestamp = z.string().openapi({ format: 'date-time' });

/** PATCH bodies: every field optional and without its default, so a left-out field keeps its value. */
function patchOf<T extends Record<string, z.ZodType>>(fields: T) {
  const out: Record<string, z.ZodType> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = (v instanceof z.ZodDefault ? (v.unwrap() as z.ZodType) : v).optional();
  return z.object(out as { [K in keyof T]: z.ZodOptional<T[K]> });
}

// ---- service accounts ----
const HttpsUrl = z.url({ protocol: /^https$/, error: 'expected an https:// URL (Azure clients refuse plain http)' }).transform((u) => u.replace(/\/+$/, ''));
/** The Azure cloud a service account signs in to: sovereign clouds are configuration, not code. Not secret. */
export const CloudEndpointFields = {
  armEndpoint: HttpsUrl.nullable().openapi({ description: 'ARM endpoint of the service account\'s cloud, e.g. https://management.chinacloudapi.cn; null = the controller default' }),
  authorityHost: HttpsUrl.nullable().openapi({ description: 'Microsoft Entra authority host, e.g. https://login.chinacloudapi.cn; null = the controller default' }),
};
const ServiceAccountFields = {
  name: Name,
  tenantId: z.string().min(1).max(200),
  auth: z.enum(['secret', 'managedIdentity']),
  clientId: Guid.nullable().optional(),
  clientSecret: z.string().min(1).max(1000).nullable().optional().openapi({ description: 'write-only; responses say hasSecret' }),
  subscriptions: z.array(Guid).max(500).default([]),
  armEndpoint: CloudEndpointFields.armEndpoint.optional(),
  authorityHost: CloudEndpointFields.authorityHost.optional(),
};
export const ServiceAccountCreate = z.object(ServiceAccountFields).superRefine((v, ctx) => {
  if (v.auth === 'secret' && !v.clientId) ctx.addIssue({ code: 'custom', path: ['clientId'], message: 'required when auth is "secret"' });
  if (v.auth === 'secret' && !v.clientSecret) ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'required when auth is "secret"' });
}).openapi('ServiceAccountCreate');
export const ServiceAccountPatch = patchOf(ServiceAccountFields).openapi('ServiceAccountPatch');
export const ServiceAccount = z.object({
  id: z.string(), name: z.string(), tenantId: z.string(), auth: z.enum(['secret', 'managedIdentity']), clientId: z.string().nullable(),
  hasSecret: z.boolean(), subscriptions: z.array(z.string()), armEndpoint: z.string().nullable(), authorityHost: z.string().nullable(),
  createdAt: Timestamp, updatedAt: Timestamp,
}).openapi('ServiceAccount');

// ---- repositories ----
const AccessTier = z.enum(['Hot', 'Cool', 'Cold', 'Archive']);
export const RepositoryCreate = z.object({
  name: Name,
  serviceAccountId: z.string().nullable().optional(),
  kind: z.enum(['azblob', 'file']).default('azblob').openapi({ description: 'azblob: Azure Blob Storage (storageAccount, container, folder); file: a directory on the controller machine (path), for local and demo use' }),
  storageAccount: z.string().regex(/^[a-z0-9]{3,24}$/, 'storage account names are 3-24 lowercase letters and digits').optional(),
  container: z.string().regex(/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/, 'container names are 3-63 lowercase letters, digits and single hyphens').optional(),
  folder: z.string().max(500).regex(/^(?:[^/\\]+(?:\/[^/\\]+)*)?$/, 'a relative path without leading, trailing or double slashes')
    .refine((f) => !f.split('/').includes('..'), 'must not contain ".."').default(''),
  path: z.string().max(1000).refine((p) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p), 'an absolute path').optional().openapi({ description: 'kind file: the directory' }),
  accessTier: AccessTier.default('Hot'),
  password: z.string().min(8, 'use at least 8 characters').max(1000).nullable().optional().openapi({ description: 'encryption password; null or absent = unencrypted; write-only' }),
  storageCredential: z.string().min(1).max(4000).nullable().optional().openapi({ description: 'kind azblob: a storage connection string or SAS token for this repository; write-only. Absent: the service account, else the controller environment (AZURE_STORAGE_CONNECTION_STRING, ...)' }),
  immutability: z.boolean().default(false),
  mode: z.enum(['auto', 'init', 'attach']).default('auto').openapi({ description: 'auto attaches an existing repository or initialises a new one' }),
}).superRefine((v, ctx) => {
  if (v.kind === 'azblob') {
    if (!v.storageAccount) ctx.addIssue({ code: 'custom', path: ['storageAccount'], message: 'required for kind "azblob"' });
    if (!v.container) ctx.addIssue({ code: 'custom', path: ['container'], message: 'required for kind "azblob"' });
    if (v.path) ctx.addIssue({ code: 'custom', path: ['path'], message: 'only for kind "file"' });
  } else {
    if (!v.path) ctx.addIssue({ code: 'custom', path: ['path'], message: 'required for kind "file"' });
    if (v.storageAccount || v.container || v.folder) ctx.addIssue({ code: 'custom', path: ['storageAccount'], message: 'storageAccount, container and folder are only for kind "azblob"' });
    if (v.storageCredential) ctx.addIssue({ code: 'custom', path: ['storageCredential'], message: 'only for kind "azblob"' });
  }
}).openapi('RepositoryCreate');
export const RepositoryPatch = z.object({ name: Name, accessTier: AccessTier, immutability: z.boolean() }).partial().strict().openapi('RepositoryPatch');
export const Repository = z.object({
  id: z.string(), name: z.string(), serviceAccountId: z.string().nullable(), kind: z.enum(['azblob', 'file']), storageAccount: z.string(), container: z.string(), folder: z.string(),
  path: z.string().nullable(), accessTier: AccessTier, encrypted: z.boolean(), hasStorageCredential: z.boolean(), immutability: z.boolean(), formatId: z.string().nullable(), createdAt: Timestamp, updatedAt: Timestamp,
}).openapi('Repository');
export const RepositoryCreated = Repository.extend({ initialised: z.boolean().openapi({ description: 'true: a new repository was created; false: an existing one was attached' }) });

// ---- worker configurations ----
const WorkerFields = {
  name: Name,
  region: z.string().regex(/^[a-z0-9]+$/, 'an Azure region name such as "westeurope"'),
  profile: z.enum(['small', 'medium', 'large', 'archive']).openapi({ description: 'VM size profile: small F2s_v2, medium F4s_v2, large F8s_v2, archive E2_v5' }),
  virtualNetwork: z.string().min(1).nullable().optional(),
  subnet: z.string().min(1).nullable().optional(),
  privateNetwork: z.boolean().default(false),
  maxWorkers: z.number().int().min(1).max(1000).default(5),
};
const networkPair = (v: { virtualNetwork?: string | null; subnet?: string | null }, ctx: z.RefinementCtx) => {
  if (Boolean(v.virtualNetwork) !== Boolean(v.subnet)) ctx.addIssue({ code: 'custom', path: ['subnet'], message: 'give both virtualNetwork and subnet, or neither' });
};
export const WorkerConfigurationCreate = z.object(WorkerFields).superRefine(networkPair).openapi('WorkerConfigurationCreate');
export const WorkerConfigurationPatch = patchOf(WorkerFields).openapi('WorkerConfigurationPatch');
export const WorkerConfiguration = z.object({
  id: z.string(), name: z.string(), region: z.string(), profile: z.enum(['small', 'medium', 'large', 'archive']), virtualNetwork: z.string().nullable(),
  subnet: z.string().nullable(), privateNetwork: z.boolean(), maxWorkers: z.number(), createdAt: Timestamp, updatedAt: Timestamp,
}).openapi('WorkerConfiguration');

// ---- policies ----
const Credential = z.object({
  accountId: z.string().min(1),
  username: z.string().min(1).max(200),
  password: z.string().min(1).max(1000).optional().openapi({ description: 'write-only; may be left out on update to keep the stored one' }),
  databases: z.array(z.string().min(1).max(63)).max(64).optional().openapi({ description: 'PostgreSQL: databases to back up (default: "citus", the database of Cosmos DB for PostgreSQL); MongoDB: empty = every database' }),
  sslmode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']).optional().openapi({ description: 'PostgreSQL: how the worker uses TLS (libpq sslmode); default verify-full, as Azure requires TLS' }),
});
const Notifications = z.object({
  onSuccess: z.boolean().default(false),
  onWarning: z.boolean().default(true),
  onFailure: z.boolean().default(true),
  recipients: z.array(z.email()).default([]),
});
export const AllowMigrationText = 'Continuous backup settings: whether configuration sessions migrate accounts that use periodic backup to continuous backup at continuousTier. The migration is ONE-WAY: Azure cannot switch an account back to periodic backup. Off by default: such accounts are then reported with an error, not changed.';
const PolicyFields = {
  name: Name,
  enabled: z.boolean().default(true),
  priority: z.number().int().min(1).optional().openapi({ description: '1 is the highest; an account in several policies is processed by the highest-priority one; default: lowest' }),
  serviceAccountId: z.string().min(1),
  scope: Scope,
  continuousTier: z.union([z.literal(7), z.literal(30)]).default(30),
  allowMigration: z.boolean().default(false).openapi({ description: AllowMigrationText }),
  backup: z.object({ repositoryId: z.string().min(1), schedules: Schedules, credentials: z.array(Credential).default([]) }).nullable().optional(),
  archive: z.object({ repositoryId: z.string().min(1), schedule: ArchiveSchedule }).nullable().optional(),
  notifications: Notifications.default({ onSuccess: false, onWarning: true, onFailure: true, recipients: [] }),
};
const archiveNeedsBackup = (v: { backup?: { repositoryId: string } | null; archive?: { repositoryId: string } | null }, ctx: z.RefinementCtx) => {
  if (v.archive && !v.backup) ctx.addIssue({ code: 'custom', path: ['archive'], message: 'archive copies restore points of the backup to repository: configure backup too' });
  if (v.archive && v.backup && v.archive.repositoryId === v.backup.repositoryId) ctx.addIssue({ code: 'custom', path: ['archive', 'repositoryId'], message: 'the archive repository must differ from the backup repository' });
};
export const PolicyCreate = z.object(PolicyFields).superRefine(archiveNeedsBackup).openapi('PolicyCreate');
export const PolicyPatch = patchOf(PolicyFields).openapi('PolicyPatch');
export const Policy = z.object({
  id: z.string(), name: z.string(), enabled: z.boolean(), priority: z.number(), serviceAccountId: z.string(), scope: Scope,
  continuousTier: z.union([z.literal(7), z.literal(30)]),
  allowMigration: z.boolean().openapi({ description: AllowMigrationText }),
  backup: z.object({ repositoryId: z.string(), schedules: Schedules, credentials: z.array(z.object({ accountId: z.string(), username: z.string(), databases: z.array(z.string()), sslmode: z.string(), hasSecret: z.literal(true) })) }).nullable(),
  archive: z.object({ repositoryId: z.string(), schedule: ArchiveSchedule }).nullable(),
  notifications: Notifications, createdAt: Timestamp, updatedAt: Timestamp,
}).openapi('Policy');
export const RunRequest = z.object({ type: z.enum(['backup', 'archive', 'configuration']).default('backup') }).openapi('RunRequest');
const LocalDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected YYYY-MM-DD').refine((d) => !Number.isNaN(Date.parse(d + 'T00:00:00Z')), 'not a calendar date');
export const PreviewQuery = z.object({ from: LocalDate.optional(), to: LocalDate.optional() });
export const Preview = z.object({
  policyId: z.string(), timeZone: z.string(), from: z.string(), to: z.string(),
  existing: z.number().openapi({ description: 'restore points of the policy that exist before from and are included' }),
  days: z.array(z.object({
    date: z.string(), created: z.array(z.string()), removed: z.array(z.string()),
    points: z.array(z.object({
      id: z.string().openapi({ description: 'the restore point id when existing, else the simulated creation time' }), createdAt: z.string(),
      existing: z.boolean(), flags: z.array(z.object({ flag: z.string(), expiresAt: z.string() })),
    })),
  })),
}).openapi('RetentionPreview');

// ---- sessions and restore points ----
const SessionType = z.enum(['backup', 'archive', 'restore', 'export', 'configuration', 'retention', 'cleanup', 'report']);
export const Retrieval = z.object({
  state: z.enum(['online', 'archived', 'rehydrating', 'ready']).openapi({ description: 'online: nothing needed is archived; archived: packs wait in the Archive tier, no rehydration started; rehydrating: Azure is rehydrating them; ready: all rehydrated' }),
  packs: z.number().openapi({ description: 'packs the restore point needs (as far as known: data packs are known once the chunk lists are readable)' }),
  archived: z.number(), rehydrating: z.number(),
}).openapi('DataRetrieval');
const ExportFileSchema = z.object({
  fileName: z.string(), format: z.enum(['sql', 'mongodump']), size: z.number(), sha256: z.string(),
  expiresAt: z.string().openapi({ description: 'the file is deleted after this' }),
  subscriptionId: z.string(), storageAccountId: z.string(), container: z.string(), blob: z.string(),
}).openapi('ExportFile');
const SessionState = z.enum(['running', 'success', 'warning', 'failed']);
export const Session = z.object({
  id: z.string(), type: SessionType, state: SessionState, policyId: z.string().nullable(), trigger: z.enum(['schedule', 'manual', 'missed', 'system']),
  scheduledFor: z.string().nullable(), flags: z.array(z.enum(['D', 'W', 'M', 'Y', 'A'])), startedAt: Timestamp, finishedAt: z.string().nullable(), bytes: z.number(),
  accounts: z.array(z.object({
    accountId: z.string(), accountName: z.string(), state: z.enum(['success', 'warning', 'failed', 'skipped']), bytes: z.number(),
    restorePointId: z.string().optional(), message: z.string().optional(),
    restorePointIds: z.array(z.string()).optional().openapi({ description: 'every restore point the account\'s backup made (one per database)' }),
    bytesRead: z.number().optional().openapi({ description: 'bytes read from the database' }),
    durationMs: z.number().optional(), worker: z.string().optional().openapi({ description: 'the worker that did the work' }),
    counts: z.record(z.string(), z.number()).optional().openapi({ description: 'restores: rows or documents per table or collection on the target (the fidelity check)' }),
    retrieval: Retrieval.optional().openapi({ description: 'restores and exports of Archive-tier points: the data retrieval (rehydration) status' }),
    export: ExportFileSchema.optional().openapi({ description: 'exports: the file written; POST /sessions/{id}/download-link gives a link to it' }),
  })),
  error: z.string().nullable(), interrupted: z.boolean(),
  params: z.record(z.string(), z.unknown()).nullable().openapi({ description: 'what the session was asked to do, e.g. a restore\'s point, target and subset (never secrets)' }),
}).openapi('Session');
export const SessionWithLog = Session.extend({ log: z.array(z.object({ at: Timestamp, level: z.enum(['info', 'warning', 'error']), message: z.string() })) }).openapi('SessionWithLog');
export const SessionQuery = z.object({
  policyId: z.string().optional(), type: SessionType.optional(), state: SessionState.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
export const RestorePoint = z.object({
  id: z.string(), policyId: z.string().nullable(), sessionId: z.string().nullable(), accountId: z.string(), accountName: z.string(),
  kind: z.enum(['continuous', 'repository', 'archive']), createdAt: Timestamp, flags: z.array(z.object({ flag: z.enum(['D', 'W', 'M', 'Y', 'A']), expiresAt: z.string() })),
  size: z.number(), repositoryId: z.string().nullable(), formatPointId: z.string().nullable(), accessTier: z.string().nullable(),
  continuousTier: z.number().nullable(), windowStart: z.string().nullable(), windowEnd: z.string().nullable(),
  databaseName: z.string().nullable().openapi({ description: 'repository and archive points: the database the point holds' }),
}).openapi('RestorePoint');
export const RestorePointQuery = z.object({
  accountId: z.string().optional(), policyId: z.string().optional(), kind: z.enum(['continuous', 'repository', 'archive']).optional(),
  limit: z.coerce.number().int().min(1).max(10000).optional(),
});

export const RestoreRequest = z.object({
  targetAccountId: z.string().min(1).optional().openapi({ description: 'ARM id of the Cosmos DB account (PostgreSQL cluster or MongoDB account) to restore into; default: the account the restore point was taken from' }),
  databaseName: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,62}$/, 'a new database name: a letter or "_", then up to 62 letters, digits, "_" or "-"')
    .openapi({ description: 'the database to create; restores never write into an existing database' }),
  subset: z.array(z.string().min(1).max(300)).max(1000).default([]).openapi({ description: 'PostgreSQL: tables ("schema.table", or "table" in public) and whole schemas ("schema.*"); MongoDB: collection names. Empty = everything' }),
  rehydratePriority: z.enum(['Standard', 'High']).default('Standard').openapi({ description: 'Archive-tier points: Azure rehydrates their data first, within 15 hours (Standard) or about one (High, costlier)' }),
  serviceAccountId: z.string().min(1).optional().openapi({ description: 'service account that reaches the target; default: the restore point\'s policy\'s' }),
  credentials: z.object({ username: z.string().min(1).max(200), password: z.string().min(1).max(1000), sslmode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']).optional() }).optional()
    .openapi({ description: 'database login on the target (PostgreSQL); write-only, used for this restore only and never stored; default: the policy\'s login for that account' }),
}).openapi('RestoreRequest');

// ---- tokens ----
export const TokenCreate = z.object({
  name: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'use 1-64 letters, digits, ".", "_", "@" or "-"'),
}).openapi('TokenCreate');
export const Token = z.object({ id: z.string(), name: z.string(), createdAt: Timestamp, lastUsedAt: z.string().nullable() }).openapi('Token');
export const TokenCreated = Token.extend({ token: z.string().openapi({ description: 'the bearer token; shown only in this response' }) }).openapi('TokenCreated');

// ---- settings ----
const Smtp = z.object({
  host: z.string().min(1), port: z.number().int().min(1).max(65535).default(587), secure: z.boolean().default(false),
  username: z.string().min(1).nullable().default(null),
  password: z.string().min(1).nullable().optional().openapi({ description: 'write-only; leave out to keep, null to clear' }),
});
export const SettingsInput = z.object({
  sessionRetentionDays: z.number().int().min(1).max(36500).default(365),
  privateNetwork: z.boolean().default(false).openapi({ description: 'private network deployment: workers reach storage only through private endpoints in their virtual network (in every region)' }),
  email: z.object({
    enabled: z.boolean().default(true),
    smtp: Smtp,
    from: z.email(),
    to: z.array(z.email()).min(1),
    notifyOnSuccess: z.boolean().default(false),
    notifyOnWarning: z.boolean().default(true),
    notifyOnFailure: z.boolean().default(true),
    dailyReport: z.object({
      enabled: z.boolean().default(false),
      time: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM').default('08:00'),
      timeZone: TimeZone.default('UTC').openapi({ description: 'IANA time zone of time' }),
    }).default({ enabled: false, time: '08:00', timeZone: 'UTC' }).openapi({ description: 'a mail with every session of the last 24 hours, sent daily at time' }),
  }).nullable().default(null),
}).openapi('SettingsInput');
export const Settings = z.object({
  sessionRetentionDays: z.number(),
  privateNetwork: z.boolean(),
  email: z.object({
    enabled: z.boolean(),
    smtp: z.object({ host: z.string(), port: z.number(), secure: z.boolean(), username: z.string().nullable(), hasPassword: z.boolean() }),
    from: z.string(), to: z.array(z.string()), notifyOnSuccess: z.boolean(), notifyOnWarning: z.boolean(), notifyOnFailure: z.boolean(),
    dailyReport: z.object({ enabled: z.boolean(), time: z.string(), timeZone: z.string() }),
  }).nullable(),
}).openapi('Settings');

export const ExportRequest = z.object({
  format: z.enum(['sql', 'mongodump']).optional().openapi({ description: 'sql (PostgreSQL: a plain script psql loads) or mongodump (MongoDB: a .tar.gz mongorestore reads); default by the account\'s engine' }),
  serviceAccountId: z.string().min(1).optional().openapi({ description: 'default: the restore point\'s policy\'s' }),
}).openapi('ExportRequest');
export const DownloadLinkRequest = z.object({
  minutes: z.number().int().min(1).max(60).default(15).openapi({ description: 'how long the link works (at most an hour)' }),
}).openapi('DownloadLinkRequest');
export const DownloadLink = z.object({
  url: z.string().openapi({ description: 'read-only, for this one file, expiring at expiresAt; treat it as a secret' }),
  expiresAt: z.string(), fileName: z.string(), size: z.number(), sha256: z.string(),
}).openapi('DownloadLink');
