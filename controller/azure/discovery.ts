// Sign-in check and discovery for one service account: the subscriptions it sees, the actions
// it lacks, and every Cosmos DB account (all API kinds), deleted-but-restorable account instance
// and Cosmos DB for PostgreSQL cluster in those subscriptions.
import type { RestorableDatabaseAccountGetResult } from '@azure/arm-cosmosdb';
import type { ServiceAccountCredentials } from '../db/config-store.ts';
import type { AzureClients, Subscription } from './clients.ts';
import { azureError } from './errors.ts';
import { cosmosKind, daysOf, missingActions, type DiscoveredKind } from './model.ts';

export interface DiscoveredAccount {
  /** ARM resource id (for a deleted instance never seen alive: its restorable-account id) */
  armId: string;
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  region: string;
  kind: DiscoveredKind;
  tags: Record<string, string>;
  /** Cosmos DB instance id: the only safe key for restores (names repeat across deleted accounts) */
  instanceId: string | null;
  backupType: 'Periodic' | 'Continuous' | null;
  tierDays: 7 | 30 | null;
  migrating: boolean;
  oldestRestorableTime: Date | null;
  deletedAt: Date | null;
  serverVersion: string | null;
  /** PostgreSQL: coordinator host (":port" only when the cloud says so) */
  coordinatorFqdn: string | null;
}

export interface CheckResult { subscriptions: Subscription[]; missingActions: Record<string, string[]> }

/** Subscriptions the service account is limited to (all it sees when it lists none). */
export async function subscriptionsOf(sa: ServiceAccountCredentials, c: AzureClients): Promise<Subscription[]> {
  let subs: Subscription[];
  try { subs = await c.arm.listSubscriptions(); } catch (e) { throw azureError(e, `service account ${sa.id}: listing subscriptions`); }
  if (!sa.subscriptions.length) return subs;
  const want = new Set(sa.subscriptions.map((s) => s.toLowerCase()));
  return subs.filter((s) => want.has(s.subscriptionId.toLowerCase()));
}

/** Signs in, lists subscriptions and names the required actions each subscription lacks. */
export async function checkServiceAccount(sa: ServiceAccountCredentials, c: AzureClients): Promise<CheckResult> {
  const subscriptions = await subscriptionsOf(sa, c);
  const missing: Record<string, string[]> = {};
  for (const s of subscriptions) {
    try {
      const granted = await c.arm.listPermissions(`/subscriptions/${s.subscriptionId}`);
      missing[s.subscriptionId] = missingActions(granted.map((g) => ({ actions: g.actions ?? [], notActions: g.notActions ?? [] })));
    } catch (e) { throw azureError(e, `subscription ${s.subscriptionId}: reading permissions`); }
  }
  return { subscriptions, missingActions: missing };
}

const rgOf = (id: string) => /\/resourceGroups\/([^/]+)/i.exec(id)?.[1] ?? '';
const date = (v: unknown) => (v ? new Date(v as string) : null);

export async function discover(sa: ServiceAccountCredentials, c: AzureClients): Promise<{ accounts: DiscoveredAccount[]; subscriptions: string[] }> {
  const subs = await subscriptionsOf(sa, c);
  const out: DiscoveredAccount[] = [];
  for (const s of subs) {
    const sub = s.subscriptionId;
    const live = new Set<string>();
    try {
      // Azure tells how far back an account can be restored only through its restorable instance.
      const restorables = new Map<string, RestorableDatabaseAccountGetResult>();
      for await (const r of c.cosmos(sub).restorableDatabaseAccounts.list()) if (r.name) restorables.set(r.name.toLowerCase(), r);
      for await (const a of c.cosmos(sub).databaseAccounts.list()) {
        const bp = a.backupPolicy as { type?: string; continuousModeProperties?: { tier?: string }; migrationState?: { status?: string } } | undefined;
        if (a.instanceId) live.add(a.instanceId.toLowerCase());
        out.push({
          armId: a.id!, name: a.name!, subscriptionId: sub, resourceGroup: rgOf(a.id!), region: normRegion(a.location ?? ''),
          kind: cosmosKind(a.kind, a.capabilities), tags: a.tags ?? {}, instanceId: a.instanceId ?? null,
          backupType: bp?.type === 'Continuous' ? 'Continuous' : bp?.type === 'Periodic' ? 'Periodic' : null,
          tierDays: bp?.type === 'Continuous' ? (daysOf(bp.continuousModeProperties?.tier) ?? 30) : null,
          migrating: Boolean(bp?.migrationState && bp.migrationState.status !== 'Completed'),
          oldestRestorableTime: date(a.instanceId && restorables.get(a.instanceId.toLowerCase())?.oldestRestorableTime), deletedAt: null,
          serverVersion: a.apiProperties?.serverVersion ?? null, coordinatorFqdn: null,
        });
      }
      // Deleted accounts stay restorable for their tier: list them as soft-deleted instances.
      for (const r of restorables.values()) {
        if (!r.name || live.has(r.name.toLowerCase()) || !r.deletionTime) continue;
        out.push({
          armId: r.id!, name: r.accountName ?? r.name, subscriptionId: sub, resourceGroup: '', region: normRegion(r.location ?? r.restorableLocations?.[0]?.locationName ?? ''),
          kind: apiTypeKind(r.apiType), tags: {}, instanceId: r.name, backupType: 'Continuous', tierDays: null, migrating: false,
          oldestRestorableTime: date(r.oldestRestorableTime), deletedAt: date(r.deletionTime), serverVersion: null, coordinatorFqdn: null,
        });
      }
      for await (const g of c.resources(sub).resources.list({ filter: "resourceType eq 'Microsoft.DBforPostgreSQL/serverGroupsv2'" })) {
        const full = await c.resources(sub).resources.getById(g.id!, '2022-11-08');
        const names = ((full.properties ?? {}) as { serverNames?: { name?: string; fullyQualifiedDomainName?: string }[] }).serverNames ?? [];
        const coord = names.find((n) => /-c$/.test(n.name ?? '')) ?? names[0];
        out.push({
          armId: g.id!, name: g.name!, subscriptionId: sub, resourceGroup: rgOf(g.id!), region: normRegion(g.location ?? ''), kind: 'PostgreSQL',
          tags: g.tags ?? {}, instanceId: null, backupType: null, tierDays: null, migrating: false, oldestRestorableTime: null, deletedAt: null,
          serverVersion: null, coordinatorFqdn: coord?.fullyQualifiedDomainName ?? null,
        });
      }
    } catch (e) { throw azureError(e, `subscription ${sub}: discovery`); }
  }
  return { accounts: out, subscriptions: subs.map((s) => s.subscriptionId) };
}

/** "West Europe" and "westeurope" are one region. */
export const normRegion = (r: string) => r.replace(/\s+/g, '').toLowerCase();

function apiTypeKind(apiType: string | undefined): DiscoveredKind {
  switch ((apiType ?? '').toLowerCase()) {
    case 'mongodb': return 'MongoRU';
    case 'table': return 'Table';
    case 'gremlin': case 'gremlinv2': return 'Gremlin';
    case 'cassandra': return 'Cassandra';
    default: return 'NoSql';
  }
}
