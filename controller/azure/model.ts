// Pure rules of the Azure control plane: API kinds, continuous-backup tiers, the permissions a
// service account needs, and restore windows. No I/O here.

/** Every kind discovery reports; Cassandra is listed but cannot use continuous backup. */
export const DISCOVERED_KINDS = ['NoSql', 'MongoRU', 'Table', 'Gremlin', 'Cassandra', 'PostgreSQL'] as const;
export type DiscoveredKind = (typeof DISCOVERED_KINDS)[number];

export type ContinuousTier = 'Continuous7Days' | 'Continuous30Days';
export const tierOf = (days: 7 | 30): ContinuousTier => (days === 7 ? 'Continuous7Days' : 'Continuous30Days');
export const daysOf = (tier: string | undefined): 7 | 30 | null => (tier === 'Continuous7Days' ? 7 : tier === 'Continuous30Days' ? 30 : null);

/** How Azure tells Cosmos DB API kinds apart: `kind` and capabilities. */
export function cosmosKind(kind: string | undefined, capabilities: { name?: string }[] | undefined): Exclude<DiscoveredKind, 'PostgreSQL'> {
  const caps = new Set((capabilities ?? []).map((c) => (c.name ?? '').toLowerCase()));
  if ((kind ?? '').toLowerCase() === 'mongodb' || caps.has('enablemongo')) return 'MongoRU';
  if (caps.has('enablecassandra')) return 'Cassandra';
  if (caps.has('enablegremlin')) return 'Gremlin';
  if (caps.has('enabletable')) return 'Table';
  return 'NoSql';
}

/** Azure supports continuous backup (and so point-in-time restore) for these kinds only. */
export const CONTINUOUS_KINDS: readonly DiscoveredKind[] = ['NoSql', 'MongoRU', 'Table', 'Gremlin'];

/**
 * What the service account needs, and why (docs/AZURE-PERMISSIONS.md explains each): the Cosmos
 * DB backup list of product-behaviour.md §1, then what a point-in-time restore adds.
 */
export const BACKUP_ACTIONS: readonly string[] = [
  'Microsoft.Authorization/roleAssignments/read',
  'Microsoft.DBforPostgreSQL/serverGroupsv2/*/read',
  'Microsoft.DocumentDB/databaseAccounts/listConnectionStrings/action',
  'Microsoft.DocumentDB/databaseAccounts/metrics/read',
  'Microsoft.DocumentDB/databaseAccounts/mongodbDatabases/collections/read',
  'Microsoft.DocumentDB/databaseAccounts/mongodbDatabases/collections/throughputSettings/read',
  'Microsoft.DocumentDB/databaseAccounts/mongodbDatabases/read',
  'Microsoft.DocumentDB/databaseAccounts/mongodbDatabases/throughputSettings/read',
  'Microsoft.DocumentDB/databaseAccounts/read',
  'Microsoft.DocumentDB/databaseAccounts/write',
  'Microsoft.DocumentDB/locations/restorableDatabaseAccounts/*/read',
  'Microsoft.DocumentDB/locations/restorableDatabaseAccounts/read',
  'Microsoft.Insights/eventtypes/values/Read',
  'Microsoft.Insights/Metrics/Read',
  'Microsoft.Resources/subscriptions/resourceGroups/read',
];
export const RESTORE_ACTIONS: readonly string[] = [
  'Microsoft.DocumentDB/locations/restorableDatabaseAccounts/restore/action',
  'Microsoft.Resources/deployments/validate/action',
  'Microsoft.Resources/deployments/write',
];
export const REQUIRED_ACTIONS: readonly string[] = [...BACKUP_ACTIONS, ...RESTORE_ACTIONS];

const globToRegExp = (p: string) => new RegExp(`^${p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`, 'i');

/**
 * Required actions that a role grant does not cover. A required action with a wildcard
 * (".../*\/read") is covered when a grant pattern covers it as a pattern too.
 */
export function missingActions(granted: { actions: string[]; notActions: string[] }[], required: readonly string[] = REQUIRED_ACTIONS): string[] {
  const covers = (pattern: string, action: string) => globToRegExp(pattern).test(action);
  return required.filter((action) => !granted.some((g) => g.actions.some((a) => covers(a, action)) && !g.notActions.some((n) => covers(n, action) || covers(action, n))));
}

export interface ContinuousRecord { createdAt: Date; windowStart: Date | null; continuousTier: number | null }
export interface RestoreWindow { start: Date; end: Date; tierDays: number | null; records: number }

/**
 * The span an account can be restored to, from the controller's restore-point records (one per
 * configuration session) and what Azure says now: it starts at the earliest record's window start,
 * never before Azure's oldest restorable time, and ends now (or when the account was deleted).
 */
export function restoreWindow(records: readonly ContinuousRecord[], azure: { oldestRestorableTime: Date | null; deletedAt: Date | null }, now: Date): RestoreWindow | null {
  const starts = records.map((r) => (r.windowStart ?? r.createdAt).getTime());
  if (!starts.length) return null;
  let start = Math.min(...starts);
  if (azure.oldestRestorableTime) start = Math.max(start, azure.oldestRestorableTime.getTime());
  const end = azure.deletedAt && azure.deletedAt < now ? azure.deletedAt : now;
  if (start > end.getTime()) return null;
  const latest = [...records].sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())[0]!;
  return { start: new Date(start), end, tierDays: latest.continuousTier, records: records.length };
}

export const ACCOUNT_NAME = /^[a-z0-9](?:[a-z0-9-]{1,42})[a-z0-9]$/;
