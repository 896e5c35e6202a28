// Keeps an account's native continuous backup at a tier, and restores an account to a point in
// time. Azure's rules drive the shape: a tier change is a PATCH carrying only the tier (ARM refuses
// it together with other properties); Periodic -> Continuous is a one-way migration that takes a
// while and blocks other backup-policy changes; Cassandra has no continuous backup; a restore
// always creates a new account and must name its source by instance id.
import type { DatabaseAccountUpdateParameters, DatabaseAccountCreateUpdateParameters } from '@azure/arm-cosmosdb';
import { CosmosBackupError } from '../../shared/errors.ts';
import type { AzureClients } from './clients.ts';
import { AzureError, azureError } from './errors.ts';
import { cosmosKind, daysOf, tierOf, CONTINUOUS_KINDS } from './model.ts';

export interface AccountRef { id: string; name: string; subscriptionId: string; resourceGroup: string }
export interface EnsureResult {
  changed: boolean;
  migrated: boolean;
  previousTier: 7 | 30 | null;
  oldestRestorableTime: Date | null;
  instanceId: string | null;
}

/** A refusal of ARM that says another operation holds the account: worth a later try. */
const busy = (e: unknown) => (e as { statusCode?: number }).statusCode === 409;

async function retryBusy<T>(fn: () => Promise<T>, attempts = 4, delayMs = 1000): Promise<T> {
  for (let i = 1; ; i++) {
    try { return await fn(); } catch (e) {
      if (!busy(e) || i >= attempts) throw e;
      await new Promise((r) => setTimeout(r, delayMs * i));
    }
  }
}

export async function ensureContinuousBackup(c: AzureClients, ref: AccountRef, days: 7 | 30, opts: { allowMigration: boolean }): Promise<EnsureResult> {
  const client = c.cosmos(ref.subscriptionId);
  const doing = `${ref.name}: continuous backup`;
  let acc;
  try { acc = await client.databaseAccounts.get(ref.resourceGroup, ref.name); } catch (e) { throw azureError(e, `${ref.name}: reading the account`); }
  const kind = cosmosKind(acc.kind, acc.capabilities);
  if (!CONTINUOUS_KINDS.includes(kind)) {
    throw new AzureError('INVALID_ARGUMENT', `${ref.name}: ${kind} accounts cannot use continuous backup (Azure supports it for NoSQL, MongoDB RU, Gremlin and Table); the account is not protected`, 0, 'UnsupportedApiKind');
  }
  const bp = acc.backupPolicy as { type?: string; continuousModeProperties?: { tier?: string }; migrationState?: { status?: string; startTime?: Date } } | undefined;
  if (bp?.migrationState && bp.migrationState.status !== 'Completed') {
    throw new AzureError('INVALID_ARGUMENT', `${ref.name}: a migration to continuous backup is in progress (started ${bp.migrationState.startTime ? new Date(bp.migrationState.startTime).toISOString() : 'earlier'}); backup-policy changes wait until it completes`, 409, 'MigrationInProgress');
  }
  const tier = tierOf(days);
  // Only the tier: any other property in this PATCH makes ARM refuse the whole request.
  const patch: DatabaseAccountUpdateParameters = { backupPolicy: { type: 'Continuous', continuousModeProperties: { tier } } as DatabaseAccountUpdateParameters['backupPolicy'] };
  let previousTier: 7 | 30 | null = null;
  let migrated = false;
  if (bp?.type !== 'Continuous') {
    if (!opts.allowMigration) {
      throw new AzureError('INVALID_ARGUMENT', `${ref.name}: the account uses periodic backup and this policy does not allow migrating it to continuous backup (a one-way change); enable migration in the policy or migrate it in Azure`, 0, 'MigrationNotAllowed');
    }
    migrated = true;
  } else {
    previousTier = daysOf(bp.continuousModeProperties?.tier) ?? 30;
    if (previousTier === days) return { changed: false, migrated: false, previousTier, oldestRestorableTime: await oldestRestorable(c, ref, acc.location, acc.instanceId), instanceId: acc.instanceId ?? null };
  }
  try {
    await retryBusy(() => client.databaseAccounts.beginUpdateAndWait(ref.resourceGroup, ref.name, patch, c.pollOptions));
  } catch (e) { throw azureError(e, doing); }
  return { changed: true, migrated, previousTier, oldestRestorableTime: await oldestRestorable(c, ref, acc.location, acc.instanceId), instanceId: acc.instanceId ?? null };
}

async function oldestRestorable(c: AzureClients, ref: AccountRef, location: string | undefined, instanceId: string | undefined): Promise<Date | null> {
  if (!instanceId || !location) return null;
  try {
    const r = await c.cosmos(ref.subscriptionId).restorableDatabaseAccounts.getByLocation(location, instanceId);
    return r.oldestRestorableTime ? new Date(r.oldestRestorableTime) : null;
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 404) return null;
    throw azureError(e, `${ref.name}: reading the restorable account`);
  }
}

export interface RestoreSource { subscriptionId: string; region: string; instanceId: string; kind: string; serverVersion: string | null }
export interface RestoreTarget {
  name: string; resourceGroup: string; region: string; pointInTime: Date; tier: 7 | 30;
  databases?: { name: string; collections?: string[] }[];
  tables?: string[];
}

/** The restorable instance (never looked up by name: several deleted accounts can share one). */
export async function restorableInstance(c: AzureClients, src: RestoreSource) {
  try {
    return await c.cosmos(src.subscriptionId).restorableDatabaseAccounts.getByLocation(src.region, src.instanceId);
  } catch (e) { throw azureError(e, `restorable account instance ${src.instanceId}`); }
}

/** Databases and their collections (containers, graphs, tables) that existed at a point in time. */
export async function restorableResources(c: AzureClients, src: RestoreSource, at: Date): Promise<{ name: string; collections: string[] }[]> {
  const cl = c.cosmos(src.subscriptionId);
  const opts = { restoreLocation: src.region, restoreTimestampInUtc: at.toISOString() };
  const out: { name: string; collections: string[] }[] = [];
  try {
    if (src.kind === 'MongoRU') for await (const r of cl.restorableMongodbResources.list(src.region, src.instanceId, opts)) out.push({ name: r.databaseName!, collections: r.collectionNames ?? [] });
    else if (src.kind === 'Gremlin') for await (const r of cl.restorableGremlinResources.list(src.region, src.instanceId, opts)) out.push({ name: r.databaseName!, collections: r.graphNames ?? [] });
    else if (src.kind === 'Table') {
      const tables: string[] = [];
      for await (const r of cl.restorableTableResources.list(src.region, src.instanceId, opts)) tables.push(r.name!);
      out.push({ name: TABLES, collections: tables });
    } else for await (const r of cl.restorableSqlResources.list(src.region, src.instanceId, opts)) out.push({ name: r.databaseName!, collections: r.collectionNames ?? [] });
  } catch (e) { throw azureError(e, `restorable databases of instance ${src.instanceId}`); }
  return out;
}

/** Issues the restore PUT and follows it until the new account is ready. */
export async function restoreToNewAccount(c: AzureClients, src: RestoreSource, target: RestoreTarget, onProgress: (state: string) => void = () => {}): Promise<{ id: string; provisioningState: string }> {
  const inst = await restorableInstance(c, src);
  const source = inst.id!;
  if (!/\/restorableDatabaseAccounts\/[^/]+$/i.test(source)) throw new CosmosBackupError('INTERNAL', `unexpected restorable account id ${source}`);
  const kind = src.kind;
  const body: DatabaseAccountCreateUpdateParameters = {
    location: target.region,
    kind: kind === 'MongoRU' ? 'MongoDB' : 'GlobalDocumentDB',
    databaseAccountOfferType: 'Standard',
    locations: [{ locationName: target.region, failoverPriority: 0, isZoneRedundant: false }],
    capabilities: kind === 'Gremlin' ? [{ name: 'EnableGremlin' }] : kind === 'Table' ? [{ name: 'EnableTable' }] : kind === 'MongoRU' ? [{ name: 'EnableMongo' }] : [],
    createMode: 'Restore',
    restoreParameters: {
      restoreMode: 'PointInTime',
      restoreSource: source,
      restoreTimestampInUtc: target.pointInTime,
      // TTL would delete restored documents whose time has passed since the restore point.
      restoreWithTtlDisabled: true,
      ...(target.databases?.length && kind !== 'Gremlin' && kind !== 'Table' ? { databasesToRestore: target.databases.map((d) => ({ databaseName: d.name, collectionNames: d.collections ?? [] })) } : {}),
      ...(target.databases?.length && kind === 'Gremlin' ? { gremlinDatabasesToRestore: target.databases.map((d) => ({ databaseName: d.name, graphNames: d.collections ?? [] })) } : {}),
      ...(target.tables?.length ? { tablesToRestore: target.tables } : {}),
    },
    backupPolicy: { type: 'Continuous', continuousModeProperties: { tier: tierOf(target.tier) } } as DatabaseAccountCreateUpdateParameters['backupPolicy'],
    publicNetworkAccess: 'Disabled',
    ...(kind === 'MongoRU' ? { apiProperties: { serverVersion: (src.serverVersion ?? '4.2') as '4.2' } } : {}),
  };
  try {
    const poller = await c.cosmos(src.subscriptionId).databaseAccounts.beginCreateOrUpdate(target.resourceGroup, target.name, body, c.pollOptions);
    onProgress('restore requested; the new account is initializing');
    const acc = await poller.pollUntilDone();
    return { id: acc.id!, provisioningState: acc.provisioningState ?? 'Succeeded' };
  } catch (e) { throw azureError(e, `restore to ${target.name}`); }
}

export interface InAccountRestore { database: string; collection?: string; pointInTime: Date }

/** Kinds whose deleted databases / collections Azure restores into the same account. */
export const IN_ACCOUNT_RESTORE_KINDS: readonly string[] = ['NoSql', 'MongoRU', 'Gremlin', 'Table'];
/** The pseudo database restorable-databases lists a Table account's tables under. */
export const TABLES = '(tables)';

/**
 * What an in-account restore names, per kind. Tables are top-level in a Table account: the table
 * is `database`, or `collection` under the `(tables)` pseudo database restorable-databases shows.
 */
export function inAccountItem(kind: string, req: { database: string; collection?: string }): { database: string; collection?: string; what: string } {
  if (kind === 'Table') {
    if (req.collection !== undefined && req.database !== TABLES) throw new AzureError('INVALID_ARGUMENT', `a Table account has no databases: name the table as "database", or as "collection" under "${TABLES}"`, 400, 'BadRequest');
    const table = req.collection ?? req.database;
    return { database: table, what: `table ${table}` };
  }
  const inner = kind === 'Gremlin' ? 'graph' : kind === 'NoSql' ? 'container' : 'collection';
  return { ...req, what: req.collection ? `${inner} ${req.database}/${req.collection}` : `database ${req.database}` };
}

/**
 * Restores a deleted database, or a deleted collection (container, graph) of a live database, or
 * a deleted table, into the same account (Azure allows it for NoSQL, MongoDB RU, Gremlin and
 * Table; the database comes back first). The source is the account's own instance, by id.
 */
export async function restoreDeletedInAccount(c: AzureClients, acc: AccountRef & RestoreSource, req: InAccountRestore): Promise<void> {
  const item = inAccountItem(acc.kind, req);
  if (!IN_ACCOUNT_RESTORE_KINDS.includes(acc.kind)) {
    throw new AzureError('INVALID_ARGUMENT', `${acc.name}: restoring a deleted ${item.what} into the same account is offered for NoSQL, MongoDB RU, Gremlin and Table accounts; restore ${acc.kind} accounts to a new account`, 400, 'UnsupportedApiKind');
  }
  const inst = await restorableInstance(c, acc);
  const resource = (id: string) => ({ id, createMode: 'Restore' as const, restoreParameters: { restoreSource: inst.id!, restoreTimestampInUtc: req.pointInTime } });
  const cl = c.cosmos(acc.subscriptionId);
  const { database: db, collection: coll, what } = item;
  const rg = acc.resourceGroup;
  try {
    if (acc.kind === 'MongoRU') {
      if (coll) await cl.mongoDBResources.beginCreateUpdateMongoDBCollectionAndWait(rg, acc.name, db, coll, { resource: resource(coll), options: {} }, c.pollOptions);
      else await cl.mongoDBResources.beginCreateUpdateMongoDBDatabaseAndWait(rg, acc.name, db, { resource: resource(db), options: {} }, c.pollOptions);
    } else if (acc.kind === 'NoSql') {
      if (coll) await cl.sqlResources.beginCreateUpdateSqlContainerAndWait(rg, acc.name, db, coll, { resource: resource(coll), options: {} }, c.pollOptions);
      else await cl.sqlResources.beginCreateUpdateSqlDatabaseAndWait(rg, acc.name, db, { resource: resource(db), options: {} }, c.pollOptions);
    } else if (acc.kind === 'Gremlin') {
      if (coll) await cl.gremlinResources.beginCreateUpdateGremlinGraphAndWait(rg, acc.name, db, coll, { resource: resource(coll), options: {} }, c.pollOptions);
      else await cl.gremlinResources.beginCreateUpdateGremlinDatabaseAndWait(rg, acc.name, db, { resource: resource(db), options: {} }, c.pollOptions);
    } else {
      await cl.tableResources.beginCreateUpdateTableAndWait(rg, acc.name, db, { resource: resource(db), options: {} }, c.pollOptions);
    }
  } catch (e) { throw azureError(e, `${acc.name}: restore of deleted ${what}`); }
}
